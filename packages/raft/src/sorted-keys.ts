import { compareKeys } from "./key-order.js";

/** Keys per block: inserts move at most this many references, lookups are two binary searches. */
const BLOCK = 512;

/**
 * The set of keys of the KV store in {@link compareKeys} order, for range scans. A list of
 * sorted blocks (each at most {@link BLOCK} keys, none empty): an insert or delete touches one
 * block, so its cost does not grow with the store the way a single sorted array's would.
 */
export class SortedKeys {
  private blocks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds `key` (no-op when present). */
  add(key: string): void {
    if (this.blocks.length === 0) {
      this.blocks.push([key]);
      this.count = 1;
      return;
    }
    const bi = this.blockFor(key);
    const block = this.blocks[bi]!;
    const i = lowerBound(block, key);
    if (i < block.length && block[i] === key) return;
    block.splice(i, 0, key);
    this.count++;
    if (block.length > BLOCK) this.blocks.splice(bi + 1, 0, block.splice(BLOCK >> 1));
  }

  /** Removes `key` (no-op when absent). */
  delete(key: string): void {
    if (this.blocks.length === 0) return;
    const bi = this.blockFor(key);
    const block = this.blocks[bi]!;
    const i = lowerBound(block, key);
    if (i >= block.length || block[i] !== key) return;
    block.splice(i, 1);
    this.count--;
    if (block.length === 0) this.blocks.splice(bi, 1);
  }

  clear(): void {
    this.blocks = [];
    this.count = 0;
  }

  /** Keys `>= start` in order (all keys when `start` is undefined). The set must not change meanwhile. */
  *from(start?: string): IterableIterator<string> {
    if (this.blocks.length === 0) return;
    let bi = start === undefined ? 0 : this.blockFor(start);
    let i = start === undefined ? 0 : lowerBound(this.blocks[bi]!, start);
    for (; bi < this.blocks.length; bi++, i = 0) {
      const block = this.blocks[bi]!;
      for (; i < block.length; i++) yield block[i]!;
    }
  }

  /** Index of the block that holds (or would hold) `key`: the last one whose first key <= key. */
  private blockFor(key: string): number {
    let lo = 0;
    let hi = this.blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (compareKeys(this.blocks[mid]![0]!, key) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }
}

/** First position in `a` whose key is >= `key`. */
function lowerBound(a: readonly string[], key: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareKeys(a[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
