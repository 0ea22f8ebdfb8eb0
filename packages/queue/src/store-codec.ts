/**
 * How queues are laid out in one KV namespace of `@mpreg/persistence`, and loading them back.
 *
 * Keys (UTF-8; queue names hold no `/`, so a prefix never spans two queues):
 * - `q/<queue>`             queue record: options and counters
 * - `m/<queue>/<seq hex>`   message state: id, receive count, visible_at, dead-letter info (small, rewritten on lease and nack)
 * - `b/<queue>/<seq hex>`   message body (written once at send, deleted with the message)
 * - `d/<queue>/<dedup_id>`  remembered dedup id and when it expires
 *
 * Values are versioned records (`createRecordCodec`: one version byte, then MessagePack,
 * checked against a TypeBox schema when read back).
 */

import { createRecordCodec, type KVStore } from "@mpreg/persistence";
import { Type, type Static } from "typebox";

const Str = Type.String();
const Int = Type.Integer({ minimum: 0 });

const OptionsSchema = Type.Object({
  type: Type.Union([Type.Literal("standard"), Type.Literal("fifo"), Type.Literal("priority")]),
  visibility_timeout_ms: Int,
  max_receives: Type.Integer({ minimum: 1 }),
  dead_letter_queue: Type.Union([Str, Type.Null()]),
  delay_ms: Int,
  dedup_window_ms: Int,
  max_messages: Type.Integer({ minimum: 1 }),
  durable: Type.Boolean(),
});

const QueueRecordSchema = Type.Object({
  name: Str,
  options: OptionsSchema,
  created_at: Type.Number(),
  sent: Int,
  acked: Int,
  dead_lettered: Int,
});
/** The stored form of a queue. */
export type QueueRecord = Static<typeof QueueRecordSchema>;

const ReturnReasonSchema = Type.Union([
  Type.Literal("visibility_timeout"),
  Type.Literal("nack"),
  Type.Literal("owner_closed"),
  Type.Literal("unsubscribed"),
  Type.Literal("restart"),
]);

const MessageRecordSchema = Type.Object({
  id: Str,
  seq: Int,
  sent_at: Type.Number(),
  visible_at: Type.Number(),
  receive_count: Int,
  priority: Type.Optional(Type.Number()),
  group_id: Type.Optional(Str),
  /** Present (true) for at-most-once messages. */
  amo: Type.Optional(Type.Boolean()),
  dead_letter: Type.Optional(
    Type.Object({
      reason: Type.Literal("max_receives"),
      source_queue: Str,
      receive_count: Int,
      last_return: ReturnReasonSchema,
      dead_lettered_at: Type.Number(),
    }),
  ),
});
/** The stored state of one message (its body is stored apart). */
export type MessageRecord = Static<typeof MessageRecordSchema>;

const DedupRecordSchema = Type.Object({ dedup_id: Str, message_id: Str, expires_at: Type.Number() });
/** A remembered dedup id. */
export type DedupRecord = Static<typeof DedupRecordSchema>;

const queueCodec = createRecordCodec({ schema: QueueRecordSchema, version: 1 });
// The hot-path records are built by this package only: not validated on encode.
const messageCodec = createRecordCodec({ schema: MessageRecordSchema, version: 1, validateOnEncode: false });
const bodyCodec = createRecordCodec({ schema: Type.Unknown(), version: 1, validateOnEncode: false });
const dedupCodec = createRecordCodec({ schema: DedupRecordSchema, version: 1, validateOnEncode: false });

const hexSeq = (seq: number) => seq.toString(16).padStart(14, "0");

/** Key builders (strings; the service turns them into UTF-8 bytes). */
export const storeKeys = {
  queue: (q: string) => `q/${q}`,
  message: (q: string, seq: number) => `m/${q}/${hexSeq(seq)}`,
  body: (q: string, seq: number) => `b/${q}/${hexSeq(seq)}`,
  dedup: (q: string, dedupId: string) => `d/${q}/${dedupId}`,
};

