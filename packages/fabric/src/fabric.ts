import { Catalog, deltaToItem, itemToDelta, type CatalogChange, type CatalogDelta, type CatalogEntry, type LocalEntryInput } from "@mpreg/catalog";
import {
  ErrorCode,
  MpregError,
  createLogger,
  createUnifiedMessage,
  decodeFrame,
  encodeFabricMessage,
  encodeFrame,
  forwardStep,
  type Frame,
  type PeerHello,
  type PeerWelcome,
  type UnifiedMessage,
} from "@mpreg/envelope";
import { GossipNode, redirectable, type GossipConfig, type GossipEvent, type GossipMessage } from "@mpreg/gossip";
import { LINKS_KEY_PREFIX, LinkOverlay, federationDropError, type FederationDropReason } from "@mpreg/router";
import {
  CloseCode,
  DEFAULT_MAX_FRAME_BYTES,
  backoffDelay,
  checkClientTls,
  connectWs,
  type ClientTlsOptions,
  type Connection,
  type FrameData,
  type OutboundBudget,
  type Unsubscribe,
} from "@mpreg/transport";
import { PEER_PROTOCOL_VERSION, confirmMac, helloMac, macOk, newNonce, welcomeMac } from "./handshake.js";
import { FEDERATION_CONTROL_PREFIX, FederationDriver, type FederationDecision, type FederationOptions, type ServiceTag } from "./federation-driver.js";
import { FEDERATED_CACHE_SCOPE, GATEWAY_KEY_PREFIX, type GatewayAnnouncement } from "./gateway-announcement.js";
import { PeerLinks } from "./peer-links.js";
import { ReverseHops } from "./reverse-hops.js";
import type { FabricMessageHandler, HandleOptions, MembershipEvent, OutboundMessage, ServicePort, UndeliverableNotice } from "./service-port.js";

const log = createLogger("fabric");

/** Topic of a gossip message relayed inside a `fabric-message` to a member without a link. */
export const GOSSIP_RELAY_TOPIC = "mpreg.gossip.relay";

/**
 * Topic of the notice a relay sends to the originator of a message it could not forward to
 * another cluster (payload `{message_id, correlation_id, topic, error}`, error 1005).
 */
export const UNDELIVERABLE_TOPIC = "mpreg.fabric.undeliverable";

/** Upgrade header a dialing peer sends (value `1`): it asks for a peer-only connection. */
export const PEER_UPGRADE_HEADER = "x-mpreg-peer";

/**
 * Frames of one event-loop turn written out together on a peer link (the transport's default,
 * 16, suits a client's request/reply ping-pong). A node relays whole batches (64 calls in
 * flight from a client become 64 call messages in one turn): measured with
 * `cpu-probe.mjs remote 64`, 64 instead of 16 took CPU per remote call from ~51 to ~43 µs on
 * the ingress and ~17.5 to ~13.5 µs on the callee.
 */
export const PEER_COALESCE_MAX_FRAMES = 64;

/** Default TTL of this node's catalog entries (see `FabricOptions.catalogTtlMs`). */
export const DEFAULT_CATALOG_TTL_MS = 600_000;

/** How long a listener waits for the dialer's `peer-confirm` before closing the link. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Shortest period of the catalog maintenance pass (refresh, expiry, federation tick). */
const MAINTENANCE_MS = 1000;
/** setTimeout's longest delay; a later due time is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Counters of the fabric's forwarding path (read by tests and `/metrics`). */
export interface FabricStats {
  /** Messages this node forwarded for others. */
  relayed: number;
  /** Gossip messages this node originated and sent through a next hop. */
  gossipRelayed: number;
  /** Forwarded messages dropped because `routing_path` already held this node. */
  droppedLoop: number;
  /** Forwarded messages dropped because `hops_remaining` ran out. */
  droppedHops: number;
  /** Messages (forwarded or originated) dropped because no link nor route led to the target. */
  droppedNoRoute: number;
  /** Messages refused because their frame would pass the peer frame limit. */
  droppedTooLarge: number;
  /** Messages whose last `routing_path` entry was not the node of the link that carried them. */
  droppedForged: number;
  /** Messages for this node with no handler for their topic. */
  unhandled: number;
  /** Handshakes refused (wrong MAC, other cluster, bad version, no confirm in time). */
  handshakesRefused: number;
  /** Messages from another cluster refused: no handler takes foreign messages, or the export policy. */
  droppedForeign: number;
}

/** An outbound connection as the fabric needs it (a reconnecting `ClientConnection` fits). */
export interface DialedConnection extends Connection {
  /** Called after each re-open of a reconnecting connection. */
  onOpen(handler: () => void): Unsubscribe;
  onClose(handler: (code: number, reason: string, willReconnect: boolean) => void): Unsubscribe;
}

/** Options of a {@link Fabric}. */
export interface FabricOptions {
  nodeId: string;
  clusterId: string;
  region?: string;
  /** This node's resources, announced in its catalog `node` entry. */
  resources?: readonly string[];
  /** HMAC key of the peer handshake; absent means peers are not authenticated. */
  secret?: string | undefined;
  /** Seed URLs dialed at start and re-dialed (with backoff) whenever their link drops. */
  seeds?: readonly string[];
  /** Most peer links this node dials; beyond it, members are reached through others. Default 16. */
  maxLinks?: number;
  gossip?: Partial<GossipConfig>;
  /** This node's own URLs (known once it listens). */
  urls: () => string[];
  /**
   * Largest frame sent on a peer link (peers share this limit: a larger frame would make the
   * receiver close the link with 1009). Default `DEFAULT_MAX_FRAME_BYTES` (20 MiB).
   */
  maxFrameBytes?: number;
  /** `hops_remaining` of messages this node originates. Default 8 (`DEFAULT_MAX_HOPS`). */
  maxHops?: number;
  /**
   * TTL of this node's catalog entries; they are re-announced at half of it. Default 10 min
   * (membership, not the TTL, removes a dead node's entries).
   */
  catalogTtlMs?: number;
  /** How long a listener waits for `peer-confirm`. Default 10 s. */
  handshakeTimeoutMs?: number;
  /**
   * TLS options of the default dialer for `wss://` peer URLs: the CA the peers' certificates
   * must chain to, and this node's own certificate and key, presented when a peer's listener
   * asks for one (mutual TLS). Checked when the fabric is built (1002 naming `tls.…`).
   * Ignored with `dial` and for `ws://` URLs.
   */
  tls?: ClientTlsOptions;
  /** Opens an outbound link; default a reconnecting WebSocket (`connectWs`). */
  dial?: (url: string) => Promise<DialedConnection>;
  /**
   * Federation with other clusters (docs/federation.md). Absent: `strict`, every peer of another
   * cluster is refused at the handshake.
   */
  federation?: FederationOptions;
  /**
   * The node-wide budget of unsent bytes that dialed links share with the listener's
   * connections (a peer that stops reading is cut off like a slow client). Default: none.
   */
  outboundBudget?: OutboundBudget;
}

