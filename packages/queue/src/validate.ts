/**
 * Checks of every argument the queue operations take (from the wire or from embedding code):
 * unknown fields, types and ranges are refused with `MpregError.invalid(message, path)` (1002)
 * naming the field, e.g. `options.visibility_timeout_ms`.
 */

import { MpregError } from "@mpreg/envelope";
import type { QueueLimits } from "./limits.js";
import type {
  DeliveryMode,
  NackOptions,
  QueueOptions,
  QueueType,
  ReceiveOptions,
  SendOptions,
  SubscribeOptions,
} from "./types.js";

/** Longest queue name (a dead-letter queue's default name adds `.dlq`). */
export const MAX_QUEUE_NAME_LENGTH = 255;
/** Longest `group_id` and `dedup_id`. */
export const MAX_ID_LENGTH = 128;
/** Longest receipt or subscription id accepted (ours are much shorter). */
export const MAX_HANDLE_LENGTH = 256;
/** Receive batch and long-poll bounds of PROTOCOL section 5. */
export const MAX_RECEIVE_BATCH = 100;
export const MAX_WAIT_MS = 20_000;
/** Prefetch of a subscription made without one. */
export const DEFAULT_PREFETCH = 10;

const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;
const QUEUE_TYPES: readonly QueueType[] = ["standard", "fifo", "priority"];
const DELIVERIES: readonly DeliveryMode[] = ["at_least_once", "at_most_once", "broadcast", "quorum"];

/** A queue name: 1..255 characters of `A-Z a-z 0-9 _ . : -`, not starting with `.`, `:` or `-`. */
export function parseQueueName(v: unknown, path = "name"): string {
  if (typeof v !== "string") throw MpregError.invalid("queue name must be a string", path);
  if (v.length === 0 || v.length > MAX_QUEUE_NAME_LENGTH) {
    throw MpregError.invalid(`queue name must be 1..${MAX_QUEUE_NAME_LENGTH} characters`, path);
  }
  if (!NAME_RE.test(v)) throw MpregError.invalid("queue name may hold only A-Z a-z 0-9 _ . : - and must start with a letter, digit or _", path);
  return v;
}

/** An options object: absent or null means `{}`; anything but a plain object is refused; unknown keys too. */
function options(v: unknown, path: string, allowed: readonly string[]): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw MpregError.invalid("options must be an object", path);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw MpregError.invalid(`unknown option ${k}`, `${path}.${k}`);
  }
  return o;
}

/** The value of an option, with null read as absent. */
function field(o: Record<string, unknown>, k: string): unknown {
  const v = o[k];
  return v === null ? undefined : v;
}

/** An integer in [min, max], or undefined when absent. */
function intIn(v: unknown, path: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw MpregError.invalid(`${path.split(".").pop()} must be an integer in ${min}..${max}`, path);
  }
  return v;
}

function idString(v: unknown, path: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_ID_LENGTH) {
    throw MpregError.invalid(`${path.split(".").pop()} must be a string of 1..${MAX_ID_LENGTH} characters`, path);
  }
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !allowed.includes(v as T)) {
    throw MpregError.invalid(`${path.split(".").pop()} must be one of ${allowed.join(", ")}`, path);
  }
  return v as T;
}

const CREATE_KEYS = [
  "type",
  "visibility_timeout_ms",
  "max_receives",
  "dead_letter_queue",
  "delay_ms",
  "dedup_window_ms",
  "max_messages",
  "durable",
] as const;

/** The fields of QueueOptions in the order `create` compares them. */
export const QUEUE_OPTION_FIELDS: readonly (keyof QueueOptions)[] = CREATE_KEYS;

/**
 * `create` options with defaults filled in. `storage` says whether the service has a backend:
 * queues are durable by default when it has, and `durable: true` without one is refused.
 */
export function parseQueueOptions(name: string, v: unknown, limits: QueueLimits, storage: boolean): QueueOptions {
  const o = options(v, "options", CREATE_KEYS);
  const durable = field(o, "durable");
  if (durable !== undefined && typeof durable !== "boolean") throw MpregError.invalid("durable must be a boolean", "options.durable");
  if (durable === true && !storage) {
    throw MpregError.invalid("durable needs a storage backend, and this queue service has none", "options.durable");
  }
  let dlq: string | null;
  if (o["dead_letter_queue"] === null) dlq = null;
  else if (o["dead_letter_queue"] === undefined) {
    dlq = `${name}.dlq`;
    if (dlq.length > MAX_QUEUE_NAME_LENGTH) {
      throw MpregError.invalid("the default dead-letter queue name (name + .dlq) is too long: give dead_letter_queue", "options.dead_letter_queue");
    }
  } else dlq = parseQueueName(o["dead_letter_queue"], "options.dead_letter_queue");
  if (dlq === name) throw MpregError.invalid("a queue cannot be its own dead-letter queue", "options.dead_letter_queue");
  return {
    type: oneOf(field(o, "type"), "options.type", QUEUE_TYPES) ?? "standard",
    visibility_timeout_ms: intIn(field(o, "visibility_timeout_ms"), "options.visibility_timeout_ms", 0, limits.maxVisibilityTimeoutMs) ?? 30_000,
    max_receives: intIn(field(o, "max_receives"), "options.max_receives", 1, limits.maxMaxReceives) ?? 3,
    dead_letter_queue: dlq,
    delay_ms: intIn(field(o, "delay_ms"), "options.delay_ms", 0, limits.maxDelayMs) ?? 0,
    dedup_window_ms: intIn(field(o, "dedup_window_ms"), "options.dedup_window_ms", 0, limits.maxDedupWindowMs) ?? 300_000,
    max_messages: intIn(field(o, "max_messages"), "options.max_messages", 1, limits.maxMessagesPerQueue) ?? limits.defaultMaxMessages,
    durable: durable ?? storage,
  };
}

