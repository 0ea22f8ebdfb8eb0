import { encodeFrame, type PubsubNotification } from "@mpreg/envelope";
import { TopicTrie } from "@mpreg/router";
import { SeededRandom } from "@mpreg/testkit";
import { it } from "vitest";
import { TopicExchange } from "../src/index.js";

/**
 * Pub/sub benchmarks, in process (no sockets):
 *  - topic matcher (the router's TopicTrie, as the exchange uses it: pre-split topics) at 1k,
 *    10k and 100k subscriptions. The patterns: 70% exact `sN.eM.kK`, 20% `sN.*.kK`, 10%
 *    `sN.eM.#`; the `sN` range grows with the count, so a topic matches a few patterns (the
 *    "hits" column) at every size, as on a node whose subscribers watch different things.
 *  - local publish -> deliver through a TopicExchange with default options (validation, ULID
 *    ids, dedup window, retention) to 1 and to 100 subscribers whose sinks always accept; the
 *    last rows also encode each notification as MessagePack (what a node then sends).
 * BENCH_SECONDS (default 1.5) is the time per measurement. Rates are given per wall second
 * and per CPU second of the benchmark process.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1.5);

/**
 * Runs `fn` (which returns the units of work it did) in whole batches for SECONDS after a
 * warm-up. Reports units per wall second and per CPU second of this process: on a shared
 * machine the second is the steadier number (time spent descheduled is not counted).
 */
function measure(fn: () => number): { perSec: number; perCpuSec: number } {
  const warmEnd = performance.now() + 300;
  while (performance.now() < warmEnd) fn();
  let units = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let now = start;
  while (now < end) {
    units += fn();
    now = performance.now();
  }
  const cpu = process.cpuUsage(cpu0);
  return { perSec: (units / (now - start)) * 1000, perCpuSec: (units / (cpu.user + cpu.system)) * 1e6 };
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(n >= 1e5 ? 0 : 1)} k` : n.toFixed(0);
}

interface Row {
  what: string;
  size: string;
  rate: string;
  cpuRate: string;
  extra: string;
}

function trieRow(n: number): Row {
  const r = new SeededRandom(n);
  const services = Math.max(1, Math.floor(n / 100));
  const trie = new TopicTrie<number>({ maxEntries: n });
  for (let i = 0; i < n; i++) {
    const s = `s${r.int(services)}`;
    const e = `e${r.int(10)}`;
    const k = `k${r.int(10)}`;
    const kind = r.next();
    trie.add(kind < 0.7 ? `${s}.${e}.${k}` : kind < 0.9 ? `${s}.*.${k}` : `${s}.${e}.#`, i);
  }
  const topics: string[][] = [];
  for (let i = 0; i < 4096; i++) topics.push([`s${r.int(services)}`, `e${r.int(10)}`, `k${r.int(10)}`]);
  let hits = 0;
  let calls = 0;
  const m = measure(() => {
    for (let i = 0; i < topics.length; i++) hits += trie.matchSegments(topics[i] as string[]).size;
    calls += topics.length;
    return topics.length;
  });
  return {
    what: "trie matches/s",
    size: `${n / 1000}k subscriptions`,
    rate: fmt(m.perSec),
    cpuRate: fmt(m.perCpuSec),
    extra: `${(hits / calls).toFixed(1)} hits/match`,
  };
}

function publishRow(subscribers: number, encode: boolean): Row {
  const ex = new TopicExchange({ nodeId: "bench", now: Date.now, maxSubscriptionsPerOwner: 1000 });
  let delivered = 0;
  let bytes = 0;
  ex.attach("c", {
    canWrite: () => true,
    write: encode
      ? (f: PubsubNotification) => {
          bytes += encodeFrame(f, "msgpack").byteLength;
          delivered++;
        }
      : () => {
          delivered++;
        },
  });
  const patterns = ["orders.*.created", "orders.#", "#", "orders.eu.*"];
  for (let i = 0; i < subscribers; i++) ex.subscribe("c", { patterns: [patterns[i % patterns.length] as string] });
  const payload = { order: 12345, amount: 99.5, currency: "EUR", items: ["a", "b"] };
  const batch = subscribers === 1 ? 1000 : 100;
  const m = measure(() => {
    for (let i = 0; i < batch; i++) ex.publish({ topic: "orders.eu.created", payload });
    return batch;
  });
  const perMsg = delivered / Math.max(1, ex.stats().published);
  return {
    what: `publish->deliver msgs/s${encode ? " (+msgpack)" : ""}`,
    size: `${subscribers} subscriber${subscribers === 1 ? "" : "s"}`,
    rate: fmt(m.perSec),
    cpuRate: fmt(m.perCpuSec),
    extra: `${fmt(m.perCpuSec * perMsg)} notifications/cpu-s${encode ? `, ${Math.round(bytes / Math.max(1, delivered))} B each` : ""}`,
  };
}

it("pub/sub benchmark", () => {
  const rows: Row[] = [];
  for (const n of [1_000, 10_000, 100_000]) rows.push(trieRow(n));
  for (const s of [1, 100]) rows.push(publishRow(s, false));
  for (const s of [1, 100]) rows.push(publishRow(s, true));
  const w = [34, 17, 9, 9, 40];
  const line = (c: string[]) => `| ${c.map((x, i) => x.padEnd(w[i] as number)).join(" | ")} |`;
  const out = [
    `pub/sub benchmark (node ${process.version}, ${SECONDS}s per row)`,
    line(["measure", "size", "per s", "per cpu-s", "notes"]),
    line(w.map((x) => "-".repeat(x))),
    ...rows.map((r) => line([r.what, r.size, r.rate, r.cpuRate, r.extra])),
  ];
  console.log(out.join("\n"));
});
