import { parseCacheConfig } from "@mpreg/cache";
import type { FederationOptions } from "@mpreg/fabric";
import { validateFederationConfig, type FederationConfig } from "@mpreg/router";
import { AccessPolicy } from "./access.js";
import { didYouMean } from "@mpreg/envelope";
import { readFileSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { Type, type Static } from "typebox";
import { Compile } from "typebox/compile";
import { parse as parseYaml } from "yaml";
import { resolveTlsPaths, tlsFromFile } from "./tls-config.js";

/**
 * Node configuration: one schema for the whole node. Sources, strongest first: command-line
 * flags, the `--config` file (JSON or YAML), `MPREG_*` environment variables, defaults
 * (PROTOCOL section 7). Unknown keys are refused with their path and a close match.
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
  /** Address the monitoring API binds: loopback unless asked, since it tells a lot about the node. */
  monitoringHost: Type.String({ minLength: 1 }),
  /** Bearer tokens accepted at the WebSocket upgrade; empty means no authentication. */
  authTokens: Type.Array(Type.String({ minLength: 1 })),
  /** HMAC key for the peer handshake; absent means peers are not authenticated. */
  clusterSecret: Type.Optional(Type.String({ minLength: 1 })),
  maxFrameBytes: Type.Integer({ minimum: 1024 }),
  maxInflightPerConnection: Type.Integer({ minimum: 1 }),
  /** Node-wide budget of unsent reply bytes over all connections; the largest holders are cut first. */
  maxTotalBufferedBytes: Type.Integer({ minimum: 1 }),
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
  /**
   * `hops_remaining` of the messages this node originates (PROTOCOL section 8): node hops a
   * call, publish or queue call may take, inside this cluster and across federated ones.
   */
  maxHops: Type.Integer({ minimum: 1, maximum: 255 }),
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
  /**
   * Who may link from other clusters: `strict` (nobody; the default), `explicit` (the clusters
   * of the federation links), `permissive` (any cluster). See docs/federation.md.
   */
  federationMode: Type.Union([Type.Literal("strict"), Type.Literal("explicit"), Type.Literal("permissive")]),
  /** In explicit mode, clusters that may link to this node besides those of the federation links. */
  federationAllow: Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 1024 }),
  /** Nodes of other clusters to dial, `clusterId=ws://host:port`; added to `federation.links`. */
  federationLinks: Type.Array(Type.String({ pattern: "^[^=]+=wss?://" }), { maxItems: 1024 }),
  /**
   * The federation section (config file only): links, offers, import/export policies, keys,
   * timers; checked by @mpreg/router's validateFederationConfig (docs/federation.md).
   */
  federation: Type.Optional(Type.Unknown()),
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
  monitoringHost: "127.0.0.1",
  authTokens: [],
  maxFrameBytes: 20 * 1024 * 1024,
  maxInflightPerConnection: 1024,
  maxTotalBufferedBytes: 256 * 1024 * 1024,
  defaultTimeoutMs: 30_000,
  pingIntervalMs: 30_000,
  shutdownGraceMs: 5_000,
  maxPeerLinks: 32,
  gossipProbeIntervalMs: 1000,
  gossipProbeTimeoutMs: 500,
  maxHops: 8,
  raftMembers: [],
  raftJoin: false,
  raftFsync: "batch",
  raftTickMs: 50,
  repairWal: false,
  federationMode: "strict",
  federationAllow: [],
  federationLinks: [],
};

/** Thrown for any configuration mistake; the CLI prints the message and exits 2. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Partial_ = Partial<NodeConfig>;
/**
 * How an option is written: `section` options are objects, set in the file only (no flag or
 * environment variable) and merged key by key over their defaults.
 */
type Kind = "string" | "int" | "list" | "bool" | "section";

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
  monitoringHost: "string",
  authTokens: "list",
  clusterSecret: "string",
  maxFrameBytes: "int",
  maxInflightPerConnection: "int",
  maxTotalBufferedBytes: "int",
  defaultTimeoutMs: "int",
  pingIntervalMs: "int",
  shutdownGraceMs: "int",
  maxPeerLinks: "int",
  gossipProbeIntervalMs: "int",
  gossipProbeTimeoutMs: "int",
  maxHops: "int",
  raftGroup: "string",
  raftMembers: "list",
  raftJoin: "bool",
  raftFsync: "string",
  raftTickMs: "int",
  repairWal: "bool",
  cache: "section",
  federationMode: "string",
  federationAllow: "list",
  federationLinks: "list",
  federation: "section",
  tlsCert: "string",
  tlsKey: "string",
  tlsCa: "string",
  tlsRequireClientCert: "bool",
};

