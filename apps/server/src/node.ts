import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { MpregError, createLogger, newId } from "@mpreg/envelope";
import { Fabric, PEER_UPGRADE_HEADER } from "@mpreg/fabric";
import { generateRouteKey } from "@mpreg/router";
import { PubsubService } from "@mpreg/pubsub";
import { FunctionRegistry, RpcService, type Executor, type Handler, type RegisterOptions } from "@mpreg/rpc";
import { OutboundBudget, createWsListener, type WsListener } from "@mpreg/transport";
import { ClientGateway, type ClientSession } from "@mpreg/gateway";
import { registerBuiltins } from "./builtins.js";
import { RaftGroup } from "./raft-group.js";
import { ConfigError, federationConfig, federationOptions, signingKeyFile, type NodeConfig } from "./config.js";
import { loadFunctionModules, type FunctionModuleNode } from "./function-module.js";
import { NodeMetrics, statsLines } from "./metrics.js";
import { AccessPolicy } from "./access.js";
import { Dashboard } from "@mpreg/dashboard";
import { MonitoringServer, tokenChecker } from "./monitoring.js";
import { topologyView, type PeerEntry } from "@mpreg/cli";
import { openServices, type NodeServices } from "./services.js";
import { loadNodeTls } from "./tls-config.js";

const log = createLogger("server");

/** What a configuration reload did: options applied, and options changed but left as they were. */
export interface ReloadReport {
  applied: string[];
  not_applied: string[];
}

/** Per-connection state (the gateway's client session). */
export type Session = ClientSession;

/**
 * One MPREG node: the transport listener, the function registry and the executor, wired
 * together. It holds no routing or execution logic of its own; those live in the packages.
 */
export class MpregNode implements FunctionModuleNode {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly registry = new FunctionRegistry<Session>();
  readonly metrics = new NodeMetrics();
  readonly fabric: Fabric;
  readonly rpc: RpcService<Session>;
  readonly pubsub: PubsubService;
  private readonly executor: Executor<Session>;
  private readonly listener: WsListener;
  private monitoring: MonitoringServer | undefined;
  private readonly outboundBudget: OutboundBudget;
  private raft: RaftGroup | undefined;
  private services: NodeServices | undefined;
  private readonly gateway: ClientGateway;
  private readonly startedAt = Date.now();
  private stopping = false;
  private url = "";
  private monitoringAddress: string | undefined;
  private readonly access: AccessPolicy;
  /**
   * Where `reloadConfig()` reads the configuration again (SIGHUP, the `config_reload` built-in):
   * `mpreg start` sets it to re-read its flags, environment and config file. Unset: an
   * embedded node, which reloads only a configuration passed to `reloadConfig`.
   */
  configSource: (() => NodeConfig) | undefined;

  constructor(readonly config: NodeConfig) {
    this.nodeId = config.name ?? `${hostname()}-${newId().slice(-10).toLowerCase()}`;
    this.clusterId = config.clusterId;
    // TLS files are read (and checked) here, at start: a bad file fails now, naming its flag.
    const tls = loadNodeTls(config);
    // One budget of unsent bytes for every connection, accepted or dialed (docs/security.md).
    this.outboundBudget = new OutboundBudget(config.maxTotalBufferedBytes);
    this.fabric = new Fabric({
      outboundBudget: this.outboundBudget,
      nodeId: this.nodeId,
      clusterId: this.clusterId,
      region: config.region,
      resources: config.resources,
      secret: config.clusterSecret,
      seeds: config.peers,
      maxLinks: config.maxPeerLinks,
      gossip: { probeIntervalMs: config.gossipProbeIntervalMs, probeTimeoutMs: config.gossipProbeTimeoutMs },
      urls: () => (this.url ? [this.url] : []),
      maxFrameBytes: config.maxFrameBytes,
      maxHops: config.maxHops,
      federation: federationOptions(config),
      ...(tls ? { tls: tls.peer } : {}),
    });
    this.rpc = new RpcService<Session>({
      port: this.fabric,
      registry: this.registry,
      localLoad: () => this.inflightCount(),
      defaultTimeoutMs: config.defaultTimeoutMs,
    });
    this.executor = this.rpc.executor;
    this.pubsub = new PubsubService({ port: this.fabric });
    this.access = new AccessPolicy(config.authTokens);
    this.listener = createWsListener({
      maxFrameBytes: config.maxFrameBytes,
      pingIntervalMs: config.pingIntervalMs,
      outboundBudget: this.outboundBudget,
      authTokens: this.access.tokens,
      // Peers authenticate by the cluster secret, not by client tokens (both options together).
      acceptWithoutToken: (info) => config.clusterSecret !== undefined && info.headers[PEER_UPGRADE_HEADER] === "1",
      ...(tls ? { tls: tls.listener } : {}),
    });
    this.gateway = new ClientGateway({
      nodeId: this.nodeId,
      executor: this.executor,
      isAdminFunction: (fun) => this.registry.isAdmin(fun),
      pubsub: this.pubsub,
      maxInflightPerConnection: config.maxInflightPerConnection,
      isAdminConnection: (info) => this.access.isAdmin(info),
      adoptPeer: (conn, hello) => {
        // A peer may take a slot reserved for peers (docs/security.md).
        this.listener.markPeer(conn);
        this.fabric.adopt(conn, hello);
      },
      onClose: (connId) => this.services?.closeOwner(connId),
      metrics: this.metrics,
    });
    this.listener.onConnection((conn, info) => this.gateway.accept(conn, info));
  }

