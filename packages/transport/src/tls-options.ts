import { ErrorCode, MpregError } from "@mpreg/envelope";

/** PEM text, as a string or its bytes (a `Buffer` read from a file fits). May hold several blocks (a chain, a CA bundle). */
export type PemInput = string | Uint8Array;

/** TLS options of `createWsListener`: with them the listener serves `wss://` (an https server). */
export interface ListenerTlsOptions {
  /** The node's certificate (PEM), optionally followed by its intermediate certificates. */
  cert: PemInput;
  /** The private key of `cert` (PEM, unencrypted). */
  key: PemInput;
  /** CA certificate(s) (PEM) that client certificates must chain to; needed by `requestClientCert`. */
  ca?: PemInput;
  /**
   * Mutual TLS: every connection (client or peer) must present a certificate signed by `ca`;
   * one that does not fails the TLS handshake and never reaches the upgrade. Default false.
   */
  requestClientCert?: boolean;
}

/** TLS options of `connectWs` for `wss://` URLs (Node only; ignored for `ws://`). */
export interface ClientTlsOptions {
  /** CA certificate(s) (PEM) to trust instead of the system's (a private CA, a self-signed node). */
  ca?: PemInput;
  /** Client certificate (PEM) for a listener that requires one (mutual TLS); needs `key`. */
  cert?: PemInput;
  /** The private key of `cert` (PEM, unencrypted); needs `cert`. */
  key?: PemInput;
  /**
   * Refuse a server whose certificate does not verify against the trusted CAs or does not
   * name the host. Default true; false turns off all server authentication (tests only).
   */
  rejectUnauthorized?: boolean;
  /** Name the server's certificate must carry (and SNI) when it differs from the URL's host. */
  servername?: string;
}

const decoder = new TextDecoder("utf-8", { fatal: false });

function pemText(v: PemInput): string {
  return typeof v === "string" ? v : decoder.decode(v);
}

/**
 * Checks that `v` is a string or bytes holding a PEM block of the expected kind; the error
 * names `path`. Browser-safe (no parsing of the contents: `checkListenerTls` and
 * `checkClientTls` in Node parse them too).
 */
function pem(v: unknown, path: string, kind: "certificate" | "key"): void {
  if (typeof v !== "string" && !(v instanceof Uint8Array)) {
    throw MpregError.invalid(`${path} must be PEM text (a string or a Buffer), got ${v === null ? "null" : typeof v}`, path);
  }
  const text = pemText(v);
  const ok = kind === "certificate" ? text.includes("-----BEGIN CERTIFICATE-----") : /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text);
  if (!ok) {
    const want = kind === "certificate" ? "-----BEGIN CERTIFICATE-----" : "-----BEGIN … PRIVATE KEY-----";
    const hint = kind === "key" && text.includes("-----BEGIN CERTIFICATE-----") ? " (it holds a certificate: were cert and key swapped?)" : "";
    throw MpregError.invalid(`${path} is not a PEM ${kind}: no "${want}" block${hint}`, path);
  }
}

function object(v: unknown, path: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw MpregError.invalid(`${path} must be an object`, path);
  }
  return v as Record<string, unknown>;
}

function known(o: Record<string, unknown>, path: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (o[k] !== undefined && !keys.includes(k)) throw MpregError.invalid(`${path}.${k} is not a TLS option (known: ${keys.join(", ")})`, `${path}.${k}`);
  }
}

/** Shape check of listener TLS options (types, PEM blocks present, combinations); 1002 naming the option. */
export function checkListenerTlsShape(v: unknown, path = "tls"): ListenerTlsOptions {
  const o = object(v, path);
  known(o, path, ["cert", "key", "ca", "requestClientCert"]);
  if (o.cert === undefined) throw MpregError.invalid(`${path}.cert is required (the listener's certificate)`, `${path}.cert`);
  if (o.key === undefined) throw MpregError.invalid(`${path}.key is required (the private key of ${path}.cert)`, `${path}.key`);
  pem(o.cert, `${path}.cert`, "certificate");
  pem(o.key, `${path}.key`, "key");
  if (o.ca !== undefined) pem(o.ca, `${path}.ca`, "certificate");
  if (o.requestClientCert !== undefined && typeof o.requestClientCert !== "boolean") {
    throw MpregError.invalid(`${path}.requestClientCert must be a boolean`, `${path}.requestClientCert`);
  }
  if (o.requestClientCert === true && o.ca === undefined) {
    throw MpregError.invalid(`${path}.requestClientCert needs ${path}.ca (the CA that client certificates must chain to)`, `${path}.ca`);
  }
  return o as unknown as ListenerTlsOptions;
}

