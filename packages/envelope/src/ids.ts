/**
 * ULIDs (https://github.com/ulid/spec): 48-bit millisecond time then 80 random bits, as 26
 * Crockford base-32 characters, so ids sort by creation time. Ids made in the same millisecond
 * are monotonic: the random part of the previous id plus one (as the spec's monotonic factory).
 *
 * Written here rather than taken from the `ulid` package, whose generator asks the system for
 * random bytes once per character: on a node relaying many messages that was ~5% of its CPU.
 * Randomness comes from `crypto.getRandomValues` in blocks of 4 KiB (one call per ~400 ids).
 */
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const POOL_BYTES = 4096;
const pool = new Uint8Array(POOL_BYTES);
let poolPos = POOL_BYTES;

let lastTime = -1;
/** The random part of the last id: 16 base-32 digits, most significant first. */
const lastRandom = new Uint8Array(16);

function fillRandom(): void {
  if (poolPos + 16 > POOL_BYTES) {
    globalThis.crypto.getRandomValues(pool);
    poolPos = 0;
  }
  for (let i = 0; i < 16; i++) lastRandom[i] = pool[poolPos + i]! & 31;
  poolPos += 16;
}

/** Adds one to the random part; false on overflow (2^80 ids in one millisecond). */
function increment(): boolean {
  for (let i = 15; i >= 0; i--) {
    if (lastRandom[i]! < 31) {
      lastRandom[i]!++;
      return true;
    }
    lastRandom[i] = 0;
  }
  return false;
}

const CODES = Array.from(ALPHABET, (c) => c.charCodeAt(0));
/** The id being built, as character codes: 10 time digits, then 16 random digits. */
const codes: number[] = new Array<number>(26).fill(0);
/** The time whose digits `codes[0..9]` hold. */
let codedTime = -1;

/** Writes the 10 time characters of `ms` (0 .. 2^48 - 1) into `codes`. */
function encodeTime(ms: number): void {
  let t = ms;
  for (let i = 9; i >= 0; i--) {
    codes[i] = CODES[t % 32]!;
    t = Math.floor(t / 32);
  }
  codedTime = ms;
}

/**
 * A new ULID: sortable by creation time, unique, 26 characters. Monotonic within a process,
 * also when the clock steps back (the last time is kept until the clock passes it).
 *
 * Built as one flat string from character codes: appending 26 characters made a rope that
 * every Map or Set lookup first flattened, and the dedup windows hash every id they see.
 */
export function newId(): string {
  const now = Date.now();
  if (now > lastTime) {
    lastTime = now;
    fillRandom();
  } else if (!increment()) {
    // The random part overflowed within one millisecond: move to the next one.
    lastTime++;
    fillRandom();
  }
  if (lastTime !== codedTime) encodeTime(lastTime);
  for (let i = 0; i < 16; i++) codes[10 + i] = CODES[lastRandom[i]!]!;
  return String.fromCharCode.apply(null, codes);
}

/** The creation time (Unix ms) a ULID carries. Throws on a malformed id. */
export function idTime(id: string): number {
  if (!/^[0-9A-HJKMNP-TV-Z]{26}$/.test(id)) throw new Error(`not a ULID: ${id}`);
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + ALPHABET.indexOf(id[i]!);
  return t;
}
