// Federation benchmark (issue 13), across real node processes: an RPC round trip and its
// throughput to a function 1, 2 and 4 cluster hops away, as a ratio to the same call to a second
// node of the ingress node's own cluster, measured in the same run.
//
//   node src/federation.mjs [--smoke] [--write-docs] [--duration=ms]
//
// Five clusters in a line k0 — k1 — k2 — k3 — k4, one gateway node each (nK, the function's
// host in cluster kK), and a second node of k0 (n0b) for the in-cluster baseline. The client is
// connected to n0, which has no `remote_echo`: every call leaves the ingress node, and
// `target_cluster` picks how far it goes. The client runs in this process.
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { killAllStarted, startServer, stop } from "./children.mjs";
import { MPREG_CLI, REPO_ROOT, SRC_DIR, loadMpregClient, mpregAvailability } from "./deps.mjs";
import { measureCase, until } from "./load.mjs";
import { writeSection } from "./report.mjs";

const HEADING = "## Federation: RPC across cluster hops (issue 13)";
const { values: flags } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    "write-docs": { type: "boolean", default: false },
    duration: { type: "string" },
  },
});
const smoke = flags.smoke;
const durationMs = Number(flags.duration ?? 2000);
const measure = (op, inFlight) => measureCase(op, inFlight, { smoke, durationMs });
const FAST_GOSSIP = ["--gossip-probe-interval-ms", "200", "--gossip-probe-timeout-ms", "100"];
const FUNCS = join(SRC_DIR, "fixtures", "remote-functions.mjs");
const CLUSTERS = 5;

process.on("exit", killAllStarted);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

const avail = mpregAvailability();
if (!avail.ok) {
  console.error(`federation benchmark: ${avail.reason}`);
  process.exit(1);
}
const { MpregClient } = await loadMpregClient();

async function startMpreg(label, args) {
  const { proc, value } = await startServer(label, [MPREG_CLI, "start", "--port", "0", "--name", label, ...FAST_GOSSIP, ...args], "MPREG_URL=", 20_000, REPO_ROOT);
  return { proc, url: value };
}

// The line is started from its far end: each node lets its left neighbour's cluster link in
// and dials its right neighbour, so every process knows the URL it dials.
const started = [];
let right;
for (let k = CLUSTERS - 1; k >= 0; k--) {
  const args = ["--cluster-id", `k${k}`, "--federation-mode", "explicit"];
  if (k > 0) args.push("--federation-allow", `k${k - 1}`);
  if (right !== undefined) args.push("--federation-links", `k${k + 1}=${right.url}`);
  if (k > 0) args.push("--functions", FUNCS);
  right = await startMpreg(`n${k}`, args);
  started.push(right);
}
const ingress = right;
const second = await startMpreg("n0b", ["--cluster-id", "k0", "--federation-mode", "explicit", "--peers", ingress.url, "--functions", FUNCS]);
started.push(second);
const client = await MpregClient.connect(ingress.url);
const call = (cluster) => client.call("remote_echo", ["ping"], { target_cluster: cluster });
for (let k = 0; k < CLUSTERS; k++) await until(async () => (await call(`k${k}`)) === "ping", 30_000, `remote_echo in k${k}`);

const cases = [
  { label: "in-cluster (ingress → second node of k0)", hops: 0, cluster: "k0" },
  { label: "1 cluster hop (k0 → k1)", hops: 1, cluster: "k1" },
  { label: "2 cluster hops (k0 → k1 → k2)", hops: 2, cluster: "k2" },
  { label: "4 cluster hops (k0 → … → k4)", hops: 4, cluster: "k4" },
];
const rows = [];
for (const inFlight of [1, 64]) {
  let base;
  for (const c of cases) {
    const r = await measure(async () => {
      if ((await call(c.cluster)) !== "ping") throw new Error("bad reply");
    }, inFlight);
    base ??= r;
    rows.push({ ...c, inFlight, ...r, rpsRatio: r.rps / base.rps, p50Ratio: r.p50Us / base.p50Us });
    console.log(`  ${c.label} @${inFlight}: ${Math.round(r.rps)}/s p50 ${Math.round(r.p50Us)} µs p99 ${Math.round(r.p99Us)} µs`);
  }
}
await client.close();
await Promise.all(started.map((s) => stop(s.proc)));

const int = (n) => Math.round(n).toLocaleString("en-US");
const table = [
  "| case | in-flight | calls/s | × in-cluster calls/s | p50 µs | × in-cluster p50 | p99 µs |",
  "|---|---:|---:|---:|---:|---:|---:|",
  ...rows.map((r) => `| ${r.label} | ${r.inFlight} | ${int(r.rps)} | ${r.rpsRatio.toFixed(2)} | ${int(r.p50Us)} | ${r.p50Ratio.toFixed(2)} | ${int(r.p99Us)} |`),
].join("\n");
console.log(`\n${table}\n`);
if (smoke) {
  console.log("federation smoke OK (numbers from a smoke run mean nothing)");
} else if (flags["write-docs"]) {
  const load = os.loadavg().map((l) => l.toFixed(1)).join(" ");
  writeSection(join(REPO_ROOT, "docs", "benchmarks.md"), HEADING, `Command: \`pnpm --filter @mpreg/bench bench\` (runs \`node src/federation.mjs --write-docs\`),
or \`node apps/bench/src/federation.mjs --write-docs\` alone. Six node processes on this machine
(${os.cpus().length} cores, Node ${process.version}, load average at the end ${load}): clusters k0 — k1 — k2 — k3 — k4 in a
line, one gateway node each, plus a second node of k0. The client is connected to k0's gateway,
which does not have the function, so every call leaves the ingress node; \`target_cluster\` picks
the cluster. Median of 3 runs of ${durationMs} ms each; ratios are to the in-cluster call of the same
run and the same in-flight count.

${table}

Each cluster hop adds a node hop (one process decodes, routes and re-encodes the message) each
way. At 64 in flight every process on the path competes for the same two cores, so throughput
falls with the number of processes a call crosses rather than with anything federation adds.`);
  console.log("docs/benchmarks.md updated");
}
process.exit(0);
