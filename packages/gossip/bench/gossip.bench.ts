import { test } from "vitest";
import type { GossipMessage } from "../src/index.js";
import { loadMsgpack } from "../test/msgpack.js";
import { SimCluster } from "../test/sim-cluster.js";

/**
 * Gossip benchmark on the simulated network (virtual time, seeded):
 *  - convergence of one catalog change (gossip rounds of 200 ms, virtual ms, real CPU ms),
 *  - time until every live node declares a crashed node dead,
 *  - gossip bytes per node per second at steady state (MessagePack size of every message).
 * Run: `pnpm --filter @mpreg/gossip bench` (MPREG_BENCH_SIZES=10,100 to choose sizes).
 */

const SIZES = (process.env.MPREG_BENCH_SIZES ?? "10,100,500").split(",").map(Number);
const LOSS = 0.01;

function cpuMs(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};

test("gossip benchmark", async () => {
  const { encode } = await loadMsgpack();
  let measuring = false;
  const sizeOf = (m: GossipMessage): number => (measuring ? encode(m).byteLength : 0);
  const rows: string[] = [];
  for (const n of SIZES) {
    const c = new SimCluster({ n, seed: 42, link: { lossProbability: LOSS }, sizeOf });
    const joinCpu = process.cpuUsage();
    c.joinAll("n0", 2000);
    const joined = c.runUntilMembershipConverged(300_000);
    const joinCpuMs = cpuMs(joinCpu);
    if (joined === undefined) throw new Error(`membership of ${n} nodes did not converge`);
    c.clock.advance(15_000); // let the join broadcasts retire

    // Steady state: no changes, only probes and anti-entropy.
    measuring = true;
    const bytes0 = c.net.stats.bytesSent;
    const steadyMs = 60_000;
    c.clock.advance(steadyMs);
    const steadyBps = (c.net.stats.bytesSent - bytes0) / n / (steadyMs / 1000);
    // With catalog churn: one 200-byte item change per second somewhere in the cluster.
    const bytes1 = c.net.stats.bytesSent;
    for (let s = 0; s < 60; s++) {
      const origin = c.random.pick(c.ids);
      c.node(origin).publish({ key: `churn/${s % 20}`, version: s + 1, data: { blob: "x".repeat(200) } });
      c.flush(origin);
      c.clock.advance(1000);
    }
    const churnBps = (c.net.stats.bytesSent - bytes1) / n / 60;
    measuring = false;
    c.clock.advance(15_000);

    // Convergence of single changes.
    const rounds: number[] = [];
    const virt: number[] = [];
    const cpu: number[] = [];
    for (let k = 0; k < 5; k++) {
      const origin = c.random.pick(c.ids);
      const start = c.clock.now();
      const cpu0 = process.cpuUsage();
      c.node(origin).publish({ key: `bench/${k}`, version: 1, data: { origin } });
      c.flush(origin);
      const t = c.clock.runUntilTrue(() => c.allHave(`bench/${k}`, 1), { maxMs: 120_000, stepMs: 10 });
      if (t === undefined) throw new Error(`change ${k} did not converge on ${n} nodes`);
      cpu.push(cpuMs(cpu0));
      virt.push(t - start);
      rounds.push(Math.ceil((t - start) / 200));
      c.clock.advance(5000);
    }

    // Crash detection.
    const victim = c.ids[Math.floor(n / 2)] as string;
    const t0 = c.clock.now();
    let firstSuspect: number | undefined;
    c.crash(victim);
    const tDead = c.clock.runUntilTrue(
      () => {
        if (firstSuspect === undefined && c.upIds().some((id) => c.node(id).member(victim)?.status === "suspect")) firstSuspect = c.clock.now() - t0;
        return c.upIds().every((id) => ["dead", undefined].includes(c.node(id).member(victim)?.status));
      },
      { maxMs: 300_000, stepMs: 50 },
    );
    rows.push(
      `| ${n} | ${(joined / 1000).toFixed(1)} s (${joinCpuMs.toFixed(0)} ms CPU) | ${median(rounds)} (${rounds.join(",")}) | ${median(virt).toFixed(0)} | ${median(cpu).toFixed(1)} | ${firstSuspect ?? "-"} | ${tDead === undefined ? "never" : tDead - t0} | ${steadyBps.toFixed(0)} | ${churnBps.toFixed(0)} |`,
    );
  }
  const table = [
    `Gossip on the simulated network (seed 42, ${LOSS * 100}% loss, 1–10 ms links, default config), Node ${process.version}`,
    "",
    "| nodes | membership converged after join (virtual; real CPU) | change: rounds of 200 ms (median; 5 runs) | change: virtual ms (median) | change: real CPU ms (median) | crash: first suspicion ms | crash: dead everywhere ms | bytes/node/s idle | bytes/node/s, 1 change/s |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
  console.log(`\n${table}\n`);
});
