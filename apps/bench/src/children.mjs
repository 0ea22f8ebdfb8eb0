// Spawning and stopping the benchmark's child processes.
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/** Every child still running, so the orchestrator can stop exactly the processes it started. */
const running = new Set();

/** Lines of stderr kept per child for error messages (bounded: older lines are dropped). */
const STDERR_LINES = 40;

/**
 * Start `node <args>` (or `opts.command <args>`) and collect its stdout lines. `onLine` sees
 * each stdout line, `onErrLine` each stderr line.
 * @param {string} label
 * @param {string[]} args
 * @param {{ cwd?: string, command?: string, onLine?: (line: string) => void, onErrLine?: (line: string) => void }} [opts]
 */
export function startNode(label, args, opts = {}) {
  const child = spawn(opts.command ?? process.execPath, args, {
    cwd: opts.cwd,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, FORCE_COLOR: "0" },
  });
  running.add(child);
  // A child that exits first turns our later stdin.end() into EPIPE; that is not an error here.
  child.stdin.on("error", () => {});
  const stderr = [];
  createInterface({ input: child.stderr }).on("line", (l) => {
    stderr.push(l);
    if (stderr.length > STDERR_LINES) stderr.shift();
    opts.onErrLine?.(l);
  });
  createInterface({ input: child.stdout }).on("line", (l) => opts.onLine?.(l));
  const exited = new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
    child.once("error", (err) => {
      running.delete(child);
      stderr.push(String(err));
      resolve({ code: -1, signal: null });
    });
  });
  return { label, child, exited, stderrTail: () => stderr.join("\n") };
}

/**
 * Start a server child and wait (with a deadline) for its stdout line `<prefix><value>`.
 * @returns {Promise<{ proc: ReturnType<typeof startNode>, value: string }>}
 */
export async function startServer(label, args, prefix, deadlineMs, cwd) {
  let onReady;
  const ready = new Promise((resolve) => (onReady = resolve));
  const proc = startNode(label, args, {
    cwd,
    onLine: (l) => {
      if (l.startsWith(prefix)) onReady(l.slice(prefix.length).trim());
    },
  });
  let timer;
  const outcome = await Promise.race([
    ready.then((value) => ({ value })),
    proc.exited.then((e) => ({ exit: e })),
    new Promise((resolve) => (timer = setTimeout(() => resolve({ timeout: true }), deadlineMs))),
  ]);
  clearTimeout(timer);
  if ("value" in outcome) return { proc, value: outcome.value };
  await stop(proc);
  const why = outcome.timeout
    ? `did not print ${prefix}... within ${deadlineMs} ms`
    : `exited (code ${outcome.exit.code}, signal ${outcome.exit.signal}) before printing ${prefix}...`;
  throw new Error(`${label} ${why}\n--- stderr ---\n${proc.stderrTail()}`);
}

/** Stop one child: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
export async function stop(proc, graceMs = 3000) {
  if (!running.has(proc.child)) return;
  proc.child.stdin.end();
  proc.child.kill("SIGTERM");
  let timer;
  const gone = await Promise.race([
    proc.exited.then(() => true),
    new Promise((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
  ]);
  clearTimeout(timer);
  if (!gone) {
    proc.child.kill("SIGKILL");
    await proc.exited;
  }
}

/** Synchronous last resort (process exit): signal every child this process started. */
export function killAllStarted() {
  for (const child of running) child.kill("SIGKILL");
}