/** One line of usage per option; an option without a line is listed with its kind only. */
const OPTION_HELP: Partial<Record<keyof NodeConfig, string>> = {
  host: "address the client listener binds",
  port: "client WebSocket port (0 picks a free one)",
  name: "node id (default: <hostname>-<random>)",
  clusterId: "cluster this node belongs to",
  region: "region label, advertised to peers",
  peers: "peer URLs to dial, comma-separated (ws://a:6666,ws://b:6666)",
  resources: "resources of this node, added to every function's",
  functions: "function module(s) to load; repeatable",
  dataDir: "directory for durable state (Raft log, queues)",
  monitoringPort: "HTTP monitoring port (0 picks a free one; unset: off)",
  monitoringHost: "address the monitoring API binds",
  authTokens: "client bearer tokens (token or token:admin|client); empty: no auth",
  clusterSecret: "HMAC secret of the peer handshake",
  maxFrameBytes: "largest inbound frame (bytes)",
  maxInflightPerConnection: "requests in flight per connection before 1007",
  maxTotalBufferedBytes: "unsent bytes held for all connections together; beyond, the largest holder is closed (1008)",
  defaultTimeoutMs: "request timeout when the client gives none (ms)",
  pingIntervalMs: "WebSocket ping period (ms)",
  shutdownGraceMs: "how long SIGTERM waits for in-flight requests (ms)",
  maxPeerLinks: "most peer links kept",
  gossipProbeIntervalMs: "SWIM probe period (ms)",
  gossipProbeTimeoutMs: "direct probe ack wait (ms)",
  maxHops: "node hops a message this node originates may take (hops_remaining), 1..255",
  raftGroup: "Raft group this node serves (mpreg.kv.*)",
  raftMembers: "node ids of the group's first voters, this node included",
  raftJoin: "join a running group instead of founding one",
  raftFsync: "Raft fsync policy: batch or always",
  raftTickMs: "Raft tick (ms)",
  federationMode: "links from other clusters: strict (none), explicit (the configured clusters) or permissive",
  federationAllow: "clusters that may link to this node in explicit mode (besides the linked ones)",
  federationLinks: "nodes of other clusters to dial, cluster=ws://host:port, comma-separated",
  tlsCert: "PEM certificate file: serve wss:// (with --tls-key)",
  tlsKey: "PEM private key file of --tls-cert",
  tlsCa: "PEM CA file: trusted for peer dials, verifies client certificates",
  tlsRequireClientCert: "mutual TLS: clients and peers need a certificate from --tls-ca",
};

