// `pnpm bench` / `pnpm test` entry point: starts the servers as child processes, runs the
// load generator for each system in its own child process, prints the table and (with
// --write-docs) rewrites this benchmark's section of docs/benchmarks.md.
//
//   node src/run.mjs [--smoke] [--write-docs] [--only=ws,moleculer,mpreg]
//                    [--duration=ms] [--warmup=ms] [--reps=n] [--count=n]
//
// --smoke: 200 round trips per case, one run, every reply checked; MPREG is skipped (with a
// notice) when apps/server/dist/cli.js is not built. Exit code 1 if any case fails.
import os from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { MPREG_CLI, REPO_ROOT, SRC_DIR, mpregAvailability } from "./deps.mjs";
import { killAllStarted, startNode, startServer, stop } from "./children.mjs";
import { median } from "./load.mjs";
import { pinningAvailable } from "./pin.mjs";
import { renderTable, writeDocsSection } from "./report.mjs";

/** Every measured case, in table order. One operation of a chain row is the whole chain. */
const CASES = [
  { system: "ws", kind: "echo", inFlight: 1, label: "bare ws + MessagePack echo (1 write per frame)" },
  { system: "ws", kind: "echo", inFlight: 64, label: "bare ws + MessagePack echo (1 write per frame)" },
  { system: "moleculer", kind: "echo", inFlight: 1, label: "Moleculer 0.14 TCP echo (2 brokers)" },
  { system: "moleculer", kind: "echo", inFlight: 64, label: "Moleculer 0.14 TCP echo (2 brokers)" },
  { system: "mpreg", kind: "echo", inFlight: 1, label: "MPREG echo" },
  { system: "mpreg", kind: "echo", inFlight: 64, label: "MPREG echo" },
  { system: "mpreg", kind: "chain-1-request", inFlight: 1, label: "MPREG 4-step chain, ONE request" },
  { system: "mpreg", kind: "chain-1-request", inFlight: 64, label: "MPREG 4-step chain, ONE request" },
  { system: "mpreg", kind: "chain-4-calls", inFlight: 1, label: "MPREG 4-step chain, 4 sequential calls" },
  { system: "mpreg", kind: "chain-4-calls", inFlight: 64, label: "MPREG 4-step chain, 4 sequential calls" },
];

/** Measured on this machine before the benchmark existed (2 cores, medians of 3 runs). */
const REFERENCE = {
  "ws/echo/1": "16.2k",
  "ws/echo/64": "54k",
  "moleculer/echo/1": "12.3k",
  "moleculer/echo/64": "45k",
};
const REFERENCE_TEXT =
  "Reference, measured on this machine beforehand (2 cores, medians of 3 runs): bare ws with " +
  "MessagePack 16.2k round trips/s at 1 in flight and 54k at 64; Moleculer (TCP, JSON) 12.3k and 45k.";

const SYSTEMS = ["ws", "moleculer", "mpreg"];
const key = (c) => `${c.system}/${c.kind}/${c.inFlight}`;

const { values: flags } = parseArgs({
  options: {
    smoke: { type: "boolean", default: false },
    "write-docs": { type: "boolean", default: false },
    only: { type: "string" },
    duration: { type: "string" },
    warmup: { type: "string" },
    reps: { type: "string" },
    count: { type: "string" },
    unpinned: { type: "boolean", default: false },
  },
});

function positiveInt(name, value, fallback) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

const smoke = flags.smoke;
const params = {
  reps: positiveInt("reps", flags.reps, smoke ? 1 : 3),
  durationMs: positiveInt("duration", flags.duration, 3000),
  warmupMs: positiveInt("warmup", flags.warmup, 1000),
  // Count mode (smoke, or --count): a fixed number of round trips per case instead of a duration.
  count: flags.count !== undefined ? positiveInt("count", flags.count) : smoke ? 200 : undefined,
};
params.warmupCount = params.count !== undefined ? Math.max(1, Math.floor(params.count / 4)) : undefined;

const pinned = !flags.unpinned && pinningAvailable();
const explicitOnly = flags.only !== undefined;
let systems = explicitOnly ? flags.only.split(",").map((s) => s.trim()).filter(Boolean) : SYSTEMS;
for (const s of systems) {
  if (!SYSTEMS.includes(s)) throw new Error(`--only: unknown system "${s}" (known: ${SYSTEMS.join(", ")})`);
}

