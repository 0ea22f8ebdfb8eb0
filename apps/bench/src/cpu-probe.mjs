// CPU cost per round trip, for profiling the RPC hot path (not part of `pnpm bench`).
//
//   node src/cpu-probe.mjs <mpreg|ws> <in-flight> <round-trips> ["<node flags for the server>"]
//
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

const [system, inFlightArg, countArg, serverFlags] = process.argv.slice(2);
const inFlight = Number(inFlightArg);
const count = Number(countArg);
if (!["mpreg", "ws"].includes(system) || !(inFlight >= 1) || !(count >= 1)) {
  console.error('usage: node src/cpu-probe.mjs <mpreg|ws> <in-flight> <round-trips> ["<server node flags>"]');
  process.exit(2);
}
const flags = serverFlags ? serverFlags.split(" ").filter(Boolean) : [];
const args = system === "mpreg" ? [...flags, MPREG_CLI, "start", "--port", "0"] : [...flags, `${SRC_DIR}/ws-echo-server.mjs`];
const server = spawn(process.execPath, args, { stdio: ["pipe", "pipe", "inherit"] });
const url = await new Promise((resolve, reject) => {
  let out = "";
  server.stdout.on("data", (d) => {
    out += d;
    const m = /(?:MPREG_URL|BENCH_READY)=(\S+)/.exec(out);
    if (m) resolve(m[1]);
  });
  server.once("exit", (code) => reject(new Error(`server exited with code ${code}`)));
});

/** The server's CPU time so far, µs (utime + stime in clock ticks of 10 ms). */
function serverCpuUs() {
  const fields = readFileSync(`/proc/${server.pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

let call;
if (system === "mpreg") {
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
const s0 = serverCpuUs();
const c0 = process.cpuUsage();
const t0 = performance.now();
await run(count);
const elapsed = performance.now() - t0;
const c = process.cpuUsage(c0);
const s = serverCpuUs() - s0;
console.log(
  `${system} @${inFlight}: ${Math.round((count / elapsed) * 1000)} round trips/s; CPU per round trip: ` +
    `server ${(s / count).toFixed(1)} µs, client ${((c.user + c.system) / count).toFixed(1)} µs (user ${(c.user / count).toFixed(1)})`,
);
server.kill("SIGTERM");
process.exit(0);
