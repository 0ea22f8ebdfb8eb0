import { SeededRandom } from "@mpreg/testkit";
import { test } from "vitest";
import { KeyRegistry } from "../src/key-registry.js";
import { RouteSigner } from "../src/route-signing.js";
import { FederationSim, clusterIds, randomClusterGraph, type SimMode } from "../src/testing/index.js";

/**
 * Federation route convergence on the discrete-event simulation (`@mpreg/router/testing`'s
 * FederationSim; one process, seeded): random connected graphs of N clusters, average degree 4,
 * link costs 1–4, one-way link latencies 5–50 ms; path-vector and link-state.
 *  - start: from every link coming up at once until no message is in flight: rounds (message
 *    generations), simulated ms until the last delivery, control messages and route entries;
 *  - link failure: the same after one random link fails, mean (and worst ms) over FAILURES
 *    links failed one after another; every route is checked after each run (a route to every
 *    reachable cluster, loop-free, shortest, none over the dead link).
 * CPU ms is the whole federation's work in this one process.
 * Run: `pnpm --filter @mpreg/router bench` (MPREG_BENCH_SIZES=10,50 to choose sizes).
 */

const SIZES = (process.env.MPREG_BENCH_SIZES ?? "10,50,200").split(",").map(Number);
const FAILURES = 5;

function cpuMs(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

interface Row {
  n: number;
  mode: string;
  links: number;
  start: { rounds: number; ms: number; msgs: number; entries: number; cpu: number };
  fail: { rounds: number; ms: number; maxMs: number; msgs: number; entries: number; cpu: number };
}

function measure(n: number, mode: SimMode, signed: boolean): Row {
  const random = new SeededRandom(1000 + n);
  const graph = randomClusterGraph(clusterIds(n), random, { avgDegree: 4, minCost: 1, maxCost: 4 });
  const lat = new Map(graph.links.map((l) => [`${l.a}|${l.b}`, 5 + random.int(46)]));
  const latency = (a: string, b: string): number => lat.get(a < b ? `${a}|${b}` : `${b}|${a}`) ?? 10;
  let options;
  if (signed) {
    const signers = new Map(graph.clusters.map((id) => [id, RouteSigner.generate(id)]));
    const trusted = graph.clusters.map((id) => ({ clusterId: id, publicKey: signers.get(id)!.publicKey }));
    options = (id: string) => ({ signer: signers.get(id)!, keys: new KeyRegistry({ trusted }), requireSignatures: true });
  }
  const sim = FederationSim.fromGraph(graph, { mode, latency, ...(options ? { options } : {}) });
  const c0 = process.cpuUsage();
  const start = sim.runUntilQuiet();
  const startCpu = cpuMs(c0);
  if (!start.quiet) throw new Error(`${mode} ${n}: no convergence`);
  const bad = sim.check();
  if (bad.length > 0) throw new Error(`${mode} ${n}: ${bad.slice(0, 3).join("; ")}`);
  const fail = { rounds: 0, ms: 0, maxMs: 0, msgs: 0, entries: 0, cpu: 0 };
  for (let i = 0; i < FAILURES; i++) {
    const [a, b] = random.pick(sim.links());
    const c1 = process.cpuUsage();
    sim.unlink(a, b);
    const r = sim.runUntilQuiet();
    fail.cpu += cpuMs(c1);
    if (!r.quiet) throw new Error(`${mode} ${n}: no re-convergence`);
    const after = sim.check();
    if (after.length > 0) throw new Error(`${mode} ${n} after ${a}-${b}: ${after.slice(0, 3).join("; ")}`);
    fail.rounds += r.rounds;
    fail.ms += r.ms;
    fail.maxMs = Math.max(fail.maxMs, r.ms);
    fail.msgs += r.messages;
    fail.entries += r.entries;
  }
  return {
    n,
    mode: signed ? `${mode} signed` : mode,
    links: graph.links.length,
    start: { rounds: start.rounds, ms: start.ms, msgs: start.messages, entries: start.entries, cpu: startCpu },
    fail: {
      rounds: fail.rounds / FAILURES,
      ms: fail.ms / FAILURES,
      maxMs: fail.maxMs,
      msgs: fail.msgs / FAILURES,
      entries: fail.entries / FAILURES,
      cpu: fail.cpu / FAILURES,
    },
  };
}

test("federation route convergence benchmark", () => {
  const rows: Row[] = [];
  for (const n of SIZES) {
    rows.push(measure(n, "path-vector", false));
    rows.push(measure(n, "link-state", false));
    if (n <= 50) rows.push(measure(n, "path-vector", true));
  }
  const f = (x: number, d = 0): string => x.toFixed(d);
  const lines = [
    "| clusters | links | mode | start: rounds | sim ms | msgs | entries | CPU ms | link failure: rounds | sim ms (worst) | msgs | entries | CPU ms |",
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.n} | ${r.links} | ${r.mode} | ${r.start.rounds} | ${r.start.ms} | ${r.start.msgs} | ${r.start.entries} | ${f(r.start.cpu)} | ` +
        `${f(r.fail.rounds, 1)} | ${f(r.fail.ms)} (${r.fail.maxMs}) | ${f(r.fail.msgs, 1)} | ${f(r.fail.entries, 1)} | ${f(r.fail.cpu, 1)} |`,
    ),
  ];
  console.log(
    `\nFederation route convergence (seeded random graphs, average degree 4, costs 1–4, latencies 5–50 ms; ` +
      `link failure: mean of ${FAILURES})\n${lines.join("\n")}\n`,
  );
});
