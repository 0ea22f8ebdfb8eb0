import { SeededRandom } from "@mpreg/testkit";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  FederationSim,
  bruteForceBestRoutes,
  clusterGraphArb,
  clusterIds,
  randomClusterGraph,
  type ClusterGraph,
  type SimMode,
} from "./testing/index.js";

/**
 * Seeded simulations of whole federations in one process (FederationSim, SeededRandom from the
 * testkit): random connected graphs of 5–50 clusters with random link costs and latencies
 * converge to loop-free shortest routes, the same in both modes; after a link failure they
 * re-converge without using the dead link; a flapping link costs a bounded number of messages.
 * Each run prints its rounds, simulated ms and messages.
 */

const SEEDS = [1, 2, 3, 4, 5, 6];
const MODES: SimMode[] = ["path-vector", "link-state"];

interface Setup {
  graph: ClusterGraph;
  latency: (a: string, b: string) => number;
  random: SeededRandom;
}

/** 5–50 clusters, average degree 2–4, link costs 1–4, one-way latencies 1–50 ms. */
function setup(seed: number): Setup {
  const random = new SeededRandom(seed);
  const n = 5 + random.int(46);
  const graph = randomClusterGraph(clusterIds(n), random, { avgDegree: 2 + random.next() * 2, minCost: 1, maxCost: 4 });
  const lat = new Map(graph.links.map((l) => [`${l.a}|${l.b}`, 1 + random.int(50)]));
  const latency = (a: string, b: string): number => lat.get(a < b ? `${a}|${b}` : `${b}|${a}`) ?? 10;
  return { graph, latency, random };
}

/** Every best route of every cluster, as `source>…>destination` strings. */
function allBest(sim: FederationSim): string[] {
  const out: string[] = [];
  for (const s of sim.ids) for (const d of sim.ids) if (d !== s) out.push(sim.speaker(s).bestRoute(d)?.path.join(">") ?? `${s}>(none)>${d}`);
  return out;
}

/** True when some best route crosses the link a–b (in either direction). */
function usesLink(sim: FederationSim, a: string, b: string): boolean {
  return allBest(sim).some((p) => {
    const path = p.split(">");
    return path.some((c, i) => i > 0 && ((c === a && path[i - 1] === b) || (c === b && path[i - 1] === a)));
  });
}

