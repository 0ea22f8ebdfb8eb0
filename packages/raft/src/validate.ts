import { MpregError } from "@mpreg/envelope";
import type { ConfChange, Entry, Message, MessageType, Snapshot } from "./types.js";

const TYPES = new Set<MessageType>([
  "app", "appResp", "vote", "voteResp", "preVote", "preVoteResp", "heartbeat", "heartbeatResp", "snap", "timeoutNow",
  "readIndex", "readIndexResp", "snapResp",
]);
const CC_TYPES = new Set(["addVoter", "addLearner", "remove"]);
const MAX_ID = 256;

function uint(v: unknown): boolean {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function id(v: unknown): boolean {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_ID;
}

function bad(reason: string, path: string): never {
  throw MpregError.invalid(`raft message: ${reason}`, path);
}

function checkConf(c: unknown, path: string): ConfChange {
  const x = c as Record<string, unknown>;
  if (typeof x !== "object" || x === null || !CC_TYPES.has(x.type as string) || !id(x.node)) bad("bad conf change", path);
  return { type: x.type as ConfChange["type"], node: x.node as string };
}

function checkEntry(e: unknown, path: string): Entry {
  const x = e as Record<string, unknown>;
  if (typeof x !== "object" || x === null) bad("entry is not an object", path);
  if (!uint(x.index) || !uint(x.term)) bad("entry index/term must be unsigned integers", path);
  if (x.type !== "normal" && x.type !== "conf") bad("entry type must be normal or conf", `${path}.type`);
  if (!(x.data instanceof Uint8Array)) bad("entry data must be bytes", `${path}.data`);
  const out: Entry = { index: x.index as number, term: x.term as number, type: x.type, data: x.data };
  if (x.type === "conf") out.conf = checkConf(x.conf, `${path}.conf`);
  return out;
}

function checkSnapshot(s: unknown, path: string): Snapshot {
  const x = s as { meta?: Record<string, unknown>; data?: unknown };
  if (typeof x !== "object" || x === null || typeof x.meta !== "object" || x.meta === null) bad("snapshot needs meta", path);
  const m = x.meta;
  if (!uint(m.index) || !uint(m.term)) bad("snapshot index/term must be unsigned integers", `${path}.meta`);
  const conf = m.conf as { voters?: unknown; learners?: unknown };
  if (typeof conf !== "object" || conf === null || !Array.isArray(conf.voters) || !Array.isArray(conf.learners) ||
    !conf.voters.every(id) || !conf.learners.every(id)) {
    bad("snapshot conf must list voter and learner ids", `${path}.meta.conf`);
  }
  if (!(x.data instanceof Uint8Array)) bad("snapshot data must be bytes", `${path}.data`);
  return {
    meta: { index: m.index as number, term: m.term as number, conf: { voters: conf.voters as string[], learners: conf.learners as string[] } },
    data: x.data,
  };
}

/**
 * Checks a decoded Raft message against the wire schema (docs/raft.md) and returns a clean
 * copy holding only known fields. Throws INVALID_REQUEST naming the bad field. `maxEntries`
 * bounds the entries of one message.
 */
export function validateMessage(v: unknown, maxEntries = 10_000): Message {
  const x = v as Record<string, unknown>;
  if (typeof x !== "object" || x === null) bad("not an object", "");
  if (!TYPES.has(x.type as MessageType)) bad("unknown type", "type");
  if (!id(x.from) || !id(x.to)) bad("from/to must be non-empty ids", "from");
  if (!uint(x.term)) bad("term must be an unsigned integer", "term");
  const m: Message = { type: x.type as MessageType, from: x.from as string, to: x.to as string, term: x.term as number };
  for (const k of ["index", "logTerm", "commit", "rejectHint", "offset", "total"] as const) {
    if (x[k] !== undefined) {
      if (!uint(x[k])) bad(`${k} must be an unsigned integer`, k);
      m[k] = x[k] as number;
    }
  }
  if (x.reject !== undefined) {
    if (typeof x.reject !== "boolean") bad("reject must be a boolean", "reject");
    m.reject = x.reject;
  }
  if (x.context !== undefined) {
    if (typeof x.context !== "string" || x.context.length > 1024) bad("context must be a short string", "context");
    m.context = x.context;
  }
  if (x.entries !== undefined) {
    if (!Array.isArray(x.entries) || x.entries.length > maxEntries) bad("entries must be a bounded array", "entries");
    m.entries = x.entries.map((e, i) => checkEntry(e, `entries[${i}]`));
    const prev = m.index ?? 0;
    m.entries.forEach((e, i) => {
      if (e.index !== prev + 1 + i) bad("entries must follow index consecutively", `entries[${i}].index`);
    });
  }
  if (x.snapshot !== undefined) m.snapshot = checkSnapshot(x.snapshot, "snapshot");
  return m;
}
