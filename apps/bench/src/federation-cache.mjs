// Cache replication across clusters (issue 13), real node processes: clusters A (a1, a2),
// B (b1, transit, no namespace) and C (c1, c2) in a line A — B — C. Measures
//   - propagation: a put on a1 until a get on c2 (two cluster hops away, through a1, b1, c1)
//     sees it, and the same for a2 (same cluster) as the baseline, each put waited for in turn;
//   - CPU per put of every process (user + system from /proc, 10 ms ticks), for `count` puts
//     on a1 of a federated namespace against the same puts of a namespace that only
//     replicates inside A.
//
//   node src/federation-cache.mjs [--count=2000] [--probes=200]
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { killAllStarted, startServer } from "./children.mjs";
import { MPREG_CLI, REPO_ROOT, loadMpregClient, mpregAvailability } from "./deps.mjs";
import { quantile } from "./load.mjs";

const { values: flags } = parseArgs({ options: { count: { type: "string" }, probes: { type: "string" } } });
const COUNT = Number(flags.count ?? 2000);
const PROBES = Number(flags.probes ?? 200);
const FAST_GOSSIP = ["--gossip-probe-interval-ms", "200", "--gossip-probe-timeout-ms", "100"];

process.on("exit", killAllStarted);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));
const avail = mpregAvailability();
if (!avail.ok) {
  console.error(`federation-cache benchmark: ${avail.reason}`);
  process.exit(1);
}
const { MpregClient } = await loadMpregClient();

const dir = mkdtempSync(join(tmpdir(), "mpreg-bench-fedcache-"));
const config = join(dir, "cache.json");
writeFileSync(config, JSON.stringify({ cache: { namespaces: { fed: { scope: "replicated", federate: true, max_entries: 100000 }, team: { scope: "replicated", max_entries: 100000 } } } }));

async function node(name, cluster, args) {
  const { proc, value } = await startServer(name, [MPREG_CLI, "start", "--port", "0", "--name", name, "--cluster-id", cluster, "--config", config, ...FAST_GOSSIP, ...args], "MPREG_URL=", 20_000, REPO_ROOT);
  return { name, proc, url: value };
}

function cpuUs(proc) {
  const fields = readFileSync(`/proc/${proc.child.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function until(pred, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await pred().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

const b1 = await node("b1", "B", ["--federation-mode", "explicit", "--federation-allow", "A,C"]);
const link = ["--federation-mode", "explicit", "--federation-links", `B=${b1.url}`];
const [a1, c1] = await Promise.all([node("a1", "A", link), node("c1", "C", link)]);
const [a2, c2] = await Promise.all([
  node("a2", "A", ["--federation-mode", "explicit", "--peers", a1.url]),
  node("c2", "C", ["--federation-mode", "explicit", "--peers", c1.url]),
]);
const nodes = [a1, a2, b1, c1, c2];
const cl = Object.fromEntries(await Promise.all(nodes.map(async (n) => [n.name, await MpregClient.connect(n.url, { reconnect: false })])));
const get = (c, key, namespace) => c.call("mpreg.cache.get", [key, { namespace }]);
const put = (c, key, value, namespace) => c.call("mpreg.cache.put", [key, value, { namespace }]);

// Converged: a write on a1 is seen on c2.
await until(async () => {
  await put(cl.a1, "warm", 1, "fed");
  return (await get(cl.c2, "warm", "fed")).hit;
}, 30_000, "federation to converge");

async function propagation(reader, namespace) {
  const us = [];
  for (let i = 0; i < PROBES; i++) {
    const key = `p.${namespace}.${reader}.${i}`;
    const t0 = process.hrtime.bigint();
    await put(cl.a1, key, i, namespace);
    await until(async () => (await get(cl[reader], key, namespace)).hit, 10_000, key);
    us.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  us.sort((x, y) => x - y);
  return { p50: quantile(us, 0.5), p90: quantile(us, 0.9), p99: quantile(us, 0.99) };
}

let round = 0;
async function cpuPerPut(namespace, last) {
  round++;
  const before = nodes.map((n) => cpuUs(n.proc));
  const inFlight = 16;
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < COUNT) {
      const i = next++;
      await put(cl.a1, `c.${namespace}.${round}.${i}`, { i, v: "x".repeat(32) }, namespace);
    }
  }));
  await until(async () => (await get(cl[last], `c.${namespace}.${round}.${COUNT - 1}`, namespace)).hit, 30_000, "last put");
  // Let every process settle (anti-entropy ticks are every 5 s; a short wait is enough for pushes).
  await new Promise((r) => setTimeout(r, 300));
  return Object.fromEntries(nodes.map((n, i) => [n.name, (cpuUs(n.proc) - before[i]) / COUNT]));
}

const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const pa2 = await propagation("a2", "fed");
const pc2 = await propagation("c2", "fed");
// A first round of each warms the code paths up (JIT); the second round is reported.
await cpuPerPut("team", "a2");
await cpuPerPut("fed", "c2");
const cpuTeam = await cpuPerPut("team", "a2");
const cpuFed = await cpuPerPut("fed", "c2");
const fmt = (x) => `${(x / 1000).toFixed(2)} ms`;
console.log(`load average before: ${load}; after: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
console.log(`propagation of a put on a1 (${PROBES} puts, one at a time; includes the put's round trip and polling gets)`);
console.log(`  to a2 (same cluster):          p50 ${fmt(pa2.p50)}  p90 ${fmt(pa2.p90)}  p99 ${fmt(pa2.p99)}`);
console.log(`  to c2 (A -> B -> C, c1 gateway): p50 ${fmt(pc2.p50)}  p90 ${fmt(pc2.p90)}  p99 ${fmt(pc2.p99)}`);
console.log(`CPU per put (us), ${COUNT} puts on a1, 16 in flight (second round of each):`);
console.log(`  namespace      ${nodes.map((n) => n.name.padStart(6)).join(" ")}`);
console.log(`  team (in A)    ${nodes.map((n) => String(Math.round(cpuTeam[n.name])).padStart(6)).join(" ")}`);
console.log(`  fed (A, C)     ${nodes.map((n) => String(Math.round(cpuFed[n.name])).padStart(6)).join(" ")}`);
for (const c of Object.values(cl)) await c.close().catch(() => undefined);
process.exit(0);