  /** Registers a function; the node's own resources are added to the function's (PROTOCOL 7). */
  register(name: string, handler: Handler<Session> | ((ctx: never) => unknown), options: RegisterOptions = {}): void {
    const resources = [...new Set([...(options.resources ?? []), ...this.config.resources])];
    this.registry.register(name, handler as Handler<Session>, { ...options, resources });
  }

  /** The client URL (`ws://host:port`, `wss://` with TLS) once started, else "". */
  get listenUrl(): string {
    return this.url;
  }

  /** The monitoring API's URL once started with a monitoring port. */
  get monitoringUrl(): string | undefined {
    return this.monitoringAddress;
  }

  /** Loads built-ins, runs `setup` (in-process registrations), loads function modules, then listens. */
  async start(setup?: (node: MpregNode) => void | Promise<void>): Promise<{ url: string; monitoringUrl?: string }> {
    registerBuiltins(this);
    this.services = await openServices({
      config: this.config,
      nodeId: this.nodeId,
      fabric: this.fabric,
      rpc: this.rpc,
      registry: this.registry,
      push: (session, frame) => this.gateway.send(session, frame),
    });
    await setup?.(this);
    if (this.config.raftGroup !== undefined) {
      const raft = await RaftGroup.open({
        group: this.config.raftGroup,
        members: this.config.raftMembers,
        join: this.config.raftJoin,
        fsync: this.config.raftFsync,
        repair: this.config.repairWal,
        nodeId: this.nodeId,
        clusterId: this.clusterId,
        dataDir: this.config.dataDir,
        tickMs: this.config.raftTickMs,
        port: this.fabric,
        dispatcher: this.rpc.dispatcher,
      });
      this.raft = raft;
      raft.registerBuiltins(this.registry);
    }
    await loadFunctionModules(this.config.functions, this);
    const addr = await this.listener.listen({ host: this.config.host, port: this.config.port });
    this.url = addr.url;
    log.info(`node ${this.nodeId} listening on ${addr.url}`);
    const warning = this.access.exposureWarning(this.config.host, this.config.clusterSecret !== undefined, this.config.tlsCert !== undefined);
    if (warning) log.warn(warning);
    this.fabric.start();
    if (this.config.monitoringPort === undefined) return { url: addr.url };
    this.monitoring = new MonitoringServer({
      health: () => ({
        status: this.stopping ? "stopping" : "ok",
        node_id: this.nodeId,
        cluster_id: this.clusterId,
        uptime_ms: Date.now() - this.startedAt,
      }),
      metrics: () =>
        this.metrics.render(
          { connections: this.gateway.connectionCount, functions: this.registry.list().length, peerLinks: this.fabric.linkCount },
          this.fabric.stats,
          [
            ...statsLines("pubsub", this.pubsub.exchange.stats()),
            ...(this.fabric.federation === undefined ? [] : statsLines("federation", this.fabric.federation.counters())),
            // Refusals under abuse (docs/security.md): a rise is an attack or a limit set too low.
            ...statsLines("listener", this.listener.stats),
            ...statsLines("outbound", { usedBytes: this.outboundBudget.usedBytes, limitBytes: this.outboundBudget.limitBytes, cutOffs: this.outboundBudget.cutOffs }),
            ...statsLines("executor", this.executor.stats),
            ...statsLines("gossip", this.fabric.gossip.stats),
            ...statsLines("gossip_sent", Object.entries(this.fabric.gossip.stats.sent).map(([type, n]) => ({ label: "type", value: type, stats: { total: n } }))),
            ...statsLines("gossip_claims_refused", Object.entries(this.fabric.gossip.stats.claimsRefused).map(([reason, n]) => ({ label: "reason", value: reason, stats: { total: n } }))),
            ...statsLines("cache", (this.services?.cache.namespaceNames() ?? []).map((ns) => ({ label: "namespace", value: ns, stats: this.services!.cache.stats({ namespace: ns }) }))),
          ],
        ),
      ready: () => this.readiness(),
      topology: () => topologyView(this.clusterMap() as Parameters<typeof topologyView>[0], this.fabric.peers() as PeerEntry[], this.nodeId),
      catalog: () => this.fabric.catalog.snapshot(Date.now()),
    }, {
      ...(this.access.tokens.length > 0 ? { checkToken: tokenChecker(this.access.tokens) } : {}),
      dashboard: new Dashboard({ clientUrl: () => this.url }),
    });
    // Monitoring stays on its own (loopback by default) address even when clients come from anywhere.
    const monitoringUrl = await this.monitoring.listen(this.config.monitoringHost, this.config.monitoringPort);
    this.monitoringAddress = monitoringUrl;
    return { url: addr.url, monitoringUrl };
  }

