/**
 * How many bytes an entry is counted for against a namespace's `max_bytes`.
 *
 * - `estimate` (default): a walk of the value that charges what V8 roughly spends: 8 bytes
 *   per number, 4 per boolean or null, 2 per string character plus 16, the byte length of a
 *   Uint8Array plus 32, 16 per array or object plus 8 per slot, object keys as strings. Nesting
 *   deeper than {@link MAX_SIZE_DEPTH} is not walked further (it is charged 16). Cheap, and
 *   stable across runs: what matters is that the limit holds for the same numbers every time.
 * - `msgpack`: the MessagePack encoding's length (what L2 and the wire carry); exact for
 *   transfer, slower (one encode per write).
 *
 * Each entry also pays {@link ENTRY_OVERHEAD_BYTES} plus 2 bytes per key character.
 */
import { Encoder } from "@msgpack/msgpack";

/** The sizing methods a namespace can use. */
export type Sizing = "estimate" | "msgpack";

/** Fixed cost of one entry (the entry object, its map slot, policy bookkeeping). */
export const ENTRY_OVERHEAD_BYTES = 96;
/** Deepest nesting the estimate walks. */
export const MAX_SIZE_DEPTH = 32;

function walk(v: unknown, depth: number): number {
  switch (typeof v) {
    case "number":
      return 8;
    case "boolean":
      return 4;
    case "string":
      return 16 + 2 * v.length;
    case "bigint":
      return 16;
    case "undefined":
      return 0;
    case "object": {
      if (v === null) return 4;
      if (depth >= MAX_SIZE_DEPTH) return 16;
      if (v instanceof Uint8Array) return 32 + v.byteLength;
      if (Array.isArray(v)) {
        let n = 16 + 8 * v.length;
        for (const x of v) n += walk(x, depth + 1);
        return n;
      }
      let n = 16;
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        n += 24 + 2 * k.length + walk((v as Record<string, unknown>)[k], depth + 1);
      }
      return n;
    }
    default:
      return 16;
  }
}

/** The `estimate` size of a value (see the module comment). */
export function estimateValueSize(value: unknown): number {
  return walk(value, 0);
}

const encoder = new Encoder({ ignoreUndefined: true });

/** The `msgpack` size of a value: the length of its MessagePack encoding. */
export function msgpackValueSize(value: unknown): number {
  return encoder.encodeSharedRef(value).byteLength;
}

/** Bytes an entry is charged: overhead, key and value. */
export function entrySize(key: string, value: unknown, sizing: Sizing = "estimate"): number {
  return ENTRY_OVERHEAD_BYTES + 2 * key.length + (sizing === "msgpack" ? msgpackValueSize(value) : estimateValueSize(value));
}