/** Non-option variables that are known, so they are not warned about. */
const OTHER_ENV = new Set(["MPREG_CONFIG", "MPREG_URL", "MPREG_TOKEN", "MPREG_DEBUG", "MPREG_LOG_LEVEL", "MPREG_MONITORING_URL", "MPREG_CLI", "MPREG_LONG"]);

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (k: string) => `MPREG_${k.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

function convert(key: keyof NodeConfig, raw: string, source: string): unknown {
  switch (OPTIONS[key]) {
    case "section":
      throw new ConfigError(`${source}: ${key} is set in the config file only`);
    case "int": {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError(`${source}: expected an integer, got "${raw}"`);
      return Number(raw.trim());
    }
    case "list":
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
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

/**
 * Reads `MPREG_*` variables. An `MPREG_*` variable that names no option is reported through
 * `warn` (with a close match), rather than silently ignored.
 */
export function configFromEnv(env: NodeJS.ProcessEnv, warn: (message: string) => void = () => {}): Partial_ {
  const out: Record<string, unknown> = {};
  const known = new Set(OTHER_ENV);
  for (const key of Object.keys(OPTIONS) as (keyof NodeConfig)[]) {
    if (OPTIONS[key] === "section") continue;
    known.add(envName(key));
    const v = env[envName(key)];
    if (v !== undefined && v !== "") out[key] = convert(key, v, envName(key));
  }
  for (const name of Object.keys(env).sort()) {
    if (!name.startsWith("MPREG_") || known.has(name)) continue;
    const close = didYouMean(name, known);
    warn(`unknown environment variable ${name} is ignored${close ? `; did you mean ${close}?` : ""}`);
  }
  return out as Partial_;
}

/** The file's spelling of the raft* options: `raft: {group, members, join?, fsync?, tickMs?}`. */
const RAFT_KEYS: Record<string, keyof NodeConfig> = { group: "raftGroup", members: "raftMembers", join: "raftJoin", fsync: "raftFsync", tickMs: "raftTickMs" };

/**
 * Reads a config file: YAML when it ends in `.yaml`/`.yml` (or is not `.json` and is not valid
 * JSON), else JSON. Keys are the option names (camelCase), as in `config print`; relative
 * `functions` and `dataDir` are relative to the file. Unknown keys are refused with their path.
 */
export function configFromFile(path: string): Partial_ {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  const data = parseConfigText(path, text);
  if (data === null || data === undefined) return {}; // an empty (or all-comments) file
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError(`config file ${path} must hold an object of options (key: value)`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    if (k === "raft") {
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ConfigError(`config file ${path}: raft must be an object`);
      for (const [rk, rv] of Object.entries(v)) {
        const flat = RAFT_KEYS[rk];
        if (!flat) throw new ConfigError(`config file ${path}: ${unknownKey(`raft.${rk}`, rk, Object.keys(RAFT_KEYS), "raft.")}`);
        out[flat] = rv;
      }
      continue;
    }
    if (k === "tls") {
      // `tls: {certFile, keyFile, caFile, requireClientCert}` is the file's spelling of the tls* options.
      Object.assign(out, tlsFromFile(v, path));
      continue;
    }
    out[k] = v;
  }
  const unknown = findUnknownKey(out, NodeConfigSchema, "");
  if (unknown) throw new ConfigError(`config file ${path}: ${unknown}`);
  const base = dirname(resolve(path));
  if (Array.isArray(out.functions)) {
    out.functions = out.functions.map((f) => (typeof f === "string" ? resolve(base, f) : f));
  }
  if (typeof out.dataDir === "string") out.dataDir = resolve(base, out.dataDir);
  resolveTlsPaths(out, base);
  // federation.keys.signingKeyFile is relative to the file too.
  const fedKeys = isPlainObject(out.federation) && isPlainObject(out.federation.keys) ? out.federation.keys : undefined;
  if (fedKeys !== undefined && typeof fedKeys.signingKeyFile === "string") {
    out.federation = { ...(out.federation as object), keys: { ...fedKeys, signingKeyFile: resolve(base, fedKeys.signingKeyFile) } };
  }
  return out as Partial_;
}

function parseConfigText(path: string, text: string): unknown {
  const ext = extname(path).toLowerCase();
  if (ext === ".json") {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`config file ${path} is not valid JSON: ${(e as Error).message}`);
    }
  }
  try {
    // YAML 1.2 reads JSON too; duplicate keys are refused rather than silently overwritten.
    return parseYaml(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    const kind = ext === ".yaml" || ext === ".yml" ? "YAML" : "JSON or YAML";
    throw new ConfigError(`config file ${path} is not valid ${kind}: ${(e as Error).message}`);
  }
}

function unknownKey(path: string, key: string, known: readonly string[], prefix: string): string {
  const close = didYouMean(key, known);
  return `unknown option "${path}"${close === undefined ? "" : `; did you mean "${prefix}${close}"?`}`;
}

/**
 * The first key of `value` (recursively, through object-typed options such as sections) that
 * the schema does not know, worded with its dotted path and a close match; undefined if none.
 */
function findUnknownKey(value: unknown, schema: unknown, prefix: string): string | undefined {
  const props = (schema as { properties?: Record<string, unknown> }).properties;
  if (props === undefined || typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const known = Object.keys(props);
  for (const [k, v] of Object.entries(value)) {
    if (!(k in props)) return unknownKey(`${prefix}${k}`, k, known, prefix);
    const nested = findUnknownKey(v, props[k], `${prefix}${k}.`);
    if (nested) return nested;
  }
  return undefined;
}

/** Parsed `mpreg start` flags: the options given plus `--config`. */
export interface ParsedFlags {
  config?: string;
  options: Partial_;
}

/**
 * Parses `mpreg start` flags. `--functions` may repeat; lists also accept commas; a boolean
 * flag alone (`--raft-join`) means true. An unknown flag names the close match.
 */
export function parseFlags(argv: readonly string[]): ParsedFlags {
  const byFlag = new Map<string, keyof NodeConfig>();
  for (const key of Object.keys(OPTIONS) as (keyof NodeConfig)[]) if (OPTIONS[key] !== "section") byFlag.set(kebab(key), key);
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
    }
    const key = flag === "config" ? undefined : byFlag.get(flag);
    if (flag !== "config" && key === undefined) {
      const close = didYouMean(flag, [...byFlag.keys(), "config"]);
      throw new ConfigError(`unknown option --${flag}${close ? `; did you mean --${close}?` : ""} (mpreg start --help lists them)`);
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (key !== undefined && OPTIONS[key] === "bool" && (next === undefined || next.startsWith("--"))) value = "true";
      else value = argv[++i];
    }
    if (value === undefined) throw new ConfigError(`--${flag} needs a value`);
    if (key === undefined) {
      config = value;
      continue;
    }
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

/**
 * Merges the sources (flags > file > env > defaults) and validates the result. `warn` receives
 * the warnings that do not stop the node (unknown `MPREG_*` variables).
 */
export function resolveConfig(argv: readonly string[], env: NodeJS.ProcessEnv, warn?: (message: string) => void): NodeConfig {
  const flags = parseFlags(argv);
  const fromEnv = configFromEnv(env, warn);
  const configPath = flags.config ?? env.MPREG_CONFIG;
  const fromFile = configPath ? configFromFile(configPath) : {};
  return validateConfig(mergeLayers(DEFAULT_CONFIG, fromEnv, fromFile, flags.options) as NodeConfig);
}

/**
 * Fills in the defaults of a configuration given as an object (an embedded node) and validates
 * it; throws ConfigError naming the first problem.
 */
export function configFromObject(options: Partial_): NodeConfig {
  const defined = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const unknown = findUnknownKey(defined, NodeConfigSchema, "");
  if (unknown) throw new ConfigError(unknown.replace(/^unknown option/, "unknown configuration key"));
  return validateConfig(mergeLayers(DEFAULT_CONFIG, defined) as NodeConfig);
}

/** Validates one config file on its own (over the defaults, without environment or flags). */
export function checkConfigFile(path: string): NodeConfig {
  return validateConfig(mergeLayers(DEFAULT_CONFIG, configFromFile(path)) as NodeConfig);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Later layers win; plain objects (sections) merge key by key, arrays and values replace. */
function mergeLayers(...layers: object[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeLayers(out[k], v) : v;
    }
  }
  return out;
}

/**
 * The `mpreg start` usage: every flag with its real default and environment variable,
 * generated from the option table so it cannot fall behind.
 */
export function configUsage(): string {
  const rows: [string, string][] = [["--config FILE", "config file, JSON or YAML (env MPREG_CONFIG)"]];
  for (const key of Object.keys(OPTIONS) as (keyof NodeConfig)[]) {
    const kind = OPTIONS[key];
    if (kind === "section") continue;
    const arg = { string: "S", int: "N", list: "A,B", bool: "[BOOL]", section: "" }[kind];
    const def = (DEFAULT_CONFIG as Record<string, unknown>)[key];
    const shown = def === undefined || (Array.isArray(def) && def.length === 0) ? "" : `, default ${Array.isArray(def) ? def.join(",") : String(def)}`;
    rows.push([`--${kebab(key)} ${arg}`, `${OPTION_HELP[key] ?? key} (env ${envName(key)}${shown})`]);
  }
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return [
    "usage: mpreg start [options]",
    "",
    ...rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`),
    "",
    "Flags override the config file, which overrides the environment, which overrides the defaults.",
    "The config file uses the option names in camelCase (mpreg config print shows one).",
  ].join("\n");
}

