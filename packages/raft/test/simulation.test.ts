import { describe, expect, it } from "vitest";
import { runSimulation } from "./sim.js";

/**
 * Seeded simulations (see sim.ts and kv-checker.ts for what is checked): `pnpm test` runs
 * SEEDS_3 + SEEDS_5 seeds; MPREG_LONG=1 runs thousands.
 * MPREG_SIM_SEED=<n> reruns one seed (prints its stats); MPREG_SIM_OFFSET=<k> shifts the seed ranges.
 */
const LONG = process.env.MPREG_LONG === "1";
const ONE = process.env.MPREG_SIM_SEED;
const SEEDS_3 = LONG ? 2000 : 200;
const SEEDS_5 = LONG ? 1000 : 100;
/** Shifts the seed ranges (to explore new schedules without changing the default ones). */
const OFFSET = Number(process.env.MPREG_SIM_OFFSET ?? 0);

async function runSeeds(nodes: number, count: number, first: number): Promise<void> {
  const failures: string[] = [];
  let ops = 0;
  let crashes = 0;
  let unknown = 0;
  let transfers = 0;
  let snaps = 0;
  let followerReads = 0;
  const kv = { ranges: 0, txns: 0, keepalives: 0, leasesExpired: 0, watchEvents: 0, watchResumes: 0 };
  for (let s = first; s < first + count; s++) {
    const res = await runSimulation({ seed: s, nodes });
    for (const k of Object.keys(kv) as (keyof typeof kv)[]) kv[k] += res.stats[k];
    ops += res.stats.ops;
    crashes += res.stats.crashes;
    unknown += res.stats.unknown;
    transfers += res.stats.transfers;
    snaps += res.stats.snapshotsSent;
    followerReads += res.stats.followerReads;
    if (res.violations.length > 0) failures.push(`seed ${s}: ${res.violations.join("; ")}`);
    if (res.check.result === "unknown") failures.push(`seed ${s}: linearizability check ran out of budget`);
  }
  expect(failures).toEqual([]);
  // The workload must actually exercise the cluster.
  expect(ops).toBeGreaterThan(count * 50);
  expect(crashes).toBeGreaterThan(0);
  expect(transfers).toBeGreaterThan(0);
  expect(snaps).toBeGreaterThan(0);
  expect(followerReads).toBeGreaterThan(count); // reads served by followers are checked too
  expect(unknown).toBeGreaterThan(0); // crashes leave operations of unknown outcome in the history
  // Range reads, transactions, leases (kept alive and expired) and watches (resumed after their
  // member crashed) all happen.
  expect(kv.ranges).toBeGreaterThan(count * 10);
  expect(kv.txns).toBeGreaterThan(count * 10);
  expect(kv.keepalives).toBeGreaterThan(count);
  expect(kv.leasesExpired).toBeGreaterThan(count * 5);
  expect(kv.watchEvents).toBeGreaterThan(count * 50);
  expect(kv.watchResumes).toBeGreaterThan(count / 20);
}

describe("deterministic simulation (loss, duplication, reordering, partitions, crash-restart)", () => {
  if (ONE !== undefined) {
    it(`seed ${ONE}`, async () => {
      const nodes = Number(process.env.MPREG_SIM_NODES ?? 3);
      const res = await runSimulation({ seed: Number(ONE), nodes });
      console.log(JSON.stringify({ stats: res.stats, check: res.check.result, steps: res.check.steps }));
      expect(res.violations).toEqual([]);
    });
    return;
  }

  it("is deterministic for a seed", async () => {
    const a = await runSimulation({ seed: 42, nodes: 3 });
    const b = await runSimulation({ seed: 42, nodes: 3 });
    expect(a.stats).toEqual(b.stats);
    expect(a.history).toEqual(b.history);
  });

  it(`3 nodes, ${SEEDS_3} seeds: linearizable, safe, convergent`, { timeout: 1_800_000 }, async () => {
    await runSeeds(3, SEEDS_3, 1 + OFFSET);
  });

  it(`5 nodes, ${SEEDS_5} seeds: linearizable, safe, convergent`, { timeout: 1_800_000 }, async () => {
    await runSeeds(5, SEEDS_5, 10_001 + OFFSET);
  });
});
