#!/usr/bin/env node
/**
 * `pnpm start [flags]`: builds the node (turbo, cached after the first time), then runs
 * `mpreg start --functions <demo functions> [flags]` (e.g. `pnpm start --port 7000`).
 *
 * Signals: SIGINT, SIGTERM and SIGHUP are passed to the node, which shuts down gracefully; this
 * script exits with the node's status. pnpm does not pass a SIGTERM on to its script, so this
 * script also watches its parent: when `pnpm` goes away (killed), the node is stopped too.
 * `MPREG_SKIP_BUILD=1` skips the build step.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"];

let child;
let stopping;
const parent = process.ppid;

for (const sig of SIGNALS) {
  process.on(sig, () => {
    stopping ??= sig;
    // Ctrl-C in a terminal reaches the whole process group: the child got it already.
    if (child && child.exitCode === null && child.signalCode === null) child.kill(sig);
    else if (!child) process.exit(128 + (sig === "SIGINT" ? 2 : sig === "SIGHUP" ? 1 : 15));
  });
}

// Reparented (pnpm was killed and did not pass the signal on): stop as if we got SIGTERM.
const watch = setInterval(() => {
  if (process.ppid === parent) return;
  clearInterval(watch);
  process.emit("SIGTERM", "SIGTERM");
}, 250);
watch.unref();

/** Runs a command with our stdio; resolves with its exit code (128+n for a signal). */
function run(cmd, cmdArgs, opts = {}) {
  return new Promise((resolve) => {
    child = spawn(cmd, cmdArgs, { stdio: "inherit", cwd: root, ...opts });
    child.on("error", (e) => {
      process.stderr.write(`mpreg start: cannot run ${cmd}: ${e.message}\n`);
      resolve(127);
    });
    child.on("exit", (code, signal) => {
      child = undefined;
      resolve(code ?? 128 + (signal === "SIGINT" ? 2 : signal === "SIGHUP" ? 1 : signal === "SIGKILL" ? 9 : 15));
    });
  });
}

if (process.env.MPREG_SKIP_BUILD !== "1") {
  const started = Date.now();
  process.stderr.write("mpreg start: building @mpreg/server and the packages it uses (cached after the first build)…\n");
  const localTurbo = join(root, "node_modules", ".bin", "turbo");
  const code = await run(existsSync(localTurbo) ? localTurbo : "turbo", ["run", "build", "--filter=@mpreg/server...", "--output-logs=errors-only"]);
  if (code !== 0 || stopping) {
    if (!stopping) process.stderr.write(`mpreg start: the build failed (exit ${code}); see the errors above\n`);
    process.exit(code || 1);
  }
  process.stderr.write(`mpreg start: built in ${((Date.now() - started) / 1000).toFixed(1)} s; starting the node\n`);
}

const cli = join(root, "apps", "server", "dist", "cli.js");
const functions = join(root, "apps", "server", "dist", "demo-functions.js");
process.exit(await run(process.execPath, [cli, "start", "--functions", functions, ...args]));