/** What gossip carries about a member besides its id. */
interface MemberMeta {
  cluster_id: string;
  region: string;
  urls: string[];
}

interface Dialer {
  conn: DialedConnection | undefined;
  stop: boolean;
  seed: boolean;
  /** A configured federation link: the cluster expected at the other end. */
  cluster?: string;
}

/** A node as `cluster_map` shows it. */
export interface NodeView {
  node_id: string;
  cluster_id: string;
  region: string;
  urls: string[];
  resources: string[];
  functions: string[];
  load: number;
  status: string;
}

/**
 * The node-to-node layer of a node: peer links (mutual handshake, dialing with backoff,
 * reconnect), the gossip state machine driven by a timer, the routing catalog fed by gossip,
 * forwarding by the routing headers over several hops, and the {@link ServicePort} every
 * service plugs into. It decides nothing about what services' messages mean.
 */
export class Fabric implements ServicePort {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly catalog: Catalog;
  readonly gossip: GossipNode;
  /** Link announcements and the next-hop routes derived from them. */
  readonly overlay: LinkOverlay;
  readonly stats: FabricStats = {
    relayed: 0,
    gossipRelayed: 0,
    droppedLoop: 0,
    droppedHops: 0,
    droppedNoRoute: 0,
    droppedTooLarge: 0,
    droppedForged: 0,
    unhandled: 0,
    handshakesRefused: 0,
    droppedForeign: 0,
  };
  private readonly links = new PeerLinks();
  /** Links to nodes of other clusters (federation): data-plane and control messages only, no gossip. */
  private readonly fedLinks = new PeerLinks();
  /** Federation with other clusters; undefined in strict mode. */
  readonly federation: FederationDriver | undefined;
  private readonly undeliverableListeners = new Set<(n: UndeliverableNotice) => void>();
  private readonly dialers = new Map<string, Dialer>();
  /** Where relayed messages of nodes came from: the way back while no route to them is known. */
  private readonly reverseHops = new ReverseHops();
  /** True while `onTimer` runs: it arms the next wake itself, once. */
  private inTimer = false;
  private readonly handlers = new Map<string, { handler: FabricMessageHandler; options: HandleOptions }>();
  private readonly membershipListeners = new Set<(e: MembershipEvent) => void>();
  private readonly catalogListeners = new Set<(c: CatalogChange) => void>();
  /** Nodes reachable at the last check; `down`/`up` events are the differences. */
  private reachable = new Set<string>();
  private reachDirty = false;
  private unreachableCache: Set<string> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the armed timer fires (Infinity when none is armed). */
  private timerAt = Infinity;
  private nextMaintenanceAt = 0;
  private started = false;
  private stopped = false;
  private readonly maxFrameBytes: number;
  private readonly dial: (url: string) => Promise<DialedConnection>;

  constructor(private readonly opts: FabricOptions) {
    this.nodeId = opts.nodeId;
    this.clusterId = opts.clusterId;
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    // The header lets a listener that requires client tokens accept the upgrade as a peer-only
    // connection: peers authenticate by the cluster secret in the handshake instead.
    // A certificate or key that cannot be loaded fails here, at start, not at every dial.
    const tls = opts.tls === undefined ? undefined : checkClientTls(opts.tls, "tls");
    this.dial =
      opts.dial ??
      ((url) =>
        connectWs(url, {
          reconnect: { initialDelayMs: 200, maxDelayMs: 5000 },
          headers: { [PEER_UPGRADE_HEADER]: "1" },
          ...(tls === undefined ? {} : { tls }),
          ...(opts.outboundBudget ? { outboundBudget: opts.outboundBudget } : {}),
          coalesceMaxFrames: PEER_COALESCE_MAX_FRAMES,
        }));
    // Liveness comes from gossip membership (a dead or departed node's entries are removed at
    // once), so the TTL is only a backstop: a long one keeps refresh traffic, which grows with
    // the number of entries in the cluster, small on an idle cluster.
    this.catalog = new Catalog({ nodeId: opts.nodeId, clusterId: opts.clusterId, defaultTtlMs: opts.catalogTtlMs ?? DEFAULT_CATALOG_TTL_MS });
    this.overlay = new LinkOverlay({
      selfId: opts.nodeId,
      ownLinks: () => this.links.openNodes(),
      isLive: (id) => this.isLive(id),
      maxLinks: opts.maxLinks ?? 16,
    });
    this.gossip = new GossipNode({
      id: opts.nodeId,
      meta: this.meta(),
      config: opts.gossip ?? {},
      random: { next: Math.random },
      now: Date.now(),
      // Sizes as encoded on the wire, so messages respect the gossip byte budget.
      itemSize: (item) => encodeFrame(item as object, "msgpack").length,
    });
    this.federation =
      opts.federation === undefined
        ? undefined
        : new FederationDriver(
            {
              nodeId: this.nodeId,
              clusterId: this.clusterId,
              sendOnLink: (nodeId, msg) => {
                const conn = this.fedLinks.get(nodeId);
                return conn !== undefined && trySend(conn, this.encodeForPeer(msg));
              },
              localEntries: () => this.localExports(),
              publishGateway: (ann) => this.publishGateway(ann),
              isLive: (id) => this.isLive(id),
              canReach: (id) => this.links.get(id) !== undefined || this.overlay.route(id) !== undefined,
              emitCatalog: (change) => this.emitCatalog(change, false),
            },
            opts.federation,
          );
  }

  // ---------------------------------------------------------------------------------------
  // Service port
  // ---------------------------------------------------------------------------------------

  handle(prefix: string, handler: FabricMessageHandler, options: HandleOptions = {}): () => void {
    if (this.handlers.has(prefix)) throw MpregError.invalid(`fabric topic prefix ${prefix} already has a handler`, "prefix");
    const entry = { handler, options };
    this.handlers.set(prefix, entry);
    return () => {
      if (this.handlers.get(prefix) === entry) this.handlers.delete(prefix);
    };
  }

  message(out: OutboundMessage): UnifiedMessage {
    return createUnifiedMessage({
      topic: out.topic,
      message_type: out.message_type ?? "data",
      delivery: out.delivery ?? "fire_and_forget",
      payload: out.payload,
      headers: {
        source_node: this.nodeId,
        source_cluster: this.clusterId,
        ...(out.correlation_id === undefined ? {} : { correlation_id: out.correlation_id }),
        ...(out.trace_id === undefined ? {} : { trace_id: out.trace_id }),
      },
      ...(this.opts.maxHops === undefined ? {} : { maxHops: this.opts.maxHops }),
    });
  }

