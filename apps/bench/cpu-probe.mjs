// temp: CPU per request (client and server) at N in flight
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { MPREG_CLI, SRC_DIR } from "./src/deps.mjs";
const [system, inflightS, nS, extra] = process.argv.slice(2);
const inFlight = Number(inflightS), N = Number(nS);
const args = system === "mpreg" ? [...(extra ? extra.split(" ") : []), MPREG_CLI, "start", "--port", "0"] : [...(extra ? extra.split(" ") : []), `${SRC_DIR}/ws-echo-server.mjs`];
const proc = spawn(process.env.SRV_CPU ? "taskset" : process.execPath, process.env.SRV_CPU ? ["-a", "-c", process.env.SRV_CPU, process.execPath, ...args] : args, { stdio: ["pipe", "pipe", "inherit"] });
const url = await new Promise((res) => { let buf = ""; proc.stdout.on("data", (d) => { buf += d; const m = /(?:MPREG_URL|BENCH_READY)=(\S+)/.exec(buf); if (m) res(m[1]); }); });
const ticks = () => { const f = readFileSync(`/proc/${proc.pid}/stat`, "utf8").split(") ")[1].split(" "); return (Number(f[11]) + Number(f[12])) * 10000; }; // µs (CLK_TCK 100)
let call;
if (system === "mpreg") {
  const { MpregClient } = await import("@mpreg/client");
  const c = await MpregClient.connect(url);
  call = (v) => c.call("echo", [v]);
} else {
  const { WebSocket } = await import("ws"); const { Encoder, Decoder } = await import("@msgpack/msgpack");
  const enc = new Encoder(), dec = new Decoder(); const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((r) => ws.once("open", r)); const pending = new Map(); let seq = 0;
  ws.on("message", (d) => { const m = dec.decode(d); const f = pending.get(m.u); pending.delete(m.u); f(m.r.echo); });
  call = (v) => new Promise((r) => { const u = String(++seq).padStart(26, "0"); pending.set(u, r); ws.send(enc.encode({ role: "rpc", u, cmds: [{ name: "echo", fun: "echo", args: [v] }] })); });
}
async function run(n) { let i = 0; const w = async () => { while (i < n) { i++; await call(i); } }; await Promise.all(Array.from({ length: inFlight }, w)); }
await run(N / 4);
let tr; if (process.env.STRACE) { tr = spawn("strace", ["-f", "-c", "-o", process.env.STRACE, "-p", String(proc.pid)], { stdio: "inherit" }); await new Promise((r) => setTimeout(r, 1000)); }
const s0 = ticks(), c0 = process.cpuUsage(), t0 = performance.now();
await run(N);
const t1 = performance.now(), c1 = process.cpuUsage(c0), s1 = ticks();
const st = readFileSync(`/proc/${proc.pid}/stat`, "utf8").split(") ")[1].split(" "); console.log(`server utime ${st[11]} stime ${st[12]}`); console.log(`${system}@${inFlight}: ${(N / (t1 - t0) * 1000).toFixed(0)} rps, server ${((s1 - s0) / N).toFixed(1)} µs/req, client ${((c1.user + c1.system) / N).toFixed(1)} µs/req (user ${(c1.user / N).toFixed(1)})`);
if (tr) { tr.kill("SIGINT"); await new Promise((r) => tr.on("exit", r)); }
proc.kill("SIGINT"); process.exit(0);
