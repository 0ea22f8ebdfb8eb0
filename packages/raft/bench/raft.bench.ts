import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileBackend, type FsyncPolicy } from "@mpreg/persistence";
import { it } from "vitest";
import { LocalCluster } from "../test/local-cluster.js";
import { rng } from "../test/core-net.js";

/**
 * Raft benchmarks (in process; messages cross a setImmediate hop, no sockets):
 *  - committed writes per second and commit latency with C concurrent clients doing `put`,
 *    for 3 and 5 members, on memory storage and on the file backend (fsync batch / always);
 *  - election time after the leader crashes, in simulated milliseconds (10 ms ticks,
 *    electionTick 10 = 100-200 ms randomized timeout, heartbeat every tick).
 * BENCH_SECONDS (default 3) and BENCH_CLIENTS (default 64) tune the write runs; each storage
 * also gets a single-client run (the latency-bound case etcd publishes too).
 *
 * "kv benchmarks" (run alone with `-t kv`): transactions per second, watch event throughput
 * (events delivered per second to a watch on a follower while clients write 10-key
 * transactions), and the catch-up time of a member from a large snapshot (BENCH_CATCHUP_MIB,
 * default 100) while writes go on.
 */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 64);

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function writeRun(members: number, storage: "memory" | FsyncPolicy, clients: number) {
  const dirs: string[] = [];
  const backends: FileBackend[] = [];
  const c = new LocalCluster(members, {
    autoDeliver: true,
    tickMs: 50, // 500-1000 ms election timeout: a loaded machine's pauses do not depose the leader
    snapshotEvery: 20_000,
    requestTimeoutTicks: 1000,
    ...(storage === "memory"
      ? {}
      : {
          storage: async (id: string) => {
            const dir = await mkdtemp(join(tmpdir(), `mpreg-raft-bench-${id}-`));
            dirs.push(dir);
            const b = await FileBackend.open({ dir, fsync: storage });
            backends.push(b);
            return b;
          },
        }),
  });
  await c.start();
  let leader = c.leader();
  const t0 = Date.now();
  while (!leader) {
    await new Promise((r) => setTimeout(r, 5));
    leader = c.leader();
    if (Date.now() - t0 > 10_000) throw new Error("no leader");
  }
  let target = leader;
  const lat: number[] = [];
  let failures = 0;
  let stop = false;
  const start = performance.now();
  const client = async (k: number) => {
    let i = 0;
    while (!stop) {
      const s = performance.now();
      try {
        await target.put(`key${k}`, `value-${k}-${i++}-${"x".repeat(100)}`);
        lat.push(performance.now() - s);
      } catch {
        // Leadership moved (a long pause on a loaded machine): follow it, count the failure.
        failures++;
        await new Promise((r) => setTimeout(r, 20));
        target = c.leader() ?? target;
      }
    }
  };
  const runs = Array.from({ length: clients }, (_, k) => client(k));
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  await Promise.all(runs);
  const elapsed = (performance.now() - start) / 1000;
  for (const kv of c.nodes.values()) await kv?.node.stop();
  for (const b of backends) await b.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  return { writes: lat.length / elapsed, p50: pct(lat, 50), p99: pct(lat, 99), failures };
}

async function electionRun(members: number, trials: number) {
  const times: number[] = [];
  for (let t = 0; t < trials; t++) {
    const c = new LocalCluster(members, { random: rng(t * 7 + members) });
    await c.start();
    const first = await c.waitLeader();
    await c.tick(3); // steady state: followers just heard a heartbeat
    c.crash(first.node.id);
    let ticks = 0;
    while (!c.leader()) {
      await c.tick();
      if (++ticks > 1000) throw new Error("no new leader");
    }
    times.push(ticks * 10);
  }
  times.sort((a, b) => a - b);
  return { mean: times.reduce((a, b) => a + b, 0) / times.length, p50: pct(times, 50), p99: pct(times, 99), max: times[times.length - 1]! };
}

it("raft benchmarks", async () => {
  const rows: string[] = [];
  rows.push(`| members | storage | clients | committed writes/s | p50 commit ms | p99 commit ms | failed |`);
  rows.push(`|---|---|---|---|---|---|---|`);
  for (const storage of ["memory", "batch", "always"] as const) {
    for (const [members, clients] of [[3, 1], [3, CLIENTS], [5, CLIENTS]] as const) {
      const r = await writeRun(members, storage, clients);
      const label = storage === "memory" ? "memory" : `file, fsync ${storage}`;
      rows.push(`| ${members} | ${label} | ${clients} | ${Math.round(r.writes)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.failures} |`);
    }
  }
  rows.push("");
  rows.push(`| members | election after leader crash (simulated ms): mean | p50 | p99 | max |`);
  rows.push(`|---|---|---|---|---|`);
  for (const members of [3, 5]) {
    const e = await electionRun(members, 100);
    rows.push(`| ${members} | ${e.mean.toFixed(0)} | ${e.p50} | ${e.p99} | ${e.max} |`);
  }
  console.log(`\nRaft benchmark (${CLIENTS} clients, ${SECONDS}s per write run, node ${process.version})\n\n${rows.join("\n")}\n`);
});