  send(nodeId: string, msg: UnifiedMessage, service?: ServiceTag): boolean {
    if (nodeId === this.nodeId) {
      // A service may address its own node (e.g. the owner of a queue is here): deliver in turn.
      queueMicrotask(() => this.deliver(msg, this.nodeId));
      return true;
    }
    const fed = this.federation;
    const tc = msg.headers.target_cluster;
    if (fed !== undefined && tc !== undefined && tc !== this.clusterId) return this.sendToCluster(nodeId, tc, msg, service);
    let conn = this.links.get(nodeId);
    if (!conn) {
      const route = this.overlay.route(nodeId);
      const next = route?.next ?? this.reverseHops.get(nodeId);
      conn = next !== undefined && !msg.headers.routing_path.includes(next) ? this.links.get(next) : undefined;
      if (!conn) {
        // Not a node of this cluster: of another one, when federation knows it.
        const cluster = fed?.clusterOf(nodeId);
        if (cluster !== undefined && cluster !== this.clusterId) return this.sendToCluster(nodeId, cluster, msg, service);
        this.stats.droppedNoRoute++;
        return false;
      }
      if (msg.headers.target_node !== nodeId) msg = { ...msg, headers: { ...msg.headers, target_node: nodeId } };
    }
    return trySend(conn, this.encodeForPeer(msg));
  }

  canSend(nodeId: string): boolean {
    if (nodeId === this.nodeId) return true;
    // As `send` decides: an open link, else the next hop of a route (or the way a message from it came).
    if (this.links.get(nodeId) !== undefined) return true;
    const next = this.overlay.route(nodeId)?.next ?? this.reverseHops.get(nodeId);
    if (next !== undefined && next !== this.nodeId && this.links.get(next) !== undefined) return true;
    const cluster = this.federation?.clusterOf(nodeId);
    return cluster !== undefined && cluster !== this.clusterId;
  }

  /** Encodes a fabric-message frame; throws 1002 `message_too_large` past the peer frame limit. */
  private encodeForPeer(msg: UnifiedMessage): Uint8Array {
    let data: Uint8Array;
    try {
      data = encodeFabricMessage(msg);
    } catch (e) {
      throw MpregError.invalid(`message cannot be encoded: ${(e as Error).message}`, "payload");
    }
    if (data.length > this.maxFrameBytes) {
      // The peer would close the link (1009), failing everything else on it: refuse this one.
      this.stats.droppedTooLarge++;
      throw new MpregError(ErrorCode.INVALID_REQUEST, `message of ${data.length} bytes exceeds the peer frame limit (${this.maxFrameBytes} bytes)`, {
        reason: "message_too_large",
        bytes: data.length,
        limit: this.maxFrameBytes,
      });
    }
    return data;
  }

  /**
   * Originates a message for `nodeId` of cluster `clusterId` (headers set to both). Throws the
   * 1005 UNREACHABLE of the drop reason (`no_route`, `loop`, `hop_budget_exhausted`,
   * `denied`) when it cannot leave this node towards that cluster.
   */
  private sendToCluster(nodeId: string, clusterId: string, msg: UnifiedMessage, service?: ServiceTag): boolean {
    const h = msg.headers;
    if (h.target_cluster !== clusterId || h.target_node !== nodeId) msg = { ...msg, headers: { ...h, target_cluster: clusterId, target_node: nodeId } };
    const d = (this.federation as FederationDriver).decide(msg, false, service);
    if (d.action === "drop") throw federationDropError(d.reason, clusterId);
    return this.carry(d, msg);
  }

  /**
   * Carries out a federation decision: over a federation link, or to a gateway of this
   * cluster (directly or through the next hop; the message keeps its final `target_node`).
   */
  private carry(d: Exclude<FederationDecision, { action: "drop" }>, original: UnifiedMessage): boolean {
    if (d.action === "deliver") {
      // The target cluster is this one after all: the usual in-cluster path.
      this.onFabricMessage(d.message, this.nodeId);
      return true;
    }
    const data = this.encodeForPeer(d.message);
    if (d.action === "link") {
      const conn = this.fedLinks.get(d.nodeId);
      return conn !== undefined && trySend(conn, data);
    }
    let conn = this.links.get(d.nodeId);
    if (!conn) {
      const route = this.overlay.route(d.nodeId);
      conn = route && !original.headers.routing_path.includes(route.next) ? this.links.get(route.next) : undefined;
    }
    if (!conn) {
      this.stats.droppedNoRoute++;
      return false;
    }
    return trySend(conn, data);
  }

  owner(kind: "queue" | "cache", name: string): string | undefined {
    const entries = kind === "queue" ? this.catalog.queues({ name, now: Date.now() }) : this.catalog.caches({ namespace: name, now: Date.now() });
    const unreachable = this.unreachable();
    let best: string | undefined;
    for (const e of entries) {
      if (e.node_id === this.nodeId) return e.node_id;
      if (unreachable.has(e.node_id)) continue;
      // Lowest id among reachable owners: every node picks the same one.
      if (best === undefined || e.node_id < best) best = e.node_id;
    }
    if (best !== undefined || this.federation === undefined || kind !== "queue") return best;
    // None in this cluster: the owner in another cluster, as its export says (same rule).
    for (const e of this.federation.foreign.catalog.queues({ name })) if (best === undefined || e.node_id < best) best = e.node_id;
    return best;
  }

  /** `hops_remaining` of messages this node originates (undefined: the envelope's default). */
  get maxHops(): number | undefined {
    return this.opts.maxHops;
  }

  /** Other clusters' entries this node may use (federation); undefined in strict mode. */
  get foreign(): Catalog | undefined {
    return this.federation?.foreign.catalog;
  }

  onUndeliverable(listener: (n: UndeliverableNotice) => void): () => void {
    this.undeliverableListeners.add(listener);
    return () => this.undeliverableListeners.delete(listener);
  }

  broadcast(msg: UnifiedMessage, filter?: (nodeId: string) => boolean): number {
    let n = 0;
    for (const id of this.members()) {
      if (filter && !filter(id)) continue;
      try {
        if (this.send(id, msg)) n++;
      } catch (e) {
        log.warn(`broadcast of ${msg.topic} to ${id} refused: ${(e as Error).message}`);
      }
    }
    return n;
  }

  members(): string[] {
    const unreachable = this.unreachable();
    return this.gossip.liveMembers().filter((id) => id !== this.nodeId && !unreachable.has(id));
  }

  /**
   * Nodes a message cannot be sent to now: declared dead or gone, or with neither an open link
   * nor a route over other nodes' links. Computed once per change of links, members or catalog.
   */
  unreachable(): ReadonlySet<string> {
    if (this.unreachableCache !== undefined) return this.unreachableCache;
    const out = new Set<string>();
    this.unreachableCache = out;
    for (const m of this.gossip.membersView()) if (m.status === "dead" || m.status === "left") out.add(m.id);
    const routes = this.overlay.routes();
    for (const n of this.catalog.nodes()) {
      if (n.node_id !== this.nodeId && !this.links.get(n.node_id) && !routes.has(n.node_id)) out.add(n.node_id);
    }
    return out;
  }

  /** Nodes reachable as of the last `up`/`down` events (what a membership listener has been told). */
  get reachableAsReported(): ReadonlySet<string> {
    return this.reachable;
  }

  onMembership(listener: (e: MembershipEvent) => void): () => void {
    this.membershipListeners.add(listener);
    return () => this.membershipListeners.delete(listener);
  }

