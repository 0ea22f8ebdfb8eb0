import { SeededRandom } from "@mpreg/testkit";
import { test } from "vitest";
import { KeyRegistry } from "../src/key-registry.js";
import { RouteSigner } from "../src/route-signing.js";
import { FederationSim, clusterIds, randomConnectedGraph, type SimMode } from "../test/federation-sim.js";

/**
 * Federation convergence benchmark on the round-based simulation (one process, seeded):
 * random connected graphs of N clusters (average degree 4), path-vector and link-state.
 *  - start: rounds, control messages (one per neighbour per round at most) and route entries
 *    until no message is in flight, and the CPU time it took;
 *  - link failure: the same for re-convergence after one random link fails (averaged over
 *    FAILURES links, failed one after another), every route checked afterwards.
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
  startRounds: number;
  startMsgs: number;
  startEntries: number;
  startMs: number;
  failRounds: number;
  failMsgs: number;
  failEntries: number;
  failMs: number;
}

function measure(n: number, mode: SimMode, signed: boolean): Row {
  const random = new SeededRandom(1000 + n);
  const ids = clusterIds(n);
  const edges = randomConnectedGraph(ids, random, 4);
  let options;
  if (signed) {
    const signers = new Map(ids.map((id) => [id, RouteSigner.generate(id)]));
    const trusted = ids.map((id) => ({ clusterId: id, publicKey: signers.get(id)!.publicKey }));
    options = (id: string) => ({ signer: signers.get(id)!, keys: new KeyRegistry({ trusted }), requireSignatures: true });
  }
  const sim = new FederationSim({ ids, edges, mode, ...(options ? { options } : {}) });
  const c0 = process.cpuUsage();
  const start = sim.runUntilQuiet(10_000);
  const startMs = cpuMs(c0);
  if (!start.quiet) throw new Error(`${mode} ${n}: no convergence`);
  const bad = sim.check();
  if (bad.length > 0) throw new Error(`${mode} ${n}: ${bad.slice(0, 3).join("; ")}`);
  let rounds = 0;
  let msgs = 0;
  let entries = 0;
  let ms = 0;
  for (let i = 0; i < FAILURES; i++) {
    const [a, b] = random.pick([...sim.edges]).split("|") as [string, string];
    const c1 = process.cpuUsage();
    sim.unlink(a, b);
    const r = sim.runUntilQuiet(10_000);
    ms += cpuMs(c1);
    if (!r.quiet) throw new Error(`${mode} ${n}: no re-convergence`);
    const after = sim.check();
    if (after.length > 0) throw new Error(`${mode} ${n} after ${a}-${b}: ${after.slice(0, 3).join("; ")}`);
    rounds += r.rounds;
    msgs += r.messages;
    entries += r.entries;
  }
  return {
    n,
    mode: signed ? `${mode} signed` : mode,
    links: edges.length,
    startRounds: start.rounds,
    startMsgs: start.messages,
    startEntries: start.entries,
    startMs,
    failRounds: rounds / FAILURES,
    failMsgs: msgs / FAILURES,
    failEntries: entries / FAILURES,
    failMs: ms / FAILURES,
  };
}

test("federation convergence benchmark", () => {
  const rows: Row[] = [];
  for (const n of SIZES) {
    rows.push(measure(n, "path-vector", false));
    rows.push(measure(n, "link-state", false));
    if (n <= 50) rows.push(measure(n, "path-vector", true));
  }
  const f = (x: number, d = 0): string => x.toFixed(d);
  const lines = [
    "| clusters | links | mode | start: rounds | msgs | entries | CPU ms | link failure: rounds | msgs | entries | CPU ms |",
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.n} | ${r.links} | ${r.mode} | ${r.startRounds} | ${r.startMsgs} | ${r.startEntries} | ${f(r.startMs)} | ` +
        `${f(r.failRounds, 1)} | ${f(r.failMsgs, 1)} | ${f(r.failEntries, 1)} | ${f(r.failMs, 1)} |`,
    ),
  ];
  console.log(`\nFederation convergence (seeded random graphs, average degree 4; link failure: mean of ${FAILURES})\n${lines.join("\n")}\n`);
});
