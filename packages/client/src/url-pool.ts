import { MpregError } from "@mpreg/envelope";

/** Default bound on the URLs a client knows (seeds plus discovered). */
export const DEFAULT_MAX_URLS = 64;

/**
 * Canonical form of a node URL, used to compare URLs (`ws://h:1` and `ws://h:1/` are one node),
 * or undefined when `url` is not a `ws:`/`wss:` URL.
 */
export function urlKey(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== "ws:" && u.protocol !== "wss:") return undefined;
  return u.href;
}

interface Known {
  url: string;
  seed: boolean;
  /** Consecutive failed dials or drops since the last successful connect to it. */
  failures: number;
}

/**
 * The node URLs a cluster-aware client may connect to: the seeds it was given (kept for good)
 * and the URLs discovered from `cluster_map` (replaced by each refresh), at most `maxUrls` in
 * all. It remembers consecutive failures per URL and picks the next URL to try among those
 * with the fewest, at random: clients of a lost node spread over the survivors, and every URL
 * is tried once before any is tried twice. Pure state; randomness is passed in.
 */
export class UrlPool {
  private readonly known = new Map<string, Known>();

  /**
   * @throws {MpregError} 1002 when there is no seed, a seed is not a ws:/wss: URL, or there are
   * more seeds than `maxUrls`.
   */
  constructor(
    seeds: readonly string[],
    readonly maxUrls: number = DEFAULT_MAX_URLS,
  ) {
    if (!(Number.isInteger(maxUrls) && maxUrls >= 1)) throw MpregError.invalid("maxUrls must be a positive integer", "maxUrls");
    if (seeds.length === 0) throw MpregError.invalid("at least one node URL is needed", "urls");
    seeds.forEach((url, i) => {
      const key = typeof url === "string" ? urlKey(url) : undefined;
      if (key === undefined) throw MpregError.invalid(`not a ws:// or wss:// URL: ${String(url)}`, `urls.${i}`);
      if (!this.known.has(key)) this.known.set(key, { url, seed: true, failures: 0 });
    });
    if (this.known.size > maxUrls) throw MpregError.invalid(`more seed URLs (${this.known.size}) than maxUrls (${maxUrls})`, "urls");
  }

  /** Every known URL: seeds first (in the order given), then discovered ones. */
  urls(): string[] {
    return [...this.known.values()].map((k) => k.url);
  }

  get size(): number {
    return this.known.size;
  }

  /** True when `url` is known (in any spelling of the same URL). */
  has(url: string): boolean {
    const key = urlKey(url);
    return key !== undefined && this.known.has(key);
  }

  /**
   * Replaces the discovered URLs with `urls` (seeds stay). Invalid URLs are ignored; past
   * `maxUrls` the rest are ignored. A URL that stays keeps its failure count. Returns the URLs
   * added and removed.
   */
  setDiscovered(urls: readonly unknown[]): { added: string[]; removed: string[] } {
    const next = new Map<string, Known>();
    for (const [key, k] of this.known) if (k.seed) next.set(key, k);
    const added: string[] = [];
    for (const url of urls) {
      if (next.size >= this.maxUrls) break;
      if (typeof url !== "string") continue;
      const key = urlKey(url);
      if (key === undefined || next.has(key)) continue;
      const old = this.known.get(key);
      next.set(key, old ?? { url, seed: false, failures: 0 });
      if (old === undefined) added.push(url);
    }
    const removed = [...this.known].filter(([key]) => !next.has(key)).map(([, k]) => k.url);
    this.known.clear();
    for (const [key, k] of next) this.known.set(key, k);
    return { added, removed };
  }

  /** A dial to `url` failed, or its link dropped. */
  failed(url: string): void {
    const k = this.lookup(url);
    if (k !== undefined) k.failures++;
  }

  /** A link to `url` opened. */
  succeeded(url: string): void {
    const k = this.lookup(url);
    if (k !== undefined) k.failures = 0;
  }

  /** Consecutive failures of `url` (0 when unknown). */
  failures(url: string): number {
    return this.lookup(url)?.failures ?? 0;
  }

  /**
   * The next URL to try: uniform among the URLs with the fewest consecutive failures, not
   * `avoid` (the URL just lost) unless it is the only one. `random` returns [0, 1).
   */
  pick(random: () => number, avoid?: string): string {
    const avoidKey = avoid === undefined ? undefined : urlKey(avoid);
    let best: Known[] = [];
    let min = Infinity;
    for (const [key, k] of this.known) {
      if (key === avoidKey && this.known.size > 1) continue;
      if (k.failures < min) {
        min = k.failures;
        best = [k];
      } else if (k.failures === min) {
        best.push(k);
      }
    }
    const r = random();
    const i = Math.min(best.length - 1, Math.floor((r >= 0 && r < 1 ? r : 0) * best.length));
    return best[i]!.url;
  }

  private lookup(url: string): Known | undefined {
    const key = urlKey(url);
    return key === undefined ? undefined : this.known.get(key);
  }
}