export const encodeQueueRecord = (r: QueueRecord): Uint8Array => queueCodec.encode(r);
export const encodeMessageRecord = (r: MessageRecord): Uint8Array => messageCodec.encode(r);
export const encodeDedupRecord = (r: DedupRecord): Uint8Array => dedupCodec.encode(r);

/**
 * Encodes a body; the length (minus the version byte) is the body's size against the limits.
 * Throws when the value cannot be encoded as MessagePack (the caller answers 1002).
 */
export const encodeBody = (body: unknown): Uint8Array => bodyCodec.encode(body);

/** A message as loaded: its state and its body. */
export interface LoadedMessage {
  record: MessageRecord;
  body: unknown;
  size: number;
}

/** A queue as loaded. */
export interface LoadedQueue {
  record: QueueRecord;
  messages: LoadedMessage[];
  dedup: DedupRecord[];
}

/** Everything `loadStore` found. */
export interface LoadedState {
  queues: LoadedQueue[];
  /** Keys of unreadable or orphaned records (left out of the state; the caller deletes them). */
  dropped: string[];
}

const PAGE = 4096;
const te = new TextEncoder();
const td = new TextDecoder();

/** Every entry under a string prefix, read in pages. */
async function scan(kv: KVStore, prefix: string): Promise<{ key: string; value: Uint8Array }[]> {
  const out: { key: string; value: Uint8Array }[] = [];
  const p = te.encode(prefix);
  let gte: Uint8Array | undefined;
  for (;;) {
    const page = await kv.range({ prefix: p, limit: PAGE, ...(gte ? { gte } : {}) });
    for (const e of page) out.push({ key: td.decode(e.key), value: e.value });
    if (page.length < PAGE) return out;
    const last = page[page.length - 1]!.key;
    gte = new Uint8Array(last.length + 1);
    gte.set(last);
  }
}

/** Splits `x/<queue>/<rest>` into queue and rest. */
function split(key: string): [string, string] {
  const i = key.indexOf("/", 2);
  return i < 0 ? [key.slice(2), ""] : [key.slice(2, i), key.slice(i + 1)];
}

/**
 * Reads every queue, message and dedup record of the namespace. A record that does not decode,
 * or that belongs to no queue, is reported in `dropped` instead of failing the whole load.
 */
export async function loadStore(kv: KVStore): Promise<LoadedState> {
  const dropped: string[] = [];
  const queues = new Map<string, LoadedQueue>();
  for (const e of await scan(kv, "q/")) {
    try {
      const record = queueCodec.decode(e.value);
      queues.set(record.name, { record, messages: [], dedup: [] });
    } catch {
      dropped.push(e.key);
    }
  }
  const bodies = new Map<string, Uint8Array>();
  for (const e of await scan(kv, "b/")) bodies.set(e.key, e.value);
  for (const e of await scan(kv, "m/")) {
    const [qn, seq] = split(e.key);
    const q = queues.get(qn);
    const bodyKey = `b/${qn}/${seq}`;
    const bodyBytes = bodies.get(bodyKey);
    bodies.delete(bodyKey);
    try {
      if (q === undefined || bodyBytes === undefined) throw new Error("orphan");
      const record = messageCodec.decode(e.value);
      q.messages.push({ record, body: bodyCodec.decode(bodyBytes), size: bodyBytes.length - 1 });
    } catch {
      dropped.push(e.key);
      if (bodyBytes !== undefined) dropped.push(bodyKey);
    }
  }
  // Bodies whose state record is missing.
  dropped.push(...bodies.keys());
  for (const e of await scan(kv, "d/")) {
    const [qn] = split(e.key);
    const q = queues.get(qn);
    try {
      if (q === undefined) throw new Error("orphan");
      q.dedup.push(dedupCodec.decode(e.value));
    } catch {
      dropped.push(e.key);
    }
  }
  for (const q of queues.values()) q.messages.sort((a, b) => a.record.seq - b.record.seq);
  return { queues: [...queues.values()], dropped };
}