/** Shape check of client TLS options (types, PEM blocks present, cert and key together); 1002 naming the option. */
export function checkClientTlsShape(v: unknown, path = "tls"): ClientTlsOptions {
  const o = object(v, path);
  known(o, path, ["ca", "cert", "key", "rejectUnauthorized", "servername"]);
  if (o.ca !== undefined) pem(o.ca, `${path}.ca`, "certificate");
  if ((o.cert === undefined) !== (o.key === undefined)) {
    const missing = o.cert === undefined ? "cert" : "key";
    throw MpregError.invalid(`${path}.cert and ${path}.key go together: ${path}.${missing} is missing`, `${path}.${missing}`);
  }
  if (o.cert !== undefined) pem(o.cert, `${path}.cert`, "certificate");
  if (o.key !== undefined) pem(o.key, `${path}.key`, "key");
  if (o.rejectUnauthorized !== undefined && typeof o.rejectUnauthorized !== "boolean") {
    throw MpregError.invalid(`${path}.rejectUnauthorized must be a boolean`, `${path}.rejectUnauthorized`);
  }
  if (o.servername !== undefined && (typeof o.servername !== "string" || o.servername.length === 0)) {
    throw MpregError.invalid(`${path}.servername must be a non-empty string`, `${path}.servername`);
  }
  return o as unknown as ClientTlsOptions;
}

/**
 * OpenSSL's certificate verification results as Node reports them (`err.code`), and the TLS
 * library's own errors: a dial that failed with one of these failed on TLS, not on the network.
 */
const TLS_ERROR = /^(ERR_SSL_|ERR_TLS_)|CERT|CRL|SELF_SIGNED|^UNABLE_TO_|^INVALID_CA$|^INVALID_PURPOSE$|^PATH_LENGTH_EXCEEDED$|^HOSTNAME_MISMATCH$/;

/** Alerts a server sends when it refuses the client's certificate (or its absence). */
const CLIENT_CERT_REFUSED = /^ERR_SSL_(TLSV13_ALERT_CERTIFICATE_REQUIRED|SSLV3_ALERT_BAD_CERTIFICATE|TLSV1_ALERT_UNKNOWN_CA|SSLV3_ALERT_CERTIFICATE_UNKNOWN|SSLV3_ALERT_UNSUPPORTED_CERTIFICATE|TLSV1_ALERT_ACCESS_DENIED)$/;

/**
 * Turns a failed `wss://` dial's error into an MpregError when it is a TLS failure, else
 * undefined: 1006 UNAUTHORIZED when the server refused our certificate (or that we sent none),
 * 1005 UNREACHABLE when we could not verify the server, 1002 when our own key or certificate
 * could not be loaded. `details.tls_error` holds Node's code.
 */
export function tlsDialError(url: string, err: Error & { code?: unknown }): MpregError | undefined {
  const code = typeof err.code === "string" ? err.code : "";
  // OpenSSL decoder messages carry "file:line" noise; keep the readable part.
  const text = err.message.replace(/^[0-9A-F]+:error:[0-9A-F]+:/, "").replace(/:\.\.\/deps\/.*$/s, "").trim();
  if (code.startsWith("ERR_OSSL_")) {
    return MpregError.invalid(`cannot connect to ${url}: the TLS options could not be loaded: ${text} (${code})`, "tls");
  }
  if (!TLS_ERROR.test(code)) return undefined;
  if (CLIENT_CERT_REFUSED.test(code)) {
    const reason = `TLS: the server refused the client certificate (${code})`;
    return new MpregError(ErrorCode.UNAUTHORIZED, `connection to ${url} refused: ${reason}`, { reason, url, tls_error: code });
  }
  const reason = `TLS: ${text} (${code})`;
  return new MpregError(ErrorCode.UNREACHABLE, `cannot connect to ${url}: ${reason}`, { reason, url, tls_error: code });
}
