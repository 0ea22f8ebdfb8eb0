import { Catalog, deltaToItem, entryKey, itemToDelta, type CatalogDelta } from "@mpreg/catalog";
import {
  ErrorCode,
  MpregError,
  createLogger,
  createUnifiedMessage,
  decodeFrame,
  encodeFrame,
  forwardStep,
  type Frame,
  type PeerHello,
  type PeerWelcome,
  type UnifiedMessage,
} from "@mpreg/envelope";
import { GossipNode, redirectable, type GossipConfig, type GossipEvent, type GossipMessage } from "@mpreg/gossip";
import { LINKS_KEY_PREFIX, LinkOverlay } from "@mpreg/router";
import {
  Executor,
  RemoteCallHandler,
  RemoteDispatcher,
  createCatalogLocator,
  type FunctionRegistry,
  type Locator,
  type RegisteredFunction,
} from "@mpreg/rpc";
import { CloseCode, DEFAULT_MAX_FRAME_BYTES, backoffDelay, connectWs, type ClientConnection, type Connection } from "@mpreg/transport";
import { PEER_PROTOCOL_VERSION, helloMac, macOk, newNonce, welcomeMac } from "./peer-auth.js";

const log = createLogger("cluster");

/** Topic of a gossip message relayed inside a `fabric-message` to a member without a link. */
export const GOSSIP_RELAY_TOPIC = "mpreg.gossip.relay";

/** Counters of the relay (multi-hop forwarding) path. */
export interface RelayStats {
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
}

/** What gossip carries about a member besides its id. */
interface MemberMeta {
  cluster_id: string;
  region: string;
  urls: string[];
}

export interface ClusterOptions<Ctx> {
  nodeId: string;
  clusterId: string;
  region: string;
  resources: readonly string[];
  /** HMAC key of the peer handshake; absent means peers are not authenticated. */
  secret?: string | undefined;
  /** Seed URLs dialed at start and re-dialed (with backoff) whenever their link drops. */
  seeds: readonly string[];
  /** Most peer links; beyond it no new member is dialed (gossip reaches it through others). */
  maxLinks: number;
  gossip?: Partial<GossipConfig>;
  registry: FunctionRegistry<Ctx>;
  /** This node's own URLs (known once it listens). */
  urls: () => string[];
  /** In-flight requests on this node (its load, as seen by its own locator). */
  localLoad: () => number;
  /** Request timeout when a request names none. */
  defaultTimeoutMs: number;
  /**
   * Largest frame sent on a peer link (peers are expected to share this node's limit: a larger
   * frame would make the receiver close the link with 1009). Default the listener's default,
   * `DEFAULT_MAX_FRAME_BYTES` (20 MiB).
   */
  maxFrameBytes?: number;
}

/**
 * The cluster layer of a node: peer links (handshake, dialing, reconnect), the gossip state
 * machine driven by a timer, the routing catalog fed by gossip, and remote execution. It only
 * wires packages together: membership decisions are @mpreg/gossip's, routing decisions are
 * @mpreg/rpc's locator and @mpreg/router's selection.
 */
export class Cluster<Ctx> {
  readonly catalog: Catalog;
  readonly gossip: GossipNode;
  readonly dispatcher: RemoteDispatcher;
  readonly callHandler: RemoteCallHandler<Ctx>;
  readonly locator: Locator<Ctx>;
  /** Runs requests: locally, or on other nodes through the dispatcher. */
  readonly executor: Executor<Ctx>;
  /** node id → open links to it (two when both sides dialed; any one is used). */
  private readonly links = new Map<string, Set<Connection>>();
  /** url → outbound link being kept up. */
  private readonly dialers = new Map<string, { conn: ClientConnection | undefined; stop: boolean; seed: boolean }>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private lastMaintenance = 0;
  private stopped = false;
  private readonly unsubscribe: () => void;
  private readonly messageHandlers: ((msg: UnifiedMessage) => boolean)[] = [];
  /** See `unreachable()`; cleared whenever what it is derived from changes. */
  private unreachableCache: Set<string> | undefined;
  /** Link announcements and the next-hop routes derived from them (see @mpreg/router link-state). */
  readonly overlay: LinkOverlay;
  /** Relay counters (read by tests and monitoring). */
  readonly relayStats: RelayStats = { relayed: 0, gossipRelayed: 0, droppedLoop: 0, droppedHops: 0, droppedNoRoute: 0, droppedTooLarge: 0 };