  onCatalogChange(listener: (change: CatalogChange) => void): () => void {
    this.catalogListeners.add(listener);
    return () => this.catalogListeners.delete(listener);
  }

  announce(entry: LocalEntryInput): string {
    const delta = this.catalog.registerLocal(entry, Date.now());
    this.maintainSoon();
    this.publish(delta);
    this.federation?.localChanged();
    return delta.key;
  }

  withdraw(key: string): void {
    this.publish(this.catalog.unregisterLocal(key, Date.now()));
    this.maintainSoon();
    this.federation?.localChanged();
  }

  /** A local entry changed: the next maintenance pass (which computes the next due time) comes within a second. */
  private maintainSoon(): void {
    this.nextMaintenanceAt = Math.min(this.nextMaintenanceAt, Date.now() + MAINTENANCE_MS);
  }

  // ---------------------------------------------------------------------------------------
  // Lifecycle
  // ---------------------------------------------------------------------------------------

  /** Announces this node, dials the seeds and starts the gossip timer. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.gossip.updateMeta(this.meta(), Date.now());
    this.announce({
      kind: "node",
      region: this.opts.region ?? "",
      urls: this.opts.urls(),
      resources: [...(this.opts.resources ?? [])],
      load: 0,
      status: "ok",
    });
    this.announceLinks();
    for (const url of this.opts.seeds ?? []) this.dialUrl(url, true);
    for (const l of this.federation?.links ?? []) this.dialUrl(l.url, true, l.clusterId);
    this.onTimer();
  }

  /** Says GOODBYE (gossip leave + `peer-goodbye`), closes every link and stops the timer. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.gossip.leave(Date.now());
    this.flush();
    const goodbye = encodeFrame({ role: "peer-goodbye", reason: "shutdown" }, "msgpack");
    for (const c of [...this.links.all(), ...this.fedLinks.all()]) trySend(c, goodbye);
    for (const d of this.dialers.values()) {
      d.stop = true;
      d.conn?.close(CloseCode.GOING_AWAY, "shutdown");
    }
    for (const c of [...this.links.all(), ...this.fedLinks.all()]) c.close(CloseCode.GOING_AWAY, "shutdown");
    this.links.clear();
    this.fedLinks.clear();
  }

  /** Number of nodes of this cluster this node has a link to. */
  get linkCount(): number {
    return this.links.size;
  }

  /** Number of nodes of other clusters this node has a federation link to. */
  get federationLinkCount(): number {
    return this.fedLinks.size;
  }

  // ---------------------------------------------------------------------------------------
  // Views for the built-ins (`list_peers`, `cluster_map`)
  // ---------------------------------------------------------------------------------------

  /**
   * Other nodes as `list_peers` shows them, with the next hop that reaches each; then the nodes
   * of other clusters this node may use (federation): status `remote`, `cluster_path` the
   * route's clusters, `next_hop` the first node a message to them goes to.
   */
  peers(clusterId?: string): unknown[] {
    const nodes = new Map(this.catalog.nodes().map((n) => [n.node_id, n]));
    const out: unknown[] = [];
    for (const m of this.gossip.membersView()) {
      if (m.id === this.nodeId || m.status === "left") continue;
      const meta = m.meta as Partial<MemberMeta> | undefined;
      const n = nodes.get(m.id);
      const cid = n?.cluster_id ?? meta?.cluster_id ?? "";
      if (clusterId !== undefined && cid !== clusterId) continue;
      const route = this.overlay.route(m.id);
      out.push({
        node_id: m.id,
        cluster_id: cid,
        region: n?.region ?? meta?.region ?? "",
        urls: [...(n?.urls ?? meta?.urls ?? [])],
        functions: this.functionNames(m.id),
        resources: [...(n?.resources ?? [])],
        status: m.status,
        last_seen: m.since,
        next_hop: route?.next ?? null,
        hops: route?.hops ?? null,
      });
    }
    // Nodes of other clusters known from their exported entries (federation): status `remote`.
    for (const f of this.foreignNodes()) {
      if (clusterId !== undefined && f.cluster_id !== clusterId) continue;
      const r = this.federation?.routeTo(f.cluster_id);
      out.push({
        node_id: f.node_id,
        cluster_id: f.cluster_id,
        region: "",
        urls: [],
        functions: f.functions,
        resources: [],
        status: "remote",
        last_seen: null,
        next_hop: r?.nextNode ?? null,
        hops: null,
        cluster_path: r?.path ?? null,
      });
    }
    return out;
  }

  /**
   * Nodes of other clusters this node knows through federation (from the foreign entries it
   * may use, after the policies), with the names of their functions; sorted by node id.
   */
  private foreignNodes(): { node_id: string; cluster_id: string; functions: string[] }[] {
    const cat = this.federation?.foreign.catalog;
    if (cat === undefined) return [];
    const by = new Map<string, { node_id: string; cluster_id: string; functions: Set<string> }>();
    const add = (e: { node_id: string; cluster_id: string }) => {
      let n = by.get(e.node_id);
      if (n === undefined) by.set(e.node_id, (n = { node_id: e.node_id, cluster_id: e.cluster_id, functions: new Set() }));
      return n;
    };
    for (const e of cat.queryFunctions({})) add(e).functions.add(e.name);
    for (const e of [...cat.queues({}), ...cat.topics({}), ...cat.caches({})]) add(e);
    return [...by.values()]
      .filter((n) => n.cluster_id !== this.clusterId)
      .sort((a, b) => (a.node_id < b.node_id ? -1 : a.node_id > b.node_id ? 1 : 0))
      .map((n) => ({ node_id: n.node_id, cluster_id: n.cluster_id, functions: [...n.functions].sort() }));
  }

  /**
   * Every live node, `self` included, as `cluster_map` shows them; `load` per other node. Nodes
   * of other clusters this node may use (federation) follow with status `remote`.
   */
  nodes(self: NodeView, load: (nodeId: string) => number): NodeView[] {
    const status = new Map(this.gossip.membersView().map((m) => [m.id, m.status]));
    const out: NodeView[] = [self];
    for (const n of this.catalog.nodes({ now: Date.now() })) {
      if (n.node_id === this.nodeId) continue;
      const s = status.get(n.node_id);
      if (s === "dead" || s === "left") continue;
      out.push({
        node_id: n.node_id,
        cluster_id: n.cluster_id,
        region: n.region,
        urls: [...n.urls],
        resources: [...n.resources],
        functions: this.functionNames(n.node_id),
        load: load(n.node_id),
        status: s ?? "alive",
      });
    }
    // Other clusters' nodes this node may use (federation), marked `remote`.
    for (const f of this.foreignNodes()) {
      out.push({ node_id: f.node_id, cluster_id: f.cluster_id, region: "", urls: [], resources: [], functions: f.functions, load: load(f.node_id), status: "remote" });
    }
    return out.sort((a, b) => a.node_id.localeCompare(b.node_id));
  }

