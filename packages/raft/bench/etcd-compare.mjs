// etcd beside MPREG's Raft KV on the same machine: a 3-member etcd cluster (Debian's etcd-server,
// `apt-get install etcd-server`), puts of `k<n % 1000>` = "v" through its leader at 1 and 64 in
// flight, closed loop, like apps/bench/src/cluster.mjs does for `mpreg.kv.put`.
//
//   node bench/etcd-compare.mjs [--duration=3000]
//
// The client speaks etcd's JSON gateway (HTTP/1.1 keep-alive, one connection per request in
// flight): etcd's own gRPC `benchmark` tool is not packaged by Debian, and JSON over HTTP costs
// etcd more per request than gRPC would. etcd fsyncs its WAL on every commit (group commit), like
// the file backend with fsync `batch`.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const { values: flags } = parseArgs({ options: { duration: { type: "string" } } });
const durationMs = Number(flags.duration ?? 3000);
const base = 24000 + Math.floor(Math.random() * 2000) * 2;
const names = ["e1", "e2", "e3"];
const client = (i) => base + i * 10;
const peer = (i) => base + i * 10 + 1;
const cluster = names.map((n, i) => `${n}=http://127.0.0.1:${peer(i)}`).join(",");
const dirs = names.map((n) => mkdtempSync(join(tmpdir(), `etcd-${n}-`)));
const procs = names.map((n, i) =>
  spawn("etcd", [
    "--name", n, "--data-dir", dirs[i],
    "--listen-client-urls", `http://127.0.0.1:${client(i)}`, "--advertise-client-urls", `http://127.0.0.1:${client(i)}`,
    "--listen-peer-urls", `http://127.0.0.1:${peer(i)}`, "--initial-advertise-peer-urls", `http://127.0.0.1:${peer(i)}`,
    "--initial-cluster", cluster, "--initial-cluster-state", "new", "--log-level", "error",
  ], { stdio: "ignore" }),
);
const cleanup = () => {
  for (const p of procs) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
};
process.on("exit", cleanup);

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
function post(port, path, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      let out = "";
      res.setEncoding("utf8").on("data", (d) => (out += d)).on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(out)) : reject(new Error(`${res.statusCode} ${out}`))));
    });
    req.on("error", reject);
    req.end(data);
  });
}

// The leader: the member whose id is the leader every member reports.
let leaderPort;
for (const t0 = Date.now(); leaderPort === undefined; ) {
  try {
    const st = await Promise.all(names.map((_, i) => post(client(i), "/v3/maintenance/status", {})));
    const i = st.findIndex((s) => s.leader && s.header.member_id === s.leader);
    if (i >= 0) leaderPort = client(i);
  } catch {
    // not up yet
  }
  if (leaderPort === undefined) {
    if (Date.now() - t0 > 30_000) throw new Error("etcd did not elect a leader");
    await new Promise((r) => setTimeout(r, 100));
  }
}

const b64 = (s) => Buffer.from(s).toString("base64");
let seq = 0;
const rows = [];
for (const inFlight of [1, 64]) {
  const lat = [];
  let stop = false;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (!stop) {
        const s = performance.now();
        await post(leaderPort, "/v3/kv/put", { key: b64(`k${seq++ % 1000}`), value: b64("v") });
        lat.push(performance.now() - s);
        if (performance.now() - start > durationMs) stop = true;
      }
    }),
  );
  const secs = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  const pct = (p) => Math.round(lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] * 1000);
  rows.push(`| etcd 3.4 put, 3 members (JSON gateway) | ${inFlight} | ${Math.round(lat.length / secs)} | ${pct(50)} | ${pct(99)} |`);
}
console.log(["| case | in-flight | ops/s | p50 µs | p99 µs |", "|---|---:|---:|---:|---:|", ...rows].join("\n"));
cleanup();
process.exit(0);
