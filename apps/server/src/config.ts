import { parseCacheConfig } from "@mpreg/cache";
import { AccessPolicy } from "./access.js";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Type, type Static } from "typebox";
import { Compile } from "typebox/compile";
import { resolveTlsPaths, tlsFromFile } from "./tls-config.js";

/**
 * Node configuration. Sources, strongest first: command-line flags, the `--config` JSON file,
 * `MPREG_*` environment variables, defaults (PROTOCOL section 7).
 */
export const NodeConfigSchema = Type.Object({
  host: Type.String({ minLength: 1 }),
  port: Type.Integer({ minimum: 0, maximum: 65535 }),
  /** Node id; a unique one is generated when absent. */
  name: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  clusterId: Type.String({ minLength: 1, maxLength: 128 }),
  region: Type.String({ maxLength: 128 }),
  peers: Type.Array(Type.String({ pattern: "^wss?://" }), { maxItems: 1024 }),
  resources: Type.Array(Type.String({ minLength: 1 }), { maxItems: 256 }),
  functions: Type.Array(Type.String({ minLength: 1 }), { maxItems: 256 }),
  dataDir: Type.Optional(Type.String({ minLength: 1 })),
  monitoringPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  /** Bearer tokens accepted at the WebSocket upgrade; empty means no authentication. */
  authTokens: Type.Array(Type.String({ minLength: 1 })),
  /** HMAC key for the peer handshake; absent means peers are not authenticated. */
  clusterSecret: Type.Optional(Type.String({ minLength: 1 })),
  maxFrameBytes: Type.Integer({ minimum: 1024 }),
  maxInflightPerConnection: Type.Integer({ minimum: 1 }),
  defaultTimeoutMs: Type.Integer({ minimum: 1 }),
  pingIntervalMs: Type.Integer({ minimum: 10 }),
  /** How long a graceful shutdown waits for in-flight requests before failing them. */
  shutdownGraceMs: Type.Integer({ minimum: 0 }),
  /** Most peer links a node keeps (full mesh below it). */
  maxPeerLinks: Type.Integer({ minimum: 1, maximum: 4096 }),
  /** SWIM probe period; failure detection time scales with it (docs/cluster.md). */
  gossipProbeIntervalMs: Type.Integer({ minimum: 10 }),
  /** Wait for a direct ack before indirect probes; must be below the probe interval. */
  gossipProbeTimeoutMs: Type.Integer({ minimum: 5 }),
  /** Name of the Raft group this node serves (`mpreg.kv.*` built-ins); absent: none. */
  raftGroup: Type.Optional(Type.String({ minLength: 1, pattern: "^[A-Za-z0-9_-]+$" })),
  /** Node ids of the group's first voters, this node included (used when its storage is fresh). */
  raftMembers: Type.Array(Type.String({ minLength: 1 }), { maxItems: 15 }),
  /**
   * Join a running group instead of founding it: start as no member (never campaigns) and wait
   * for `mpreg.raft.add_member` on the group's leader.
   */
  raftJoin: Type.Boolean(),
  /**
   * fsync policy of the Raft group's file storage (with `dataDir`): `batch` (group commit, the
   * default) or `always`; both persist before a write is acknowledged (docs/persistence.md).
   */
  raftFsync: Type.Union([Type.Literal("batch"), Type.Literal("always")]),
  /** Raft tick; elections take 10 to 20 ticks, heartbeats go every tick. */
  raftTickMs: Type.Integer({ minimum: 1 }),
  /**
   * Open durable storage (Raft, queues, cache L2) even when its log is damaged in the middle,
   * cutting it at the damage (acknowledged writes after it are lost; docs/persistence.md).
   */
  repairWal: Type.Boolean(),
  /**
   * Cache namespaces (config file only): `{namespaces: {name: {policy, max_entries, max_bytes,
   * ttl_ms, scope, l2}}, replication: {...}}`, checked by @mpreg/cache (docs/cache.md).
   */
  cache: Type.Optional(Type.Unknown()),
  /** TLS (docs/security.md, "TLS"): PEM certificate file; with `tlsKey` the node serves wss://. */
  tlsCert: Type.Optional(Type.String({ minLength: 1 })),
  /** PEM private key file of `tlsCert`. */
  tlsKey: Type.Optional(Type.String({ minLength: 1 })),
  /** PEM CA file: peers' certificates must chain to it (and clients' with `tlsRequireClientCert`). */
  tlsCa: Type.Optional(Type.String({ minLength: 1 })),
  /** Mutual TLS: every client and peer must present a certificate signed by `tlsCa`. */
  tlsRequireClientCert: Type.Optional(Type.Boolean()),
});

