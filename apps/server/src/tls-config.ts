import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { checkClientTls, checkListenerTls, type ClientTlsOptions, type ListenerTlsOptions } from "@mpreg/transport";
import { ConfigError, type NodeConfig } from "./config.js";

/** What a node's TLS configuration turns into: its listener's options and its peer dialer's. */
export interface NodeTls {
  /** `createWsListener({ tls })`: serve wss:// (mutual TLS with `tlsRequireClientCert`). */
  listener: ListenerTlsOptions;
  /** The fabric's dialer: trust `tlsCa`, present the node's own certificate when asked. */
  peer: ClientTlsOptions;
}

type TlsKey = "tlsCert" | "tlsKey" | "tlsCa" | "tlsRequireClientCert";

/** How an option is spelled on the command line and in the configuration (errors name both). */
const NAMES: Record<TlsKey, string> = {
  tlsCert: "--tls-cert (tlsCert)",
  tlsKey: "--tls-key (tlsKey)",
  tlsCa: "--tls-ca (tlsCa)",
  tlsRequireClientCert: "--tls-require-client-cert (tlsRequireClientCert)",
};

/** The config file's `tls` object: `{certFile, keyFile, caFile, requireClientCert}`. */
const FILE_KEYS: Record<string, TlsKey> = { certFile: "tlsCert", keyFile: "tlsKey", caFile: "tlsCa", requireClientCert: "tlsRequireClientCert" };

/**
 * Maps a config file's `tls: {certFile, keyFile, caFile, requireClientCert}` to the flat options
 * (`tlsCert`, ...). Relative paths are resolved later with the file's other paths
 * ({@link resolveTlsPaths}).
 */
export function tlsFromFile(v: unknown, file: string): Partial<NodeConfig> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(`config file ${file}: tls must be an object`);
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) {
    const flat = FILE_KEYS[k];
    if (flat === undefined) throw new ConfigError(`config file ${file}: unknown option "tls.${k}" (known: ${Object.keys(FILE_KEYS).join(", ")})`);
    out[flat] = val;
  }
  return out as Partial<NodeConfig>;
}

/** Resolves the TLS file paths a config file gave relative to the file's directory. */
export function resolveTlsPaths(out: Record<string, unknown>, base: string): void {
  for (const k of ["tlsCert", "tlsKey", "tlsCa"] as const) {
    const p = out[k];
    if (typeof p === "string" && !isAbsolute(p)) out[k] = resolve(base, p);
  }
}

function read(key: TlsKey, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`${NAMES[key]}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * Reads and checks the node's TLS files (at start): `tlsCert` and `tlsKey` together, `tlsCa`
 * and `tlsRequireClientCert` only with them, `tlsRequireClientCert` only with `tlsCa`; the
 * certificates and key must load and belong together. Undefined when TLS is off. Throws
 * ConfigError naming the flag and the key.
 */
export function loadNodeTls(config: NodeConfig): NodeTls | undefined {
  const { tlsCert, tlsKey, tlsCa, tlsRequireClientCert } = config;
  if (tlsCert === undefined && tlsKey === undefined) {
    if (tlsCa !== undefined) throw new ConfigError(`${NAMES.tlsCa} needs ${NAMES.tlsCert} and ${NAMES.tlsKey}`);
    if (tlsRequireClientCert === true) throw new ConfigError(`${NAMES.tlsRequireClientCert} needs ${NAMES.tlsCert}, ${NAMES.tlsKey} and ${NAMES.tlsCa}`);
    return undefined;
  }
  if (tlsCert === undefined) throw new ConfigError(`${NAMES.tlsKey} needs ${NAMES.tlsCert}`);
  if (tlsKey === undefined) throw new ConfigError(`${NAMES.tlsCert} needs ${NAMES.tlsKey}`);
  if (tlsRequireClientCert === true && tlsCa === undefined) {
    throw new ConfigError(`${NAMES.tlsRequireClientCert} needs ${NAMES.tlsCa} (the CA that client and peer certificates must chain to)`);
  }
  const files: Partial<Record<TlsKey, string>> = { tlsCert, tlsKey, ...(tlsCa === undefined ? {} : { tlsCa }) };
  const cert = read("tlsCert", tlsCert);
  const key = read("tlsKey", tlsKey);
  const ca = tlsCa === undefined ? undefined : read("tlsCa", tlsCa);
  const listener: ListenerTlsOptions = { cert, key, ...(ca === undefined ? {} : { ca }), requestClientCert: tlsRequireClientCert === true };
  const peer: ClientTlsOptions = { cert, key, ...(ca === undefined ? {} : { ca }) };
  try {
    checkListenerTls(listener, "tls");
    checkClientTls(peer, "tls");
  } catch (e) {
    const path = (e as { details?: { path?: string } }).details?.path ?? "";
    const which = ({ "tls.cert": "tlsCert", "tls.key": "tlsKey", "tls.ca": "tlsCa" } as Record<string, TlsKey>)[path];
    const where = which === undefined ? "TLS" : `${NAMES[which]} ${files[which]}`;
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
  return { listener, peer };
}