  // ---------------------------------------------------------------------------------------
  // Links: handshake
  // ---------------------------------------------------------------------------------------

  /**
   * Takes over an inbound connection whose first frame was `peer-hello`: checks it, answers
   * `peer-welcome`, and makes the connection a peer link once the dialer's `peer-confirm`
   * proves it holds the secret now (a recorded hello cannot be replayed). Returns false (and
   * closes the connection) when the hello is refused. The caller must hand no further frames
   * of this connection to anything else: the fabric reads them itself.
   */
  adopt(conn: Connection, hello: PeerHello): boolean {
    const { secret } = this.opts;
    const refuse = (reason: string): false => {
      this.stats.handshakesRefused++;
      log.warn(`refused peer ${hello.node_id}: ${reason}`);
      conn.close(CloseCode.PEER_UNAUTHORIZED, reason);
      return false;
    };
    if (this.stopped) return refuse("node is shutting down");
    if (hello.protocol_version !== PEER_PROTOCOL_VERSION) return refuse(`unsupported protocol_version ${hello.protocol_version}`);
    if (!macOk(secret, hello.mac, () => helloMac(secret!, hello))) return refuse("peer authentication failed");
    if (hello.node_id === this.nodeId) return refuse("same node id");
    // Another cluster's node links only to a federated node that accepts that cluster.
    const foreign = hello.cluster_id !== this.clusterId ? hello.cluster_id : undefined;
    if (foreign !== undefined && this.federation?.acceptsLink(foreign) !== true) return refuse(`cluster ${hello.cluster_id} is not ${this.clusterId}`);
    // An accepted connection got the listener's client settings; a peer link writes in larger batches.
    (conn as Partial<{ setCoalesceMaxFrames(frames: number): void }>).setCoalesceMaxFrames?.(PEER_COALESCE_MAX_FRAMES);
    const fields = this.identity(newNonce());
    const welcome: PeerWelcome = {
      role: "peer-welcome",
      ...fields,
      ...(secret === undefined ? {} : { mac: welcomeMac(secret, fields, hello.nonce, hello.node_id) }),
    };
    trySend(conn, encodeFrame(welcome, "msgpack"));
    let linked = false;
    const timeout = setTimeout(() => {
      if (!linked) refuse("no peer-confirm in time");
    }, this.opts.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS);
    timeout.unref();
    conn.onMessage((data, isBinary) => {
      const frame = decodePeerFrame(data, isBinary);
      if (frame === undefined) return;
      if (linked) {
        this.onPeerFrame(hello.node_id, frame, foreign);
        return;
      }
      clearTimeout(timeout);
      if (frame.role !== "peer-confirm") {
        refuse(`${frame.role} before peer-confirm`);
        return;
      }
      if (!macOk(secret, frame.mac, () => confirmMac(secret!, hello.node_id, this.nodeId, hello.nonce, fields.nonce))) {
        refuse("peer authentication failed (confirm)");
        return;
      }
      linked = true;
      this.addLink(hello.node_id, conn, foreign);
    });
    conn.onClose(() => {
      clearTimeout(timeout);
      if (linked) this.linkClosed(hello.node_id, conn, foreign);
    });
    return true;
  }

  /** Keeps an outbound link to `url` up: dial, handshake, re-handshake after each reconnect. */
  private dialUrl(url: string, seed: boolean, cluster?: string): void {
    if (this.dialers.has(url) || this.stopped || this.opts.urls().includes(url)) return;
    const d: Dialer = { conn: undefined, stop: false, seed, ...(cluster === undefined ? {} : { cluster }) };
    this.dialers.set(url, d);
    const attempt = async (n: number): Promise<void> => {
      if (d.stop) return;
      try {
        const conn = await this.dial(url);
        if (d.stop) {
          conn.close(CloseCode.GOING_AWAY, "shutdown");
          return;
        }
        d.conn = conn;
        this.handshake(url, conn, d);
      } catch {
        if (!d.seed && n >= 5) {
          this.dialers.delete(url);
          return;
        }
        const t = setTimeout(() => void attempt(n + 1), backoffDelay(Math.min(n, 10), { initialDelayMs: 200, maxDelayMs: 5000 }));
        t.unref();
      }
    };
    void attempt(0);
  }

  private handshake(url: string, conn: DialedConnection, d: Dialer): void {
    let peerId: string | undefined;
    let foreign: string | undefined;
    let nonce = "";
    const secret = this.opts.secret;
    const sendHello = () => {
      nonce = newNonce();
      const fields = this.identity(nonce);
      trySend(conn, encodeFrame({ role: "peer-hello", ...fields, ...(secret === undefined ? {} : { mac: helloMac(secret, fields) }) }, "msgpack"));
    };
    const giveUp = (why: string) => {
      this.stats.handshakesRefused++;
      log.warn(`peer at ${url}: ${why}; not retrying`);
      d.stop = true;
      this.dialers.delete(url);
      conn.close(CloseCode.PEER_UNAUTHORIZED, "peer authentication failed");
    };
    conn.onMessage((data, isBinary) => {
      const frame = decodePeerFrame(data, isBinary);
      if (frame === undefined) return;
      if (peerId !== undefined) {
        this.onPeerFrame(peerId, frame, foreign);
        return;
      }
      if (frame.role !== "peer-welcome") return;
      if (!macOk(secret, frame.mac, () => welcomeMac(secret!, frame, nonce, this.nodeId))) return giveUp("welcome failed authentication");
      if (frame.cluster_id !== this.clusterId) {
        if (this.federation?.acceptsLink(frame.cluster_id, d.cluster) !== true) return giveUp(`it is in cluster ${frame.cluster_id}${d.cluster === undefined ? "" : `, not ${d.cluster}`}`);
      } else if (d.cluster !== undefined) {
        return giveUp(`it is in this cluster, not in ${d.cluster}`);
      }
      if (frame.protocol_version !== PEER_PROTOCOL_VERSION) return giveUp(`unsupported protocol_version ${frame.protocol_version}`);
      const mac = secret === undefined ? {} : { mac: confirmMac(secret, this.nodeId, frame.node_id, nonce, frame.nonce) };
      trySend(conn, encodeFrame({ role: "peer-confirm", ...mac }, "msgpack"));
      peerId = frame.node_id;
      foreign = frame.cluster_id !== this.clusterId ? frame.cluster_id : undefined;
      this.addLink(peerId, conn, foreign);
    });
    conn.onOpen(() => sendHello());
    conn.onClose((code, reason, willReconnect) => {
      if (peerId !== undefined) this.linkClosed(peerId, conn, foreign);
      peerId = undefined;
      foreign = undefined;
      if (code === CloseCode.PEER_UNAUTHORIZED) {
        log.warn(`peer at ${url} refused our handshake (${reason || "authentication failed"}); not retrying`);
        d.stop = true;
        conn.close();
      }
      if (!willReconnect || d.stop) this.dialers.delete(url);
    });
    sendHello();
  }