export type NodeConfig = Static<typeof NodeConfigSchema>;

const checkConfig = Compile(NodeConfigSchema);

export const DEFAULT_CONFIG: NodeConfig = {
  host: "127.0.0.1",
  port: 6666,
  clusterId: "default",
  region: "local",
  peers: [],
  resources: [],
  functions: [],
  authTokens: [],
  maxFrameBytes: 20 * 1024 * 1024,
  maxInflightPerConnection: 1024,
  defaultTimeoutMs: 30_000,
  pingIntervalMs: 30_000,
  shutdownGraceMs: 5_000,
  maxPeerLinks: 32,
  gossipProbeIntervalMs: 1000,
  gossipProbeTimeoutMs: 500,
  raftMembers: [],
  raftJoin: false,
  raftFsync: "batch",
  raftTickMs: 50,
  repairWal: false,
};

/** Thrown for any configuration mistake; the CLI prints the message and exits 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Partial_ = Partial<NodeConfig>;
type Kind = "string" | "int" | "list" | "bool" | "object";

/** Option name → kind; the same names serve flags (kebab-case), env (MPREG_SNAKE) and file. */
const OPTIONS: Record<keyof NodeConfig, Kind> = {
  host: "string",
  port: "int",
  name: "string",
  clusterId: "string",
  region: "string",
  peers: "list",
  resources: "list",
  functions: "list",
  dataDir: "string",
  monitoringPort: "int",
  authTokens: "list",
  clusterSecret: "string",
  maxFrameBytes: "int",
  maxInflightPerConnection: "int",
  defaultTimeoutMs: "int",
  pingIntervalMs: "int",
  shutdownGraceMs: "int",
  maxPeerLinks: "int",
  gossipProbeIntervalMs: "int",
  gossipProbeTimeoutMs: "int",
  raftGroup: "string",
  raftMembers: "list",
  raftJoin: "bool",
  raftFsync: "string",
  raftTickMs: "int",
  repairWal: "bool",
  cache: "object",
  tlsCert: "string",
  tlsKey: "string",
  tlsCa: "string",
  tlsRequireClientCert: "bool",
};

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (k: string) => `MPREG_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

function convert(key: keyof NodeConfig, raw: string, source: string): unknown {
  switch (OPTIONS[key]) {
    case "int": {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${source}: expected an integer, got "${raw}"`);
      return Number(raw.trim());
    }
    case "list":
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
    case "object":
      throw new ConfigError(`${source}: this option is set in the config file only`);
    case "bool": {
      const v = raw.trim().toLowerCase();
      if (v === "true" || v === "1") return true;
      if (v === "false" || v === "0") return false;
      throw new ConfigError(`${source}: expected true or false, got "${raw}"`);
    }
    default:
      return raw;
  }
}

/** Reads `MPREG_*` variables. */
export function configFromEnv(env: NodeJS.ProcessEnv): Partial_ {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(OPTIONS) as (keyof NodeConfig)[]) {
    const v = env[envName(key)];
    if (v !== undefined && v !== "") out[key] = convert(key, v, envName(key));
  }
  return out as Partial_;
}

/** Reads a JSON config file; relative `functions` and `dataDir` are relative to the file. */
export function configFromFile(path: string): Partial_ {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError(`config file ${path} must hold a JSON object`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    if (k === "raft") {
      // `raft: {group, members, join?, fsync?, tickMs?}` is the file's spelling of the raft* options.
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(`config file ${path}: raft must be an object`);
      for (const [rk, rv] of Object.entries(v)) {
        const flat = { group: "raftGroup", members: "raftMembers", join: "raftJoin", fsync: "raftFsync", tickMs: "raftTickMs" }[rk];
        if (!flat) throw new ConfigError(`config file ${path}: unknown option "raft.${rk}"`);
        out[flat] = rv;
      }
      continue;
    }
    if (k === "tls") {
      Object.assign(out, tlsFromFile(v, path));
      continue;
    }
    if (!(k in OPTIONS)) throw new ConfigError(`config file ${path}: unknown option "${k}"`);
    out[k] = v;
  }
  const base = dirname(resolve(path));
  if (Array.isArray(out.functions)) {
    out.functions = out.functions.map((f) => (typeof f === "string" ? resolve(base, f) : f));
  }
  if (typeof out.dataDir === "string") out.dataDir = resolve(base, out.dataDir);
  resolveTlsPaths(out, base);
  return out as Partial_;
}

