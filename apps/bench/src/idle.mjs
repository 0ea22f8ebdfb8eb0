// Idle cost and convergence of a cluster, across real node processes (issue 9):
//  - N nodes started one after another, each seeding the first;
//  - convergence: time from the last start until every node's cluster_map holds all N;
//  - idle cost: CPU (% of one core) and RSS per node over a quiet window after convergence.
//
//   node src/idle.mjs [--sizes=10,30,60] [--window=10000] [--settle=20000] [--write-docs] [--smoke]
//
// Defaults (probe 1 s, timeout 500 ms, gossip push 200 ms): what `mpreg start` does.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { killAllStarted, startServer, stop } from "./children.mjs";
import { MPREG_CLI, REPO_ROOT, loadMpregClient, mpregAvailability } from "./deps.mjs";
import { writeSection } from "./report.mjs";

const HEADING = "## Idle cost and convergence by cluster size (issue 9)";
const { values: flags } = parseArgs({
  options: {
    sizes: { type: "string" },
    window: { type: "string" },
    settle: { type: "string" },
    "write-docs": { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
  },
});
const sizes = (flags.sizes ?? (flags.smoke ? "3" : "10,30,60")).split(",").map(Number);
const windowMs = Number(flags.window ?? (flags.smoke ? 2000 : 10_000));
// After convergence, joins still echo for a while (retransmissions, anti-entropy rounds, link
// dialing): wait this long before the quiet window, so "idle" means idle.
const settleMs = Number(flags.settle ?? (flags.smoke ? 2000 : 20_000));

process.on("exit", killAllStarted);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));
const avail = mpregAvailability();
if (!avail.ok) {
  console.error(`idle benchmark: ${avail.reason}`);
  process.exit(1);
}
const { MpregClient } = await loadMpregClient();

/** CPU time (µs) and RSS (bytes) of a process, from /proc. */
function usage(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return { cpuUs: (Number(fields[11]) + Number(fields[12])) * 10_000, rss: Number(fields[21]) * 4096 };
}

async function until(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred()) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function measure(n) {
  const nodes = [];
  const first = await startServer("n0", [MPREG_CLI, "start", "--port", "0", "--name", "n0"], "MPREG_URL=", 20_000, REPO_ROOT);
  nodes.push({ proc: first.proc, url: first.value });
  for (let i = 1; i < n; i++) {
    const s = await startServer(`n${i}`, [MPREG_CLI, "start", "--port", "0", "--name", `n${i}`, "--peers", first.value], "MPREG_URL=", 20_000, REPO_ROOT);
    nodes.push({ proc: s.proc, url: s.value });
  }
  const lastStarted = performance.now();
  const clients = await Promise.all(nodes.map((x) => MpregClient.connect(x.url, { reconnect: false })));
  const size = async (c) => ((await c.call("cluster_map")).nodes ?? []).filter((x) => x.status === "alive").length;
  // Poll every node (cheap next to gossip) until all see n alive nodes.
  const done = new Set();
  await until(async () => {
    await Promise.all(clients.map(async (c, i) => { if (!done.has(i) && (await size(c)) === n) done.add(i); }));
    return done.size === n;
  }, 120_000, `${n} nodes converge`);
  const convergeMs = performance.now() - lastStarted;
  await Promise.all(clients.map((c) => c.close()));
  // Let the joins' and the polling's own traffic settle, then measure a quiet window.
  await new Promise((r) => setTimeout(r, settleMs));
  const before = nodes.map((x) => usage(x.proc.child.pid));
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  const elapsedUs = (performance.now() - t0) * 1000;
  const after = nodes.map((x) => usage(x.proc.child.pid));
  const cpu = after.map((a, i) => (100 * (a.cpuUs - before[i].cpuUs)) / elapsedUs);
  const rss = after.map((a) => a.rss / 1048576);
  await Promise.all(nodes.map((x) => stop(x.proc)));
  const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
  return { n, convergeMs, cpuMean: mean(cpu), cpuMax: Math.max(...cpu), rssMean: mean(rss) };
}

const rows = [];
for (const n of sizes) {
  const r = await measure(n);
  rows.push(r);
  console.log(`${n} nodes: converged ${Math.round(r.convergeMs)} ms after the last start; idle CPU per node ${r.cpuMean.toFixed(2)} % of a core (max ${r.cpuMax.toFixed(2)} %), RSS ${Math.round(r.rssMean)} MB`);
}
const table = [
  "| nodes | converged after last start | idle CPU per node (mean / max, % of a core) | cores for the whole cluster | RSS per node |",
  "|---:|---:|---:|---:|---:|",
  ...rows.map((r) => `| ${r.n} | ${(r.convergeMs / 1000).toFixed(1)} s | ${r.cpuMean.toFixed(2)} / ${r.cpuMax.toFixed(2)} | ${((r.cpuMean * r.n) / 100).toFixed(2)} | ${Math.round(r.rssMean)} MB |`),
].join("\n");
console.log(table);
if (flags["write-docs"]) {
  writeSection(`${REPO_ROOT}/docs/benchmarks.md`, HEADING, `\`node apps/bench/src/idle.mjs\` (${new Date().toISOString().slice(0, 16)} UTC, ${windowMs / 1000} s quiet window starting ${settleMs / 1000} s after convergence, default gossip settings):\n\n${table}\n`);
}
