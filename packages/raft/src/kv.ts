import { Decoder, Encoder } from "@msgpack/msgpack";
import { ErrorCode, MpregError } from "@mpreg/envelope";
import { MAX_SNAPSHOT_BYTES } from "@mpreg/persistence";
import { compareKeys } from "./key-order.js";
import type { StateMachine } from "./node.js";
import { SortedKeys } from "./sorted-keys.js";

/** A write inside a transaction (values are MessagePack-encoded bytes in commands). */
export type KvTxnOpCommand =
  | { put: { key: string; value: Uint8Array; lease?: number } }
  | { delete: string }
  | { get: string };

/** One comparison of a transaction; `value` is bytes (encoded) for target `value`, else a number. */
export interface KvCompareCommand {
  key: string;
  target: "version" | "value" | "mod_revision";
  op: "==" | "!=" | "<" | ">";
  value: number | Uint8Array;
}

/**
 * A command of the replicated key-value store, as it travels in the log (MessagePack). Values
 * are the MessagePack encoding of the client's value, kept as bytes: the store never decodes
 * them except to order them in a `<`/`>` comparison.
 */
export type KvCommand =
  | { op: "put"; key: string; value: Uint8Array; lease?: number }
  | { op: "delete"; key: string }
  /** Writes only when the key's version equals `version` (0 = the key must not exist). */
  | { op: "cas"; key: string; version: number; value: Uint8Array }
  | { op: "txn"; compare: KvCompareCommand[]; success: KvTxnOpCommand[]; failure: KvTxnOpCommand[] }
  /** The lease id is the index of this entry in the log (unique in the group forever). */
  | { op: "lease_grant"; ttl: number }
  | { op: "lease_revoke"; id: number }
  /** Proposed by the leader when its clock says the lease's time is up; see docs/raft.md. */
  | { op: "lease_expire"; id: number };

/** A key's stored state. */
export interface KvRecord {
  /** MessagePack encoding of the value. */
  value: Uint8Array;
  /** Writes since the key was (re)created: 1 on creation. */
  version: number;
  /** Revision of the last write. */
  mod_revision: number;
  /** Revision of the write that created it. */
  create_revision: number;
  /** Lease the key is attached to (0: none). */
  lease: number;
}

/** What a `get` (also inside a transaction) observes; the value is encoded bytes. */
export type KvGetResult = { found: false } | { found: true; value: Uint8Array; version: number; mod_revision: number };

/** The result of one operation of a transaction. */
export type KvTxnOpResult = { version: number; revision: number } | { deleted: boolean; revision: number } | KvGetResult;

/** Error results: the same on every replica, and nothing was applied. */
export interface KvError {
  op: "error";
  code: typeof ErrorCode.NOT_FOUND | typeof ErrorCode.INVALID_REQUEST | typeof ErrorCode.OVERLOADED;
  reason: string;
  message: string;
  path?: string;
}

/** The result of applying a command (the same on every replica). */
export type KvResult =
  | { op: "put"; version: number; revision: number }
  | { op: "delete"; deleted: boolean; revision: number }
  | { op: "cas"; ok: boolean; version: number; revision: number }
  | { op: "txn"; succeeded: boolean; results: KvTxnOpResult[]; revision: number }
  | { op: "lease_grant"; id: number; ttl: number }
  | { op: "lease_revoke"; revoked: boolean; revision: number }
  | { op: "lease_expire"; expired: boolean; revision: number }
  | KvError;

/** One change seen by watchers; `value` (encoded) only on puts. */
export interface KvEvent {
  type: "put" | "delete";
  key: string;
  value?: Uint8Array;
  mod_revision: number;
}

/** What the store tells its owner (the watch hub and the lessor of `RaftKV`). */
export interface KvListener {
  /** A new revision was applied with these events (never empty), in revision order. */
  onRevision(revision: number, events: readonly KvEvent[]): void;
  /** A lease was granted (`ttl` set) or is gone (revoked or expired). */
  onLease(id: number, ttl: number | undefined): void;
  /** The state was replaced by a snapshot (revisions may have jumped). */
  onRestore(): void;
}