  private identity(nonce: string) {
    return {
      node_id: this.nodeId,
      cluster_id: this.clusterId,
      region: this.opts.region ?? "",
      urls: this.opts.urls(),
      protocol_version: PEER_PROTOCOL_VERSION,
      nonce,
    };
  }

  private addLink(nodeId: string, conn: Connection, foreignCluster?: string): void {
    if (foreignCluster !== undefined) {
      // A federation link: no gossip, no overlay; the driver runs the routing session.
      if (this.fedLinks.add(nodeId, conn)) this.federation?.linkUp(nodeId, foreignCluster, Date.now());
      this.schedule();
      return;
    }
    this.invalidateRoutes();
    if (this.links.add(nodeId, conn)) this.overlay.linksChanged();
    this.gossip.linkOpened(nodeId, Date.now());
    this.flush();
    this.checkReachability();
  }

  private linkClosed(nodeId: string, conn: Connection, foreignCluster?: string): void {
    if (foreignCluster !== undefined) {
      if (this.fedLinks.remove(nodeId, conn)) this.federation?.linkDown(nodeId, Date.now());
      this.schedule();
      return;
    }
    this.invalidateRoutes();
    if (this.links.remove(nodeId, conn)) {
      this.reverseHops.dropLink(nodeId);
      this.overlay.linksChanged();
    }
    // Calls waiting on a node that just became unreachable fail now, not at their deadline.
    this.checkReachability();
    this.schedule();
  }

  // ---------------------------------------------------------------------------------------
  // Inbound frames
  // ---------------------------------------------------------------------------------------

  /** A frame on an established peer link from `nodeId` (of another cluster: `foreignCluster`). */
  private onPeerFrame(nodeId: string, frame: Frame, foreignCluster?: string): void {
    switch (frame.role) {
      case "fabric-message": {
        const msg = frame.payload;
        const path = msg.headers.routing_path;
        const fed = msg.headers.federation_path;
        // A link speaks for its own node: the last hop of every message it carries is that node
        // (and, across clusters, the last cluster is that node's).
        const forged = path[path.length - 1] !== nodeId || (foreignCluster !== undefined && fed[fed.length - 1] !== foreignCluster);
        if (forged) {
          this.stats.droppedForged++;
          log.warn(`dropped message ${msg.message_id} from link ${nodeId}: routing_path ends with ${String(path[path.length - 1])}, federation_path with ${String(fed[fed.length - 1])}`);
          return;
        }
        if (foreignCluster !== undefined && msg.topic.startsWith(`${FEDERATION_CONTROL_PREFIX}.`)) {
          this.federation?.receiveControl(msg, nodeId, Date.now());
          this.schedule();
          return;
        }
        this.onFabricMessage(msg, nodeId);
        return;
      }
      case "fabric-gossip":
        // Membership and the catalog stay inside a cluster.
        if (foreignCluster !== undefined) log.debug(`ignored gossip on the federation link from ${nodeId}`);
        else this.onGossip(nodeId, frame.payload);
        return;
      case "peer-goodbye":
        log.info(`peer ${nodeId} says goodbye`);
        return;
      default:
        log.debug(`ignored ${frame.role} on peer link from ${nodeId}`);
    }
  }

  private onGossip(from: string, payload: unknown): void {
    try {
      this.gossip.handleMessage(from, payload, Date.now());
    } catch (e) {
      // A malformed gossip message is refused by the state machine; the link stays.
      log.warn(`bad gossip message from ${from}: ${(e as Error).message}`);
    }
    this.flush();
  }

  private onFabricMessage(msg: UnifiedMessage, from: string): void {
    const src = msg.headers.source_node;
    if (src !== from && msg.headers.source_cluster === this.clusterId) this.reverseHops.note(src, from);
    const tc = msg.headers.target_cluster;
    if (this.federation !== undefined && tc !== undefined && tc !== this.clusterId) {
      this.relayToCluster(msg);
      return;
    }
    const target = msg.headers.target_node;
    if (target !== undefined && target !== this.nodeId) {
      this.forward(msg, target);
      return;
    }
    this.deliver(msg, from);
  }

  /** Relays a message for another cluster; tells its originator when it cannot. */
  private relayToCluster(msg: UnifiedMessage): void {
    const d = (this.federation as FederationDriver).decide(msg, true);
    if (d.action === "drop") {
      log.debug(`dropped message ${msg.message_id} for cluster ${String(msg.headers.target_cluster)}: ${d.reason}`);
      this.notifyUndeliverable(msg, d.reason);
      return;
    }
    try {
      if (this.carry(d, msg)) this.stats.relayed++;
      else this.notifyUndeliverable(msg, "no_route");
    } catch {
      // too large for a peer frame: counted by encodeForPeer
    }
  }

  /** Sends the originator of a message this node could not forward the 1005 of the reason. */
  private notifyUndeliverable(msg: UnifiedMessage, reason: FederationDropReason): void {
    if (msg.topic === UNDELIVERABLE_TOPIC || msg.topic.startsWith(`${FEDERATION_CONTROL_PREFIX}.`)) return;
    const h = msg.headers;
    const notice = createUnifiedMessage({
      topic: UNDELIVERABLE_TOPIC,
      message_type: "control",
      payload: { message_id: msg.message_id, correlation_id: h.correlation_id, topic: msg.topic, error: federationDropError(reason, h.target_cluster).toWire() },
      headers: { source_node: this.nodeId, source_cluster: this.clusterId, target_node: h.source_node, target_cluster: h.source_cluster, correlation_id: h.correlation_id, trace_id: h.trace_id },
    });
    try {
      this.send(h.source_node, notice);
    } catch {
      // The originator is unreachable too: its call ends at its deadline.
    }
  }

  private deliver(msg: UnifiedMessage, from: string): void {
    const h = msg.headers;
    if (h.source_cluster !== this.clusterId) this.federation?.noteSource(h.source_node, h.source_cluster);
    if (msg.topic === GOSSIP_RELAY_TOPIC) {
      // Gossip never comes from another cluster.
      if (h.federation_path.some((c) => c !== this.clusterId)) return;
      this.onGossip(msg.headers.source_node, msg.payload);
      return;
    }
    if (msg.topic === UNDELIVERABLE_TOPIC) {
      this.onUndeliverableNotice(msg);
      return;
    }
    const entry = this.handlerFor(msg.topic);
    if (entry === undefined) {
      this.stats.unhandled++;
      log.debug(`unhandled fabric message ${msg.topic}`);
      return;
    }
    if (h.federation_path.some((c) => c !== this.clusterId) && !this.admitsForeign(msg, entry.options)) {
      this.stats.droppedForeign++;
      log.debug(`dropped ${msg.topic} from cluster ${h.source_cluster}: not accepted from another cluster`);
      return;
    }
    try {
      entry.handler(msg, from);
    } catch (e) {
      log.warn(`handler of ${msg.topic} threw: ${(e as Error).message}`);
    }
  }