const notices = [];
if (systems.includes("mpreg")) {
  const avail = mpregAvailability();
  if (!avail.ok) {
    if (smoke && !explicitOnly) {
      systems = systems.filter((s) => s !== "mpreg");
      notices.push(`MPREG cases SKIPPED: ${avail.reason}`);
    } else {
      process.stderr.write(
        `error: ${avail.reason}\n` +
          "  `pnpm bench` at the repository root builds everything first (turbo); or run\n" +
          "  `pnpm build` then `pnpm --filter @mpreg/bench bench`.\n" +
          "  To measure only the other systems: `node apps/bench/src/run.mjs --only=ws,moleculer`.\n",
      );
      process.exit(2);
    }
  }
}
const cases = CASES.filter((c) => systems.includes(c.system));

process.on("exit", killAllStarted);
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    killAllStarted();
    process.exit(130);
  });
}

const SERVER_DEADLINE_MS = 20_000;
const namespace = `bench${process.pid}`;

/** Start the server side of each selected system; resolves to the target each runner needs. */
async function startServers() {
  const starts = {
    ws: () => startServer("bare ws server", [join(SRC_DIR, "ws-echo-server.mjs")], "BENCH_READY=", SERVER_DEADLINE_MS),
    moleculer: () =>
      startServer(
        "Moleculer service broker",
        [join(SRC_DIR, "moleculer-service.mjs"), "bench-echo", namespace],
        "BENCH_READY=",
        SERVER_DEADLINE_MS,
      ),
    mpreg: () =>
      startServer("MPREG node", [MPREG_CLI, "start", "--port", "0"], "MPREG_URL=", SERVER_DEADLINE_MS, REPO_ROOT),
  };
  const started = await Promise.allSettled(systems.map((s) => starts[s]()));
  const servers = {};
  const errors = [];
  started.forEach((r, i) => {
    if (r.status === "fulfilled") servers[systems[i]] = r.value;
    else errors.push(r.reason);
  });
  if (errors.length > 0) {
    await Promise.all(Object.values(servers).map((s) => stop(s.proc)));
    throw new Error(errors.map((e) => (e instanceof Error ? e.message : String(e))).join("\n\n"));
  }
  return servers;
}

/** Run one system's cases in a fresh load-generator process; resolves to its results. */
async function runSystem(system, target, systemCases, serverPid) {
  const config = {
    system,
    target,
    ...(serverPid !== undefined ? { serverPid } : {}),
    namespace,
    cases: systemCases.map((c) => ({ kind: c.kind, inFlight: c.inFlight })),
    ...(params.count !== undefined
      ? { count: params.count, warmupCount: params.warmupCount }
      : { durationMs: params.durationMs, warmupMs: params.warmupMs }),
  };
  const results = [];
  let error;
  const proc = startNode(`${system} load generator`, [join(SRC_DIR, "client-runner.mjs"), JSON.stringify(config)], {
    onLine: (l) => {
      if (l.startsWith("BENCH_RESULT=")) results.push(JSON.parse(l.slice("BENCH_RESULT=".length)));
      else if (l.startsWith("BENCH_ERROR=")) error = JSON.parse(l.slice("BENCH_ERROR=".length));
    },
  });
  const perCaseMs = params.count !== undefined ? 10_000 : (params.durationMs + params.warmupMs) * 2;
  const deadlineMs = 30_000 + perCaseMs * systemCases.length;
  let timer;
  const outcome = await Promise.race([
    proc.exited,
    new Promise((resolve) => (timer = setTimeout(() => resolve({ timeout: true }), deadlineMs))),
  ]);
  clearTimeout(timer);
  if (outcome.timeout) {
    await stop(proc, 1000);
    throw new Error(`${system}: load generator did not finish within ${deadlineMs} ms\n${proc.stderrTail()}`);
  }
  if (error !== undefined || outcome.code !== 0) {
    throw new Error(`${system}: ${error ?? `load generator exited with code ${outcome.code}`}\n${proc.stderrTail()}`);
  }
  if (results.length !== systemCases.length) {
    throw new Error(`${system}: expected ${systemCases.length} results, got ${results.length}`);
  }
  return results;
}

function machine() {
  const cpus = os.cpus();
  return `${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${os.platform()} ${os.release()}, Node ${process.version}`;
}