/** Limits of the store. They must be the same on every member: they decide what applies. */
export interface KvLimits {
  /** Most keys; a write creating a key beyond it fails with 1007 `too_many_keys`. Default 1,000,000. */
  maxKeys?: number;
  /** Longest key in UTF-8 bytes (1002 `key_too_large`). Default 4096. */
  maxKeyBytes?: number;
  /** Largest encoded value (1002 `value_too_large`). Default 1 MiB. */
  maxValueBytes?: number;
  /**
   * Most bytes of keys and values held (UTF-8 key + encoded value + 48 per key); a write that
   * would pass it (and grow the store) fails with 1007 `quota`. Default 256 MiB.
   */
  quotaBytes?: number;
  /** Most leases (1007 `too_many_leases`). Default 10,000. */
  maxLeases?: number;
  /** Longest lease TTL in ms. Default 30 days. */
  maxLeaseTtlMs?: number;
  /** Most comparisons plus operations of one transaction (1002 `txn_too_large`). Default 128. */
  maxTxnOps?: number;
  /** Revisions of change history kept for watches. Default 10,000. */
  historyRevisions?: number;
  /**
   * Bytes of change history kept for watches (at least the newest revision is kept). The
   * history is part of snapshots, so it also adds to what a lagging member receives. Default 16 MiB.
   */
  historyBytes?: number;
}

interface Lease {
  ttl: number;
  keys: Set<string>;
}

interface HistoryEntry {
  revision: number;
  events: KvEvent[];
  bytes: number;
}

const KEY_OVERHEAD = 48;
const EVENT_OVERHEAD = 32;
const SNAPSHOT_MAGIC = [0x4d, 0x4b, 0x56, 0x32]; // "MKV2"
const TAG_HEADER = 1;
const TAG_KEY = 2;
const TAG_LEASE = 3;
const TAG_HISTORY = 4;

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * MessagePack encoding of a client value (the form values are stored and compared in). Binary
 * and long string values are framed by hand: the generic encoder copies large payloads an order
 * of magnitude slower than a plain `set` (same bytes either way).
 */
export function encodeValue(v: unknown): Uint8Array {
  if (v instanceof Uint8Array && v.length > 256) {
    const out = new Uint8Array(v.length + 5);
    const n = writeHeader(out, v.length, 0xc4);
    out.set(v, n);
    return n === 5 ? out : out.subarray(0, v.length + n);
  }
  if (typeof v === "string" && v.length > 1024) {
    const bytes = textEncoder.encode(v);
    const out = new Uint8Array(bytes.length + 5);
    const n = writeHeader(out, bytes.length, 0xd9);
    out.set(bytes, n);
    return out.subarray(0, bytes.length + n);
  }
  return encoder.encode(v === undefined ? null : v);
}

/** A bin (0xc4/c5/c6) or str (0xd9/da/db) header for `len` bytes; returns its length. */
function writeHeader(out: Uint8Array, len: number, code8: number): number {
  if (len <= 0xff) {
    out[0] = code8;
    out[1] = len;
    return 2;
  }
  if (len <= 0xffff) {
    out[0] = code8 + 1;
    out[1] = len >>> 8;
    out[2] = len & 0xff;
    return 3;
  }
  out[0] = code8 + 2;
  new DataView(out.buffer, out.byteOffset, 5).setUint32(1, len);
  return 5;
}

/** The client value of stored bytes. */
export function decodeValue(b: Uint8Array): unknown {
  return decoder.decode(b);
}

/** UTF-8 length of a string without allocating. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** No lone surrogates: such a string has no UTF-8 form (and no place in the key order). */
function wellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c > 0xdbff) return false;
    const d = s.charCodeAt(i + 1);
    if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
    i++;
  }
  return true;
}

