// CPU cost per round trip, for profiling the RPC hot path (not part of `pnpm bench`).
//
//   node src/cpu-probe.mjs <mpreg|ws|remote> <in-flight> <round-trips> ["<node flags for the server>"] ["<flags for the callee>"]
//
// `remote`: two MPREG nodes; the client calls `remote_echo`, registered only on the second, through
// the first (the ingress), and the CPU of both nodes is printed.
// Starts the server (an MPREG node, or the bare ws echo server) as a child process, runs
// `round-trips` echo calls over one connection with `in-flight` outstanding after a warm-up of
// a quarter as many, and prints round trips per second plus the CPU time per round trip of the
// server (user + system, from /proc) and of this client process. CPU per round trip moves far
// less with the machine's other load than throughput does, so it is the number to compare
// before and after a change. Examples:
//   taskset -a -c 0 node src/cpu-probe.mjs mpreg 1 20000      # one CPU: the software path
//   node src/cpu-probe.mjs mpreg 64 200000 "--cpu-prof --cpu-prof-dir=/tmp/prof"
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { MPREG_CLI, SRC_DIR, loadDependency, loadMpregClient } from "./deps.mjs";

const [system, inFlightArg, countArg, serverFlags, calleeFlags] = process.argv.slice(2);
const inFlight = Number(inFlightArg);
const count = Number(countArg);
if (!["mpreg", "ws", "remote"].includes(system) || !(inFlight >= 1) || !(count >= 1)) {
  console.error('usage: node src/cpu-probe.mjs <mpreg|ws|remote> <in-flight> <round-trips> ["<server node flags>"]');
  process.exit(2);
}
const flags = serverFlags ? serverFlags.split(" ").filter(Boolean) : [];
const bFlags = calleeFlags ? calleeFlags.split(" ").filter(Boolean) : [];

function startChild(args) {
  const child = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
  const url = new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = /(?:MPREG_URL|BENCH_READY)=(\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`server exited with code ${code}`)));
  });
  return { child, url };
}

const FAST_GOSSIP = ["--gossip-probe-interval-ms", "200", "--gossip-probe-timeout-ms", "100"];
const ingress = startChild(
  system === "ws" ? [...flags, `${SRC_DIR}/ws-echo-server.mjs`] : [...flags, MPREG_CLI, "start", "--port", "0", "--name", "a", ...(system === "remote" ? FAST_GOSSIP : [])],
);
const url = await ingress.url;
const servers = [ingress.child];
if (system === "remote") {
  const b = startChild([...bFlags, MPREG_CLI, "start", "--port", "0", "--name", "b", "--peers", url, "--functions", `${SRC_DIR}/fixtures/remote-functions.mjs`, ...FAST_GOSSIP]);
  await b.url;
  servers.push(b.child);
}

/** A child's CPU time so far, µs (utime + stime in clock ticks of 10 ms). */
function cpuUs(child) {
  const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}
/** A child's user CPU time so far, µs. */
function userUs(child) {
  const fields = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(fields[11]) * 10_000;
}

let call;
if (system === "remote") {
  const { MpregClient } = await loadMpregClient();
  const client = await MpregClient.connect(url);
  for (const deadline = Date.now() + 20_000; ; ) {
    const found = await client.call("catalog_query", [{ entry_type: "functions", name: "remote_echo" }]);
    if (found.items.length > 0) break;
    if (Date.now() > deadline) throw new Error("remote_echo never reached the ingress catalog");
    await new Promise((r) => setTimeout(r, 50));
  }
  call = (v) => client.call("remote_echo", [v]);
} else if (system === "mpreg") {
  const { MpregClient } = await loadMpregClient();
  const client = await MpregClient.connect(url);
  call = (v) => client.call("echo", [v]);
} else {
  const { WebSocket } = await loadDependency("ws");
  const { Encoder, Decoder } = await loadDependency("@msgpack/msgpack");
  const encoder = new Encoder();
  const decoder = new Decoder();
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve) => ws.once("open", resolve));
  const pending = new Map();
  let seq = 0;
  ws.on("message", (data) => {
    const m = decoder.decode(data);
    const done = pending.get(m.u);
    pending.delete(m.u);
    done?.(m.r.echo);
  });
  call = (v) =>
    new Promise((resolve) => {
      const u = String(++seq).padStart(26, "0");
      pending.set(u, resolve);
      ws.send(encoder.encode({ role: "rpc", u, cmds: [{ name: "echo", fun: "echo", args: [v] }] }));
    });
}

async function run(n) {
  let issued = 0;
  const worker = async () => {
    while (issued < n) {
      const v = ++issued;
      if ((await call(v)) !== v) throw new Error(`wrong echo for ${v}`);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

await run(Math.max(1, Math.floor(count / 4)));
const s0 = servers.map(cpuUs);
const u0 = servers.map(userUs);
const c0 = process.cpuUsage();
const t0 = performance.now();
await run(count);
const elapsed = performance.now() - t0;
const c = process.cpuUsage(c0);
const s = servers.map((child, i) => cpuUs(child) - s0[i]);
const u = servers.map((child, i) => userUs(child) - u0[i]);
const names = system === "remote" ? ["ingress", "callee"] : ["server"];
console.log(
  `${system} @${inFlight}: ${Math.round((count / elapsed) * 1000)} round trips/s; CPU per round trip: ` +
    s.map((us, i) => `${names[i]} ${(us / count).toFixed(1)} µs (user ${(u[i] / count).toFixed(1)}), `).join("") +
    `client ${((c.user + c.system) / count).toFixed(1)} µs (user ${(c.user / count).toFixed(1)})`,
);
// Wait for the children to exit, so a --cpu-prof profile is written completely.
await Promise.all(servers.map((child) => new Promise((resolve) => { child.once("exit", resolve); child.kill("SIGTERM"); })));
process.exit(0);
