import type { Catalog, CatalogChange, LocalEntryInput } from "@mpreg/catalog";
import type { MpregError, UnifiedMessage } from "@mpreg/envelope";
import type { ServiceTag } from "./federation-driver.js";

/**
 * Handles a fabric message addressed to this node. `from` is the neighbour whose link carried
 * it (the originator itself when it came over a direct link). The message's headers carry the
 * per-request context: `source_node`, `correlation_id`, `trace_id`, `hops_remaining`.
 */
export type FabricMessageHandler = (msg: UnifiedMessage, from: string) => void;

/**
 * Whether a handler takes messages that come from another cluster (federation), and for which
 * service: `true` takes the message as it is; a {@link ServiceTag} takes it only when this
 * cluster offers that service to the neighbour cluster it entered from (the export policy);
 * `false` drops it. Without this option a handler never sees another cluster's messages.
 */
export type ForeignAcceptance = (msg: UnifiedMessage) => ServiceTag | boolean;

/** Options of {@link ServicePort.handle}. */
export interface HandleOptions {
  /** Messages from other clusters (default: dropped, counted in `stats.droppedForeign`). */
  acceptForeign?: ForeignAcceptance;
}

/**
 * A change of what this node can reach. `up`: a node became reachable (a live member with a
 * link or a route over other links). `down`: it stopped being reachable (declared dead, left,
 * or neither link nor route leads to it any more); messages in flight to it may be lost.
 */
export type MembershipEvent =
  | { readonly type: "up"; readonly nodeId: string }
  | { readonly type: "down"; readonly nodeId: string; readonly reason: string };

/**
 * A message this node originated that a relay could not carry to another cluster (federation):
 * `error` is the 1005 UNREACHABLE `{reason, target_cluster}` (`no_route`, `loop`,
 * `hop_budget_exhausted`, `denied`).
 */
export interface UndeliverableNotice {
  readonly message_id: string;
  readonly correlation_id: string;
  /** The topic of the message that was dropped. */
  readonly topic: string;
  readonly error: MpregError;
}

/** What a service gives to build a message; the port fills in the routing headers. */
export interface OutboundMessage {
  /** Routes the message to the handler registered for this topic's prefix on the receiver. */
  readonly topic: string;
  readonly payload: unknown;
  /** Default `data`. */
  readonly message_type?: UnifiedMessage["message_type"];
  /** Default `fire_and_forget` (the fabric itself never retries; services decide). */
  readonly delivery?: UnifiedMessage["delivery"];
  /** Ties a reply to its request; default the message id. */
  readonly correlation_id?: string;
  /** Carried unchanged across hops, for tracing one request through several nodes. */
  readonly trace_id?: string;
}

/**
 * The one surface through which a service (RPC's remote dispatch, the Raft group, pub/sub,
 * queues, the cache, federation) reaches other nodes: register a handler for a topic prefix,
 * send to a node or to the owner of a catalog entry, broadcast, and follow membership and
 * catalog changes. Services never see sockets, links or routes.
 */
export interface ServicePort {
  readonly nodeId: string;
  readonly clusterId: string;
  /**
   * `hops_remaining` that messages this node originates start with (PROTOCOL section 8);
   * services that build their own messages use it too. Undefined: the envelope's default (8).
   */
  readonly maxHops?: number | undefined;
  /** The routing catalog (read it; publish this node's entries with `announce`/`withdraw`). */
  readonly catalog: Catalog;
  /**
   * Registers the handler of messages whose topic is `prefix` or starts with `prefix.`; the
   * longest registered prefix wins. Throws when the prefix is taken. Returns the unregister.
   */
  handle(prefix: string, handler: FabricMessageHandler, options?: HandleOptions): () => void;
  /** Builds a message from this node (routing headers filled in), ready for `send`. */
  message(out: OutboundMessage): UnifiedMessage;
  /**
   * Sends to one node: over the direct link, else through the next hop of the route to it; a
   * node of another cluster (federation) through the route to its cluster. False when no way
   * exists. Throws MpregError 1002 `message_too_large` for a message whose frame would pass the
   * peer frame limit, and 1005 `{reason, target_cluster}` when federation cannot carry it to
   * another cluster. `service` (a topic published, ...) is checked against the policies of the
   * route to another cluster.
   */
  send(nodeId: string, msg: UnifiedMessage, service?: ServiceTag): boolean;
  /**
   * Whether `send(nodeId, …)` would find a way now (a link, a route, or a known other cluster),
   * without sending: lets a service that queues messages for the end of the turn answer "no
   * route" at once. Absent on ports that cannot tell (then services send one by one).
   */
  canSend?(nodeId: string): boolean;
  /**
   * Other clusters' entries this node may use (federation; exactly what the routes' policies let
   * through), queried like `catalog`; undefined when the node does not federate. Their changes
   * reach `onCatalogChange` listeners too.
   */
  readonly foreign?: Catalog | undefined;
  /** Notices of messages this node sent that could not reach another cluster. */
  onUndeliverable?(listener: (n: UndeliverableNotice) => void): () => void;
  /**
   * The reachable node that owns the named queue or cache namespace (this node first; a queue
   * of another cluster when none of this cluster has it).
   */
  owner(kind: "queue" | "cache", name: string): string | undefined;
  /**
   * Sends one copy to each reachable member accepted by `filter` (all when absent), e.g. the
   * nodes whose catalog entries show interest. Returns how many were sent.
   */
  broadcast(msg: UnifiedMessage, filter?: (nodeId: string) => boolean): number;
  /** Reachable live members, this node excluded. */
  members(): string[];
  /** Nodes a message cannot be sent to now (dead, gone, or no link nor route). */
  unreachable(): ReadonlySet<string>;
  onMembership(listener: (e: MembershipEvent) => void): () => void;
  /** Every change applied to the catalog from other nodes (and removals of departed nodes). */
  onCatalogChange(listener: (change: CatalogChange) => void): () => void;
  /** Publishes (or refreshes) one of this node's catalog entries; returns its key. */
  announce(entry: LocalEntryInput): string;
  /** Withdraws one of this node's entries by key. */
  withdraw(key: string): void;
}
