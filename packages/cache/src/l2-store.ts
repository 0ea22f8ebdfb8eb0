import { Decoder, Encoder } from "@msgpack/msgpack";
import { MpregError, createLogger } from "@mpreg/envelope";
import type { KVStore } from "@mpreg/persistence";
import type { Stamp } from "./hybrid-clock.js";

const logger = createLogger("cache");

/** Format version written as the first byte of every L2 record. */
export const L2_RECORD_VERSION = 1;
/** Most L2 operations queued per namespace; past it a local write fails with 1007. */
export const MAX_L2_QUEUE = 10_000;

/** One entry as the L2 tier keeps it. */
export interface L2Record {
  value: unknown;
  /** Absolute expiry (ms on the service clock), or Infinity. */
  expiresAt: number;
  deps: readonly string[];
  cost: number;
  /** The HLC stamp of a replicated entry. */
  stamp: Stamp | undefined;
  /** Write sequence: the L2's oldest-written-first order survives a reopen. */
  seq: number;
}

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();
const te = new TextEncoder();
const td = new TextDecoder();

/** Encodes a record: version byte, then MessagePack `[value, expiresAt|null, deps, cost, stamp|null, seq]`. */
export function encodeL2Record(r: L2Record): Uint8Array {
  let body: Uint8Array;
  try {
    body = encoder.encode([
      r.value,
      r.expiresAt === Infinity ? null : r.expiresAt,
      r.deps,
      r.cost,
      r.stamp === undefined ? null : [r.stamp.wall, r.stamp.counter, r.stamp.node],
      r.seq,
    ]);
  } catch (e) {
    throw MpregError.invalid(`value cannot be stored in L2 (MessagePack): ${(e as Error).message}`, "value");
  }
  const out = new Uint8Array(body.length + 1);
  out[0] = L2_RECORD_VERSION;
  out.set(body, 1);
  return out;
}

/** Decodes a record; undefined for bytes this version cannot read (the caller drops the row). */
export function decodeL2Record(bytes: Uint8Array): L2Record | undefined {
  if (bytes.length < 2 || bytes[0] !== L2_RECORD_VERSION) return undefined;
  let v: unknown;
  try {
    v = decoder.decode(bytes.subarray(1));
  } catch {
    return undefined;
  }
  if (!Array.isArray(v) || v.length !== 6) return undefined;
  const [value, exp, deps, cost, stamp, seq] = v as [unknown, unknown, unknown, unknown, unknown, unknown];
  if (exp !== null && typeof exp !== "number") return undefined;
  if (!Array.isArray(deps) || !deps.every((d) => typeof d === "string")) return undefined;
  if (typeof cost !== "number" || typeof seq !== "number") return undefined;
  let st: Stamp | undefined;
  if (stamp !== null) {
    if (!Array.isArray(stamp) || typeof stamp[0] !== "number" || typeof stamp[1] !== "number" || typeof stamp[2] !== "string") return undefined;
    st = { wall: stamp[0], counter: stamp[1], node: stamp[2] };
  }
  return { value, expiresAt: exp ?? Infinity, deps: deps as string[], cost, stamp: st, seq };
}

/**
 * The L2 tier of one namespace, on a `@mpreg/persistence` KV store. Every operation (reads
 * too) runs in call order, one at a time, so a read sees every write issued before it and two
 * writes of one key land in the order they were made. At most {@link MAX_L2_QUEUE} operations
 * wait; past it `run` fails with 1007.
 */
export class L2Store {
  private tail: Promise<unknown> = Promise.resolve();
  private queued = 0;

  constructor(readonly kv: KVStore) {}

  /** Operations waiting or running. */
  get pending(): number {
    return this.queued;
  }

  private run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.queued >= MAX_L2_QUEUE) return Promise.reject(MpregError.overloaded(`cache L2 has ${MAX_L2_QUEUE} operations queued`, 100));
    this.queued++;
    const p = this.tail.then(fn);
    this.tail = p.then(
      () => this.queued--,
      () => this.queued--,
    );
    return p;
  }

  get(key: string): Promise<L2Record | undefined> {
    return this.run(async () => {
      const b = await this.kv.get(te.encode(key));
      if (b === undefined) return undefined;
      const r = decodeL2Record(b);
      if (r === undefined) {
        logger.warn(`cache L2: unreadable record for ${JSON.stringify(key)} dropped`);
        await this.kv.del(te.encode(key));
      }
      return r;
    });
  }

  /** Encodes now (so a bad value fails the caller at once), writes in order. */
  put(key: string, r: L2Record): Promise<void> {
    return this.putBytes(key, encodeL2Record(r));
  }

  /** Writes a record already encoded with {@link encodeL2Record}. */
  putBytes(key: string, bytes: Uint8Array): Promise<void> {
    return this.run(() => this.kv.put(te.encode(key), bytes));
  }

  del(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return this.run(() => this.kv.batch(keys.map((k) => ({ type: "del" as const, key: te.encode(k) }))));
  }

  /** Every readable record (unreadable ones are dropped), in key order. */
  scan(): Promise<Array<[string, L2Record]>> {
    return this.run(async () => {
      const out: Array<[string, L2Record]> = [];
      const bad: Uint8Array[] = [];
      for (const row of await this.kv.range()) {
        const r = decodeL2Record(row.value);
        if (r === undefined) bad.push(row.key);
        else out.push([td.decode(row.key), r]);
      }
      if (bad.length > 0) {
        logger.warn(`cache L2: ${bad.length} unreadable records dropped`);
        await this.kv.batch(bad.map((key) => ({ type: "del" as const, key })));
      }
      return out;
    });
  }

  /** Resolves once everything queued so far is done. */
  idle(): Promise<void> {
    return this.run(async () => undefined);
  }
}
