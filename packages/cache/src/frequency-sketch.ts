/**
 * TinyLFU's frequency estimate (after Caffeine's `FrequencySketch`): a count-min sketch of
 * 4-bit counters, 4 rows, packed 8 counters to a 32-bit word. Each recorded access increments
 * the item's 4 counters (saturating at 15); the estimate is their minimum. After `sampleSize`
 * increments every counter is halved (aging), so the sketch follows a changing workload and
 * its memory stays fixed. As in Caffeine there are 16 counters per expected entry (4 rows of
 * 4 × capacity, rounded up to a power of two): 8 bytes per entry.
 */
const DEPTH = 4;
const MAX_COUNT = 15;
/** Odd multipliers that give each row its own index for the same key hash. */
const SEEDS = [0x97cb3127, 0xb1a24c5b, 0x8cd9c6e7, 0xc7da5dd3] as const;

export class FrequencySketch {
  private readonly table: Uint32Array;
  private readonly shift: number;
  private readonly width: number;
  /** Increments between two halvings (10 × the expected number of entries, as Caffeine). */
  readonly sampleSize: number;
  private added = 0;

  /** `capacity`: the expected number of distinct entries held (the cache's entry limit). */
  constructor(capacity: number) {
    const c = Math.max(16, Math.min(capacity, 1 << 24));
    let w = 1;
    let bits = 0;
    while (w < 4 * c) {
      w <<= 1;
      bits++;
    }
    this.width = w;
    this.shift = 32 - bits;
    this.table = new Uint32Array((DEPTH * w) >>> 3);
    this.sampleSize = 10 * c;
  }

  /** Counters recorded since the last halving (halved with the counters). */
  get additions(): number {
    return this.added;
  }

  private slot(hash: number, row: number): number {
    // Multiplicative (Fibonacci) hashing: the high bits of the product index the row.
    return row * this.width + (Math.imul(hash, SEEDS[row] as number) >>> this.shift);
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
    if (added && ++this.added >= this.sampleSize) this.halve();
  }

  /** Ages the sketch: every counter is halved (one shift and mask per word). */
  halve(): void {
    const t = this.table;
    for (let i = 0; i < t.length; i++) t[i] = ((t[i] as number) >>> 1) & 0x77777777;
    this.added = Math.floor(this.added / 2);
  }
}