  /**
   * Graceful stop: refuse new requests, wait up to `shutdownGraceMs` for in-flight ones, fail
   * the rest (their handlers' signals are aborted), close connections and listeners.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.gateway.drain(this.config.shutdownGraceMs);
    this.rpc.close();
    this.pubsub.close();
    await this.fabric.stop();
    await this.raft?.stop();
    await this.services?.close();
    await this.listener.close();
    await this.monitoring?.close();
    this.metrics.close();
  }

  /** `/ready`: whether this node should receive traffic, and if not, why. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (this.config.peers.length > 0 && this.fabric.linkCount === 0) reasons.push("no peer link yet");
    if (this.raft !== undefined && this.raft.kv.node.leaderId == null) reasons.push(`raft group ${this.config.raftGroup} has no leader`);
    return { ready: reasons.length === 0, reasons };
  }

  /** `cluster_map`: every live node of the cluster, this one included. */
  /**
   * Applies the reloadable part of a new configuration (`next`, else the one `configSource`
   * reads): today the `federation` section's policies (`offers`, `import`, `export`) and trusted
   * keys (docs/federation.md, "Configuration reload"). Every other option that differs from
   * what the node runs with is reported in `not_applied` and logged, not applied (it needs a
   * restart). A configuration that does not validate changes nothing.
   * @throws {MpregError} 1002 when the configuration (or the new federation section) is invalid,
   * or when there is nothing to read it from.
   */
  reloadConfig(next?: NodeConfig): ReloadReport {
    let cfg: NodeConfig;
    try {
      if (next !== undefined) cfg = next;
      else if (this.configSource !== undefined) cfg = this.configSource();
      else throw MpregError.invalid("this node has no configuration source to read again (embedded node: pass the configuration)", "config");
    } catch (e) {
      if (e instanceof ConfigError) throw MpregError.invalid(`configuration not reloaded: ${e.message}`, "config");
      throw e;
    }
    const notApplied: string[] = [];
    const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    const federated = new Set(["federation", "federationLinks"]);
    for (const key of new Set([...Object.keys(this.config), ...Object.keys(cfg)])) {
      if (federated.has(key)) continue;
      if (!same(this.config[key as keyof NodeConfig], cfg[key as keyof NodeConfig])) notApplied.push(key);
    }
    const applied: string[] = [];
    const driver = this.fabric.federation;
    if (driver !== undefined && cfg.federationMode !== "strict") {
      let fed;
      try {
        fed = federationConfig(cfg);
      } catch (e) {
        throw MpregError.invalid(`configuration not reloaded: ${(e as Error).message}`, "federation");
      }
      const r = driver.reconfigure(fed, Date.now());
      applied.push(...r.applied);
      notApplied.push(...r.notApplied);
    } else if (!same(this.config.federation, cfg.federation) || !same(this.config.federationLinks, cfg.federationLinks)) {
      notApplied.push("federation"); // a strict node runs no federation to reconfigure
    }
    notApplied.sort();
    if (applied.length > 0) log.info(`configuration reloaded: applied ${applied.join(", ")}`);
    else log.info("configuration reloaded: nothing to apply");
    if (notApplied.length > 0) log.warn(`configuration reloaded: changed but not applied (needs a restart): ${notApplied.join(", ")}`);
    return { applied, not_applied: notApplied };
  }

