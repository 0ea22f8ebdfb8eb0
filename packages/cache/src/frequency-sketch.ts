/**
 * TinyLFU's frequency estimate (after Caffeine's `FrequencySketch`): a count-min sketch of
 * 4-bit counters, 4 rows, packed 8 counters to a 32-bit word. Each recorded access increments
 * the item's 4 counters (saturating at 15); the estimate is their minimum. After `sampleSize`
 * increments every counter is halved (aging), so the sketch follows a changing workload and
 * its memory stays fixed: `4 × width / 2` bytes.
 */
const DEPTH = 4;
const MAX_COUNT = 15;
/** Odd multipliers that give each row its own index for the same key hash. */
const SEEDS = [0x97cb3127, 0xb1a24c5b, 0x8cd9c6e7, 0xc7da5dd3] as const;

export class FrequencySketch {
  private readonly table: Uint32Array;
  private readonly widthMask: number;
  private readonly width: number;
  /** Increments between two halvings (10 × the expected number of entries, as Caffeine). */
  readonly sampleSize: number;
  private additions = 0;

  /** `capacity`: the expected number of distinct entries held (the cache's entry limit). */
  constructor(capacity: number) {
    const c = Math.max(16, Math.min(capacity, 1 << 26));
    let w = 1;
    while (w < c) w <<= 1;
    this.width = w;
    this.widthMask = w - 1;
    this.table = new Uint32Array((DEPTH * w) >>> 3);
    this.sampleSize = 10 * c;
  }

  private slot(hash: number, row: number): number {
    let h = Math.imul(hash ^ (hash >>> 15), SEEDS[row] as number);
    h ^= h >>> 13;
    return row * this.width + ((h >>> 0) & this.widthMask);
  }

  /** The estimated number of recent accesses of the item with this hash (0..15). */
  frequency(hash: number): number {
    let min = MAX_COUNT;
    for (let r = 0; r < DEPTH; r++) {
      const p = this.slot(hash, r);
      const c = ((this.table[p >>> 3] as number) >>> ((p & 7) << 2)) & 0xf;
      if (c < min) min = c;
    }
    return min;
  }

  /** Records one access; halves every counter once `sampleSize` accesses were recorded. */
  increment(hash: number): void {
    let added = false;
    for (let r = 0; r < DEPTH; r++) {
      const p = this.slot(hash, r);
      const w = p >>> 3;
      const shift = (p & 7) << 2;
      const word = this.table[w] as number;
      if (((word >>> shift) & 0xf) < MAX_COUNT) {
        this.table[w] = word + (1 << shift);
        added = true;
      }
    }
    if (added && ++this.additions >= this.sampleSize) this.halve();
  }

  /** Ages the sketch: every counter is halved (one shift and mask per word). */
  halve(): void {
    const t = this.table;
    for (let i = 0; i < t.length; i++) t[i] = ((t[i] as number) >>> 1) & 0x77777777;
    this.additions = Math.floor(this.additions / 2);
  }
}