function err(code: KvError["code"], reason: string, message: string, path?: string): KvError {
  const e: KvError = { op: "error", code, reason, message };
  if (path !== undefined) e.path = path;
  return e;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/**
 * Order of two client values for `<`/`>`: numbers numerically, strings by UTF-8 bytes, binary
 * by bytes; any other pair is unordered (undefined: the comparison is false).
 */
function orderValues(a: Uint8Array, b: Uint8Array): number | undefined {
  let x: unknown;
  let y: unknown;
  try {
    x = decoder.decode(a);
    y = decoder.decode(b);
  } catch {
    return undefined;
  }
  if (typeof x === "number" && typeof y === "number") return x - y;
  if (typeof x === "string" && typeof y === "string") return compareKeys(x, y);
  if (x instanceof Uint8Array && y instanceof Uint8Array) return compareBytes(x, y);
  return undefined;
}

function applyOp(op: KvCompareCommand["op"], c: number): boolean {
  switch (op) {
    case "==":
      return c === 0;
    case "!=":
      return c !== 0;
    case "<":
      return c < 0;
    case ">":
      return c > 0;
  }
}

const TARGETS = new Set(["version", "value", "mod_revision"]);
const OPS = new Set(["==", "!=", "<", ">"]);

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function uint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/**
 * The replicated key-value state machine: keys ordered by UTF-8 bytes, any MessagePack value,
 * one revision counter for the whole store, per-key version and mod_revision, transactions,
 * leases and a bounded change history for watches. Deterministic: the same commands in the same
 * order give the same state, results and events on every replica; limits are enforced the
 * same way everywhere, and a refused command changes nothing.
 */
export class KvStateMachine implements StateMachine {
  private readonly data = new Map<string, KvRecord>();
  private readonly order = new SortedKeys();
  private readonly leases = new Map<number, Lease>();
  private history: HistoryEntry[] = [];
  private historyHead = 0;
  private historyBytesHeld = 0;
  private rev = 0;
  private compacted = 0;
  private bytes = 0;
  /** Told about revisions, leases and restores (set by RaftKV). */
  listener: KvListener | undefined;

  readonly limits: Required<KvLimits>;

  constructor(limits: KvLimits = {}) {
    this.limits = {
      maxKeys: limits.maxKeys ?? 1_000_000,
      maxKeyBytes: limits.maxKeyBytes ?? 4096,
      maxValueBytes: limits.maxValueBytes ?? 1 << 20,
      quotaBytes: limits.quotaBytes ?? 256 * 1024 * 1024,
      maxLeases: limits.maxLeases ?? 10_000,
      maxLeaseTtlMs: limits.maxLeaseTtlMs ?? 30 * 24 * 3600 * 1000,
      maxTxnOps: limits.maxTxnOps ?? 128,
      historyRevisions: limits.historyRevisions ?? 10_000,
      historyBytes: limits.historyBytes ?? 16 * 1024 * 1024,
    };
    // A snapshot holds the keys and the history; it must fit the storage's snapshot limit
    // (with room for the per-key framing the quota does not count).
    if (this.limits.quotaBytes + this.limits.historyBytes > MAX_SNAPSHOT_BYTES * 0.9) {
      throw MpregError.invalid(
        `raft kv: quotaBytes + historyBytes must stay under ${Math.floor(MAX_SNAPSHOT_BYTES * 0.9)} (a snapshot holds both)`,
        "quotaBytes",
      );
    }
  }

  // ---------------------------------------------------------------- reads

  /** The store's revision: that of the last write (0 before any). */
  get revision(): number {
    return this.rev;
  }

  /** Watches cannot start at or below this revision (its history was dropped). */
  get compactRevision(): number {
    return this.compacted;
  }

  /** Bytes held, as counted for the quota. */
  get byteSize(): number {
    return this.bytes;
  }

  get size(): number {
    return this.data.size;
  }

  get(key: string): KvRecord | undefined {
    return this.data.get(key);
  }

  /** Keys in `[start, end)` (no end: every key >= start), at most `limit`, plus whether more exist. */
  range(start: string, end: string | undefined, limit: number, maxBytes = Number.POSITIVE_INFINITY): { items: [string, KvRecord][]; more: boolean } {
    const items: [string, KvRecord][] = [];
    let bytes = 0;
    for (const key of this.order.from(start)) {
      if (end !== undefined && compareKeys(key, end) >= 0) return { items, more: false };
      const rec = this.data.get(key)!;
      bytes += key.length + rec.value.length + KEY_OVERHEAD;
      if (items.length >= limit || (items.length > 0 && bytes > maxBytes)) return { items, more: true };
      items.push([key, rec]);
    }
    return { items, more: false };
  }

  /** The TTL of a lease, or undefined when it does not exist. */
  leaseTtl(id: number): number | undefined {
    return this.leases.get(id)?.ttl;
  }

  /** Every lease with its TTL (the lessor of a new leader restarts their clocks). */
  leaseList(): [number, number][] {
    return [...this.leases].map(([id, l]) => [id, l.ttl]);
  }

  /** Keys attached to a lease, in key order. */
  leaseKeys(id: number): string[] {
    return [...(this.leases.get(id)?.keys ?? [])].sort(compareKeys);
  }

  /** Events of revisions `>= from` still in the history, oldest first. */
  historyFrom(from: number): { revision: number; events: readonly KvEvent[] }[] {
    const out: { revision: number; events: readonly KvEvent[] }[] = [];
    // Binary search: history revisions are increasing.
    let lo = this.historyHead;
    let hi = this.history.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.history[mid]!.revision < from) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.history.length; i++) out.push(this.history[i]!);
    return out;
  }

  /**
   * Checks a command against the limits that do not depend on the state (key and value sizes,
   * well-formed keys, shapes). Returns the error, or undefined when it is acceptable. Used by
   * `apply` and, to refuse early without proposing, by the proposer.
   */
  check(cmd: KvCommand): KvError | undefined {
    switch (cmd.op) {
      case "put":
        return this.checkKey(cmd.key, "key") ?? this.checkValue(cmd.value, "value") ?? this.checkLeaseId(cmd.lease, true, "lease");
      case "delete":
        return this.checkKey(cmd.key, "key");
      case "cas":
        if (!uint(cmd.version)) return err(ErrorCode.INVALID_REQUEST, "bad_version", "version must be a non-negative integer", "version");
        return this.checkKey(cmd.key, "key") ?? this.checkValue(cmd.value, "value");
      case "txn": {
        if (!Array.isArray(cmd.compare) || !Array.isArray(cmd.success) || !Array.isArray(cmd.failure)) {
          return err(ErrorCode.INVALID_REQUEST, "bad_txn", "txn needs compare, success and failure lists");
        }
        const n = cmd.compare.length + cmd.success.length + cmd.failure.length;
        if (n > this.limits.maxTxnOps) {
          return err(ErrorCode.INVALID_REQUEST, "txn_too_large", `a txn holds at most ${this.limits.maxTxnOps} compares and operations`);
        }
        for (let i = 0; i < cmd.compare.length; i++) {
          const e = this.checkCompare(cmd.compare[i], `compare[${i}]`);
          if (e) return e;
        }
        for (const branch of ["success", "failure"] as const) {
          for (let i = 0; i < cmd[branch].length; i++) {
            const e = this.checkTxnOp(cmd[branch][i], `${branch}[${i}]`);
            if (e) return e;
          }
        }
        return undefined;
      }
      case "lease_grant":
        if (!Number.isSafeInteger(cmd.ttl) || cmd.ttl < 1 || cmd.ttl > this.limits.maxLeaseTtlMs) {
          return err(ErrorCode.INVALID_REQUEST, "bad_ttl", `ttl_ms must be an integer in [1, ${this.limits.maxLeaseTtlMs}]`, "ttl_ms");
        }
        return undefined;
      case "lease_revoke":
      case "lease_expire":
        return this.checkLeaseId(cmd.id, false, "lease_id");
      default:
        return err(ErrorCode.INVALID_REQUEST, "bad_command", "unknown command");
    }
  }

  private checkKey(k: unknown, path: string): KvError | undefined {
    if (typeof k !== "string" || k.length === 0) return err(ErrorCode.INVALID_REQUEST, "bad_key", "key must be a non-empty string", path);
    if (!wellFormed(k)) return err(ErrorCode.INVALID_REQUEST, "bad_key", "key must be well-formed Unicode (no lone surrogates)", path);
    if (utf8Length(k) > this.limits.maxKeyBytes) {
      return err(ErrorCode.INVALID_REQUEST, "key_too_large", `key is longer than ${this.limits.maxKeyBytes} UTF-8 bytes`, path);
    }
    return undefined;
  }

  private checkValue(v: unknown, path: string): KvError | undefined {
    if (!(v instanceof Uint8Array)) return err(ErrorCode.INVALID_REQUEST, "bad_value", "value must be encoded bytes", path);
    if (v.length > this.limits.maxValueBytes) {
      return err(ErrorCode.INVALID_REQUEST, "value_too_large", `value is larger than ${this.limits.maxValueBytes} bytes encoded`, path);
    }
    return undefined;
  }

  private checkLeaseId(id: unknown, optional: boolean, path: string): KvError | undefined {
    if (id === undefined && optional) return undefined;
    if (!Number.isSafeInteger(id) || (id as number) < 1) return err(ErrorCode.INVALID_REQUEST, "bad_lease", "lease id must be a positive integer", path);
    return undefined;
  }

  private checkCompare(c: unknown, path: string): KvError | undefined {
    if (!isObj(c)) return err(ErrorCode.INVALID_REQUEST, "bad_compare", "a compare is an object", path);
    const keyErr = this.checkKey(c.key, `${path}.key`);
    if (keyErr) return keyErr;
    if (!TARGETS.has(c.target as string)) return err(ErrorCode.INVALID_REQUEST, "bad_compare", "target must be version, value or mod_revision", `${path}.target`);
    if (!OPS.has(c.op as string)) return err(ErrorCode.INVALID_REQUEST, "bad_compare", 'op must be "==", "!=", "<" or ">"', `${path}.op`);
    if (c.target === "value") return this.checkValue(c.value, `${path}.value`);
    if (!uint(c.value)) return err(ErrorCode.INVALID_REQUEST, "bad_compare", `${String(c.target)} compares with a non-negative integer`, `${path}.value`);
    return undefined;
  }

  private checkTxnOp(op: unknown, path: string): KvError | undefined {
    if (!isObj(op)) return err(ErrorCode.INVALID_REQUEST, "bad_op", "an operation is {put}, {delete} or {get}", path);
    const kinds = ["put", "delete", "get"].filter((k) => op[k] !== undefined);
    if (kinds.length !== 1) return err(ErrorCode.INVALID_REQUEST, "bad_op", "an operation has exactly one of put, delete, get", path);
    if (op.put !== undefined) {
      const p = op.put as Record<string, unknown>;
      if (!isObj(p)) return err(ErrorCode.INVALID_REQUEST, "bad_op", "put needs key and value", `${path}.put`);
      return this.checkKey(p.key, `${path}.put.key`) ?? this.checkValue(p.value, `${path}.put.value`) ?? this.checkLeaseId(p.lease, true, `${path}.put.lease`);
    }
    return this.checkKey(op.delete ?? op.get, `${path}.${kinds[0]}`);
  }

  // ---------------------------------------------------------------- apply

  apply(data: Uint8Array, index: number): KvResult {
    let cmd: KvCommand;
    try {
      cmd = decodeKvCommand(data);
    } catch {
      return err(ErrorCode.INVALID_REQUEST, "bad_command", "undecodable command");
    }
    const bad = this.check(cmd);
    if (bad) return bad;
    switch (cmd.op) {
      case "put": {
        const w = new WriteSet(this);
        const r = w.put(cmd.key, cmd.value, cmd.lease ?? 0);
        const e = this.commit(w);
        return e ?? { op: "put", version: r.version, revision: this.rev };
      }
      case "delete": {
        const w = new WriteSet(this);
        const deleted = w.delete(cmd.key);
        this.commit(w);
        return { op: "delete", deleted, revision: this.rev };
      }
      case "cas": {
        const cur = this.data.get(cmd.key)?.version ?? 0;
        if (cur !== cmd.version) return { op: "cas", ok: false, version: cur, revision: this.rev };
        const w = new WriteSet(this);
        const r = w.put(cmd.key, cmd.value, 0);
        const e = this.commit(w);
        return e ?? { op: "cas", ok: true, version: r.version, revision: this.rev };
      }
      case "txn":
        return this.applyTxn(cmd);
      case "lease_grant": {
        if (this.leases.size >= this.limits.maxLeases) {
          return err(ErrorCode.OVERLOADED, "too_many_leases", `the store holds at most ${this.limits.maxLeases} leases`);
        }
        this.leases.set(index, { ttl: cmd.ttl, keys: new Set() });
        this.listener?.onLease(index, cmd.ttl);
        return { op: "lease_grant", id: index, ttl: cmd.ttl };
      }
      case "lease_revoke":
      case "lease_expire": {
        const gone = this.dropLease(cmd.id);
        return cmd.op === "lease_revoke"
          ? { op: "lease_revoke", revoked: gone, revision: this.rev }
          : { op: "lease_expire", expired: gone, revision: this.rev };
      }
    }
  }

  private applyTxn(cmd: Extract<KvCommand, { op: "txn" }>): KvResult {
    const succeeded = cmd.compare.every((c) => this.evaluate(c));
    const ops = succeeded ? cmd.success : cmd.failure;
    const w = new WriteSet(this);
    // Results name the txn's revision, known only at the end: filled in after the commit.
    const results: KvTxnOpResult[] = [];
    const writes: { version: number; revision: number }[] = [];
    const deletes: { deleted: boolean; revision: number }[] = [];
    /** Gets that saw this txn's own writes: their mod_revision is the txn's. */
    const ownReads: { mod_revision: number }[] = [];
    for (const op of ops) {
      if ("put" in op) {
        const r = { version: w.put(op.put.key, op.put.value, op.put.lease ?? 0).version, revision: 0 };
        writes.push(r);
        results.push(r);
      } else if ("delete" in op) {
        const r = { deleted: w.delete(op.delete), revision: 0 };
        deletes.push(r);
        results.push(r);
      } else {
        const rec = w.get(op.get);
        if (!rec) {
          results.push({ found: false });
          continue;
        }
        const r = { found: true as const, value: rec.value, version: rec.version, mod_revision: rec.mod_revision };
        if (w.changes.has(op.get)) ownReads.push(r);
        results.push(r);
      }
    }
    const e = this.commit(w);
    if (e) return e;
    for (const r of writes) r.revision = this.rev;
    for (const r of deletes) r.revision = this.rev;
    for (const r of ownReads) r.mod_revision = this.rev;
    return { op: "txn", succeeded, results, revision: this.rev };
  }

  private evaluate(c: KvCompareCommand): boolean {
    const rec = this.data.get(c.key);
    if (c.target === "value") {
      if (!rec) return false; // an absent key has no value to compare
      const v = c.value as Uint8Array;
      if (c.op === "==") return bytesEqual(rec.value, v);
      if (c.op === "!=") return !bytesEqual(rec.value, v);
      const o = orderValues(rec.value, v);
      return o !== undefined && applyOp(c.op, o);
    }
    const have = c.target === "version" ? (rec?.version ?? 0) : (rec?.mod_revision ?? 0);
    return applyOp(c.op, have - (c.value as number));
  }

  /**
   * Applies a write set atomically at the next revision, or refuses it whole: 1007 when the
   * store would pass its quota or key count (a write that shrinks the store always goes
   * through), 1001 when a put names a lease that does not exist.
   */
  private commit(w: WriteSet): KvError | undefined {
    if (w.missingLease !== undefined) {
      // Even when a later operation of the same txn undid the put: the request named a lease
      // that does not exist.
      return err(ErrorCode.NOT_FOUND, "lease_not_found", `lease ${w.missingLease} does not exist (expired or revoked)`, "lease");
    }
    if (w.changes.size === 0) return undefined;
    let bytes = this.bytes;
    let keys = this.data.size;
    for (const [key, rec] of w.changes) {
      const cur = this.data.get(key);
      if (cur) {
        bytes -= utf8Length(key) + cur.value.length + KEY_OVERHEAD;
        keys--;
      }
      if (rec) {
        bytes += utf8Length(key) + rec.value.length + KEY_OVERHEAD;
        keys++;
      }
    }
    if (bytes > this.limits.quotaBytes && bytes > this.bytes) {
      return err(ErrorCode.OVERLOADED, "quota", `the store would pass its quota of ${this.limits.quotaBytes} bytes`);
    }
    if (keys > this.limits.maxKeys && keys > this.data.size) {
      return err(ErrorCode.OVERLOADED, "too_many_keys", `the store holds at most ${this.limits.maxKeys} keys`);
    }
    const revision = this.rev + 1;
    const events: KvEvent[] = [];
    for (const [key, rec] of w.changes) {
      const cur = this.data.get(key);
      if (cur?.lease) this.leases.get(cur.lease)?.keys.delete(key);
      if (rec) {
        rec.mod_revision = revision;
        if (rec.create_revision === 0) rec.create_revision = revision;
        this.data.set(key, rec);
        if (!cur) this.order.add(key);
        if (rec.lease) this.leases.get(rec.lease)!.keys.add(key);
        events.push({ type: "put", key, value: rec.value, mod_revision: revision });
      } else if (cur) {
        this.data.delete(key);
        this.order.delete(key);
        events.push({ type: "delete", key, mod_revision: revision });
      }
    }
    this.bytes = bytes;
    if (events.length > 0) this.record(revision, events);
    return undefined;
  }

  /** Removes a lease and its keys (one revision when it held keys); false when it did not exist. */
  private dropLease(id: number): boolean {
    const lease = this.leases.get(id);
    if (!lease) return false;
    const w = new WriteSet(this);
    for (const key of [...lease.keys].sort(compareKeys)) w.delete(key);
    this.commit(w); // deletes only shrink the store: never refused
    this.leases.delete(id);
    this.listener?.onLease(id, undefined);
    return true;
  }

  private record(revision: number, events: KvEvent[]): void {
    this.rev = revision;
    let size = 0;
    for (const e of events) size += e.key.length + (e.value?.length ?? 0) + EVENT_OVERHEAD;
    this.history.push({ revision, events, bytes: size });
    this.historyBytesHeld += size;
    this.trimHistory();
    this.listener?.onRevision(revision, events);
  }

  private trimHistory(): void {
    const L = this.limits;
    while (this.history.length - this.historyHead > 1 &&
      (this.history.length - this.historyHead > L.historyRevisions || this.historyBytesHeld > L.historyBytes)) {
      const h = this.history[this.historyHead++]!;
      this.historyBytesHeld -= h.bytes;
      this.compacted = h.revision;
    }
    // Drop the consumed prefix now and then (amortised O(1) per revision).
    if (this.historyHead > 1024 && this.historyHead * 2 > this.history.length) {
      this.history = this.history.slice(this.historyHead);
      this.historyHead = 0;
    }
  }

  // ---------------------------------------------------------------- snapshots

  /**
   * An image of the whole state: "MKV2", then records of [tag u8][length u32][payload]: a
   * header (MessagePack `{revision, compact}`), each key (MessagePack `[key, version,
   * mod_revision, create_revision, lease]` followed by the raw encoded value), each lease and
   * each history revision. Values are copied once, into the one output buffer.
   */
  snapshot(): Uint8Array {
    const parts: Uint8Array[] = [Uint8Array.from(SNAPSHOT_MAGIC)];
    let total = SNAPSHOT_MAGIC.length;
    const add = (tag: number, ...payload: Uint8Array[]) => {
      let len = 0;
      for (const p of payload) len += p.length;
      const head = new Uint8Array(5);
      head[0] = tag;
      new DataView(head.buffer).setUint32(1, len);
      parts.push(head, ...payload);
      total += 5 + len;
    };
    add(TAG_HEADER, encoder.encode({ revision: this.rev, compact: this.compacted }));
    for (const key of this.order.from()) {
      const r = this.data.get(key)!;
      const meta = encoder.encode([key, r.version, r.mod_revision, r.create_revision, r.lease]);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, meta.length);
      add(TAG_KEY, len, meta, r.value);
    }
    for (const [id, l] of this.leases) add(TAG_LEASE, encoder.encode([id, l.ttl]));
    for (let i = this.historyHead; i < this.history.length; i++) {
      // [revision, [[put?1:0, key, mod_revision, value length]...]] then the values, raw.
      const h = this.history[i]!;
      const meta = encoder.encode([h.revision, h.events.map((e) => [e.type === "put" ? 1 : 0, e.key, e.mod_revision, e.value?.length ?? -1])]);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, meta.length);
      add(TAG_HISTORY, len, meta, ...h.events.flatMap((e) => (e.value ? [e.value] : [])));
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }

  restore(snapshot: Uint8Array): void {
    this.data.clear();
    this.order.clear();
    this.leases.clear();
    this.history = [];
    this.historyHead = 0;
    this.historyBytesHeld = 0;
    this.rev = 0;
    this.compacted = 0;
    this.bytes = 0;
    if (snapshot[0] === 0x5b) this.restoreLegacy(snapshot);
    else this.restoreV2(snapshot);
    this.listener?.onRestore();
  }

  private restoreV2(s: Uint8Array): void {
    for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) {
      if (s[i] !== SNAPSHOT_MAGIC[i]) throw new Error("raft kv: not a KV snapshot");
    }
    const dv = new DataView(s.buffer, s.byteOffset, s.byteLength);
    let at = SNAPSHOT_MAGIC.length;
    while (at < s.length) {
      const tag = s[at]!;
      const len = dv.getUint32(at + 1);
      const body = s.subarray(at + 5, at + 5 + len);
      at += 5 + len;
      if (tag === TAG_HEADER) {
        const h = decoder.decode(body) as { revision: number; compact: number };
        this.rev = h.revision;
        this.compacted = h.compact;
      } else if (tag === TAG_KEY) {
        const mlen = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0);
        const [key, version, mod, create, lease] = decoder.decode(body.subarray(4, 4 + mlen)) as [string, number, number, number, number];
        // A copy: a subarray would keep the whole snapshot buffer alive.
        const value = body.slice(4 + mlen);
        this.data.set(key, { value, version, mod_revision: mod, create_revision: create, lease });
        this.order.add(key);
        this.bytes += utf8Length(key) + value.length + KEY_OVERHEAD;
      } else if (tag === TAG_LEASE) {
        const [id, ttl] = decoder.decode(body) as [number, number];
        this.leases.set(id, { ttl, keys: new Set() });
      } else if (tag === TAG_HISTORY) {
        const mlen = new DataView(body.buffer, body.byteOffset, body.byteLength).getUint32(0);
        const [revision, evs] = decoder.decode(body.subarray(4, 4 + mlen)) as [number, [number, string, number, number][]];
        let vat = 4 + mlen;
        const events: KvEvent[] = evs.map(([t, key, mod, vlen]): KvEvent => {
          if (t !== 1) return { type: "delete", key, mod_revision: mod };
          // Values already held by a key share its bytes (no second copy in memory).
          const raw = body.subarray(vat, vat + vlen);
          vat += vlen;
          const cur = this.data.get(key);
          const value = cur && cur.mod_revision === mod ? cur.value : raw.slice();
          return { type: "put", key, value, mod_revision: mod };
        });
        let size = 0;
        for (const e of events) size += e.key.length + (e.value?.length ?? 0) + EVENT_OVERHEAD;
        this.history.push({ revision, events, bytes: size });
        this.historyBytesHeld += size;
      }
    }
    for (const [key, r] of this.data) if (r.lease) this.leases.get(r.lease)?.keys.add(key);
  }

  /** The JSON snapshot of the first version (string values holding JSON text). */
  private restoreLegacy(s: Uint8Array): void {
    const rows = JSON.parse(textDecoder.decode(s)) as [string, { value: string; version: number }][];
    if (!Array.isArray(rows)) throw new Error("raft kv: snapshot is not an entry list");
    for (const [key, v] of rows) {
      const value = encodeValue(JSON.parse(v.value));
      this.data.set(key, { value, version: v.version, mod_revision: 0, create_revision: 0, lease: 0 });
      this.order.add(key);
      this.bytes += utf8Length(key) + value.length + KEY_OVERHEAD;
    }
  }
}

