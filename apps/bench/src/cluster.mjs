// Cluster benchmark (issues 4 and 5), across real node processes:
//  - a call that runs on the ingress node versus one forwarded to a second node process;
//  - Raft writes (mpreg.kv.put) through the leader of 3- and 5-member groups, memory and file
//    storage, and the time to elect a new leader after the leader is killed with SIGKILL.
//
//   node src/cluster.mjs [--smoke] [--write-docs] [--duration=ms] [--only=remote,raft] [--no-nats]
//
// Beside the remote call: NATS request/reply (client → nats-server → responder process and
// back), the same shape as client → ingress → second node, in the same run (not in --smoke).
//
// The client runs in this process; every node is its own child process.
import { mkdtempSync, rmSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { killAllStarted, startServer, stop } from "./children.mjs";
import { MPREG_CLI, REPO_ROOT, SRC_DIR, loadMpregClient, mpregAvailability } from "./deps.mjs";
import { measureCase, until } from "./load.mjs";
import { writeSection } from "./report.mjs";
import { ensureNatsServer, freePort, natsVersion, startNatsServer } from "./nats.mjs";

const HEADING = "## Cluster: remote calls and Raft across processes (issues 4 and 5)";
const { values: flags } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    "write-docs": { type: "boolean", default: false },
    duration: { type: "string" },
    only: { type: "string" },
    "no-nats": { type: "boolean", default: false },
  },
});
const parts = new Set((flags.only ?? "remote,raft").split(","));
const smoke = flags.smoke;
const durationMs = Number(flags.duration ?? 2000);
const measure = (op, inFlight) => measureCase(op, inFlight, { smoke, durationMs });
const FAST_GOSSIP = ["--gossip-probe-interval-ms", "200", "--gossip-probe-timeout-ms", "100"];

process.on("exit", killAllStarted);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

const avail = mpregAvailability();
if (!avail.ok) {
  console.error(`cluster benchmark: ${avail.reason}`);
  process.exit(1);
}
const { MpregClient } = await loadMpregClient();

async function startMpreg(label, args) {
  const { proc, value } = await startServer(label, [MPREG_CLI, "start", "--port", "0", ...args], "MPREG_URL=", 20_000, REPO_ROOT);
  return { proc, url: value };
}

const rows = [];
let natsLabel;
const row = (label, inFlight, r) => {
  rows.push({ label, inFlight, ...r });
  console.log(`  ${label} @${inFlight}: ${Math.round(r.rps)}/s p50 ${Math.round(r.p50Us)} µs p99 ${Math.round(r.p99Us)} µs`);
};

// --- remote calls -------------------------------------------------------------------------
if (parts.has("remote")) {
  const a = await startMpreg("node-a", ["--name", "a", ...FAST_GOSSIP]);
  const b = await startMpreg("node-b", ["--name", "b", "--peers", a.url, "--functions", join(SRC_DIR, "fixtures", "remote-functions.mjs"), ...FAST_GOSSIP]);
  const client = await MpregClient.connect(a.url);
  await until(async () => (await client.call("catalog_query", [{ entry_type: "functions", name: "remote_echo" }])).items.length === 1, 20_000, "remote_echo in the catalog");
  await until(async () => (await client.call("remote_echo", ["x"])) === "x", 20_000, "a link from a to b");
  for (const inFlight of [1, 64]) {
    row("local call (echo on the ingress node)", inFlight, await measure(async () => {
      if ((await client.call("echo", ["ping"])) !== "ping") throw new Error("bad echo reply");
    }, inFlight));
    row("remote call (ingress → second node process)", inFlight, await measure(async () => {
      if ((await client.call("remote_echo", ["ping"])) !== "ping") throw new Error("bad remote reply");
    }, inFlight));
  }
  await client.close();
  await Promise.all([stop(a.proc), stop(b.proc)]);
  if (!smoke && !flags["no-nats"]) await measureNats();
}

/** NATS request/reply through one nats-server to a responder in its own process. */
async function measureNats() {
  ensureNatsServer();
  natsLabel = natsVersion();
  const server = await startNatsServer("nats", await freePort());
  const responder = await startServer("nats-responder", [join(SRC_DIR, "nats-responder.mjs"), server.url, "echo"], "NATS_RESPONDER=", 20_000, REPO_ROOT);
  const { connect } = await import("nats");
  const nc = await connect({ servers: server.url, maxReconnectAttempts: 0 });
  const ping = new TextEncoder().encode("ping");
  for (const inFlight of [1, 64]) {
    row("NATS request/reply (client → nats-server → responder process)", inFlight, await measure(async () => {
      const m = await nc.request("echo", ping, { timeout: 5000 });
      if (m.data.length !== ping.length) throw new Error("bad NATS reply");
    }, inFlight));
  }
  await nc.close();
  await Promise.all([stop(responder.proc), stop(server.proc)]);
}