/** The configuration with secrets replaced, for printing. */
export function redactConfig(config: NodeConfig): NodeConfig {
  const out = { ...config };
  if (out.authTokens.length > 0) out.authTokens = out.authTokens.map((t) => (t.includes(":") ? `***:${t.slice(t.lastIndexOf(":") + 1)}` : "***"));
  if (out.clusterSecret !== undefined) out.clusterSecret = "***";
  const fed = out.federation as { keys?: { signingKey?: unknown } } | undefined;
  if (isPlainObject(fed) && isPlainObject(fed.keys) && fed.keys.signingKey !== undefined) out.federation = { ...fed, keys: { ...fed.keys, signingKey: "***" } };
  return out;
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
  if (checkConfig.Check(merged)) {
    const fed = federationConfig(merged);
    if (merged.federationMode === "strict" && ((fed.links ?? []).length > 0 || merged.federationAllow.length > 0)) {
      throw new ConfigError("federation links need federationMode explicit or permissive (--federation-mode); strict refuses every other cluster");
    }
  }
  if (merged.raftGroup !== undefined && merged.raftMembers.length === 0 && merged.raftJoin !== true) {
    throw new ConfigError("raftGroup needs raftMembers (the node ids of the group's first voters) or raftJoin");
  }
  if (!checkConfig.Check(merged)) {
    const first = checkConfig.Errors(merged)[0];
    const path = (first?.instancePath ?? "").split("/").filter(Boolean);
    const top = path[0] as keyof NodeConfig | undefined;
    // Name the option as a person sets it: the dotted key, and its flag and variable when it has them.
    const spelled = top !== undefined && path.length === 1 && OPTIONS[top] !== undefined && OPTIONS[top] !== "section" ? ` (--${kebab(top)}, ${envName(top)})` : "";
    const where = path.length > 0 ? ` for ${path.join(".")}${spelled}` : "";
    throw new ConfigError(`invalid configuration${where}: ${first?.message ?? "unknown error"}`);
  }
  return merged;
}