  constructor(private readonly opts: ClusterOptions<Ctx>) {
    const now = Date.now();
    this.catalog = new Catalog({ nodeId: opts.nodeId, clusterId: opts.clusterId });
    this.overlay = new LinkOverlay({
      selfId: opts.nodeId,
      ownLinks: () => [...this.links.keys()].filter((id) => this.linkTo(id)),
      isLive: (id) => {
        const st = this.gossip.member(id)?.status;
        return st !== undefined && st !== "dead" && st !== "left";
      },
      maxLinks: opts.maxLinks,
    });
    this.gossip = new GossipNode({
      id: opts.nodeId,
      meta: this.meta(),
      config: opts.gossip ?? {},
      random: { next: Math.random },
      now,
      // Sizes as encoded on the wire, so messages respect the gossip byte budget.
      itemSize: (item) => encodeFrame(item as object, "msgpack").length,
    });
    const send = (nodeId: string, msg: UnifiedMessage) => this.sendFabric(nodeId, msg);
    this.dispatcher = new RemoteDispatcher({ nodeId: opts.nodeId, clusterId: opts.clusterId, send });
    this.locator = createCatalogLocator({
      catalog: this.catalog,
      registry: opts.registry,
      selfNodeId: opts.nodeId,
      selfClusterId: opts.clusterId,
      load: (id) => (id === opts.nodeId ? opts.localLoad() : this.dispatcher.pendingTo(id)),
      random: Math.random,
      now: () => Date.now(),
      exclude: () => this.unreachable(),
    });
    this.executor = new Executor<Ctx>({
      registry: opts.registry,
      locate: this.locator,
      dispatcher: this.dispatcher,
      nodeId: opts.nodeId,
      clusterId: opts.clusterId,
      defaultTimeoutMs: opts.defaultTimeoutMs,
    });
    this.callHandler = new RemoteCallHandler({ executor: this.executor, nodeId: opts.nodeId, clusterId: opts.clusterId, send });
    for (const fn of opts.registry.list()) this.announceFunction(fn);
    this.unsubscribe = opts.registry.onChange((e) => {
      if (e.type === "registered") this.announceFunction(e.fn);
      else this.publish(this.catalog.unregisterLocal(entryKey(this.functionEntry(e.fn)), Date.now()));
    });
  }

  /** Announces this node, dials the seeds and starts the gossip timer. */
  start(): void {
    this.gossip.updateMeta(this.meta(), Date.now());
    this.announceNode();
    this.announceLinks();
    for (const url of this.opts.seeds) this.dial(url, true);
    const period = Math.max(10, Math.min(50, Math.floor((this.gossip.config.probeIntervalMs ?? 1000) / 10)));
    this.timer = setInterval(() => this.onTimer(), period);
    this.timer.unref();
  }

  /** Says GOODBYE, closes every link and stops the timer. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.unsubscribe();
    this.gossip.leave(Date.now());
    this.flush();
    const goodbye = encodeFrame({ role: "peer-goodbye", reason: "shutdown" }, "msgpack");
    for (const set of this.links.values()) for (const c of set) trySend(c, goodbye);
    this.callHandler.close();
    this.dispatcher.close("node is shutting down");
    for (const d of this.dialers.values()) {
      d.stop = true;
      d.conn?.close(CloseCode.GOING_AWAY, "shutdown");
    }
    for (const set of this.links.values()) for (const c of set) c.close(CloseCode.GOING_AWAY, "shutdown");
    this.links.clear();
  }

  /** Other nodes as `list_peers` shows them. */
  peers(clusterId?: string): unknown[] {
    const nodes = new Map(this.catalog.nodes().map((n) => [n.node_id, n]));
    const out: unknown[] = [];
    for (const m of this.gossip.membersView()) {
      if (m.id === this.opts.nodeId || m.status === "left") continue;
      const meta = m.meta as Partial<MemberMeta> | undefined;
      const n = nodes.get(m.id);
      const cid = n?.cluster_id ?? meta?.cluster_id ?? "";
      if (clusterId !== undefined && cid !== clusterId) continue;
      out.push({
        node_id: m.id,
        cluster_id: cid,
        region: n?.region ?? meta?.region ?? "",
        urls: [...(n?.urls ?? meta?.urls ?? [])],
        functions: this.functionNames(m.id),
        resources: [...(n?.resources ?? [])],
        status: m.status,
        last_seen: m.since,
        // How messages reach it: the direct neighbour they go through (itself when linked).
        next_hop: this.overlay.route(m.id)?.next ?? null,
        hops: this.overlay.route(m.id)?.hops ?? null,
      });
    }
    return out;
  }