const SEND_KEYS = ["delay_ms", "priority", "group_id", "dedup_id", "delivery", "quorum", "quorum_timeout_ms"] as const;

/** `send` options, checked against the queue's type (priority only on priority queues, group_id only on fifo). */
export function parseSendOptions(v: unknown, type: QueueType, limits: QueueLimits): SendOptions {
  const o = options(v, "options", SEND_KEYS);
  const out: SendOptions = {};
  const delivery = oneOf(field(o, "delivery"), "options.delivery", DELIVERIES) ?? "at_least_once";
  out.delivery = delivery;
  const delay = intIn(field(o, "delay_ms"), "options.delay_ms", 0, limits.maxDelayMs);
  if (delay !== undefined) out.delay_ms = delay;
  const priority = field(o, "priority");
  if (priority !== undefined) {
    if (typeof priority !== "number" || !Number.isFinite(priority)) throw MpregError.invalid("priority must be a finite number", "options.priority");
    if (type !== "priority") throw MpregError.invalid(`priority needs a priority queue (this one is ${type})`, "options.priority");
    out.priority = priority;
  }
  const group = idString(field(o, "group_id"), "options.group_id");
  if (group !== undefined) {
    if (type !== "fifo") throw MpregError.invalid(`group_id needs a fifo queue (this one is ${type})`, "options.group_id");
    out.group_id = group;
  }
  const dedup = idString(field(o, "dedup_id"), "options.dedup_id");
  if (dedup !== undefined) out.dedup_id = dedup;
  const quorum = intIn(field(o, "quorum"), "options.quorum", 1, limits.maxSubscriptions);
  const qt = intIn(field(o, "quorum_timeout_ms"), "options.quorum_timeout_ms", 1, limits.maxVisibilityTimeoutMs);
  if (delivery !== "quorum" && quorum !== undefined) throw MpregError.invalid("quorum needs delivery quorum", "options.quorum");
  if (delivery !== "quorum" && qt !== undefined) throw MpregError.invalid("quorum_timeout_ms needs delivery quorum", "options.quorum_timeout_ms");
  if (quorum !== undefined) out.quorum = quorum;
  if (qt !== undefined) out.quorum_timeout_ms = qt;
  if (delivery === "broadcast" || delivery === "quorum") {
    // Copies go to the subscribers present at send time, in send order: a delay, a priority
    // or a group would each need a meaning for copies that nobody asked for.
    for (const k of ["delay_ms", "priority", "group_id"] as const) {
      if (out[k] !== undefined) throw MpregError.invalid(`${k} is not available with delivery ${delivery}`, `options.${k}`);
    }
  }
  return out;
}

/** `receive` options with defaults: max 1, wait_ms 0. */
export function parseReceiveOptions(v: unknown, limits: QueueLimits): Required<Omit<ReceiveOptions, "visibility_timeout_ms">> & ReceiveOptions {
  const o = options(v, "options", ["max", "wait_ms", "visibility_timeout_ms"]);
  const vis = intIn(field(o, "visibility_timeout_ms"), "options.visibility_timeout_ms", 0, limits.maxVisibilityTimeoutMs);
  return {
    max: intIn(field(o, "max"), "options.max", 1, MAX_RECEIVE_BATCH) ?? 1,
    wait_ms: intIn(field(o, "wait_ms"), "options.wait_ms", 0, MAX_WAIT_MS) ?? 0,
    ...(vis !== undefined ? { visibility_timeout_ms: vis } : {}),
  };
}

/** `nack` options with defaults: delay_ms 0. */
export function parseNackOptions(v: unknown, limits: QueueLimits): Required<NackOptions> {
  const o = options(v, "options", ["delay_ms"]);
  return { delay_ms: intIn(field(o, "delay_ms"), "options.delay_ms", 0, limits.maxDelayMs) ?? 0 };
}

/** `subscribe` options with defaults: prefetch 10. */
export function parseSubscribeOptions(v: unknown, limits: QueueLimits): Required<SubscribeOptions> {
  const o = options(v, "options", ["prefetch"]);
  return { prefetch: intIn(field(o, "prefetch"), "options.prefetch", 1, limits.maxPrefetch) ?? DEFAULT_PREFETCH };
}

/** The new visibility of `extend` (ms from now; 0 makes the message visible at once). */
export function parseExtendMs(v: unknown, limits: QueueLimits): number {
  if (v === undefined) throw MpregError.invalid("ms is required", "ms");
  return intIn(v, "ms", 0, limits.maxVisibilityTimeoutMs)!;
}

/** A receipt or subscription id: a non-empty string of at most 256 characters. */
export function parseHandle(v: unknown, path: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_HANDLE_LENGTH) {
    throw MpregError.invalid(`${path} must be a string of 1..${MAX_HANDLE_LENGTH} characters`, path);
  }
  return v;
}