// --- Raft ---------------------------------------------------------------------------------
const elections = [];
for (const members of !parts.has("raft") ? [] : smoke ? [3] : [3, 5]) {
  for (const storage of smoke ? ["memory"] : ["memory", "file-batch", "file-always"]) {
    const names = Array.from({ length: members }, (_, i) => `r${i + 1}`);
    const file = storage.startsWith("file");
    const dirs = file ? names.map((n) => mkdtempSync(join(tmpdir(), `mpreg-bench-${n}-`))) : [];
    const common = (i) => ["--name", names[i], "--raft-group", "kv", "--raft-members", names.join(","), ...FAST_GOSSIP, ...(file ? ["--data-dir", dirs[i], "--raft-fsync", storage.slice("file-".length)] : [])];
    const first = await startMpreg(names[0], common(0));
    const rest = await Promise.all(names.slice(1).map((n, i) => startMpreg(n, [...common(i + 1), "--peers", first.url])));
    const nodes = [first, ...rest];
    const clients = await Promise.all(nodes.map((n) => MpregClient.connect(n.url, { reconnect: false })));
    const status = (i) => clients[i].call("mpreg.raft.status");
    const agreed = async (idx) => {
      const all = await Promise.all(idx.map(status));
      const l = all[0].leader;
      return l && all.every((s) => s.leader === l) ? l : undefined;
    };
    const leader = await until(() => agreed(names.map((_, i) => i)), 30_000, "a raft leader");
    const li = names.indexOf(leader);
    let seq = 0;
    for (const inFlight of [1, 64]) {
      row(`Raft put, ${members} members, ${file ? `file (fsync ${storage.slice("file-".length)})` : "memory"}`, inFlight, await measure(async () => {
        await clients[li].call("mpreg.kv.put", [`k${seq++ % 1000}`, "v"]);
      }, inFlight));
    }
    // Election after a crash: SIGKILL the leader, time until the others agree on a new one.
    const killedAt = performance.now();
    nodes[li].proc.child.kill("SIGKILL");
    const survivors = names.map((_, i) => i).filter((i) => i !== li);
    await until(async () => {
      const l = await agreed(survivors);
      return l && l !== leader;
    }, 30_000, "a new leader");
    const ms = performance.now() - killedAt;
    elections.push({ members, storage, ms });
    console.log(`  election after leader SIGKILL (${members} members, ${storage}): ${Math.round(ms)} ms`);
    for (const c of clients) await c.close().catch(() => {});
    await Promise.all(nodes.map((n) => stop(n.proc)));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const int = (n) => Math.round(n).toLocaleString("en-US");
const table = [
  "| case | in-flight | ops/s | p50 µs | p99 µs |",
  "|---|---:|---:|---:|---:|",
  ...rows.map((r) => `| ${r.label} | ${r.inFlight} | ${int(r.rps)} | ${int(r.p50Us)} | ${int(r.p99Us)} |`),
].join("\n");
const electionTable = [
  "| members | storage | new leader agreed after leader SIGKILL |",
  "|---:|---|---:|",
  ...elections.map((e) => `| ${e.members} | ${e.storage} | ${int(e.ms)} ms |`),
].join("\n");
// Ratios at the same in-flight count, from this run.
const rate = (prefix, inFlight) => rows.find((r) => r.label.startsWith(prefix) && r.inFlight === inFlight)?.rps;
const ratioRows = [1, 64].flatMap((n) => {
  const local = rate("local call", n);
  const remote = rate("remote call", n);
  const nats = rate("NATS request/reply", n);
  if (!local || !remote) return [];
  return [`| ${n} | ${(remote / local).toFixed(2)} | ${nats ? (remote / nats).toFixed(2) : "—"} |`];
});
const ratioTable = ratioRows.length === 0 ? "" : ["| in-flight | remote / local | remote / NATS request-reply |", "|---:|---:|---:|", ...ratioRows].join("\n");
console.log(`\n${table}\n\n${ratioTable}\n\n${electionTable}\n`);
if (smoke) {
  console.log("cluster smoke OK (numbers from a smoke run mean nothing)");
} else if (flags["write-docs"] && parts.size === 2) {
  const load = os.loadavg().map((l) => l.toFixed(1)).join(" ");
  writeSection(join(REPO_ROOT, "docs", "benchmarks.md"), HEADING, `Command: \`pnpm --filter @mpreg/bench bench\` (runs \`node src/cluster.mjs --write-docs\`
after the round-trip benchmark). Every node is its own process on this machine (${os.cpus().length} cores,
Node ${process.version}, load average at the end ${load}); the client runs in the benchmark process.
Median of 3 runs of ${durationMs} ms each. Raft: tick 50 ms (elections after 10–20 ticks), the
client writes through the leader; file storage is the file backend with fsync \`batch\` or \`always\`
(\`--raft-fsync\`).

${table}

${ratioTable}

${natsLabel ? `NATS: Debian's ${natsLabel}, \`nats\` npm client 2.x, one server, the responder in its own process.` : "NATS: not measured in this run."}

${electionTable}

A remote call costs one more hop (client → ingress → provider and back) on the same two cores;
Raft writes at 64 in flight are batched by the leader into shared appends and fsyncs.`);
  console.log("docs/benchmarks.md updated");
}
process.exit(0);