/** A 3-member memory cluster delivering messages through setImmediate, 10 ms ticks. */
async function liveCluster(extra: ConstructorParameters<typeof LocalCluster>[1] = {}) {
  const c = new LocalCluster(3, { autoDeliver: true, tickMs: 10, electionTick: 50, requestTimeoutTicks: 1000, snapshotEvery: 20_000, ...extra });
  await c.start();
  const t0 = Date.now();
  while (!c.leader()) {
    await new Promise((r) => setTimeout(r, 5));
    if (Date.now() - t0 > 10_000) throw new Error("no leader");
  }
  return c;
}

async function txnWatchRun(clients: number) {
  const c = await liveCluster();
  const leader = c.leader()!;
  const follower = [...c.nodes.values()].find((k) => k && k !== leader)!;
  let events = 0;
  await follower.watch("bench", "", undefined, { deliver: (e) => void (events += e.length), end: () => undefined });
  let txns = 0;
  let stop = false;
  const start = performance.now();
  const client = async (k: number) => {
    for (let i = 0; !stop; i++) {
      await leader.txn({ success: Array.from({ length: 10 }, (_, j) => ({ put: [`w/${k}/${j}`, i] as [string, unknown] })) });
      txns++;
    }
  };
  const runs = Array.from({ length: clients }, (_, k) => client(k));
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  await Promise.all(runs);
  const elapsed = (performance.now() - start) / 1000;
  const expected = txns * 10;
  // Let the watch drain (it trails the leader by the follower's apply).
  const t0 = Date.now();
  while (events < expected && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 10));
  const drained = (performance.now() - start) / 1000;
  for (const kv of c.nodes.values()) await kv?.stop();
  return { txns: txns / elapsed, events: events / drained, delivered: events, expected };
}

async function catchUpRun(mib: number) {
  const c = await liveCluster({ snapshotEvery: 100 });
  const leader = c.leader()!;
  const lagger = c.ids.find((id) => id !== leader.node.id)!;
  c.isolate(lagger);
  const value = new Uint8Array(512 * 1024);
  const n = Math.ceil((mib * 1024 * 1024) / value.length);
  for (let i = 0; i < n; i += 8) await Promise.all(Array.from({ length: Math.min(8, n - i) }, (_, j) => leader.put(`big/${i + j}`, value)));
  for (let i = 0; i < 120; i++) await leader.put(`small/${i}`, i);
  let stop = false;
  let writes = 0;
  const writer = (async () => {
    while (!stop) {
      await leader.put(`during/${writes % 100}`, writes);
      writes++;
    }
  })();
  const t0 = performance.now();
  c.heal();
  const lag = c.nodes.get(lagger)!;
  while (lag.node.status().snapshotIndex <= n) await new Promise((r) => setTimeout(r, 10));
  const installed = performance.now() - t0;
  while (lag.node.status().applied < leader.node.status().commit - 5) await new Promise((r) => setTimeout(r, 10));
  const following = performance.now() - t0;
  stop = true;
  await writer;
  const bytes = lag.state.byteSize;
  for (const kv of c.nodes.values()) await kv?.stop();
  return { installed, following, writes, bytes, chunks: c.snapChunks.get(lagger) ?? 0 };
}

it("kv benchmarks", async () => {
  const rows: string[] = [];
  rows.push(`| clients | 10-key txns/s | watch events/s (on a follower) | delivered / written |`);
  rows.push(`|---|---|---|---|`);
  for (const clients of [1, CLIENTS]) {
    const r = await txnWatchRun(clients);
    rows.push(`| ${clients} | ${Math.round(r.txns)} | ${Math.round(r.events)} | ${r.delivered} / ${r.expected} |`);
  }
  const mib = Number(process.env.BENCH_CATCHUP_MIB ?? 100);
  const cu = await catchUpRun(mib);
  rows.push("");
  rows.push(`| snapshot | chunks (1 MiB) | installed after | following the log after | writes served meanwhile |`);
  rows.push(`|---|---|---|---|---|`);
  rows.push(`| ${(cu.bytes / 1024 / 1024).toFixed(0)} MiB | ${cu.chunks} | ${(cu.installed / 1000).toFixed(1)} s | ${(cu.following / 1000).toFixed(1)} s | ${cu.writes} |`);
  console.log(`\nRaft KV benchmark (3 members, memory storage, ${SECONDS}s per run, node ${process.version})\n\n${rows.join("\n")}\n`);
});
