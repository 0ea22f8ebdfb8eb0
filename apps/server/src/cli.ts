#!/usr/bin/env node
/**
 * The `mpreg` command (PROTOCOL section 7). `start` and `config` need the node's own code and
 * live here; every other command is a client of a running node, in `@mpreg/cli`.
 */
import { runCli } from "@mpreg/cli";
import { configUsage, ConfigError, resolveConfig, type NodeConfig } from "./config.js";
import { configCommand } from "./config-command.js";
import { startNode } from "./embed.js";
import type { MpregNode } from "./node.js";

const out = (s: string) => void process.stdout.write(s);
const err = (s: string) => void process.stderr.write(s);

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "start") return start(rest);
  if (command === "config") return configCommand(rest, { stdout: out, stderr: err, env: process.env });
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  return runCli(argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: stop.signal });
}

async function start(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    out(`${configUsage()}\n`);
    return 0;
  }
  let config: NodeConfig;
  try {
    config = resolveConfig(argv, process.env, (m) => err(`mpreg: warning: ${m}\n`));
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`mpreg: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  let node: MpregNode;
  try {
    node = await startNode(config);
    node.configSource = () => resolveConfig(argv, process.env, (m) => err(`mpreg: warning: ${m}\n`));
    out(`MPREG_URL=${node.listenUrl}\n`);
    if (node.monitoringUrl) out(`MPREG_MONITORING_URL=${node.monitoringUrl}\n`);
  } catch (e) {
    err(`mpreg: could not start: ${startError(e as NodeJS.ErrnoException & { listener?: string }, config)}\n`);
    // A configuration found wrong only at start (a TLS file) is still a configuration error.
    return e instanceof ConfigError ? 2 : 1;
  }
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      err(`mpreg: ${signal} received, shutting down\n`);
      node.stop().then(
        () => resolve(0),
        (e: unknown) => {
          err(`mpreg: shutdown failed: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
    // SIGHUP: read flags, environment and config file again and apply the reloadable part.
    process.on("SIGHUP", () => {
      if (stopping) return;
      try {
        const r = node.reloadConfig();
        err(`mpreg: SIGHUP: configuration reloaded; applied: ${r.applied.join(", ") || "nothing"}; not applied (needs a restart): ${r.not_applied.join(", ") || "nothing"}\n`);
      } catch (e) {
        err(`mpreg: SIGHUP: ${(e as Error).message}; the running configuration is unchanged\n`);
      }
    });
  });
}

/** "Address in use" names the listener and how to pick another port; the monitoring one words itself. */
function startError(e: NodeJS.ErrnoException & { listener?: string }, config: NodeConfig): string {
  if (e.code !== "EADDRINUSE" || e.listener === "monitoring") return e.message;
  return `client port ${config.port} on ${config.host} is already in use (another mpreg node?): pick another with --port N (or MPREG_PORT; 0 picks a free port)`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    err(`mpreg: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
