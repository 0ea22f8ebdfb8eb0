import { SeededRandom } from "@mpreg/testkit";
import { describe, expect, it } from "vitest";
import { FederationSim, clusterIds, randomConnectedGraph, type SimMode } from "../test/federation-sim.js";

/**
 * Seeded simulations of whole federations in one process: random connected graphs converge to
 * loop-free shortest routes, re-converge after a link failure without using the dead link, and
 * a flapping link is damped. Each run prints its rounds and messages.
 */

const SEEDS = [1, 2, 3, 4, 5, 6];

function build(seed: number, mode: SimMode): { sim: FederationSim; random: SeededRandom } {
  const random = new SeededRandom(seed);
  const n = 5 + random.int(46);
  const ids = clusterIds(n);
  const edges = randomConnectedGraph(ids, random, 2 + random.next() * 2);
  return { sim: new FederationSim({ ids, edges, mode }), random };
}

describe.each(["path-vector", "link-state"] as const)("%s simulation", (mode) => {
  it.each(SEEDS)("seed %i: converges, then re-converges after a link failure", (seed) => {
    const { sim, random } = build(seed, mode);
    const start = sim.runUntilQuiet(5000);
    expect(start.quiet).toBe(true);
    expect(sim.check()).toEqual([]);
    // Fail a random link (it may cut the graph: unreachable clusters must lose their routes).
    const [a, b] = random.pick([...sim.edges]).split("|") as [string, string];
    sim.unlink(a, b);
    const after = sim.runUntilQuiet(5000);
    expect(after.quiet).toBe(true);
    expect(sim.check()).toEqual([]);
    console.log(
      `${mode} seed ${seed}: ${sim.ids.length} clusters, ${sim.edges.size + 1} links; start ${start.rounds} rounds ` +
        `${start.messages} msgs ${start.entries} entries; after ${a}-${b} failed: ${after.rounds} rounds ${after.messages} msgs ${after.entries} entries`,
    );
  });
});

describe("path-vector damping", () => {
  it("a flapping link causes a bounded number of updates, and routes recover once it is stable", () => {
    const random = new SeededRandom(7);
    const ids = clusterIds(20);
    const sim = new FederationSim({
      ids,
      edges: randomConnectedGraph(ids, random, 3),
      options: () => ({ damping: {} }),
    });
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
    const [a, b] = [...sim.edges][0]!.split("|") as [string, string];
    const perCycle: number[] = [];
    for (let i = 0; i < 30; i++) {
      const m0 = sim.messages;
      sim.unlink(a, b);
      sim.runUntilQuiet();
      sim.link(a, b);
      sim.runUntilQuiet();
      perCycle.push(sim.messages - m0);
    }
    console.log(`flapping ${a}-${b}: updates per cycle ${perCycle.join(",")}`);
    // Damped after the third loss: later cycles send nothing at all.
    expect(perCycle.slice(3).every((m) => m === 0)).toBe(true);
    const total = perCycle.reduce((x, y) => x + y, 0);
    expect(total).toBeLessThanOrEqual(perCycle[0]! * 3);

    // Without damping the same flapping costs the same every cycle.
    const undamped = new FederationSim({ ids, edges: [...sim.edges].map((k) => k.split("|") as [string, string]) });
    undamped.runUntilQuiet();
    const m0 = undamped.messages;
    for (let i = 0; i < 30; i++) {
      undamped.unlink(a, b);
      undamped.runUntilQuiet();
      undamped.link(a, b);
      undamped.runUntilQuiet();
    }
    expect(undamped.messages - m0).toBeGreaterThan(total * 5);

    // Stable again: once the penalty decays (at most maxSuppressMs), the link is used again.
    sim.advance(301_000, 1000);
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
  });
});
