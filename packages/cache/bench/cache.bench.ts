import { LRUCache } from "lru-cache";
import { it } from "vitest";
import { MemoryCache, POLICY_NAMES, type PolicyName } from "../src/index.js";
import { beladyHitRatio, loopTrace, rng, scanMixTrace, zipfTrace } from "./traces.js";

/**
 * The cache benchmark (`pnpm --filter @mpreg/cache bench`), in one process, same run:
 *  1. throughput of the L1 tier per policy beside npm `lru-cache` (get on hits, put with
 *     evictions, read-through on a Zipf 0.9 load), best of BENCH_RUNS runs of BENCH_OPS ops;
 *  2. hit ratios per policy and `lru-cache` on seeded traces (Zipf 0.7 / 0.9 / 1.1, a loop
 *     larger than the cache, scans mixed into a Zipf load) at three cache sizes, beside the
 *     optimal (Belady) ratio on the same trace.
 * For the Zipf traces the static optimum is printed too: the hit ratio of a cache holding
 * exactly the `size` most popular items (what a perfect frequency-based policy converges to;
 * Belady, which knows the future, is above any online policy).
 * BENCH_TRACE (default 300 000 accesses), BENCH_OPS (500 000) and BENCH_RUNS (3) tune it.
 * Throughput runs are interleaved (every cache once per round, best round kept), so a busy
 * machine slows all of them alike.
 */
const TRACE = Number(process.env.BENCH_TRACE ?? 300_000);
const OPS = Number(process.env.BENCH_OPS ?? 500_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const UNIVERSE = 100_000;
const SIZES = [500, 2_000, 10_000];

type Name = PolicyName | "lru-cache";
const NAMES: Name[] = [...POLICY_NAMES, "lru-cache"];

interface Simple {
  get(k: string): unknown;
  set(k: string, v: number): unknown;
}

function make(name: Name, size: number): Simple {
  if (name === "lru-cache") return new LRUCache<string, number>({ max: size });
  return new MemoryCache<number>({ policy: name, maxEntries: size });
}

const names: string[] = [];
function keyNames(maxId: number): string[] {
  for (let i = names.length; i <= maxId; i++) names.push(`key:${i}`);
  return names;
}

function hitRatio(name: Name, trace: Int32Array, size: number): number {
  const k = keyNames(trace.reduce((m, x) => Math.max(m, x), 0));
  const c = make(name, size);
  let hits = 0;
  for (let i = 0; i < trace.length; i++) {
    const key = k[trace[i] as number] as string;
    if (c.get(key) === undefined) c.set(key, i);
    else hits++;
  }
  return hits / trace.length;
}

/** Share of a Zipf(alpha) load that falls on the `size` most popular of `universe` items. */
function staticOptimum(universe: number, alpha: number, size: number): number {
  let top = 0;
  let all = 0;
  for (let i = 1; i <= universe; i++) {
    const p = 1 / Math.pow(i, alpha);
    all += p;
    if (i <= size) top += p;
  }
  return top / all;
}

function pct(x: number): string {
  return (100 * x).toFixed(1);
}

function table(title: string, head: string[], rows: string[][]): void {
  const lines = [`\n### ${title}`, `| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)];
  console.log(lines.join("\n"));
}

function opsPerSec(ops: number, fn: () => void): number {
  const t0 = performance.now();
  fn();
  return ops / ((performance.now() - t0) / 1000);
}

it("throughput per policy beside lru-cache", () => {
  const size = 10_000;
  const r = rng(42);
  const k = keyNames(UNIVERSE);
  const hitIdx = Int32Array.from({ length: OPS }, () => Math.floor(r() * size));
  const putIdx = Int32Array.from({ length: OPS }, () => Math.floor(r() * UNIVERSE));
  const zipf = zipfTrace(UNIVERSE, 0.9, OPS, 7);
  const rows: string[][] = [];
  const res = new Map<Name, number[]>(NAMES.map((n) => [n, [0, 0, 0]]));
  const measures: Array<(name: Name) => number> = [
    (name) => {
      const c = make(name, size);
      for (let i = 0; i < size; i++) c.set(k[i] as string, i);
      return opsPerSec(OPS, () => {
        for (let i = 0; i < OPS; i++) c.get(k[hitIdx[i] as number] as string);
      });
    },
    (name) => {
      const c = make(name, size);
      return opsPerSec(OPS, () => {
        for (let i = 0; i < OPS; i++) c.set(k[putIdx[i] as number] as string, i);
      });
    },
    (name) => {
      const c = make(name, size);
      return opsPerSec(OPS, () => {
        for (let i = 0; i < OPS; i++) {
          const key = k[zipf[i] as number] as string;
          if (c.get(key) === undefined) c.set(key, i);
        }
      });
    },
  ];
  for (let round = 0; round <= RUNS; round++) {
    for (const name of NAMES) {
      const r = res.get(name)!;
      measures.forEach((m, j) => {
        const v = m(name);
        if (round > 0) r[j] = Math.max(r[j]!, v); // round 0 warms up
      });
    }
  }
  const base = res.get("lru-cache")!;
  for (const [name, [g, p, m]] of res) {
    const f = (x: number, b: number) => `${(x / 1e6).toFixed(2)} M (${(x / b).toFixed(2)}×)`;
    rows.push([name, f(g!, base[0]!), f(p!, base[1]!), f(m!, base[2]!)]);
  }
  table(
    `L1 throughput, ${size} entries, ${OPS} ops, best of ${RUNS} (ops/s, × lru-cache)`,
    ["cache", "get (hits)", "put (evicting)", "read-through Zipf 0.9"],
    rows,
  );
});

it("hit ratios per policy beside lru-cache and Belady", () => {
  const traces: Array<[string, Int32Array, number | undefined]> = [
    ["Zipf 0.7", zipfTrace(UNIVERSE, 0.7, TRACE, 1), 0.7],
    ["Zipf 0.9", zipfTrace(UNIVERSE, 0.9, TRACE, 2), 0.9],
    ["Zipf 1.1", zipfTrace(UNIVERSE, 1.1, TRACE, 3), 1.1],
    [`loop of 12 000 items`, loopTrace(12_000, TRACE), undefined],
    ["Zipf 0.9 + scans (5 000 one-time keys every 20 000)", scanMixTrace(UNIVERSE, 0.9, TRACE, 20_000, 5_000, 4), undefined],
  ];
  for (const [title, trace, alpha] of traces) {
    const rows: string[][] = [];
    for (const size of SIZES) {
      const row = [String(size), pct(beladyHitRatio(trace, size)), alpha === undefined ? "-" : pct(staticOptimum(UNIVERSE, alpha, size))];
      for (const name of NAMES) row.push(pct(hitRatio(name, trace, size)));
      rows.push(row);
    }
    table(`hit ratio (%), ${title}, ${TRACE} accesses`, ["size", "Belady", "static opt.", ...NAMES], rows);
  }
});