  /**
   * Rotates this cluster's federation signing key (docs/federation.md, "Rotation"): generates a
   * new Ed25519 key, writes its seed to `federation.keys.signingKeyFile` (a temporary file with
   * mode 0600, then renamed over it, so the next start signs with the new key), then announces
   * it signed by the current key and switches to it. The private seed never leaves the node.
   * @throws {MpregError} 1002 when the node does not federate, has no `signingKeyFile` or no
   * current key, or the file cannot be written (nothing changes then).
   */
  rotateFederationKey(overlapMs = 60_000): { key_id: string; public_key: string; seq: number; overlap_ms: number; key_file: string } {
    const driver = this.fabric.federation;
    if (driver === undefined) throw MpregError.invalid("federation is off on this node (strict mode): no key to rotate", "federation");
    const file = signingKeyFile(this.config);
    if (file === undefined) throw MpregError.invalid("key rotation writes the new key to federation.keys.signingKeyFile: configure it (holding the current key)", "federation.keys.signingKeyFile");
    if (driver.federation.signer === undefined) throw MpregError.invalid("no current signing key to announce the new one with", "federation.keys.signingKeyFile");
    if (!Number.isSafeInteger(overlapMs) || overlapMs < 0) throw MpregError.invalid("overlap_ms must be an integer >= 0", "overlap_ms");
    const key = generateRouteKey();
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, `${key.seed}\n`, { mode: 0o600 });
      renameSync(tmp, file);
    } catch (e) {
      try {
        unlinkSync(tmp);
      } catch {
        // nothing to clean up
      }
      throw MpregError.invalid(`cannot write the new key to ${file}: ${(e as Error).message}`, "federation.keys.signingKeyFile");
    }
    const ann = driver.rotateKey(key.seed, overlapMs, Date.now());
    return { key_id: key.keyId, public_key: key.publicKey, seq: ann.seq, overlap_ms: overlapMs, key_file: file };
  }

  clusterMap(): unknown {
    return {
      cluster_id: this.clusterId,
      generated_at: Date.now(),
      nodes: this.fabric.nodes(this.selfNode(), (id) => this.rpc.dispatcher.pendingTo(id)),
    };
  }

  selfNode() {
    return {
      node_id: this.nodeId,
      cluster_id: this.clusterId,
      region: this.config.region,
      urls: this.url ? [this.url] : [],
      resources: [...this.config.resources],
      functions: [...new Set(this.registry.list().map((f) => f.name))].sort(),
      load: this.inflightCount(),
      status: this.stopping ? "leaving" : "alive",
    };
  }

  /** Every function endpoint the catalog knows, cluster-wide. */
  /** Functions of this cluster, then those of other clusters this node may call (federation). */
  functionList() {
    const now = Date.now();
    const foreign = this.fabric.foreign?.queryFunctions({ now }) ?? [];
    return [...this.fabric.catalog.queryFunctions({ now }), ...foreign].map((f) => ({
      name: f.name,
      function_id: f.function_id,
      version: f.version,
      resources: [...f.resources],
      node_id: f.node_id,
      cluster_id: f.cluster_id,
      description: f.description ?? "",
    }));
  }

  private inflightCount(): number {
    return this.gateway.inflight();
  }
}
