/**
 * UnifiedMessage construction, the hop/loop forwarding rule, and the canonical strings that the
 * peer handshake signs. Pure functions: no I/O, no crypto (the client runs in browsers; the
 * server computes the HMAC with node:crypto over the string built here).
 */
import { MpregError } from "./errors.js";
import { newId } from "./ids.js";
import {
  MAX_HOPS,
  type DeliveryMode,
  type MessageType,
  type PeerHello,
  type PeerWelcome,
  type RoutingHeaders,
  type UnifiedMessage,
} from "./schemas.js";

/** Hop budget an originator gives a message when it is not configured otherwise. */
export const DEFAULT_MAX_HOPS = 8;

/** What the originator supplies for the headers; the rest is filled in. */
export interface UnifiedHeadersInput {
  source_node: string;
  source_cluster: string;
  /** Defaults to the new message's `message_id`. */
  correlation_id?: string;
  /** Defaults to a new ULID; pass the inbound trace id to keep one trace across hops. */
  trace_id?: string;
  target_cluster?: string;
  target_node?: string;
  /** Defaults to 0; higher is more urgent. */
  priority?: number;
}

export interface CreateUnifiedMessageInput {
  topic: string;
  message_type: MessageType;
  /** Defaults to `fire_and_forget`. */
  delivery?: DeliveryMode;
  payload: unknown;
  headers: UnifiedHeadersInput;
  /** Initial `hops_remaining`, 0..MAX_HOPS; defaults to {@link DEFAULT_MAX_HOPS}. */
  maxHops?: number;
  /** Injected for deterministic tests; defaults to a new ULID. */
  message_id?: string;
  /** Injected for deterministic tests; defaults to `Date.now()` (ms since the epoch). */
  timestamp?: number;
}

/**
 * Builds a UnifiedMessage as its originator sends it: `routing_path` is `[source_node]`,
 * `federation_path` is `[source_cluster]`, `hops_remaining` is the hop budget. The originator
 * sends it as is; every node that relays it applies {@link forwardStep} first.
 *
 * @throws {MpregError} 1002 when `maxHops` is not an integer in 0..MAX_HOPS.
 */
export function createUnifiedMessage(input: CreateUnifiedMessageInput): UnifiedMessage {
  const hops = input.maxHops ?? DEFAULT_MAX_HOPS;
  if (!Number.isInteger(hops) || hops < 0 || hops > MAX_HOPS) {
    throw MpregError.invalid(`maxHops must be an integer in 0..${MAX_HOPS}`, "maxHops");
  }
  const h = input.headers;
  const messageId = input.message_id ?? newId();
  const headers: RoutingHeaders = {
    correlation_id: h.correlation_id ?? messageId,
    trace_id: h.trace_id ?? newId(),
    source_node: h.source_node,
    source_cluster: h.source_cluster,
    routing_path: [h.source_node],
    federation_path: [h.source_cluster],
    hops_remaining: hops,
    priority: h.priority ?? 0,
  };
  if (h.target_cluster !== undefined) headers.target_cluster = h.target_cluster;
  if (h.target_node !== undefined) headers.target_node = h.target_node;
  return {
    message_id: messageId,
    topic: input.topic,
    message_type: input.message_type,
    delivery: input.delivery ?? "fire_and_forget",
    payload: input.payload,
    timestamp: input.timestamp ?? Date.now(),
    headers,
  };
}

/** The decision of {@link forwardStep}. */
export type ForwardDecision =
  | { action: "forward"; message: UnifiedMessage }
  | { action: "drop"; reason: "loop" | "hops_exhausted" };

/**
 * The forwarding rule, applied by a node before it relays a message it received:
 * - drop (`loop`) when `routing_path` already holds `selfNodeId`;
 * - otherwise append `selfNodeId` to `routing_path`, append `selfClusterId` to
 *   `federation_path` when it differs from the last entry, and decrement `hops_remaining`;
 * - forward only while the new `hops_remaining >= 0`, else drop (`hops_exhausted`).
 *
 * Pure: the input is not modified; the forwarded message is a new object (payload shared).
 */
export function forwardStep(msg: UnifiedMessage, selfNodeId: string, selfClusterId: string): ForwardDecision {
  const h = msg.headers;
  if (h.routing_path.includes(selfNodeId)) return { action: "drop", reason: "loop" };
  const hopsRemaining = h.hops_remaining - 1;
  if (hopsRemaining < 0) return { action: "drop", reason: "hops_exhausted" };
  const fed = h.federation_path;
  const federationPath = fed[fed.length - 1] === selfClusterId ? fed.slice() : [...fed, selfClusterId];
  return {
    action: "forward",
    message: {
      ...msg,
      headers: {
        ...h,
        routing_path: [...h.routing_path, selfNodeId],
        federation_path: federationPath,
        hops_remaining: hopsRemaining,
      },
    },
  };
}

/** True when `nodeId` already relayed (or originated) the message. */
export function hasVisited(msg: UnifiedMessage, nodeId: string): boolean {
  return msg.headers.routing_path.includes(nodeId);
}

/** The signed fields of a `peer-hello`. */
export type PeerHelloFields = Omit<PeerHello, "mac" | "role">;
/** The signed fields of a `peer-welcome`. */
export type PeerWelcomeFields = Omit<PeerWelcome, "mac" | "role">;

function identityArray(f: PeerHelloFields | PeerWelcomeFields): unknown[] {
  // Fixed order and JSON quoting: deterministic and unambiguous whatever the field contents.
  return [f.protocol_version, f.node_id, f.cluster_id, f.region, f.urls, f.nonce];
}

/**
 * The canonical string a `peer-hello` MAC covers: a domain tag, then a JSON array of
 * `protocol_version, node_id, cluster_id, region, urls, nonce` in that order. The MAC is
 * HMAC-SHA256 of this string (UTF-8) under the cluster secret, as lowercase hex. Extra fields
 * of `hello` (such as `role` or `mac`) are ignored.
 */
export function peerHelloSigningString(hello: PeerHelloFields): string {
  return `mpreg-peer-hello/1\n${JSON.stringify(identityArray(hello))}`;
}

/**
 * The canonical string a `peer-welcome` MAC covers: like the hello's under its own domain tag,
 * with the nonce of the hello it answers and the dialer's node id appended, so a welcome cannot
 * be replayed to another dialer nor passed off as a hello.
 */
export function peerWelcomeSigningString(welcome: PeerWelcomeFields, helloNonce: string, dialerId = ""): string {
  return `mpreg-peer-welcome/2\n${JSON.stringify([...identityArray(welcome), helloNonce, dialerId])}`;
}

/**
 * The canonical string a `peer-confirm` MAC covers: both node ids and both nonces, so the
 * dialer proves it holds the secret *now* (the listener's nonce is fresh), not that it once
 * recorded a valid hello.
 */
export function peerConfirmSigningString(dialerId: string, listenerId: string, helloNonce: string, welcomeNonce: string): string {
  return `mpreg-peer-confirm/1\n${JSON.stringify([dialerId, listenerId, helloNonce, welcomeNonce])}`;
}