async function main() {
  const loadAtStart = os.loadavg()[0].toFixed(2);
  const mode =
    params.count !== undefined
      ? `${params.count} round trips per case after ${params.warmupCount} warm-up`
      : `${params.warmupMs} ms warm-up then ${params.durationMs} ms per case`;
  console.log(`RPC round trips: ${systems.join(", ")}; ${mode}; ${params.reps} run(s); ${machine()}`);
  console.log(
    pinned
      ? "1-in-flight cases: server and load generator pinned to CPU 0 (see src/pin.mjs); others on every CPU (--unpinned to turn off)"
      : "unpinned: 1-in-flight numbers depend on where the scheduler puts the two processes",
  );
  for (const n of notices) console.log(`NOTICE: ${n}`);

  const servers = await startServers();
  /** @type {Map<string, any[]>} results of each case, one per run */
  const byCase = new Map(cases.map((c) => [key(c), []]));
  const failures = [];
  const failedSystems = new Set();
  try {
    // Runs are interleaved (run 1 of every system, then run 2, ...) so that a burst of load
    // from elsewhere on the machine does not land on one system only.
    for (let rep = 1; rep <= params.reps; rep++) {
      for (const system of systems) {
        if (failedSystems.has(system)) continue;
        const systemCases = cases.filter((c) => c.system === system);
        try {
          const results = await runSystem(system, servers[system].value, systemCases, pinned ? servers[system].proc.child.pid : undefined);
          for (const r of results) byCase.get(key(r))?.push(r);
          const summary = results.map((r) => `${r.kind}@${r.inFlight} ${Math.round(r.rps)}/s`).join(", ");
          console.log(`  run ${rep}/${params.reps} ${system}: ${summary}`);
        } catch (err) {
          failedSystems.add(system);
          failures.push(err instanceof Error ? err.message : String(err));
          console.log(`  run ${rep}/${params.reps} ${system}: FAILED`);
        }
      }
    }
  } finally {
    await Promise.all(Object.values(servers).map((s) => stop(s.proc)));
  }

  const rows = [];
  for (const c of cases) {
    const runs = byCase.get(key(c));
    if (runs.length === 0) continue;
    if (params.count !== undefined) {
      for (const r of runs) {
        if (r.completed !== params.count) {
          failures.push(`${key(c)}: completed ${r.completed} of ${params.count} round trips`);
        }
      }
    }
    rows.push({
      ...c,
      rps: median(runs.map((r) => r.rps)),
      p50Us: median(runs.map((r) => r.p50Us)),
      p99Us: median(runs.map((r) => r.p99Us)),
      runsRps: runs.map((r) => r.rps),
      reference: REFERENCE[key(c)],
    });
  }

  const table = renderTable(rows);
  // A smoke run is a correctness check: its few cold round trips say nothing about speed.
  const findings = smoke ? ["(smoke run: too short and too cold for the numbers to mean anything)"] : compare(rows);
  console.log("");
  console.log(table);
  console.log("");
  for (const f of findings) console.log(f);
  if (!smoke) console.log(REFERENCE_TEXT);

  if (failures.length > 0) {
    console.error(`\n${failures.length} failure(s):\n${failures.join("\n\n")}`);
    process.exitCode = 1;
    return;
  }
  if (smoke) {
    console.log(`\nsmoke OK: ${rows.length} cases, every reply checked`);
    return;
  }
  if (flags["write-docs"]) {
    const file = join(REPO_ROOT, "docs", "benchmarks.md");
    writeDocsSection(file, docsBody(table, findings, loadAtStart));
    console.log(`\nwrote the "RPC round trips (issue 2)" section of ${file}`);
  }
}

/** One-line comparisons between rows of the same run. */
function compare(rows) {
  const get = (system, kind, inFlight) => rows.find((r) => r.system === system && r.kind === kind && r.inFlight === inFlight);
  const out = [];
  for (const n of [1, 64]) {
    const m = get("mpreg", "echo", n);
    const w = get("ws", "echo", n);
    const mol = get("moleculer", "echo", n);
    const parts = [];
    const p50 = (r) => `p50 ${Math.round(r.p50Us)} µs`;
    if (m) parts.push(p50(m));
    if (m && w) {
      // With 64 in flight MPREG's connection (client and node) puts the frames of one event-loop
      // turn into one write; the plain bare client does not, so MPREG can pass it there.
      const note = n > 1 && m.rps > w.rps ? ", passed thanks to MPREG's write coalescing" : "";
      parts.push(`${((100 * m.rps) / w.rps).toFixed(0)}% of the bare-ws baseline's rps (${p50(w)}${note})`);
    }
    if (m && mol) parts.push(`${(m.rps / mol.rps).toFixed(2)}× Moleculer's rps (${p50(mol)})`);
    if (!m && w && mol) parts.push(`Moleculer is ${((100 * mol.rps) / w.rps).toFixed(0)}% of the bare-ws baseline`);
    if (parts.length > 0) out.push(`${m ? "MPREG echo" : "echo"} at ${n} in flight: ${parts.join(", ")}.`);
    const one = get("mpreg", "chain-1-request", n);
    const four = get("mpreg", "chain-4-calls", n);
    if (one && four) {
      out.push(
        `4-step chain at ${n} in flight: one request ${(one.rps / four.rps).toFixed(2)}× the chains/s of ` +
          `4 sequential calls (p50 ${Math.round(one.p50Us)} µs vs ${Math.round(four.p50Us)} µs).`,
      );
    }
  }
  return out;
}

