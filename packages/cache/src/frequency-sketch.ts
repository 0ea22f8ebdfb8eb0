/**
 * TinyLFU's frequency estimate (after Caffeine's `FrequencySketch`): a count-min sketch of
 * 4-bit counters, 4 per item, packed 8 to a 32-bit word. Each recorded access increments the
 * item's 4 counters (saturating at 15); the estimate is their minimum. After `sampleSize`
 * increments every counter is halved (aging), so the sketch follows a changing workload and
 * its memory stays fixed. As in Caffeine there are 16 counters per expected entry (8 bytes),
 * and an item's 4 counters sit in one 64-byte block (one cache line): the block is chosen by
 * one hash, each counter's place in its quarter of the block by another.
 */
const MAX_COUNT = 15;
/** 32-bit words per block (64 bytes): 4 quarters of 4 words, 32 counters per quarter. */
const BLOCK_WORDS = 16;

export class FrequencySketch {
  private readonly table: Uint32Array;
  private readonly blockShift: number;
  /** Increments between two halvings (10 × the expected number of entries, as Caffeine). */
  readonly sampleSize: number;
  private added = 0;

  /** `capacity`: the expected number of distinct entries held (the cache's entry limit). */
  constructor(capacity: number) {
    const c = Math.max(16, Math.min(capacity, 1 << 24));
    // 16 counters per entry = 2 words per entry, in blocks of 16 words; at least 2 blocks.
    let blocks = 2;
    let bits = 1;
    while (blocks * BLOCK_WORDS < 2 * c) {
      blocks <<= 1;
      bits++;
    }
    this.blockShift = 32 - bits;
    this.table = new Uint32Array(blocks * BLOCK_WORDS);
    this.sampleSize = 10 * c;
  }

  /** Counters recorded since the last halving (halved with the counters). */
  get additions(): number {
    return this.added;
  }

  /** The estimated number of recent accesses of the item with this hash (0..15). */
  frequency(hash: number): number {
    const block = (Math.imul(hash, 0x9e3779b1) >>> this.blockShift) << 4;
    const g = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
    const t = this.table;
    let min = MAX_COUNT;
    for (let i = 0; i < 4; i++) {
      const idx = (g >>> (i << 3)) & 31;
      const c = ((t[block + (i << 2) + (idx >>> 3)] as number) >>> ((idx & 7) << 2)) & 0xf;
      if (c < min) min = c;
    }
    return min;
  }

  /** Records one access; halves every counter once `sampleSize` accesses were recorded. */
  increment(hash: number): void {
    const block = (Math.imul(hash, 0x9e3779b1) >>> this.blockShift) << 4;
    const g = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
    const t = this.table;
    let added = false;
    for (let i = 0; i < 4; i++) {
      const idx = (g >>> (i << 3)) & 31;
      const w = block + (i << 2) + (idx >>> 3);
      const shift = (idx & 7) << 2;
      const word = t[w] as number;
      if (((word >>> shift) & 0xf) < MAX_COUNT) {
        t[w] = word + (1 << shift);
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
