import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { createSecureContext } from "node:tls";
import { MpregError } from "@mpreg/envelope";
import { checkClientTlsShape, checkListenerTlsShape, type ClientTlsOptions, type ListenerTlsOptions, type PemInput } from "./tls-options.js";

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function text(v: PemInput): string {
  return typeof v === "string" ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("utf8");
}

function reason(e: unknown): string {
  return (e as Error).message.replace(/^error:[0-9A-F]+:/, "");
}

/** Parses every certificate block of `v`; the first is returned (the leaf of a chain). */
function certificates(v: PemInput, path: string, now: number): X509Certificate[] {
  const blocks = text(v).match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw MpregError.invalid(`${path} holds no complete PEM certificate`, path);
  return blocks.map((b, i) => {
    let c: X509Certificate;
    try {
      c = new X509Certificate(b);
    } catch (e) {
      throw MpregError.invalid(`${path}: certificate ${i + 1} cannot be read: ${reason(e)}`, path);
    }
    if (Date.parse(c.validTo) < now) throw MpregError.invalid(`${path}: certificate ${i + 1} (${c.subject.replace(/\n/g, ", ")}) expired on ${c.validTo}`, path);
    if (Date.parse(c.validFrom) > now) throw MpregError.invalid(`${path}: certificate ${i + 1} (${c.subject.replace(/\n/g, ", ")}) is not valid before ${c.validFrom}`, path);
    return c;
  });
}

function privateKey(v: PemInput, path: string): KeyObject {
  try {
    return createPrivateKey(text(v));
  } catch (e) {
    throw MpregError.invalid(`${path} cannot be read as an unencrypted PEM private key: ${reason(e)}`, path);
  }
}

/** Parses a certificate and its key and checks that they belong together. */
function pair(cert: PemInput, key: PemInput, path: string, now: number): void {
  const leaf = certificates(cert, `${path}.cert`, now)[0]!;
  const k = privateKey(key, `${path}.key`);
  if (!leaf.checkPrivateKey(k)) throw MpregError.invalid(`${path}.key is not the private key of ${path}.cert`, `${path}.key`);
}

/** Last word to OpenSSL itself: what it refuses here it would refuse at every handshake. */
function secureContext(o: { cert?: PemInput; key?: PemInput; ca?: PemInput }, path: string): void {
  try {
    createSecureContext({
      ...(o.cert === undefined ? {} : { cert: text(o.cert) }),
      ...(o.key === undefined ? {} : { key: text(o.key) }),
      ...(o.ca === undefined ? {} : { ca: text(o.ca) }),
    });
  } catch (e) {
    throw MpregError.invalid(`${path}: OpenSSL refuses these TLS options: ${reason(e)}`, path);
  }
}

/**
 * Validates listener TLS options (Node): the shape, then the PEM contents are parsed
 * (certificates readable and within their validity period, the key readable and matching the
 * certificate, the CA bundle readable). Throws MpregError 1002 naming the option; returns the
 * options unchanged. `createWsListener` calls it; callers may call it earlier to fail at start.
 */
export function checkListenerTls(v: unknown, path = "tls", now: number = Date.now()): ListenerTlsOptions {
  const o = checkListenerTlsShape(v, path);
  pair(o.cert, o.key, path, now);
  if (o.ca !== undefined) certificates(o.ca, `${path}.ca`, now);
  secureContext({ cert: o.cert, key: o.key, ...(o.ca === undefined ? {} : { ca: o.ca }) }, path);
  return o;
}

/**
 * Validates client TLS options (Node) as {@link checkListenerTls} does. `connectWs` checks only
 * the shape (it also runs in browsers) and reports a key or certificate OpenSSL cannot load when
 * it dials; a node calls this at start instead, so a bad file fails there.
 */
export function checkClientTls(v: unknown, path = "tls", now: number = Date.now()): ClientTlsOptions {
  const o = checkClientTlsShape(v, path);
  if (o.cert !== undefined && o.key !== undefined) pair(o.cert, o.key, path, now);
  if (o.ca !== undefined) certificates(o.ca, `${path}.ca`, now);
  secureContext({ ...(o.cert === undefined ? {} : { cert: o.cert, key: o.key! }), ...(o.ca === undefined ? {} : { ca: o.ca }) }, path);
  return o;
}