  private onUndeliverableNotice(msg: UnifiedMessage): void {
    const p = msg.payload as { message_id?: unknown; correlation_id?: unknown; topic?: unknown; error?: { code?: unknown; message?: unknown; details?: Record<string, unknown> } } | null;
    if (p === null || typeof p !== "object" || typeof p.correlation_id !== "string" || typeof p.topic !== "string") return;
    const e = p.error;
    const error =
      e !== undefined && typeof e.code === "number" && typeof e.message === "string"
        ? MpregError.fromWire({ code: e.code, message: e.message, details: e.details ?? {} })
        : new MpregError(ErrorCode.UNREACHABLE, "federation: undeliverable", { reason: "undeliverable" });
    const notice: UndeliverableNotice = { message_id: typeof p.message_id === "string" ? p.message_id : "", correlation_id: p.correlation_id, topic: p.topic, error };
    for (const l of this.undeliverableListeners) {
      try {
        l(notice);
      } catch (err) {
        log.warn(`undeliverable listener threw: ${(err as Error).message}`);
      }
    }
  }

  /** Whether a message that crossed clusters may reach a handler (its option, then the export policy). */
  private admitsForeign(msg: UnifiedMessage, options: HandleOptions): boolean {
    if (this.federation === undefined || options.acceptForeign === undefined) return false;
    let verdict: ReturnType<NonNullable<HandleOptions["acceptForeign"]>>;
    try {
      verdict = options.acceptForeign(msg);
    } catch {
      return false;
    }
    return typeof verdict === "boolean" ? verdict : this.federation.admits(msg, verdict);
  }

  /** The handler of the longest registered prefix of `topic` (whole segments). */
  private handlerFor(topic: string): { handler: FabricMessageHandler; options: HandleOptions } | undefined {
    let t = topic;
    for (;;) {
      const h = this.handlers.get(t);
      if (h !== undefined) return h;
      const dot = t.lastIndexOf(".");
      if (dot <= 0) return undefined;
      t = t.slice(0, dot);
    }
  }

  /**
   * Relays a message for another node: the forwarding rule first (drop on a loop, which also
   * drops a message this node originated that came back, or when the hop budget is spent),
   * then on to the target or its next hop.
   */
  private forward(msg: UnifiedMessage, target: string): void {
    const step = forwardStep(msg, this.nodeId, this.clusterId);
    if (step.action === "drop") {
      if (step.reason === "loop") this.stats.droppedLoop++;
      else this.stats.droppedHops++;
      log.debug(`dropped message ${msg.message_id} for ${target}: ${step.reason} (path ${msg.headers.routing_path.join(">")}) trace=${msg.headers.trace_id}`);
      return;
    }
    if (log.getLevel() <= log.levels.DEBUG) log.debug(`relay ${msg.topic} ${msg.headers.source_node} -> ${target} trace=${msg.headers.trace_id}`);
    try {
      if (this.send(target, step.message)) this.stats.relayed++;
    } catch {
      // too large for a peer frame: counted by send
    }
  }

  // ---------------------------------------------------------------------------------------
  // Gossip driving
  // ---------------------------------------------------------------------------------------