/**
 * The changes of one command before they are applied: later operations see earlier ones
 * (a `get` in a transaction sees the transaction's own puts).
 */
class WriteSet {
  /** Key -> its new record, or null when deleted; in order of first change. */
  readonly changes = new Map<string, KvRecord | null>();
  /** A lease named by a put that does not exist (the whole command is refused). */
  missingLease: number | undefined;

  constructor(private readonly sm: KvStateMachine) {}

  get(key: string): KvRecord | undefined {
    const c = this.changes.get(key);
    return c === undefined ? this.sm.get(key) : (c ?? undefined);
  }

  put(key: string, value: Uint8Array, lease: number): KvRecord {
    if (lease !== 0 && this.sm.leaseTtl(lease) === undefined) this.missingLease ??= lease;
    const cur = this.get(key);
    const rec: KvRecord = {
      value,
      version: (cur?.version ?? 0) + 1,
      mod_revision: 0,
      create_revision: cur?.create_revision ?? 0,
      lease,
    };
    this.changes.set(key, rec);
    return rec;
  }

  delete(key: string): boolean {
    if (!this.get(key)) return false;
    this.changes.set(key, null);
    return true;
  }
}

/** Encodes a command for the log (MessagePack). */
export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(cmd);
}

/**
 * Decodes a command from the log. Also reads the JSON commands of the first version (values
 * were JSON text), so a log written before the upgrade still replays.
 */
export function decodeKvCommand(data: Uint8Array): KvCommand {
  if (data[0] === 0x7b) {
    const c = JSON.parse(textDecoder.decode(data)) as { op: string; key: string; value?: string; version?: number };
    const value = c.value === undefined ? undefined : encodeValue(JSON.parse(c.value));
    return { ...c, ...(value ? { value } : {}) } as KvCommand;
  }
  const c = decoder.decode(data);
  if (!isObj(c)) throw new Error("raft kv: command is not a map");
  return c as unknown as KvCommand;
}

/** UTF-8 bytes of a key (exported for tests of the ordering). */
export function keyBytes(key: string): Uint8Array {
  return textEncoder.encode(key);
}