function docsBody(table, findings, loadAtStart) {
  const when = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  return `
Command: \`pnpm --filter @mpreg/bench bench\` (needs \`pnpm build\` first), or \`pnpm bench\` at the
repository root, which builds through turbo and then runs every package's benchmark.
Smoke version (CI, \`pnpm --filter @mpreg/bench test\`): 200 checked round trips per case.

Last run: ${when}; ${machine()}; ${pinned ? "1-in-flight cases pinned to one CPU" : "unpinned"}; 1-minute load average ${loadAtStart} at the start,
${os.loadavg()[0].toFixed(2)} at the end (other work shares this machine).
${params.warmupMs} ms warm-up, then ${params.durationMs} ms per case, ${params.reps} run(s); each column is the median
of the runs. rps = round trips per second (for the chain rows: whole chains per second);
latency is per round trip (per chain), from the call to its checked reply.

${table}

${findings.length > 0 ? `${findings.map((f) => `- ${f}`).join("\n")}\n\n` : ""}${REFERENCE_TEXT}

How it is measured:
- Every server is its own process and every load generator is another one (a fresh process per
  system and run); the orchestrator only starts them and collects the results. Runs are
  interleaved (run 1 of every system, then run 2, ...), so a burst of other load on this shared
  2-core machine does not hit one system only. Compare rows of the same run, not across runs.
- At 1 in flight a round trip is mostly two process wake-ups, and their cost depends on where
  the scheduler puts the two processes: on the same vCPU the bare ws ping-pong takes ~35 µs;
  on different vCPUs ~60-140 µs with a long tail, and the scheduler flips between the two from
  run to run (unpinned 1-in-flight numbers varied 3× between consecutive runs). So, when
  \`taskset\` is available, each 1-in-flight case pins the server and its load generator to the
  same CPU (every system alike; \`src/pin.mjs\`) and measures the software path; the other
  cases run on every CPU, where client and server work in parallel. \`--unpinned\` turns it off.
- One connection per case, closed loop: N workers (N = in-flight) each send a request and wait for
  its reply before sending the next. Each request carries a distinct value and every reply is
  checked against it; a wrong reply fails the run.
- Bare ws (the limit): a \`ws\` server and client, permessage-deflate off, MessagePack on binary
  frames with reused \`@msgpack/msgpack\` Encoder/Decoder instances. The request has MPREG's shape
  (\`{role: "rpc", u, cmds: [{name, fun, args}]}\`, \`u\` as long as a ULID) and the reply is an
  rpc-response (\`{role: "rpc-response", u, r: {echo: x}, error: null}\`). The client does one
  \`ws.send\` per request, with no write coalescing; the server decodes, builds the reply and
  sends it, with no validation, planning or routing.
- Moleculer 0.14: a service broker process with an \`echo.echo\` action and a caller broker in the
  load-generator process, TCP transporter with UDP discovery off, the service's static URL on
  127.0.0.1 (it binds port 0 and reports the port), default JSON serializer, logger, metrics and
  tracing off, a namespace unique to the run. Calls are \`broker.call("echo.echo", {x})\`. The
  TCP transporter writes each direction on its own connection, so this peer uses two sockets
  (both on 127.0.0.1) where the other two use one WebSocket.
- MPREG: \`node apps/server/dist/cli.js start --port 0\` (it prints \`MPREG_URL=...\` once listening)
  and \`@mpreg/client\`: \`call("echo", [x])\`. Unlike the bare client, MPREG's connection (client
  and node) corks the socket for one event-loop turn and writes what is corked every 16 frames,
  so at 64 in flight frames share writes and both processes work at once.
  The chain is a→b→c→d, each \`echo\` of the previous result: one \`request()\` holding
  the 4 commands (the node resolves the references) versus 4 sequential \`call()\`s with the
  client passing each result on.
`;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});