  /**
   * Runs what is due: the gossip state machine's tick, once a second the catalog's refresh and
   * expiry, the coalesced link announcement and the reachability check; then sleeps until the
   * next due time (an idle node wakes a few times per probe interval, not every few ms).
   */
  private onTimer(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.stopped) return;
    // What runs below re-arms through flush/schedule; arm once at the end instead, or a change
    // this pass already handles (reachability, link announcement) wakes the node again 5 ms later.
    this.inTimer = true;
    try {
      this.runDue();
    } finally {
      this.inTimer = false;
    }
    this.schedule();
  }

  private runDue(): void {
    const now = Date.now();
    this.gossip.tick(now);
    if (now >= this.nextMaintenanceAt) {
      for (const delta of this.catalog.refreshLocal(now)) this.publish(delta);
      const expired = this.catalog.expire(now);
      for (const change of expired) this.emitCatalog(change);
      // Reachability follows links and gossip events at once; between them only an expiry (or
      // the federation's routes) can change it.
      if (expired.length > 0 || this.federation !== undefined) {
        this.unreachableCache = undefined;
        this.reachDirty = true;
      }
      this.federation?.tick(now);
      // Without federation the pass has work only when an entry is due for refresh or expiry
      // (with the default 600 s TTL an idle node wakes for it about every 5 minutes, not every second).
      this.nextMaintenanceAt =
        this.federation !== undefined ? now + MAINTENANCE_MS : Math.max(now + MAINTENANCE_MS, Math.min(this.catalog.nextRefreshAt(), this.catalog.nextExpiryAt()));
    }
    if (this.federation?.due) this.federation.pump(now);
    // Link changes are coalesced to one announcement per tick.
    if (this.overlay.announcementDue) this.announceLinks();
    this.flush();
    if (this.reachDirty) this.checkReachability();
  }

  /** Arms the timer for the next due time, unless one at least as early is armed. */
  private schedule(): void {
    if (this.stopped || !this.started || this.inTimer) return;
    const now = Date.now();
    let due = Math.min(this.gossip.nextDueAt(), this.nextMaintenanceAt);
    // Coalesce link announcements and reachability checks into one pass a few ms later.
    if (this.overlay.announcementDue || this.reachDirty) due = Math.min(due, now + 5);
    // Catalog exports and the federation view follow changes within a few ms, coalesced.
    if (this.federation?.due) due = Math.min(due, now + 10);
    if (this.timer !== undefined && due >= this.timerAt) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    // Nothing due at all (a lone node with an empty catalog): sleep until an input arrives.
    if (due === Infinity) return;
    this.timerAt = due;
    this.timer = setTimeout(() => this.onTimer(), Math.min(MAX_TIMER_MS, Math.max(1, due - now)));
    this.timer.unref();
  }

  /** Sends what gossip wants sent and applies what it learned. */
  private flush(): void {
    const out = this.gossip.drain();
    for (const { to, msg } of out.messages) {
      const conn = this.links.get(to);
      if (conn) trySend(conn, encodeFrame({ role: "fabric-gossip", payload: msg }, "msgpack"));
      else {
        this.maybeDial(to);
        this.relayGossip(to, msg);
      }
    }
    for (const e of out.events) this.onGossipEvent(e);
    this.schedule();
  }

  private onGossipEvent(e: GossipEvent): void {
    this.unreachableCache = undefined;
    this.reachDirty = true;
    const now = Date.now();
    switch (e.type) {
      case "item-updated": {
        if (this.overlay.onItem(e.key, e.data)) return;
        if (e.key.startsWith(GATEWAY_KEY_PREFIX)) {
          this.federation?.onGossipItem(e.key, e.data);
          return;
        }
        const delta = itemToDelta({ key: e.key, version: e.version, data: e.data });
        const result = this.catalog.applyDelta(delta, now);
        // The entry (or its tombstone) expires ttl_ms from now at the earliest: the maintenance
        // pass must come by then.
        const ttl = (delta as { ttl_ms?: unknown } | null)?.ttl_ms;
        if (result.status === "applied" && typeof ttl === "number") this.nextMaintenanceAt = Math.min(this.nextMaintenanceAt, now + ttl);
        // A stale entry of our own (from before a restart) is answered with a newer one.
        if (result.correction) this.publish(result.correction);
        if (result.change) this.emitCatalog(result.change);
        return;
      }
      case "member-up":
      case "member-updated": {
        // Its announcement may have arrived before it was a live member (or while it was dead).
        this.overlay.memberUp(e.id, this.gossip.item(LINKS_KEY_PREFIX + e.id));
        const gw = this.federation === undefined ? undefined : this.gossip.item(GATEWAY_KEY_PREFIX + e.id);
        if (gw !== undefined) this.federation?.onGossipItem(gw.key, gw.data);
        this.federation?.memberChanged(e.id);
        this.maybeDial(e.id);
        return;
      }
      case "member-dead":
      case "member-left": {
        log.info(`member ${e.id} is ${e.type === "member-dead" ? "dead" : "gone"}`);
        this.overlay.memberGone(e.id);
        this.federation?.memberChanged(e.id);
        for (const change of this.catalog.removeNode(e.id)) this.emitCatalog(change);
        for (const c of this.links.linksTo(e.id)) c.close(CloseCode.GOING_AWAY, "member gone");
        this.checkReachability(e.type === "member-dead" ? "node declared dead" : "node left");
        return;
      }
      default:
    }
  }

  /**
   * Emits `down` for every node that stopped being reachable since the last check and `up`
   * for every node that became reachable.
   */
  private checkReachability(reason = "no link nor route"): void {
    this.reachDirty = false;
    const unreachable = this.unreachable();
    const now = new Set<string>();
    for (const n of this.catalog.nodes()) if (n.node_id !== this.nodeId && !unreachable.has(n.node_id)) now.add(n.node_id);
    for (const id of this.links.openNodes()) if (!unreachable.has(id)) now.add(id);
    const before = this.reachable;
    this.reachable = now;
    for (const id of before) if (!now.has(id)) this.emitMembership({ type: "down", nodeId: id, reason });
    for (const id of now) if (!before.has(id)) this.emitMembership({ type: "up", nodeId: id });
  }

  private emitMembership(e: MembershipEvent): void {
    for (const l of this.membershipListeners) {
      try {
        l(e);
      } catch (err) {
        log.warn(`membership listener threw: ${(err as Error).message}`);
      }
    }
  }

  /** Tells the catalog listeners; a change of this cluster's catalog (`local`) is exported anew. */
  private emitCatalog(c: CatalogChange, local = true): void {
    if (local) this.federation?.localChanged();
    for (const l of this.catalogListeners) {
      try {
        l(c);
      } catch (err) {
        log.warn(`catalog listener threw: ${(err as Error).message}`);
      }
    }
  }

  /** Dials a member when the overlay wants a link to it (see `LinkOverlay.shouldDial`). */
  private maybeDial(nodeId: string): void {
    if (this.stopped || this.links.has(nodeId) || !this.overlay.shouldDial(nodeId)) return;
    const url = (this.gossip.member(nodeId)?.meta as Partial<MemberMeta> | undefined)?.urls?.[0];
    if (url) this.dialUrl(url, false);
  }

  /** Publishes this node's current link set as `links/<id>` (see LinkOverlay.announcement). */
  private announceLinks(): void {
    const item = this.overlay.announcement(Date.now(), this.gossip.item(LINKS_KEY_PREFIX + this.nodeId)?.version);
    try {
      this.gossip.publish(item);
    } catch (e) {
      // Store full: others keep routing on our previous announcement until it has room.
      log.warn(`cannot announce links: ${(e as Error).message}`);
    }
  }

  /** Sends a gossip message to a member without a link, through the next hop. */
  private relayGossip(to: string, msg: GossipMessage): void {
    if (!this.overlay.route(to)) {
      // No route (yet): a push or an anti-entropy request is as good to a neighbour, which
      // spreads updates (link announcements included) over the links while routes converge.
      const nb = redirectable(msg) ? this.overlay.redirect(Math.random()) : undefined;
      const conn = nb === undefined ? undefined : this.links.get(nb);
      if (conn) trySend(conn, encodeFrame({ role: "fabric-gossip", payload: msg }, "msgpack"));
      return; // otherwise dropped: gossip tolerates loss
    }
    const um = createUnifiedMessage({
      topic: GOSSIP_RELAY_TOPIC,
      message_type: "control",
      payload: msg,
      headers: { source_node: this.nodeId, source_cluster: this.clusterId, target_node: to },
    });
    try {
      if (this.send(to, um)) this.stats.gossipRelayed++;
    } catch {
      // too large for a peer frame: counted by send; gossip tolerates loss
    }
  }

  private invalidateRoutes(): void {
    this.overlay.invalidate();
    this.unreachableCache = undefined;
  }

  private isLive(id: string): boolean {
    const st = this.gossip.member(id)?.status;
    return st !== undefined && st !== "dead" && st !== "left";
  }

  private functionNames(nodeId: string): string[] {
    return [...new Set(this.catalog.queryFunctions({ node_id: nodeId }).map((f) => f.name))].sort();
  }

  private meta(): MemberMeta {
    return { cluster_id: this.clusterId, region: this.opts.region ?? "", urls: this.opts.urls() };
  }

  /** This cluster's entries that other clusters may see (federation exports). */
  private localExports(): CatalogEntry[] {
    const now = Date.now();
    const caches = this.catalog.caches({ now }).filter((e) => e.scope === FEDERATED_CACHE_SCOPE);
    return [...this.catalog.queryFunctions({ now }), ...this.catalog.queues({ now }), ...this.catalog.topics({ now }), ...caches];
  }

  /** Publishes this node's gateway announcement (`fed/<node id>`) to its cluster. */
  private publishGateway(ann: GatewayAnnouncement): void {
    const key = GATEWAY_KEY_PREFIX + this.nodeId;
    const version = Math.max((this.gossip.item(key)?.version ?? 0) + 1, Date.now());
    try {
      this.gossip.publish({ key, version, data: ann });
    } catch (e) {
      log.warn(`cannot announce federation routes: ${(e as Error).message}`);
    }
    this.schedule();
  }

  private publish(delta: CatalogDelta | null): void {
    if (delta) {
      this.gossip.publish(deltaToItem(delta));
      this.schedule();
    }
  }
}

/** Decodes a frame of a peer link; undefined (logged) for one that does not decode. */
function decodePeerFrame(data: FrameData, isBinary: boolean): Frame | undefined {
  const decoded = decodeFrame(data, isBinary ? "msgpack" : "json");
  if (!decoded.ok) {
    log.debug(`undecodable frame on a peer link: ${decoded.error.message}`);
    return undefined;
  }
  return decoded.frame;
}

function trySend(conn: Connection, data: Uint8Array | string): boolean {
  if (!conn.open) return false;
  try {
    conn.send(data);
    return true;
  } catch {
    return false;
  }
}
