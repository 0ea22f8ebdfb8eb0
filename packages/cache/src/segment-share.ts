import type { LinkedList } from "./linked-list.js";

/** A part of the cache's limits given to one segment of a segmented policy. */
export interface Share {
  readonly count: number;
  readonly bytes: number;
}

/** `fraction` of both limits (at least one entry and one byte). */
export function shareOf(maxEntries: number, maxBytes: number, fraction: number): Share {
  return { count: Math.max(1, Math.floor(maxEntries * fraction)), bytes: Math.max(1, Math.floor(maxBytes * fraction)) };
}

/** True when the list holds more than its share, by count or by bytes. */
export function over<V>(list: LinkedList<V>, share: Share): boolean {
  return list.count > share.count || list.bytes > share.bytes;
}