  /** Every live node, this one included, as `cluster_map` shows them. */
  nodes(self: Record<string, unknown>): unknown[] {
    const status = new Map(this.gossip.membersView().map((m) => [m.id, m.status]));
    const out: Record<string, unknown>[] = [self];
    for (const n of this.catalog.nodes({ now: Date.now() })) {
      if (n.node_id === this.opts.nodeId) continue;
      const s = status.get(n.node_id);
      if (s === "dead" || s === "left") continue;
      out.push({
        node_id: n.node_id,
        cluster_id: n.cluster_id,
        region: n.region,
        urls: [...n.urls],
        resources: [...n.resources],
        functions: this.functionNames(n.node_id),
        load: this.dispatcher.pendingTo(n.node_id),
        status: s ?? "alive",
      });
    }
    return out.sort((a, b) => String(a.node_id).localeCompare(String(b.node_id)));
  }

  /** Number of nodes this node has a link to. */
  get linkCount(): number {
    return this.links.size;
  }

  /**
   * An inbound connection opened with `peer-hello`: checks it, answers `peer-welcome` and
   * makes the connection a peer link. Returns false (and closes it) when refused.
   */
  acceptHello(conn: Connection, hello: PeerHello): boolean {
    const { secret } = this.opts;
    if (hello.protocol_version !== PEER_PROTOCOL_VERSION) {
      conn.close(CloseCode.PEER_UNAUTHORIZED, `unsupported protocol_version ${hello.protocol_version}`);
      return false;
    }
    if (!macOk(secret, hello.mac, () => helloMac(secret!, hello))) {
      log.warn(`refused peer ${hello.node_id}: wrong or missing mac`);
      conn.close(CloseCode.PEER_UNAUTHORIZED, "peer authentication failed");
      return false;
    }
    if (hello.cluster_id !== this.opts.clusterId || hello.node_id === this.opts.nodeId) {
      conn.close(CloseCode.PEER_UNAUTHORIZED, hello.node_id === this.opts.nodeId ? "same node id" : `cluster ${hello.cluster_id} is not ${this.opts.clusterId}`);
      return false;
    }
    const fields = { node_id: this.opts.nodeId, cluster_id: this.opts.clusterId, region: this.opts.region, urls: this.opts.urls(), protocol_version: PEER_PROTOCOL_VERSION, nonce: newNonce() };
    const welcome: PeerWelcome = { role: "peer-welcome", ...fields, ...(secret === undefined ? {} : { mac: welcomeMac(secret, fields, hello.nonce) }) };
    trySend(conn, encodeFrame(welcome, "msgpack"));
    this.addLink(hello.node_id, conn);
    return true;
  }

  /** A frame on an established peer link. */
  onPeerFrame(nodeId: string, frame: Frame): void {
    switch (frame.role) {
      case "fabric-gossip":
        try {
          this.gossip.handleMessage(nodeId, frame.payload, Date.now());
        } catch (e) {
          // A malformed gossip message is refused by the state machine; the link stays.
          log.warn(`bad gossip message from ${nodeId}: ${(e as Error).message}`);
        }
        this.flush();
        return;
      case "fabric-message":
        this.onFabricMessage(frame.payload);
        return;
      case "peer-goodbye":
        log.info(`peer ${nodeId} says goodbye`);
        return;
      default:
        log.debug(`ignored ${frame.role} on peer link from ${nodeId}`);
    }
  }

