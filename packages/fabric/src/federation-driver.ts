/**
 * The federation driver: the caller's duties of docs/federation.md ("What the caller must do")
 * on top of the fabric's peer links, and the cross-cluster forwarding decision. The fabric
 * owns sockets and frames; this class owns which clusters may link, the one routing session
 * per neighbour cluster, the control messages (route updates, key and adjacency
 * announcements, catalog exports), the gateway announcement of this node inside its cluster,
 * the foreign entries its services may use, and where a message for another cluster goes next.
 *
 * Control messages are `fabric-message`s (`message_type: "control"`) sent over one direct
 * federation link, never relayed as such:
 *   `mpreg.fabric.route.update`    a RouteUpdate (to every linked node of the neighbour cluster)
 *   `mpreg.fabric.route.key`       a KeyAnnouncement (flooded; trust comes from the signature chain)
 *   `mpreg.fabric.route.adjacency` an AdjacencyAnnouncement (link-state mode)
 *   `mpreg.fabric.route.catalog`   `{v: 1, cluster_id, entries}`: the entries of cluster
 *                                  `cluster_id` the sender offers on its route there (empty: none)
 *   `mpreg.fabric.route.resync`    `{v: 1}`: "send me everything again" (the session moved to you)
 */
import type { CatalogChange, CatalogEntry } from "@mpreg/catalog";
import { MpregError, createLogger, createUnifiedMessage, type UnifiedMessage } from "@mpreg/envelope";
import {
  OFFER_ALL,
  RoutePolicySet,
  applyRule,
  catalogEntryAllowed,
  compareRoutes,
  createFederation,
  isClusterId,
  nextClusterHop,
  RouteSigner,
  importPublicKey,
  signKeyAnnouncement,
  routeKeyId,
  pathTouches,
  serviceAllows,
  serviceFilter,
  serviceFilterToOffers,
  type ClusterRoute,
  type ClusterRouteSource,
  type Federation,
  type FederationConfig,
  type FederationDropReason,
  type KeyAnnouncement,
  type RouteTableOutput,
  type ServiceFilter,
  type ServiceKind,
} from "@mpreg/router";
import { ForeignCatalog } from "./foreign-catalog.js";
import {
  EMPTY_GATEWAY,
  GATEWAY_KEY_PREFIX,
  isExportedEntry,
  validateClusterEntries,
  validateGatewayAnnouncement,
  type ClusterCatalog,
  type GatewayAnnouncement,
  type GatewayLimits,
  type GatewayRoute,
} from "./gateway-announcement.js";

const log = createLogger("federation");

/** Topic prefix of every federation control message. */
export const FEDERATION_CONTROL_PREFIX = "mpreg.fabric.route";
export const ROUTE_UPDATE_TOPIC = "mpreg.fabric.route.update";
export const ROUTE_KEY_TOPIC = "mpreg.fabric.route.key";
export const ROUTE_ADJACENCY_TOPIC = "mpreg.fabric.route.adjacency";
export const ROUTE_CATALOG_TOPIC = "mpreg.fabric.route.catalog";
export const ROUTE_RESYNC_TOPIC = "mpreg.fabric.route.resync";

/**
 * Who may open a peer link from another cluster: `strict` (the default of a node) refuses every
 * other cluster and runs no driver; `explicit` accepts the clusters named in `federation.links`;
 * `permissive` accepts any cluster.
 */
export type FederationMode = "strict" | "explicit" | "permissive";

/** The service a message is for, checked against the route's offers at the originator. */
export interface ServiceTag {
  kind: ServiceKind;
  name: string;
}

/** Options of a {@link FederationDriver}. */
export interface FederationOptions {
  /** `explicit` or `permissive` (a `strict` node has no driver). */
  mode: Exclude<FederationMode, "strict">;
  /** The `federation` section, validated with `validateFederationConfig`. */
  config: FederationConfig;
  /**
   * In `explicit` mode, clusters whose nodes may also link to this node (besides the clusters of
   * `config.links`), e.g. neighbours that dial this node and are not dialed by it.
   */
  allow?: readonly string[];
  /** Incarnation of this node's routing state; must grow across restarts. Default `Date.now()`. */
  epoch?: number;
  /** Most entries of one other cluster accepted (export or gateway announcement). Default 10 000. */
  maxEntriesPerCluster?: number;
  /** Most foreign entries held for the services. Default 100 000. */
  maxForeignEntries?: number;
  /** Most foreign nodes remembered as the source of a message (to answer them). Default 10 000. */
  maxLearnedNodes?: number;
}

/** What {@link FederationDriver.reconfigure} did: field paths applied, and changed but left as they were. */
export interface FederationReloadReport {
  applied: string[];
  notApplied: string[];
}

/** What the driver needs from the fabric. */
export interface FederationHost {
  readonly nodeId: string;
  readonly clusterId: string;
  /** Sends a message over this node's federation link to `nodeId`; false when there is none. */
  sendOnLink(nodeId: string, msg: UnifiedMessage): boolean;
  /** This cluster's catalog entries (the node's cluster catalog). */
  localEntries(): CatalogEntry[];
  /** Publishes this node's gateway announcement to its cluster (gossip item `fed/<node id>`). */
  publishGateway(announcement: GatewayAnnouncement): void;
  /** Whether a node of this cluster is a live member. */
  isLive(nodeId: string): boolean;
  /** Whether a node of this cluster can be sent to now (a link, or a route over links). */
  canReach(nodeId: string): boolean;
  /** A foreign entry appeared, changed or went: the services' catalog listeners hear it. */
  emitCatalog(change: CatalogChange): void;
}