/** Parsed `mpreg start` flags: the options given plus `--config`. */
export interface ParsedFlags {
  config?: string;
  options: Partial_;
}

/** Parses `mpreg start` flags. `--functions` may repeat; lists also accept commas. */
export function parseFlags(argv: readonly string[]): ParsedFlags {
  const byFlag = new Map<string, keyof NodeConfig>();
  for (const key of Object.keys(OPTIONS) as (keyof NodeConfig)[]) byFlag.set(kebab(key), key);
  const options: Record<string, unknown> = {};
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) throw new ConfigError(`unexpected argument "${arg}"`);
    let flag = arg.slice(2);
    let value: string | undefined;
    const eq = flag.indexOf("=");
    if (eq >= 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    } else if (OPTIONS[byFlag.get(flag) ?? "host"] === "bool" && (argv[i + 1] === undefined || argv[i + 1]!.startsWith("--"))) {
      value = "true"; // a boolean flag alone means true (`--tls-require-client-cert`)
    } else {
      value = argv[++i];
    }
    if (value === undefined) throw new ConfigError(`--${flag} needs a value`);
    if (flag === "config") {
      config = value;
      continue;
    }
    const key = byFlag.get(flag);
    if (!key) throw new ConfigError(`unknown option --${flag}`);
    const converted = convert(key, value, `--${flag}`);
    if (OPTIONS[key] === "list") {
      options[key] = [...((options[key] as string[] | undefined) ?? []), ...(converted as string[])];
    } else {
      options[key] = converted;
    }
  }
  if (Array.isArray(options.functions)) {
    options.functions = (options.functions as string[]).map((f) => resolve(f));
  }
  return config === undefined ? { options: options as Partial_ } : { config, options: options as Partial_ };
}

/** Merges the sources (flags > file > env > defaults) and validates the result. */
export function resolveConfig(argv: readonly string[], env: NodeJS.ProcessEnv): NodeConfig {
  const flags = parseFlags(argv);
  const fromEnv = configFromEnv(env);
  const configPath = flags.config ?? env.MPREG_CONFIG;
  const fromFile = configPath ? configFromFile(configPath) : {};
  return validateConfig({ ...DEFAULT_CONFIG, ...fromEnv, ...fromFile, ...flags.options });
}

/**
 * Fills in the defaults of a configuration given as an object (an embedded node) and validates
 * it; throws ConfigError naming the first problem.
 */
export function configFromObject(options: Partial_): NodeConfig {
  for (const key of Object.keys(options)) {
    if (!(key in OPTIONS)) throw new ConfigError(`unknown configuration key "${key}"`);
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  return validateConfig({ ...DEFAULT_CONFIG, ...defined });
}

function validateConfig(merged: NodeConfig): NodeConfig {
  try {
    new AccessPolicy(merged.authTokens);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  try {
    parseCacheConfig(merged.cache ?? {});
  } catch (e) {
    const path = (e as { details?: { path?: string } }).details?.path;
    throw new ConfigError(`invalid cache configuration${path ? ` at cache.${path}` : ""}: ${(e as Error).message}`);
  }
  if (merged.raftGroup !== undefined && merged.raftMembers.length === 0 && merged.raftJoin !== true) {
    throw new ConfigError("raftGroup needs raftMembers (the node ids of the group's first voters) or raftJoin");
  }
  if (!checkConfig.Check(merged)) {
    const first = checkConfig.Errors(merged)[0];
    const where = first?.instancePath ?? "";
    throw new ConfigError(`invalid configuration${where ? ` at ${where}` : ""}: ${first?.message ?? "unknown error"}`);
  }
  return merged;
}

/** The environment-variable name of an option (for docs and errors). */
export { envName as configEnvName };
