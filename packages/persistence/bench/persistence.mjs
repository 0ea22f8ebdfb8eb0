// Write throughput and latency of every backend and fsync policy.
// Run with `pnpm bench` in packages/persistence (builds first). Plain JS on the built package.
// Each cell runs for MPREG_BENCH_MS (default 1800 ms) with N concurrent writers doing
// single-key puts (keys cycle over 1000 per writer, so the live data stays bounded).
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { openBackend } from "../dist/index.js";

const DURATION_MS = Number(process.env.MPREG_BENCH_MS ?? 1800);
const CONCURRENCY = [1, 16, 256];
const SIZES = [100, 4096];
const CASES = [
  { backend: "memory", fsync: undefined },
  { backend: "file", fsync: "always" },
  { backend: "file", fsync: "batch" },
  { backend: "file", fsync: "none" },
  { backend: "sqlite", fsync: "always" },
  { backend: "sqlite", fsync: "batch" },
  { backend: "sqlite", fsync: "none" },
];

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function cell(c, writers, size) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "mpreg-bench-"));
  const be = await openBackend({ backend: c.backend, dir, ...(c.fsync ? { fsync: c.fsync } : {}) });
  const kv = be.kv("bench");
  const value = new Uint8Array(size).fill(7);
  const latencies = [];
  const start = performance.now();
  const deadline = start + DURATION_MS;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const key = new TextEncoder().encode(`w${w}/${i % 1000}`);
        const t = performance.now();
        await kv.put(key, value);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = performance.now() - start;
  await be.close();
  await fs.rm(dir, { recursive: true, force: true });
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, perSec: (latencies.length / elapsed) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

const fmtRate = (n) => (n >= 10000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : `${Math.round(n)}`);
const fmtMs = (n) => (n < 0.1 ? n.toFixed(3) : n < 10 ? n.toFixed(2) : n.toFixed(0));

const began = performance.now();
console.log(`persistence write benchmark: node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}, ${DURATION_MS} ms per cell\n`);
console.log("| backend | fsync | value | writers | writes/s | p50 ms | p99 ms |");
console.log("|---|---|---|---|---:|---:|---:|");
const results = [];
for (const c of CASES) {
  for (const size of SIZES) {
    for (const writers of CONCURRENCY) {
      const r = await cell(c, writers, size);
      results.push({ ...c, size, writers, ...r });
      console.log(`| ${c.backend} | ${c.fsync ?? "-"} | ${size === 100 ? "100 B" : "4 KB"} | ${writers} | ${fmtRate(r.perSec)} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} |`);
    }
  }
}
console.log("\nGroup commit gain (batch / always, writes per second):");
for (const backend of ["file", "sqlite"]) {
  for (const size of SIZES) {
    const parts = CONCURRENCY.map((writers) => {
      const get = (fsync) => results.find((r) => r.backend === backend && r.fsync === fsync && r.size === size && r.writers === writers).perSec;
      return `${writers} writers x${(get("batch") / get("always")).toFixed(1)}`;
    });
    console.log(`- ${backend}, ${size === 100 ? "100 B" : "4 KB"}: ${parts.join(", ")}`);
  }
}
console.log(`\ntotal ${((performance.now() - began) / 1000).toFixed(0)} s`);