/** Where a message for another cluster goes next. */
export type FederationDecision =
  /** Its target cluster is this one (or none): the fabric delivers or forwards inside the cluster. */
  | { action: "deliver"; message: UnifiedMessage }
  /** Over this node's federation link to `nodeId` (a node of the next cluster). */
  | { action: "link"; nodeId: string; nextCluster: string; message: UnifiedMessage }
  /** To `nodeId`, a gateway of this cluster with a better route. */
  | { action: "gateway"; nodeId: string; message: UnifiedMessage }
  | { action: "drop"; reason: FederationDropReason };

/** Counters of the driver (in `/metrics` and `federation_status`). */
export interface FederationStats {
  controlReceived: number;
  /** Control messages refused: malformed, from a link that is not its cluster's session, unknown topic. */
  controlRefused: number;
  catalogsReceived: number;
  routeUpdatesSent: number;
  catalogsSent: number;
  keysRelayed: number;
  gatewayAnnouncements: number;
  /** Messages sent on towards another cluster (originated or relayed). */
  forwarded: number;
  dropped: Record<FederationDropReason, number>;
}

/** A route to another cluster and who holds it: this node, or a gateway of this cluster. */
interface Candidate {
  route: ClusterRoute;
  via: string;
}

/** The whole state of one neighbour cluster. */
interface Neighbour {
  /** Nodes of it this node has a link to. */
  nodes: Set<string>;
  /** The node whose control messages this node accepts (the smallest linked id). */
  session: string;
  /** Exported catalogs received from the session node, by cluster. */
  catalogs: Map<string, CatalogEntry[]>;
  /** What this node's last updates offered it per destination (path-vector). */
  exported: Map<string, ServiceFilter>;
  /** Canonical text of the last catalog sent per destination. */
  sent: Map<string, string>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function byKey(a: CatalogEntry, b: CatalogEntry): number {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Runs federation for one node (see the file comment). Everything happens in calls from the
 * fabric: link events, control messages, gossip items, `tick` (about once a second) and
 * `pump` (after anything changed; it sends what the route table wants sent). Time is passed in.
 */
export class FederationDriver {
  readonly mode: Exclude<FederationMode, "strict">;
  readonly federation: Federation;
  /** Other clusters' entries this node's services may use. */
  readonly foreign: ForeignCatalog;
  readonly stats: FederationStats = {
    controlReceived: 0,
    controlRefused: 0,
    catalogsReceived: 0,
    routeUpdatesSent: 0,
    catalogsSent: 0,
    keysRelayed: 0,
    gatewayAnnouncements: 0,
    forwarded: 0,
    dropped: { no_route: 0, loop: 0, hop_budget_exhausted: 0, denied: 0 },
  };
  private readonly configured = new Map<string, number>();
  private readonly neighbours = new Map<string, Neighbour>();
  private readonly nodeCluster = new Map<string, string>();
  private readonly gateways = new Map<string, GatewayAnnouncement>();
  /** Foreign nodes that sent something here, by id: their cluster (oldest forgotten first). */
  private readonly learned = new Map<string, string>();
  /** Latest accepted key announcement per cluster (sent to each new neighbour). */
  private readonly keyAnnouncements = new Map<string, KeyAnnouncement>();
  private readonly limits: GatewayLimits;
  /** The policies and own offers, to check what arrives from another cluster (path-vector). */
  private policies: RoutePolicySet | undefined;
  private offers: ServiceFilter;
  /** The configuration in force (replaced, for its reloadable part, by `reconfigure`). */
  private config: FederationConfig;
  private readonly maxLearned: number;
  private candidates = new Map<string, Candidate[]>();
  private viaOf = new Map<ClusterRoute, string>();
  /** Per destination, the other gateway whose route this node's table may re-advertise. */
  private clusterRouteVia = new Map<string, string>();
  private viewDirty = true;
  private catalogDirty = true;
  private lastGateway = JSON.stringify(EMPTY_GATEWAY);

  constructor(
    private readonly host: FederationHost,
    opts: FederationOptions,
  ) {
    this.mode = opts.mode;
    this.federation = createFederation(opts.config, { localCluster: host.clusterId, epoch: opts.epoch ?? Date.now() });
    for (const c of opts.allow ?? []) this.configured.set(c, 1);
    for (const l of this.federation.links) this.configured.set(l.clusterId, l.cost ?? 1);
    const maxEntries = opts.maxEntriesPerCluster ?? 10_000;
    this.limits = {
      maxRoutes: opts.config.maxDestinations ?? 4096,
      maxClusters: opts.config.maxDestinations ?? 4096,
      maxEntries,
      maxPathLength: opts.config.maxPathLength ?? 32,
    };
    this.maxLearned = opts.maxLearnedNodes ?? 10_000;
    const c = opts.config;
    this.config = c;
    this.policies = this.federation.mode === "path-vector" ? RoutePolicySet.compile({ ...(c.import === undefined ? {} : { import: c.import }), ...(c.export === undefined ? {} : { export: c.export }) }, "federation") : undefined;
    this.offers = serviceFilter(c.offers, "federation.offers");
    this.foreign = new ForeignCatalog(host.nodeId, host.clusterId, opts.maxForeignEntries ?? 100_000);
  }

  // ---------------------------------------------------------------- links

  /**
   * Whether a peer link to a node of `clusterId` may be established: another cluster, allowed
   * by the mode (`explicit`: named in `federation.links`), and the one a dialed link expected.
   */
  acceptsLink(clusterId: string, expected?: string): boolean {
    if (!isClusterId(clusterId) || clusterId === this.host.clusterId) return false;
    if (expected !== undefined && expected !== clusterId) return false;
    return this.mode === "permissive" || this.configured.has(clusterId);
  }

  /** The configured links to dial (`federation.links`). */
  get links(): readonly { url: string; clusterId: string }[] {
    return this.federation.links;
  }

  /** The cluster of a node this node has a federation link to. */
  linkedCluster(nodeId: string): string | undefined {
    return this.nodeCluster.get(nodeId);
  }

  /**
   * A federation link to `nodeId` of `clusterId` is up. The first link to a cluster starts its
   * session (`linkUp` on the route table); a new smallest node id moves the session to it.
   */
  linkUp(nodeId: string, clusterId: string, now: number): void {
    const known = this.nodeCluster.get(nodeId);
    if (known !== undefined && known !== clusterId) this.linkDown(nodeId, now);
    this.nodeCluster.set(nodeId, clusterId);
    const n = this.neighbours.get(clusterId);
    if (n === undefined) {
      try {
        this.routing().linkUp(clusterId, now, { cost: this.configured.get(clusterId) ?? 1 });
      } catch (e) {
        log.warn(`federation link to ${nodeId} (${clusterId}) not used: ${(e as Error).message}`);
        this.nodeCluster.delete(nodeId);
        return;
      }
      this.neighbours.set(clusterId, { nodes: new Set([nodeId]), session: nodeId, catalogs: new Map(), exported: new Map(), sent: new Map() });
      log.info(`federation session with ${clusterId} up (node ${nodeId})`);
    } else {
      n.nodes.add(nodeId);
      // Every node of the neighbour gets our updates; the catalogs it has not had yet go now.
      n.sent.clear();
      if (nodeId < n.session) this.moveSession(clusterId, n, nodeId, now);
    }
    for (const a of this.keyAnnouncements.values()) this.sendControl([nodeId], clusterId, ROUTE_KEY_TOPIC, a);
    this.viewDirty = this.catalogDirty = true;
    this.pump(now);
  }

  /** The last link to `nodeId` closed. The last link to a cluster ends its session. */
  linkDown(nodeId: string, now: number): void {
    const clusterId = this.nodeCluster.get(nodeId);
    if (clusterId === undefined) return;
    this.nodeCluster.delete(nodeId);
    const n = this.neighbours.get(clusterId);
    if (n === undefined) return;
    n.nodes.delete(nodeId);
    if (n.nodes.size === 0) {
      this.neighbours.delete(clusterId);
      this.routing().linkDown(clusterId, now);
      log.info(`federation session with ${clusterId} down`);
    } else if (n.session === nodeId) {
      this.moveSession(clusterId, n, [...n.nodes].sort()[0] as string, now);
    }
    this.viewDirty = this.catalogDirty = true;
    this.pump(now);
  }

  /**
   * Moves the session with a neighbour cluster to another of its nodes: that node's (epoch,
   * seq) space is its own, so the table forgets the old session's routes and asks the new
   * node for everything.
   */
  private moveSession(clusterId: string, n: Neighbour, nodeId: string, now: number): void {
    n.session = nodeId;
    n.catalogs.clear();
    n.exported.clear();
    n.sent.clear();
    const r = this.routing();
    r.linkDown(clusterId, now);
    r.linkUp(clusterId, now, { cost: this.configured.get(clusterId) ?? 1 });
    this.sendControl([nodeId], clusterId, ROUTE_RESYNC_TOPIC, { v: 1 });
  }

  // ---------------------------------------------------------------- control plane

  /**
   * A control message arrived on the federation link from `fromNode`. Refusals are counted,
   * never thrown.
   */
  receiveControl(msg: UnifiedMessage, fromNode: string, now: number): void {
    this.stats.controlReceived++;
    const clusterId = this.nodeCluster.get(fromNode);
    const n = clusterId === undefined ? undefined : this.neighbours.get(clusterId);
    if (clusterId === undefined || n === undefined) return this.refuse(`control message from ${fromNode}, which is no federation link`);
    const fromSession = n.session === fromNode;
    switch (msg.topic) {
      case ROUTE_UPDATE_TOPIC: {
        const table = this.federation.table;
        if (table === undefined || !fromSession) return this.refuse(`route update from ${fromNode} (not the session of ${clusterId})`);
        const r = table.receive(clusterId, msg.payload, now);
        if (!r.accepted) log.debug(`route update from ${clusterId} refused: ${r.reason}`);
        if (r.applied > 0) this.viewDirty = this.catalogDirty = true;
        break;
      }
      case ROUTE_ADJACENCY_TOPIC: {
        const ls = this.federation.linkState;
        if (ls === undefined) return this.refuse(`adjacency from ${fromNode} in path-vector mode`);
        const r = ls.receive(clusterId, msg.payload, now);
        if (r.accepted) this.viewDirty = this.catalogDirty = true;
        break;
      }
      case ROUTE_KEY_TOPIC: {
        const r = this.federation.keys.applyAnnouncement(msg.payload, now);
        if (!r.accepted) {
          log.debug(`key announcement from ${clusterId} refused: ${r.reason}`);
          break;
        }
        const a = msg.payload as KeyAnnouncement;
        this.keyAnnouncements.set(a.cluster_id, a);
        // Relayed to every other neighbour: receivers check the chain themselves.
        for (const [cid, other] of this.neighbours) {
          if (cid === clusterId || cid === a.cluster_id) continue;
          this.sendControl([...other.nodes], cid, ROUTE_KEY_TOPIC, a);
          this.stats.keysRelayed++;
        }
        break;
      }
      case ROUTE_CATALOG_TOPIC: {
        if (!fromSession) return this.refuse(`catalog from ${fromNode} (not the session of ${clusterId})`);
        const p = msg.payload;
        if (!isObject(p) || p.v !== 1 || !isClusterId(p.cluster_id) || p.cluster_id === this.host.clusterId) return this.refuse(`malformed catalog from ${fromNode}`);
        if (!n.catalogs.has(p.cluster_id) && n.catalogs.size >= this.limits.maxClusters) return this.refuse(`too many catalogs from ${clusterId}`);
        let entries: CatalogEntry[];
        try {
          entries = validateClusterEntries(p.entries, p.cluster_id, this.limits.maxEntries, "entries");
        } catch (e) {
          return this.refuse(`catalog of ${p.cluster_id} from ${fromNode}: ${(e as Error).message}`);
        }
        this.stats.catalogsReceived++;
        if (entries.length === 0) n.catalogs.delete(p.cluster_id);
        else n.catalogs.set(p.cluster_id, entries);
        this.viewDirty = this.catalogDirty = true;
        break;
      }
      case ROUTE_RESYNC_TOPIC:
        // The neighbour now listens to this node: send it every route and catalog again.
        this.federation.table?.reconfigure({}, now);
        n.sent.clear();
        this.catalogDirty = true;
        break;
      default:
        return this.refuse(`unknown control topic ${msg.topic}`);
    }
    this.pump(now);
  }

  private refuse(why: string): void {
    this.stats.controlRefused++;
    log.debug(why);
  }

  /** Sends a control message to the given nodes of neighbour cluster `clusterId`. */
  private sendControl(nodes: readonly string[], clusterId: string, topic: string, payload: unknown): void {
    for (const nodeId of nodes) {
      const msg = createUnifiedMessage({
        topic,
        message_type: "control",
        payload,
        headers: { source_node: this.host.nodeId, source_cluster: this.host.clusterId, target_cluster: clusterId, target_node: nodeId },
      });
      try {
        this.host.sendOnLink(nodeId, msg);
      } catch (e) {
        log.warn(`${topic} to ${nodeId} not sent: ${(e as Error).message}`);
      }
    }
  }

  /** Time passes: route expiry, damping release, refresh; key expiry. Call about once a second. */
  tick(now: number): void {
    this.routing().tick(now);
    this.federation.keys.purge(now);
    this.pump(now);
  }

  /**
   * Applies the reloadable part of a new `federation` section (validated with
   * `validateFederationConfig`), docs/federation.md step 8: `offers`, `import` and `export`
   * (path-vector: the table re-evaluates every route held and sends each neighbour a full
   * update; the receiver-side check follows at once) and `keys.trusted` (keys added are
   * trusted, keys removed revoked; keys learned from announcements are kept). Every other
   * field that differs is reported in `notApplied` and left as it was (it needs a restart).
   * @throws {MpregError} 1002 when the new policies or keys are malformed; nothing changes then.
   */
  reconfigure(next: FederationConfig, now: number): FederationReloadReport {
    const prev = this.config;
    const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
    const applied: string[] = [];
    const notApplied: string[] = [];
    const policyFields = ["offers", "import", "export"] as const;
    const policiesChanged = policyFields.filter((f) => !same(prev[f], next[f]));
    const fixed = ["mode", "links", "requireSignatures", "routeTtlMs", "refreshIntervalMs", "maxDestinations", "maxNeighbours", "maxPathLength", "damping"] as const;
    for (const f of fixed) if (!same(prev[f], next[f])) notApplied.push(`federation.${f}`);
    if (!same(prev.keys?.signingKey, next.keys?.signingKey)) notApplied.push("federation.keys.signingKey");
    if (!same(prev.keys?.maxOverlapMs, next.keys?.maxOverlapMs)) notApplied.push("federation.keys.maxOverlapMs");
    // Compile everything first, so a bad section changes nothing.
    const policies = this.federation.mode === "path-vector" ? RoutePolicySet.compile({ ...(next.import === undefined ? {} : { import: next.import }), ...(next.export === undefined ? {} : { export: next.export }) }, "federation") : undefined;
    const offers = serviceFilter(next.offers, "federation.offers");
    const keyText = (k: { clusterId: string; publicKey: string; expiresAt?: number | undefined }) => JSON.stringify([k.clusterId, k.publicKey, k.expiresAt ?? null]);
    const oldKeys = new Map((prev.keys?.trusted ?? []).map((k) => [keyText(k), k]));
    const newKeys = new Map((next.keys?.trusted ?? []).map((k) => [keyText(k), k]));
    (next.keys?.trusted ?? []).forEach((k, i) => importPublicKey(k.publicKey, `federation.keys.trusted[${i}].publicKey`));
    if (policiesChanged.length > 0) {
      if (this.federation.table !== undefined) {
        this.federation.table.reconfigure({ policies: { ...(next.import === undefined ? {} : { import: next.import }), ...(next.export === undefined ? {} : { export: next.export }) }, offers: next.offers ?? {} }, now);
        applied.push(...policiesChanged.map((f) => `federation.${f}`));
      } else notApplied.push(...policiesChanged.map((f) => `federation.${f}`)); // link-state has no policies
    }
    this.policies = policies;
    this.offers = offers;
    let keysChanged = false;
    const revoked = new Set<string>();
    for (const [t, k] of oldKeys) {
      if (newKeys.has(t)) continue;
      const keyId = routeKeyId(k.publicKey);
      // Same key still configured with another expiry: it is re-trusted below, not revoked.
      if (![...newKeys.values()].some((n) => n.clusterId === k.clusterId && n.publicKey === k.publicKey)) {
        this.federation.keys.revoke(k.clusterId, keyId);
        revoked.add(keyId);
      }
      keysChanged = true;
    }
    (next.keys?.trusted ?? []).forEach((k, i) => {
      if (oldKeys.has(keyText(k))) return;
      this.federation.keys.trust(k, `federation.keys.trusted[${i}]`);
      keysChanged = true;
    });
    if (keysChanged) applied.push("federation.keys.trusted");
    this.config = { ...prev, offers: next.offers, import: next.import, export: next.export, keys: { ...prev.keys, trusted: next.keys?.trusted } } as FederationConfig;
    this.viewDirty = this.catalogDirty = true;
    this.pump(now);
    return { applied, notApplied };
  }

  /**
   * Rotates this cluster's signing key (docs/federation.md, "Rotation"): announces the public
   * key of `seed` signed by the current key (neighbours trust the new key and give the old one
   * an expiry `overlapMs` from receipt; they relay the announcement on), then signs everything
   * with the new key and sends every neighbour a full update signed with it. The announcement
   * is also sent to every neighbour that links later. The caller keeps the seed (the driver
   * does no I/O): write it where the next start reads its signing key *before* calling this.
   * @throws {MpregError} 1002 without a current signing key (no `federation.keys.signingKey`:
   * neighbours would have no key to trust the announcement by) or with a malformed seed.
   */
  rotateKey(seed: string, overlapMs: number, now: number): KeyAnnouncement {
    const current = this.federation.signer;
    if (current === undefined) throw MpregError.invalid("no signing key to rotate from: configure federation.keys.signingKey first", "federation.keys.signingKey");
    if (!Number.isSafeInteger(overlapMs) || overlapMs < 0) throw MpregError.invalid("overlap_ms must be an integer >= 0", "overlap_ms");
    const next = RouteSigner.fromSeed(this.host.clusterId, seed, "seed");
    const own = this.host.clusterId;
    // Ordered per cluster by seq: the clock keeps it growing across restarts.
    const seq = Math.max(Math.trunc(now), (this.keyAnnouncements.get(own)?.seq ?? 0) + 1);
    const ann = signKeyAnnouncement(current, next.publicKey, seq, overlapMs);
    // Other gateways of this cluster relay it back to us when they trust our keys: harmless.
    this.federation.keys.applyAnnouncement(ann, now);
    this.keyAnnouncements.set(own, ann);
    for (const [cid, n] of this.neighbours) this.sendControl([...n.nodes], cid, ROUTE_KEY_TOPIC, ann);
    this.federation.table?.setSigner(next);
    this.federation.linkState?.setSigner(next);
    this.federation.signer = next;
    // The key in force: a reload that reads the new seed finds nothing changed.
    this.config = { ...this.config, keys: { ...this.config.keys, signingKey: seed } };
    // Sent after the announcement on the same links, so neighbours already trust the new key.
    this.federation.table?.reconfigure({}, now);
    this.pump(now);
    log.info(`federation signing key rotated to ${next.keyId} (overlap ${overlapMs} ms, seq ${seq})`);
    return ann;
  }

  /** Whether `pump` has work (catalogs or the view to bring up to date). */
  get due(): boolean {
    return this.viewDirty || this.catalogDirty;
  }

  /** This cluster's catalog changed: its export is sent again at the next pump. */
  localChanged(): void {
    this.catalogDirty = true;
  }

  /**
   * Sends what the routing state wants sent (route updates or adjacency announcements to each
   * neighbour, catalog exports that changed), then brings the view (routes via gateways,
   * foreign entries, this node's gateway announcement) up to date.
   */
  pump(now: number): void {
    const table = this.federation.table;
    if (table !== undefined) this.sendRouteUpdates(table.poll(now));
    const ls = this.federation.linkState;
    if (ls !== undefined) {
      const out = ls.poll(now);
      for (const m of out.messages) {
        const n = this.neighbours.get(m.to);
        if (n === undefined) continue;
        for (const a of m.announcements) this.sendControl([...n.nodes], m.to, ROUTE_ADJACENCY_TOPIC, a);
      }
      if (out.events.length > 0) this.viewDirty = this.catalogDirty = true;
    }
    if (this.viewDirty) {
      this.viewDirty = false;
      this.recomputeView(now);
      // The other gateways' routes just given to the table: what it re-advertises goes out now.
      if (table !== undefined) this.sendRouteUpdates(table.poll(now));
    }
    if (this.catalogDirty) {
      this.catalogDirty = false;
      this.syncCatalogs();
    }
  }

  /** Sends the route table's updates, remembering what each neighbour was offered. */
  private sendRouteUpdates(out: RouteTableOutput): void {
    for (const u of out.updates) {
      const n = this.neighbours.get(u.to);
      if (n === undefined) continue;
      if (u.update.full) n.exported.clear();
      for (const w of u.update.withdrawn) n.exported.delete(w);
      for (const r of u.update.routes) n.exported.set(r.destination, r.offers === undefined ? OFFER_ALL : serviceFilter(r.offers));
      this.sendControl([...n.nodes], u.to, ROUTE_UPDATE_TOPIC, u.update);
      this.stats.routeUpdatesSent++;
    }
    if (out.updates.length > 0) this.catalogDirty = true;
    if (out.events.length > 0) this.viewDirty = this.catalogDirty = true;
  }

  /** The route table or link-state database in use. */
  private routing() {
    return (this.federation.table ?? this.federation.linkState)!;
  }

  /** Best routes of this node's own table to other clusters. */
  private ownRoutes(): ClusterRoute[] {
    return this.routing().routes().filter((r) => r.destination !== this.host.clusterId);
  }

  /** The entries of cluster `d` as this node's own routing received them (its best next hop's export). */
  private ownCatalog(d: string): CatalogEntry[] | undefined {
    const best = this.routing().bestRoute(d);
    return best === undefined ? undefined : this.neighbours.get(best.nextHop)?.catalogs.get(d);
  }

  /**
   * The entries of cluster `d` as exported by this node: from its own best route's next hop, or,
   * when the table re-advertises another gateway's route, from that gateway's announcement.
   */
  private exportCatalog(d: string): CatalogEntry[] {
    const table = this.federation.table;
    const r = table?.exportedRoute(d);
    if (table !== undefined && r !== undefined && r !== table.bestRoute(d)) {
      const via = this.clusterRouteVia.get(d);
      return (via === undefined ? undefined : this.gateways.get(via)?.catalogs.find((c) => c.cluster_id === d)?.entries) ?? [];
    }
    return this.ownCatalog(d) ?? [];
  }

  /** What each neighbour may get per destination: the offers of the route exported to it. */
  private exportable(clusterId: string, n: Neighbour): Map<string, ServiceFilter> {
    if (this.federation.table !== undefined) return n.exported;
    // Link-state: every route that does not pass through the neighbour, offering everything.
    const out = new Map<string, ServiceFilter>([[this.host.clusterId, OFFER_ALL]]);
    for (const r of this.ownRoutes()) if (!r.path.includes(clusterId)) out.set(r.destination, OFFER_ALL);
    return out;
  }

  /** Sends each neighbour the catalogs it may see that differ from what it was last sent. */
  private syncCatalogs(): void {
    const own = this.host.clusterId;
    let local: CatalogEntry[] | undefined;
    for (const [clusterId, n] of this.neighbours) {
      const allowed = this.exportable(clusterId, n);
      for (const [d, offers] of allowed) {
        let entries: CatalogEntry[];
        if (d === own) entries = local ??= this.host.localEntries().filter((e) => e.cluster_id === own && isExportedEntry(e)).sort(byKey);
        else entries = this.exportCatalog(d);
        const filtered = entries.filter((e) => catalogEntryAllowed(offers, e)).slice(0, this.limits.maxEntries);
        const text = JSON.stringify(filtered);
        if (n.sent.get(d) === text) continue;
        if (filtered.length === 0 && !n.sent.has(d)) continue;
        n.sent.set(d, text);
        this.sendControl([...n.nodes], clusterId, ROUTE_CATALOG_TOPIC, { v: 1, cluster_id: d, entries: filtered });
        this.stats.catalogsSent++;
      }
      for (const d of [...n.sent.keys()]) {
        if (allowed.has(d)) continue;
        n.sent.delete(d);
        this.sendControl([...n.nodes], clusterId, ROUTE_CATALOG_TOPIC, { v: 1, cluster_id: d, entries: [] });
      }
    }
  }

  // ---------------------------------------------------------------- the view inside the cluster

  /**
   * A gossip item of this cluster: true when it was a gateway announcement (handled here).
   * A malformed one is ignored (it leaves the node's earlier announcement in place).
   */
  onGossipItem(key: string, data: unknown): boolean {
    if (!key.startsWith(GATEWAY_KEY_PREFIX)) return false;
    const nodeId = key.slice(GATEWAY_KEY_PREFIX.length);
    if (nodeId === this.host.nodeId) return true;
    try {
      this.gateways.set(nodeId, validateGatewayAnnouncement(data, this.host.clusterId, this.limits));
      // Its catalogs may be what this node re-exports (transit): exports are re-checked too.
      this.viewDirty = this.catalogDirty = true;
    } catch (e) {
      log.warn(`gateway announcement of ${nodeId} ignored: ${(e as Error).message}`);
    }
    return true;
  }

  /** A member of this cluster came (back) or went: its announcement counts or stops counting. */
  memberChanged(nodeId: string): void {
    if (this.gateways.has(nodeId)) this.viewDirty = this.catalogDirty = true;
  }

  /**
   * Rebuilds, from this node's own routes and the live gateways' announcements: the candidate
   * routes per destination, the foreign entries (from the best candidate's catalog, narrowed by
   * its offers) and this node's own gateway announcement.
   */
  private recomputeView(now: number): void {
    const candidates = new Map<string, Candidate[]>();
    const viaOf = new Map<ClusterRoute, string>();
    const add = (route: ClusterRoute, via: string) => {
      let list = candidates.get(route.destination);
      if (list === undefined) candidates.set(route.destination, (list = []));
      list.push({ route, via });
      viaOf.set(route, via);
    };
    const mine = this.ownRoutes();
    // Every neighbour's route, not only the best: one of them may avoid where a message has been.
    for (const r of mine) for (const alt of this.routing().routesTo(r.destination)) add(alt, this.host.nodeId);
    for (const [nodeId, ann] of this.gateways) {
      if (!this.host.isLive(nodeId)) continue;
      for (const g of ann.routes) {
        add({ destination: g.destination, nextHop: g.path[1] as string, path: g.path, metric: g.metric, offers: g.offers === undefined ? OFFER_ALL : serviceFilter(g.offers) }, nodeId);
      }
    }
    const self = this.host.nodeId;
    for (const list of candidates.values()) {
      list.sort((a, b) => compareRoutes(a.route, b.route) || (a.via === self ? -1 : b.via === self ? 1 : a.via < b.via ? -1 : a.via > b.via ? 1 : 0));
    }
    this.candidates = candidates;
    this.viaOf = viaOf;

    // Transit (iBGP-like): the best route of the other gateways per destination goes to this
    // node's table, which exports it to this node's neighbours when better than its own. Only
    // routes of a gateway's own links are in its announcement, so none comes back around.
    const table = this.federation.table;
    if (table !== undefined) {
      const others: ClusterRoute[] = [];
      const via = new Map<string, string>();
      for (const [d, list] of candidates) {
        const c = list.find((x) => x.via !== self);
        if (c === undefined) continue;
        others.push(c.route);
        via.set(d, c.via);
      }
      try {
        table.setClusterRoutes(others, now);
        this.clusterRouteVia = via;
      } catch (e) {
        log.warn(`routes of the cluster's other gateways not used: ${(e as Error).message}`);
      }
    }

    const entries: CatalogEntry[] = [];
    for (const [d, list] of candidates) {
      const best = list[0] as Candidate;
      const source = best.via === self ? this.ownCatalog(d) : this.gateways.get(best.via)?.catalogs.find((c) => c.cluster_id === d)?.entries;
      for (const e of source ?? []) if (e.cluster_id === d && catalogEntryAllowed(best.route.offers, e)) entries.push(e);
    }
    for (const change of this.foreign.replace(entries, now)) this.host.emitCatalog(change);

    // This node's announcement: its own routes and what it received for each.
    const routes: GatewayRoute[] = mine.map((r) => {
      const g: GatewayRoute = { destination: r.destination, path: [...r.path], metric: r.metric };
      const offers = serviceFilterToOffers(r.offers);
      if (offers !== undefined) g.offers = offers;
      return g;
    });
    const catalogs: ClusterCatalog[] = [];
    for (const r of mine) {
      const c = this.ownCatalog(r.destination);
      if (c !== undefined && c.length > 0) catalogs.push({ cluster_id: r.destination, entries: c.filter((e) => catalogEntryAllowed(r.offers, e)) });
    }
    const ann: GatewayAnnouncement = { v: 1, routes, catalogs };
    const text = JSON.stringify(ann);
    if (text !== this.lastGateway) {
      this.lastGateway = text;
      this.stats.gatewayAnnouncements++;
      this.host.publishGateway(ann);
    }
  }

  // ---------------------------------------------------------------- data plane

  /** The cluster of a foreign node: from the entries it exports, or from a message it sent here. */
  clusterOf(nodeId: string): string | undefined {
    return this.foreign.clusterOf(nodeId) ?? this.nodeCluster.get(nodeId) ?? this.learned.get(nodeId);
  }

  /** A message from another cluster was delivered here: its source can be answered. */
  noteSource(nodeId: string, clusterId: string): void {
    if (clusterId === this.host.clusterId) return;
    if (this.learned.get(nodeId) === clusterId) return;
    this.learned.delete(nodeId);
    this.learned.set(nodeId, clusterId);
    if (this.learned.size > this.maxLearned) this.learned.delete(this.learned.keys().next().value as string);
  }

  /**
   * Where a message with a `target_cluster` goes next ({@link nextClusterHop} over this node's
   * routes and its cluster's gateways'). `relay`: this node received it (the hop rule runs
   * first) rather than originating it. `service`: checked against the route's offers.
   */
  decide(message: UnifiedMessage, relay: boolean, service?: ServiceTag): FederationDecision {
    if (this.viewDirty) this.pump(Date.now());
    const path = message.headers.routing_path;
    const self = this.host.nodeId;
    const routes: ClusterRouteSource = {
      routesTo: (d, avoid) =>
        (this.candidates.get(d) ?? [])
          // A gateway the message already passed is no way forward (it would loop), nor one that
          // cannot be reached now (e.g. it just died and gossip has not said so yet).
          .filter((c) => (c.via === self || (!path.includes(c.via) && this.host.canReach(c.via))) && (avoid === undefined || !pathTouches(c.route, avoid)))
          .map((c) => c.route),
    };
    const d = nextClusterHop({ message, self: { nodeId: self, clusterId: this.host.clusterId }, routes, relay, ...(service === undefined ? {} : { service }) });
    if (d.action === "deliver") return d;
    if (d.action === "drop") {
      this.stats.dropped[d.reason]++;
      return d;
    }
    const via = this.viaOf.get(d.route) ?? self;
    if (via !== self) return { action: "gateway", nodeId: via, message: d.message };
    const n = this.neighbours.get(d.nextCluster);
    if (n === undefined) {
      this.stats.dropped.no_route++;
      return { action: "drop", reason: "no_route" };
    }
    this.stats.forwarded++;
    // Always the same node of the next cluster: messages from one sender stay in order.
    return { action: "link", nodeId: n.session, nextCluster: d.nextCluster, message: d.message };
  }

  /**
   * Whether this cluster offers `service` to the neighbour cluster a message entered it from
   * (the one before this cluster in `federation_path`): this cluster's `offers` narrowed by its
   * export rule for that neighbour. Link-state mode has no policies: true.
   */
  admits(msg: UnifiedMessage, service: ServiceTag): boolean {
    if (this.policies === undefined) return true;
    const fed = msg.headers.federation_path;
    const at = fed.indexOf(this.host.clusterId);
    const entry = at > 0 ? fed[at - 1] : at === -1 ? fed[fed.length - 1] : undefined;
    if (entry === undefined) return true;
    const res = applyRule(this.policies.exportRule(entry), this.host.clusterId, this.offers, 0);
    return res !== undefined && serviceAllows(res.offers, service.kind, service.name);
  }

  // ---------------------------------------------------------------- inspection

  /** Every counter as a flat number (drops as `dropped_<reason>`), with the foreign entries held. */
  counters(): Record<string, number> {
    const { dropped, ...rest } = this.stats;
    const out: Record<string, number> = { ...rest, foreignEntries: this.foreign.size, foreignRefused: this.foreign.stats().refused, neighbours: this.neighbours.size };
    for (const [reason, n] of Object.entries(dropped)) out[`dropped_${reason}`] = n;
    return out;
  }

  /** A view for `federation_status` and `/topology`. */
  /**
   * The best route to another cluster as this node uses it: the cluster path, who holds it
   * (`via`: this node or a gateway of its cluster) and the node a message goes to first (the
   * neighbour's session node when this node holds the route, else the gateway).
   */
  routeTo(clusterId: string): { path: string[]; via: string; nextNode: string | null } | undefined {
    const best = this.candidates.get(clusterId)?.[0];
    if (best === undefined) return undefined;
    const path = [...best.route.path];
    const nextNode = best.via === this.host.nodeId ? (this.neighbours.get(best.route.nextHop)?.session ?? null) : best.via;
    return { path, via: best.via, nextNode };
  }

  status(): unknown {
    const self = this.host.nodeId;
    return {
      mode: this.mode,
      routing: this.federation.mode,
      cluster_id: this.host.clusterId,
      node_id: self,
      neighbours: [...this.neighbours].map(([cluster, n]) => ({ cluster_id: cluster, nodes: [...n.nodes].sort(), session: n.session })),
      routes: [...this.candidates.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([d, list]) => {
          const best = list[0] as Candidate;
          return { destination: d, path: [...best.route.path], metric: best.route.metric, via: best.via };
        }),
      gateways: [...this.gateways.entries()].filter(([id]) => this.host.isLive(id)).map(([id, a]) => ({ node_id: id, destinations: a.routes.map((r) => r.destination) })),
      foreign_entries: this.foreign.size,
      // Public keys only: which key this node signs with, and the keys it trusts per cluster.
      keys: {
        signing_key_id: this.federation.signer?.keyId ?? null,
        trusted: this.federation.keys.clusterIds().map((c) => ({
          cluster_id: c,
          keys: this.federation.keys.keys(c).map((k) => ({ key_id: k.keyId, source: k.source, ...(k.expiresAt !== undefined ? { expires_at: k.expiresAt } : {}) })),
        })),
      },
      updates_refused: this.federation.table?.stats.updatesRefused ?? null,
      stats: this.stats,
    };
  }
}