/**
 * The `federation` section with the `federationLinks` added, validated.
 * @throws {ConfigError} naming the bad key (`federation.export[1].metricAdd`).
 */
export function federationConfig(config: NodeConfig): FederationConfig {
  const raw = withSigningKeyFile(config.federation);
  const links = config.federationLinks.map((l) => {
    const eq = l.indexOf("=");
    return { clusterId: l.slice(0, eq), url: l.slice(eq + 1) };
  });
  const merged = links.length === 0 || !isPlainObject(raw ?? {}) ? raw : { ...((raw ?? {}) as object), links: [...(((raw as { links?: unknown[] } | undefined)?.links ?? []) as unknown[]), ...links] };
  try {
    return validateFederationConfig(merged, "federation");
  } catch (e) {
    const path = (e as { details?: { path?: string } }).details?.path;
    throw new ConfigError(`invalid federation configuration${path ? ` at ${path}` : ""}: ${(e as Error).message}`);
  }
}

/**
 * The path of `federation.keys.signingKeyFile` (absolute once read from a config file), where
 * the node reads its signing key and where `federation_rotate_key` writes a new one.
 */
export function signingKeyFile(config: NodeConfig): string | undefined {
  const fed = config.federation;
  const keys = isPlainObject(fed) ? fed.keys : undefined;
  return isPlainObject(keys) && typeof keys.signingKeyFile === "string" ? keys.signingKeyFile : undefined;
}

/**
 * Replaces `keys.signingKeyFile` by `keys.signingKey`, read from that file (its content, trimmed:
 * the base64url seed). Setting both is an error.
 */
function withSigningKeyFile(raw: unknown): unknown {
  if (!isPlainObject(raw) || !isPlainObject(raw.keys) || raw.keys.signingKeyFile === undefined) return raw;
  const { signingKeyFile, ...keys } = raw.keys;
  if (typeof signingKeyFile !== "string" || signingKeyFile.length === 0) {
    throw new ConfigError("invalid federation configuration at federation.keys.signingKeyFile: must be a file path");
  }
  if (keys.signingKey !== undefined) {
    throw new ConfigError("invalid federation configuration at federation.keys.signingKeyFile: set signingKey or signingKeyFile, not both");
  }
  let seed: string;
  try {
    seed = readFileSync(signingKeyFile, "utf8").trim();
  } catch (e) {
    throw new ConfigError(`invalid federation configuration at federation.keys.signingKeyFile: cannot read ${signingKeyFile}: ${(e as Error).message}`);
  }
  return { ...raw, keys: { ...keys, signingKey: seed } };
}

/** What the fabric needs to federate; undefined in strict mode. */
export function federationOptions(config: NodeConfig): FederationOptions | undefined {
  if (config.federationMode === "strict") return undefined;
  return { mode: config.federationMode, config: federationConfig(config), allow: config.federationAllow };
}

/** The environment-variable name of an option (for docs and errors). */
export { envName as configEnvName };
