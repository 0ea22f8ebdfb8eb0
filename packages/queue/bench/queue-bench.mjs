// Queue benchmark: send -> receive -> ack, messages/s and latency, for the queue service in
// memory and durable (file backend under each fsync policy, SQLite), with 1 and 8 consumers;
// beside Redis streams (XADD -> XREADGROUP -> XACK) in the same run when `redis-server` is
// installed (started here on a free loopback port, killed at the end).
//
// Each consumer is a closed loop: send one message, receive one, ack it. Latency is per message,
// from the start of its send to the end of its ack (with competing consumers a loop may receive
// another loop's message; the send time travels in the body). Throughput counts acked messages.
// The queue service runs in process (an embedded queue); Redis is reached over loopback TCP.
//
// Run: `pnpm --filter @mpreg/queue bench` (builds first). MPREG_BENCH_MS sets the time per cell
// (default 2000 ms).
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { openBackend } from "@mpreg/persistence";
import { QueueService } from "../dist/index.js";

const DURATION_MS = Number(process.env.MPREG_BENCH_MS ?? 2000);
const CONSUMERS = [1, 8];
const PAD = "x".repeat(100);
const CASES = [
  { label: "memory", storage: undefined },
  { label: "file, fsync always", storage: { backend: "file", fsync: "always" } },
  { label: "file, fsync batch", storage: { backend: "file", fsync: "batch" } },
  { label: "file, fsync none", storage: { backend: "file", fsync: "none" } },
  { label: "sqlite, fsync batch", storage: { backend: "sqlite", fsync: "batch" } },
];
const REDIS_CASES = [
  { label: "no persistence", args: ["--appendonly", "no"] },
  { label: "AOF, appendfsync always", args: ["--appendonly", "yes", "--appendfsync", "always"] },
];

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summarize(latencies, elapsedMs) {
  latencies.sort((a, b) => a - b);
  return { msgs: latencies.length, perSec: (latencies.length / elapsedMs) * 1000, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function queueCell(c, consumers, durationMs = DURATION_MS) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "mpreg-queue-bench-"));
  const backend = c.storage ? await openBackend({ ...c.storage, dir }) : undefined;
  const service = await QueueService.open(backend ? { backend } : {});
  await service.create("bench", { visibility_timeout_ms: 30_000 });
  const latencies = [];
  const start = performance.now();
  const deadline = start + durationMs;
  await Promise.all(
    Array.from({ length: consumers }, async (_, i) => {
      const owner = `consumer-${i}`;
      while (performance.now() < deadline) {
        await service.send("bench", { t: performance.now(), pad: PAD });
        const [m] = await service.receive("bench", { max: 1, wait_ms: 1000 }, owner);
        if (m === undefined) continue;
        await service.ack("bench", m.receipt);
        latencies.push(performance.now() - m.body.t);
      }
    }),
  );
  const elapsed = performance.now() - start;
  await service.close();
  await backend?.close();
  await fs.rm(dir, { recursive: true, force: true });
  return summarize(latencies, elapsed);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function redisAvailable() {
  const r = spawnSync("redis-server", ["--version"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

async function startRedis(extraArgs) {
  const port = await freePort();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "mpreg-redis-bench-"));
  const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--dir", dir, ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out}`)), 10_000);
    proc.stdout.setEncoding("utf8").on("data", (d) => {
      out += d;
      if (out.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.on("exit", (code) => reject(new Error(`redis-server exited (${code}): ${out}`)));
  });
  return {
    port,
    async stop() {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      await exited;
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

async function redisCell(createClient, port, consumers, durationMs = DURATION_MS) {
  const key = `bench:${Math.random().toString(36).slice(2)}`;
  // One connection per consumer: XREADGROUP ... BLOCK holds its connection.
  const clients = await Promise.all(Array.from({ length: consumers }, () => createClient({ url: `redis://127.0.0.1:${port}` }).connect()));
  await clients[0].xGroupCreate(key, "g", "0", { MKSTREAM: true });
  const latencies = [];
  const start = performance.now();
  const deadline = start + durationMs;
  await Promise.all(
    clients.map(async (c, i) => {
      while (performance.now() < deadline) {
        await c.xAdd(key, "*", { t: String(performance.now()), pad: PAD });
        const r = await c.xReadGroup("g", `c${i}`, { key, id: ">" }, { COUNT: 1, BLOCK: 1000 });
        const m = r?.[0]?.messages?.[0];
        if (m === undefined) continue;
        await c.xAck(key, "g", m.id);
        latencies.push(performance.now() - Number(m.message.t));
      }
    }),
  );
  const elapsed = performance.now() - start;
  await clients[0].del(key);
  await Promise.all(clients.map((c) => c.quit()));
  return summarize(latencies, elapsed);
}

const fmtRate = (n) => (n >= 10000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : `${Math.round(n)}`);
const fmtMs = (n) => (Number.isNaN(n) ? "-" : n < 0.1 ? n.toFixed(3) : n < 10 ? n.toFixed(2) : n.toFixed(0));

const began = performance.now();
const redisVersion = redisAvailable();
console.log(
  `queue benchmark (send -> receive -> ack): node ${process.version}, ${os.cpus().length} CPUs, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")}, ${DURATION_MS} ms per cell${redisVersion ? `, ${redisVersion.split(" ").slice(0, 3).join(" ")}` : ", redis-server not installed (Redis rows skipped)"}\n`,
);

// Warm the JIT so the first cell is not penalised.
await queueCell(CASES[0], 1, 300);

const rows = [];
for (const c of CASES) {
  for (const n of CONSUMERS) rows.push({ system: "mpreg queue", durability: c.label, consumers: n, ...(await queueCell(c, n)) });
}
if (redisVersion) {
  const { createClient } = await import("redis");
  for (const rc of REDIS_CASES) {
    const server = await startRedis(rc.args);
    try {
      await redisCell(createClient, server.port, 1, 300);
      for (const n of CONSUMERS) rows.push({ system: "Redis streams", durability: rc.label, consumers: n, ...(await redisCell(createClient, server.port, n)) });
    } finally {
      await server.stop();
    }
  }
}

console.log("| system | durability | consumers | msgs/s | p50 ms | p99 ms |");
console.log("|---|---|---:|---:|---:|---:|");
for (const r of rows) {
  console.log(`| ${r.system} | ${r.durability} | ${r.consumers} | ${fmtRate(r.perSec)} | ${fmtMs(r.p50)} | ${fmtMs(r.p99)} |`);
}

if (redisVersion) {
  // Side by side at matching durability: nothing on disk, and every write fsynced before it is answered.
  const pick = (system, durability, n) => rows.find((r) => r.system === system && r.durability === durability && r.consumers === n);
  const cell = (r) => (r ? `${fmtRate(r.perSec)}/s, p99 ${fmtMs(r.p99)} ms` : "-");
  console.log("\n| consumers | mpreg memory | Redis, no persistence | mpreg file, fsync always | Redis, AOF always |");
  console.log("|---:|---:|---:|---:|---:|");
  for (const n of CONSUMERS) {
    console.log(
      `| ${n} | ${cell(pick("mpreg queue", "memory", n))} | ${cell(pick("Redis streams", "no persistence", n))} | ${cell(
        pick("mpreg queue", "file, fsync always", n),
      )} | ${cell(pick("Redis streams", "AOF, appendfsync always", n))} |`,
    );
  }
}
console.log(`\ntotal ${((performance.now() - began) / 1000).toFixed(1)} s`);
