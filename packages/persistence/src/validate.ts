/** Argument checks shared by every backend, so they all reject the same inputs the same way. */

import { storageError } from "./errors.js";

/** Largest key accepted (bytes). Keys are held in memory indexes, so they stay small. */
export const MAX_KEY_BYTES = 64 * 1024;
/** Largest value or log record accepted (bytes). */
export const MAX_VALUE_BYTES = 64 * 1024 * 1024;
/**
 * Largest snapshot accepted (bytes): a replicated state machine's whole image (the Raft KV's
 * quota is checked against it). Under SQLite's default maximum BLOB size (10^9 bytes).
 */
export const MAX_SNAPSHOT_BYTES = 512 * 1024 * 1024;
/** Longest namespace name (UTF-16 code units). */
export const MAX_NAMESPACE_LENGTH = 200;

export function checkNamespace(ns: unknown): string {
  if (typeof ns !== "string" || ns.length === 0 || ns.length > MAX_NAMESPACE_LENGTH) {
    throw storageError("invalid", `namespace must be a string of 1..${MAX_NAMESPACE_LENGTH} characters`, {
      namespace: typeof ns === "string" ? ns.slice(0, 50) : typeof ns,
    });
  }
  return ns;
}

/**
 * The store of one namespace, created on first use: opening the same namespace twice returns
 * the same store (the StorageBackend contract).
 */
export function storeFor<T>(stores: Map<string, T>, namespace: string, create: (ns: string) => T): T {
  const ns = checkNamespace(namespace);
  let s = stores.get(ns);
  if (s === undefined) stores.set(ns, (s = create(ns)));
  return s;
}

export function checkKey(key: unknown): Uint8Array {
  if (!(key instanceof Uint8Array)) throw storageError("invalid", "key must be a Uint8Array");
  if (key.byteLength > MAX_KEY_BYTES) {
    throw storageError("invalid", `key is ${key.byteLength} bytes, the limit is ${MAX_KEY_BYTES}`);
  }
  return key;
}

export function checkValue(value: unknown, what = "value", max = MAX_VALUE_BYTES): Uint8Array {
  if (!(value instanceof Uint8Array)) throw storageError("invalid", `${what} must be a Uint8Array`);
  if (value.byteLength > max) {
    throw storageError("invalid", `${what} is ${value.byteLength} bytes, the limit is ${max}`);
  }
  return value;
}

/** A log index: a positive safe integer. */
export function checkIndex(n: unknown, what: string, min = 1): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min) {
    throw storageError("invalid", `${what} must be an integer >= ${min}`, { value: String(n) });
  }
  return n;
}

export function checkLimit(n: unknown): number | undefined {
  if (n === undefined) return undefined;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw storageError("invalid", "limit must be a non-negative integer", { value: String(n) });
  }
  return n;
}
