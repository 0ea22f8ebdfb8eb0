import { MpregError } from "@mpreg/envelope";

/** splitmix32: spreads a 32-bit seed so nearby seeds give unrelated sfc32 states. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** FNV-1a so that string seeds (test names) are accepted too. */
function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A fast deterministic pseudo-random generator (sfc32, seeded through splitmix32).
 * Same seed, same sequence, on every platform. Not for cryptography.
 */
export class SeededRandom {
  /** The seed this generator was created from (numbers are kept, strings are hashed). */
  readonly seed: number;
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string = 1) {
    if (typeof seed === "number" && !Number.isFinite(seed)) {
      throw MpregError.invalid("SeededRandom seed must be a finite number or a string", "seed");
    }
    this.seed = typeof seed === "string" ? hashString(seed) : seed >>> 0;
    const st = { s: this.seed };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    // Warm up: the first outputs of sfc32 are weakly mixed.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** An integer in [0, n). `n` must be a positive integer. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw MpregError.invalid(`int(n) needs a positive integer, got ${n}`, "n");
    return Math.floor(this.next() * n);
  }

  /** A float in [min, max). */
  range(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return p > 0 && this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw MpregError.invalid("pick() from an empty array", "items");
    return items[this.int(items.length)] as T;
  }

  /** A new array holding `items` in a random order (Fisher–Yates); the input is not changed. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }

  /** Up to `k` distinct elements chosen uniformly (partial Fisher–Yates). */
  sample<T>(items: readonly T[], k: number): T[] {
    const out = items.slice();
    const m = Math.min(k, out.length);
    for (let i = 0; i < m; i++) {
      const j = i + this.int(out.length - i);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    out.length = m;
    return out;
  }

  /**
   * An independent generator derived from this one's next output, so a component can own its
   * stream without disturbing the sequence seen by others after the fork.
   */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32());
  }
}