describe("simulation: random connected graphs of 5–50 clusters", () => {
  it.each(SEEDS)("seed %i: both modes converge to the same loop-free shortest routes, and again after a link failure", (seed) => {
    const { graph, latency, random } = setup(seed);
    const sims = MODES.map((mode) => FederationSim.fromGraph(graph, { mode, latency }));
    const starts = sims.map((sim) => sim.runUntilQuiet());
    for (const [i, sim] of sims.entries()) {
      expect(starts[i]!.quiet).toBe(true);
      expect(sim.check()).toEqual([]);
    }
    // Same preference order in both modes: the very same paths, ties included.
    expect(allBest(sims[1]!)).toEqual(allBest(sims[0]!));

    // Fail a random link (it may cut the graph: clusters cut off must lose their routes).
    const [a, b] = random.pick(sims[0]!.links());
    const afters = sims.map((sim) => {
      sim.unlink(a, b);
      return sim.runUntilQuiet();
    });
    for (const [i, sim] of sims.entries()) {
      expect(afters[i]!.quiet).toBe(true);
      expect(sim.check()).toEqual([]);
      expect(usesLink(sim, a, b)).toBe(false);
      const s = starts[i]!;
      const f = afters[i]!;
      console.log(
        `${MODES[i]} seed ${seed}: ${graph.clusters.length} clusters, ${graph.links.length} links; ` +
          `start ${s.rounds} rounds ${s.ms} ms ${s.messages} msgs ${s.entries} entries; ` +
          `after ${a}-${b} failed: ${f.rounds} rounds ${f.ms} ms ${f.messages} msgs ${f.entries} entries`,
      );
    }
    expect(allBest(sims[1]!)).toEqual(allBest(sims[0]!));
  });

  /**
   * On any small connected graph with any link costs (zero included) and latencies, both modes
   * converge to exactly the brute-force best route for every pair, and again after a random
   * link fails.
   */
  it("converged routes equal the brute-force best routes, before and after a link failure (property)", () => {
    const arb = clusterGraphArb({ minClusters: 2, maxClusters: 7 }).chain((graph) =>
      fc.record({
        graph: fc.constant(graph),
        latencies: fc.array(fc.nat(20), { minLength: graph.links.length, maxLength: graph.links.length }),
        fail: fc.nat(),
        mode: fc.constantFrom(...MODES),
      }),
    );
    const expectBruteForce = (sim: FederationSim): void => {
      const g = sim.graph();
      for (const s of g.clusters) {
        const want = bruteForceBestRoutes(g, s);
        for (const d of g.clusters) {
          if (d === s) continue;
          const got = sim.speaker(s).bestRoute(d);
          const w = want.get(d);
          expect(got === undefined ? undefined : { path: got.path, metric: got.metric, nextHop: got.nextHop }).toEqual(
            w === undefined ? undefined : { path: w.path, metric: w.metric, nextHop: w.nextHop },
          );
        }
      }
    };
    fc.assert(
      fc.property(arb, ({ graph, latencies, fail, mode }) => {
        const lat = new Map(graph.links.map((l, i) => [`${l.a}|${l.b}`, latencies[i]!]));
        const sim = FederationSim.fromGraph(graph, { mode, latency: (a, b) => lat.get(a < b ? `${a}|${b}` : `${b}|${a}`)! });
        expect(sim.runUntilQuiet().quiet).toBe(true);
        expectBruteForce(sim);
        if (graph.links.length > 0) {
          const l = graph.links[fail % graph.links.length]!;
          sim.unlink(l.a, l.b);
          expect(sim.runUntilQuiet().quiet).toBe(true);
          expectBruteForce(sim);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe("simulation: a flapping link", () => {
  it("path-vector: damping bounds the updates, and routes recover once the link is stable", () => {
    const random = new SeededRandom(7);
    const graph = randomClusterGraph(clusterIds(20), random, { avgDegree: 3 });
    const sim = FederationSim.fromGraph(graph, { options: () => ({ damping: {} }) });
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
    const [a, b] = sim.links()[0]!;
    const perCycle: number[] = [];
    for (let i = 0; i < 30; i++) {
      const m0 = sim.messages;
      sim.unlink(a, b);
      sim.runUntilQuiet();
      sim.link(a, b);
      sim.runUntilQuiet();
      perCycle.push(sim.messages - m0);
    }
    console.log(`path-vector flapping ${a}-${b}: updates per cycle ${perCycle.join(",")}`);
    // Damped after the third loss: later cycles send nothing at all.
    expect(perCycle.slice(3).every((m) => m === 0)).toBe(true);
    const total = perCycle.reduce((x, y) => x + y, 0);
    expect(total).toBeLessThanOrEqual(perCycle[0]! * 3);

    // Without damping the same flapping costs the same every cycle.
    const undamped = FederationSim.fromGraph(graph);
    undamped.runUntilQuiet();
    const m0 = undamped.messages;
    for (let i = 0; i < 30; i++) {
      undamped.unlink(a, b);
      undamped.runUntilQuiet();
      undamped.link(a, b);
      undamped.runUntilQuiet();
    }
    console.log(`path-vector flapping ${a}-${b}: ${total} updates in 30 cycles with damping, ${undamped.messages - m0} without`);
    expect(undamped.messages - m0).toBeGreaterThan(total * 5);

    // Stable again: once the penalty decays (at most maxSuppressMs), the link is used again.
    sim.advance(301_000);
    sim.runUntilQuiet();
    expect(sim.check()).toEqual([]);
  });

  it("link-state: each flap floods at most two new announcements per link direction, plus the database sync", () => {
    const random = new SeededRandom(8);
    const graph = randomClusterGraph(clusterIds(20), random, { avgDegree: 3 });
    const sim = FederationSim.fromGraph(graph, { mode: "link-state" });
    sim.runUntilQuiet();
    const [a, b] = sim.links()[0]!;
    const e = graph.links.length;
    const n = graph.clusters.length;
    const perCycle: number[] = [];
    for (let i = 0; i < 10; i++) {
      const e0 = sim.entries;
      sim.unlink(a, b);
      sim.runUntilQuiet();
      sim.link(a, b);
      sim.runUntilQuiet();
      perCycle.push(sim.entries - e0);
      expect(sim.check()).toEqual([]);
    }
    console.log(`link-state flapping ${a}-${b}: announcements per cycle ${perCycle.join(",")} (${e} links)`);
    // Down: a and b each originate one announcement, flooded once over each link direction.
    // Up: the same, plus a and b sending each other their databases.
    for (const m of perCycle) expect(m).toBeLessThanOrEqual(2 * (2 * 2 * e) + 2 * n);
  });
});