  /** The link to `nodeId` closed. */
  linkClosed(nodeId: string, conn: Connection): void {
    this.invalidateRoutes();
    const set = this.links.get(nodeId);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) {
      this.links.delete(nodeId);
      this.overlay.linksChanged();
      // Calls in flight over the link cannot be answered any more (not retried: they may have run).
      this.dispatcher.nodeGone(nodeId, "link closed");
    }
  }

  private onFabricMessage(msg: UnifiedMessage): void {
    const target = msg.headers.target_node;
    if (target !== undefined && target !== this.opts.nodeId) {
      this.forward(msg, target);
      return;
    }
    if (msg.message_type === "control" && msg.topic === GOSSIP_RELAY_TOPIC) {
      try {
        this.gossip.handleMessage(msg.headers.source_node, msg.payload, Date.now());
      } catch (e) {
        log.warn(`bad relayed gossip message from ${msg.headers.source_node}: ${(e as Error).message}`);
      }
      this.flush();
      return;
    }
    if (msg.message_type === "rpc") {
      if (this.dispatcher.handleResult(msg)) return;
      if (this.callHandler.handle(msg)) return;
    }
    for (const h of this.messageHandlers) if (h(msg)) return;
    log.debug(`unhandled fabric message ${msg.topic}`);
  }

  /** Adds a consumer of fabric messages (e.g. a Raft group); it returns true for its own. */
  addMessageHandler(handler: (msg: UnifiedMessage) => boolean): void {
    this.messageHandlers.push(handler);
  }

  /**
   * Relays a message for another node: the forwarding rule first (drop on a loop, which also
   * drops a message this node originated that came back, or when the hop budget is spent),
   * then on to the target or its next hop.
   */
  private forward(msg: UnifiedMessage, target: string): void {
    const step = forwardStep(msg, this.opts.nodeId, this.opts.clusterId);
    if (step.action === "drop") {
      if (step.reason === "loop") this.relayStats.droppedLoop++;
      else this.relayStats.droppedHops++;
      log.debug(`dropped message ${msg.message_id} for ${target}: ${step.reason} (path ${msg.headers.routing_path.join(">")})`);
      return;
    }
    let sent = false;
    try {
      sent = this.sendFabric(target, step.message);
    } catch {
      return; // too large for a peer frame: counted and logged by sendFabric
    }
    if (sent) this.relayStats.relayed++;
    else log.debug(`dropped message ${msg.message_id} for ${target}: no route`);
  }

  /**
   * Sends a UnifiedMessage to a node: over a direct link when there is one, else to the next
   * hop of the route to it (the message must then name it in `headers.target_node`, which is
   * set if missing). False when neither exists, or when the next hop already relayed it.
   * Throws MpregError 1002 `message_too_large` for a message whose frame would pass the peer
   * frame limit (a call result is answered with that error instead).
   */
  sendFabric(nodeId: string, msg: UnifiedMessage): boolean {
    let conn = this.linkTo(nodeId);
    if (!conn) {
      const route = this.overlay.route(nodeId);
      conn = route && !msg.headers.routing_path.includes(route.next) ? this.linkTo(route.next) : undefined;
      if (!conn) {
        this.relayStats.droppedNoRoute++;
        return false;
      }
      if (msg.headers.target_node !== nodeId) msg = { ...msg, headers: { ...msg.headers, target_node: nodeId } };
    }
    let data: Uint8Array;
    try {
      data = encodeFrame({ role: "fabric-message", payload: msg }, "msgpack") as Uint8Array;
    } catch (e) {
      // A result that cannot be encoded is answered as a failure instead of vanishing.
      if (!isResult(msg)) return false;
      data = errorResultFrame(msg, MpregError.invalid(`result cannot be encoded: ${(e as Error).message}`));
    }
    const limit = this.opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (data.length > limit) {
      // The peer would close the link (1009), failing everything else on it: refuse this one.
      this.relayStats.droppedTooLarge++;
      const err = new MpregError(ErrorCode.INVALID_REQUEST, `message of ${data.length} bytes exceeds the peer frame limit (${limit} bytes)`, {
        reason: "message_too_large",
        bytes: data.length,
        limit,
      });
      log.warn(`refused ${msg.topic} for ${nodeId}: ${err.message}`);
      if (!isResult(msg)) throw err;
      data = errorResultFrame(msg, err);
    }
    return trySend(conn, data);
  }

  private linkTo(nodeId: string): Connection | undefined {
    const set = this.links.get(nodeId);
    if (!set) return undefined;
    for (const c of set) if (c.open) return c;
    return undefined;
  }

  private addLink(nodeId: string, conn: Connection): void {
    this.invalidateRoutes();
    let set = this.links.get(nodeId);
    if (!set) {
      this.links.set(nodeId, (set = new Set()));
      this.overlay.linksChanged();
    }
    set.add(conn);
    this.gossip.linkOpened(nodeId, Date.now());
    this.flush();
  }

  /** Keeps an outbound link to `url` up: dial, handshake, re-handshake after each reconnect. */
  private dial(url: string, seed: boolean): void {
    if (this.dialers.has(url) || this.stopped || this.opts.urls().includes(url)) return;
    const d: { conn: ClientConnection | undefined; stop: boolean; seed: boolean } = { conn: undefined, stop: false, seed };
    this.dialers.set(url, d);
    const attempt = async (n: number): Promise<void> => {
      if (d.stop) return;
      try {
        const conn = await connectWs(url, { reconnect: { initialDelayMs: 200, maxDelayMs: 5000 } });
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

  private handshake(url: string, conn: ClientConnection, d: { stop: boolean; seed: boolean }): void {
    let peerId: string | undefined;
    let nonce = "";
    const sendHello = () => {
      nonce = newNonce();
      const fields = { node_id: this.opts.nodeId, cluster_id: this.opts.clusterId, region: this.opts.region, urls: this.opts.urls(), protocol_version: PEER_PROTOCOL_VERSION, nonce };
      const hello: PeerHello = { role: "peer-hello", ...fields, ...(this.opts.secret === undefined ? {} : { mac: helloMac(this.opts.secret, fields) }) };
      trySend(conn, encodeFrame(hello, "msgpack"));
    };
    conn.onMessage((data, isBinary) => {
      const decoded = decodeFrame(data, isBinary ? "msgpack" : "json");
      if (!decoded.ok) return;
      const frame = decoded.frame;
      if (frame.role === "peer-welcome") {
        const secret = this.opts.secret;
        if (!macOk(secret, frame.mac, () => welcomeMac(secret!, frame, nonce)) || frame.cluster_id !== this.opts.clusterId) {
          log.warn(`refused welcome from ${url}: authentication failed or other cluster`);
          d.stop = true;
          this.dialers.delete(url);
          conn.close(CloseCode.PEER_UNAUTHORIZED, "peer authentication failed");
          return;
        }
        peerId = frame.node_id;
        this.addLink(peerId, conn);
        return;
      }
      if (peerId !== undefined) this.onPeerFrame(peerId, frame);
    });
    conn.onOpen(() => sendHello());
    conn.onClose((code, _reason, willReconnect) => {
      if (peerId !== undefined) this.linkClosed(peerId, conn);
      peerId = undefined;
      if (code === CloseCode.PEER_UNAUTHORIZED) {
        log.warn(`peer at ${url} refused our handshake (${_reason || "authentication failed"}); not retrying`);
        d.stop = true;
        conn.close();
      }
      if (!willReconnect) this.dialers.delete(url);
    });
    sendHello();
  }

  private onTimer(): void {
    const now = Date.now();
    this.gossip.tick(now);
    if (now - this.lastMaintenance >= 1000) {
      this.lastMaintenance = now;
      for (const delta of this.catalog.refreshLocal(now)) this.publish(delta);
      this.catalog.expire(now);
      this.unreachableCache = undefined;
    }
    // Link changes are coalesced to one announcement per tick.
    if (this.overlay.announcementDue) this.announceLinks();
    this.flush();
  }

  /** Sends what gossip wants sent and applies what it learned. */
  private flush(): void {
    const out = this.gossip.drain();
    for (const { to, msg } of out.messages) {
      const conn = this.linkTo(to);
      if (conn) trySend(conn, encodeFrame({ role: "fabric-gossip", payload: msg }, "msgpack"));
      else {
        this.maybeDial(to);
        this.relayGossip(to, msg);
      }
    }
    for (const e of out.events) this.onGossipEvent(e);
  }

  private onGossipEvent(e: GossipEvent): void {
    this.unreachableCache = undefined;
    const now = Date.now();
    switch (e.type) {
      case "item-updated": {
        if (this.overlay.onItem(e.key, e.data)) return;
        const result = this.catalog.applyDelta(itemToDelta({ key: e.key, version: e.version, data: e.data }), now);
        // A stale entry of our own (from before a restart) is answered with a newer one.
        if (result.correction) this.publish(result.correction);
        return;
      }
      case "member-up":
      case "member-updated": {
        // Its announcement may have arrived before it was a live member (or while it was dead).
        this.overlay.memberUp(e.id, this.gossip.item(linksKey(e.id)));
        this.maybeDial(e.id);
        return;
      }
      case "member-dead":
      case "member-left": {
        log.info(`member ${e.id} is ${e.type === "member-dead" ? "dead" : "gone"}`);
        this.overlay.memberGone(e.id);
        this.catalog.removeNode(e.id);
        this.dispatcher.nodeGone(e.id, e.type === "member-dead" ? "node declared dead" : "node left");
        for (const c of this.links.get(e.id) ?? []) c.close(CloseCode.GOING_AWAY, "member gone");
        return;
      }
      default:
    }
  }

  /** Dials a member when the overlay wants a link to it (see `LinkOverlay.shouldDial`). */
  private maybeDial(nodeId: string): void {
    if (this.stopped || this.links.has(nodeId) || !this.overlay.shouldDial(nodeId)) return;
    const url = (this.gossip.member(nodeId)?.meta as Partial<MemberMeta> | undefined)?.urls?.[0];
    if (url) this.dial(url, false);
  }

  /** Publishes this node's current link set as `links/<id>` (see LinkOverlay.announcement). */
  private announceLinks(): void {
    const item = this.overlay.announcement(Date.now(), this.gossip.item(linksKey(this.opts.nodeId))?.version);
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
      const conn = nb === undefined ? undefined : this.linkTo(nb);
      if (conn) trySend(conn, encodeFrame({ role: "fabric-gossip", payload: msg }, "msgpack"));
      return; // otherwise dropped: gossip tolerates loss
    }
    const um = createUnifiedMessage({
      topic: GOSSIP_RELAY_TOPIC,
      message_type: "control",
      payload: msg,
      headers: { source_node: this.opts.nodeId, source_cluster: this.opts.clusterId, target_node: to },
    });
    try {
      if (this.sendFabric(to, um)) this.relayStats.gossipRelayed++;
    } catch {
      // too large for a peer frame: counted and logged by sendFabric; gossip tolerates loss
    }
  }

  private invalidateRoutes(): void {
    this.overlay.invalidate();
    this.unreachableCache = undefined;
  }

  /**
   * Nodes a command cannot be sent to now: declared dead or gone, or with neither an open link
   * nor a route over other nodes' links.
   */
  private unreachable(): ReadonlySet<string> {
    // Asked for every remote-capable command: computed once per change of links, members or
    // catalog, not per call.
    if (this.unreachableCache !== undefined) return this.unreachableCache;
    const out = new Set<string>();
    this.unreachableCache = out;
    for (const m of this.gossip.membersView()) if (m.status === "dead" || m.status === "left") out.add(m.id);
    const routes = this.overlay.routes();
    for (const n of this.catalog.nodes()) {
      if (n.node_id !== this.opts.nodeId && !this.linkTo(n.node_id) && !routes.has(n.node_id)) out.add(n.node_id);
    }
    return out;
  }

  private functionNames(nodeId: string): string[] {
    return [...new Set(this.catalog.queryFunctions({ node_id: nodeId }).map((f) => f.name))].sort();
  }

  private meta(): MemberMeta {
    return { cluster_id: this.opts.clusterId, region: this.opts.region, urls: this.opts.urls() };
  }

  private functionEntry(fn: RegisteredFunction<Ctx>) {
    return {
      kind: "function" as const,
      name: fn.name,
      function_id: fn.function_id,
      version: fn.version,
      resources: [...fn.resources],
      node_id: this.opts.nodeId,
      cluster_id: this.opts.clusterId,
      ...(fn.description ? { description: fn.description } : {}),
    };
  }

  private announceFunction(fn: RegisteredFunction<Ctx>): void {
    this.publish(this.catalog.registerLocal(this.functionEntry(fn), Date.now()));
  }

  private announceNode(): void {
    this.publish(
      this.catalog.registerLocal(
        {
          kind: "node",
          region: this.opts.region,
          urls: this.opts.urls(),
          resources: [...this.opts.resources],
          load: 0,
          status: "ok",
          functions: this.opts.registry.list().length,
        },
        Date.now(),
      ),
    );
  }

  private publish(delta: CatalogDelta | null): void {
    if (delta) this.gossip.publish(deltaToItem(delta));
  }
}

function linksKey(nodeId: string): string {
  return LINKS_KEY_PREFIX + nodeId;
}

function isResult(msg: UnifiedMessage): boolean {
  return (msg.payload as { kind?: string } | null)?.kind === "result";
}

/** `msg` (a call result) with its payload replaced by the failure `err`, encoded. */
function errorResultFrame(msg: UnifiedMessage, err: MpregError): Uint8Array {
  const payload = { kind: "result", ok: false, error: err.toWire() };
  return encodeFrame({ role: "fabric-message", payload: { ...msg, payload } }, "msgpack") as Uint8Array;
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
