#!/usr/bin/env node
/** The `mpreg` command (PROTOCOL section 7). */
import { ConfigError, resolveConfig } from "./config.js";
import { startNode } from "./embed.js";
import type { MpregNode } from "./node.js";

const USAGE = `usage: mpreg start [--config file.json] [--port 0] [--host 127.0.0.1] [--name n]
                   [--cluster-id c] [--region r] [--peers ws://a,ws://b] [--resources gpu,cpu]
                   [--functions ./module.js]... [--data-dir dir] [--monitoring-port p]
                   [--auth-tokens t1,t2] [--cluster-secret s] [--max-frame-bytes n]
                   [--max-inflight-per-connection n] [--default-timeout-ms n]
                   [--tls-cert server.crt --tls-key server.key [--tls-ca ca.crt]
                    [--tls-require-client-cert]]

Every option can also come from the config file (camelCase keys) or the environment
(MPREG_PORT, MPREG_CLUSTER_ID, ...). Flags override the file, which overrides the environment.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "--help" || command === "-h" || command === "help") {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== "start") {
    process.stderr.write(`mpreg: unknown command "${command}"\n${USAGE}\n`);
    return 2;
  }
  let config;
  try {
    config = resolveConfig(rest, process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`mpreg: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  let node: MpregNode;
  try {
    node = await startNode(config);
    process.stdout.write(`MPREG_URL=${node.listenUrl}\n`);
    if (node.monitoringUrl) process.stdout.write(`MPREG_MONITORING_URL=${node.monitoringUrl}\n`);
  } catch (e) {
    process.stderr.write(`mpreg: could not start: ${(e as Error).message}\n`);
    // A configuration found wrong only at start (a TLS file) is still a configuration error.
    return e instanceof ConfigError ? 2 : 1;
  }
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`mpreg: ${signal} received, shutting down\n`);
      node.stop().then(
        () => resolve(0),
        (e: unknown) => {
          process.stderr.write(`mpreg: shutdown failed: ${(e as Error).message}\n`);
          resolve(1);
        },
      );
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`mpreg: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
