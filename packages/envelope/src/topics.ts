/**
 * Topic naming: the reserved `mpreg.` namespace used by the node's own subsystems, and the
 * syntax check of a concrete (published) topic. Patterns with `*` and `#` are matched and
 * checked by the one topic matcher in `@mpreg/router`, not here.
 */
import { MpregError } from "./errors.js";

/** First segment of every topic the node itself uses. */
export const TOPIC_PREFIX = "mpreg";
/** Topic separator. */
export const TOPIC_SEPARATOR = ".";
/** Longest accepted topic, in UTF-16 code units. */
export const MAX_TOPIC_LENGTH = 1024;
/** Most segments in a topic. */
export const MAX_TOPIC_SEGMENTS = 64;

/** Prefixes of internal topics, one per subsystem. */
export const INTERNAL_TOPIC_PREFIXES = Object.freeze({
  rpc: "mpreg.rpc.",
  pubsub: "mpreg.pubsub.",
  queue: "mpreg.queue.",
  cache: "mpreg.cache.",
  control: "mpreg.control.",
  gossip: "mpreg.gossip.",
  raft: "mpreg.raft.",
  federation: "mpreg.federation.",
} as const);
export type InternalTopicKind = keyof typeof INTERNAL_TOPIC_PREFIXES;

/** True for topics in the node's own namespace (`mpreg` or `mpreg.…`). */
export function isReservedTopic(topic: string): boolean {
  return topic === TOPIC_PREFIX || topic.startsWith(`${TOPIC_PREFIX}${TOPIC_SEPARATOR}`);
}

/**
 * Builds an internal topic: `internalTopic("queue", "orders", "sent")` is
 * `mpreg.queue.orders.sent`.
 *
 * @throws {MpregError} 1002 when the result is not a valid topic.
 */
export function internalTopic(kind: InternalTopicKind, ...segments: string[]): string {
  const topic = INTERNAL_TOPIC_PREFIXES[kind] + segments.join(TOPIC_SEPARATOR);
  const err = validateTopic(topic);
  if (err !== null) throw err;
  return topic;
}

/**
 * Checks a concrete topic (one that is published, not a pattern): a string of dot-separated,
 * non-empty segments, no `*` or `#` anywhere, at most {@link MAX_TOPIC_LENGTH} characters and
 * {@link MAX_TOPIC_SEGMENTS} segments. Returns null when valid, else an MpregError 1002.
 */
export function validateTopic(topic: unknown): MpregError | null {
  if (typeof topic !== "string") return MpregError.invalid("topic must be a string", "topic");
  if (topic.length === 0) return MpregError.invalid("topic must not be empty", "topic");
  if (topic.length > MAX_TOPIC_LENGTH) {
    return MpregError.invalid(`topic longer than ${MAX_TOPIC_LENGTH} characters`, "topic");
  }
  let segments = 1;
  let segmentStart = 0;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === 0x2e /* . */) {
      if (i === segmentStart) return MpregError.invalid("topic has an empty segment", "topic");
      segments++;
      segmentStart = i + 1;
    } else if (c === 0x2a /* * */ || c === 0x23 /* # */) {
      return MpregError.invalid("a published topic must not contain wildcards (* or #)", "topic");
    }
  }
  if (segmentStart === topic.length) return MpregError.invalid("topic has an empty segment", "topic");
  if (segments > MAX_TOPIC_SEGMENTS) {
    return MpregError.invalid(`topic has more than ${MAX_TOPIC_SEGMENTS} segments`, "topic");
  }
  return null;
}
