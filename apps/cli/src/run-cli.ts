/** `runCli`: picks the command, parses its flags, runs it, prints errors, returns the exit code. */
import { MpregClient } from "@mpreg/client";
import { didYouMean } from "@mpreg/envelope";
import { COMMON_FLAGS, UsageError, flagsHelp, parseArgs } from "./args.js";
import type { CliIo, Command, CommandContext } from "./command.js";
import { formatError } from "./output.js";
import { benchCommand } from "./commands/bench.js";
import { cacheCommand } from "./commands/cache.js";
import { callCommand } from "./commands/call.js";
import { federationCommand } from "./commands/federation.js";
import { healthCommand } from "./commands/health.js";
import { kvCommand } from "./commands/kv.js";
import { peersCommand } from "./commands/peers.js";
import { pubCommand } from "./commands/pub.js";
import { queueCommand } from "./commands/queue.js";
import { subCommand } from "./commands/sub.js";
import { topologyCommand } from "./commands/topology.js";

/** The client commands, in the order `mpreg --help` lists them. */
export const COMMANDS: readonly Command[] = [
  callCommand,
  peersCommand,
  topologyCommand,
  healthCommand,
  kvCommand,
  pubCommand,
  subCommand,
  queueCommand,
  cacheCommand,
  federationCommand,
  benchCommand,
];

/** Commands the `mpreg` bin runs itself (they need the node's code), listed in the help. */
const NODE_COMMANDS: readonly [string, string][] = [
  ["start", "run a node (mpreg start --help lists every option)"],
  ["config", "config check FILE | config print: validate or show the effective configuration"],
];

/** Exit codes: 0 done, 1 the node answered with an error (or the check failed), 2 usage. */
export const EXIT = { OK: 0, FAILED: 1, USAGE: 2 } as const;

function globalUsage(): string {
  const rows = [...NODE_COMMANDS, ...COMMANDS.map((c) => [c.name, c.summary] as [string, string])];
  const width = Math.max(...rows.map(([n]) => n.length)) + 2;
  return [
    "usage: mpreg COMMAND [options]",
    "",
    ...rows.map(([n, s]) => `  ${n.padEnd(width)}${s}`),
    "",
    "Every client command takes --url (MPREG_URL, default ws://127.0.0.1:6666), --token (MPREG_TOKEN),",
    "--json and --help. Errors print the wire code and message and exit 1; usage mistakes exit 2.",
  ].join("\n");
}

function commandHelp(cmd: Command): string {
  const parts = [`usage: ${cmd.usage}`, "", cmd.summary];
  if (cmd.details) parts.push("", cmd.details);
  if (cmd.flags && Object.keys(cmd.flags).length > 0) parts.push("", "options:", flagsHelp(cmd.flags));
  parts.push("", "common options:", flagsHelp(COMMON_FLAGS));
  return parts.join("\n");
}

/**
 * Runs one `mpreg` client command (`argv` without the program name, e.g. `["call", "echo",
 * "hi"]`) and resolves to its exit code. Never throws for a command's failure: errors are
 * printed (`error CODE NAME: message`, or `{"error": ...}` with `--json`).
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  const write = (stream: CliIo["stdout"], text: string) => stream.write(text.endsWith("\n") ? text : `${text}\n`);
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    write(io.stdout, globalUsage());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (cmd === undefined) {
    const close = didYouMean(name, [...NODE_COMMANDS.map(([n]) => n), ...COMMANDS.map((c) => c.name)]);
    write(io.stderr, `mpreg: unknown command "${name}"${close ? `; did you mean "${close}"?` : ""}\n${globalUsage()}`);
    return EXIT.USAGE;
  }
  let json = rest.includes("--json");
  let client: MpregClient | undefined;
  try {
    const args = parseArgs(rest, { ...COMMON_FLAGS, ...cmd.flags }, io.env);
    json = args.flags.json === true;
    if (args.flags.help === true) {
      write(io.stdout, commandHelp(cmd));
      return EXIT.OK;
    }
    const url = (args.flags.url as string | undefined) ?? "ws://127.0.0.1:6666";
    if (!/^wss?:\/\//.test(url)) throw new UsageError(`--url must be a ws:// or wss:// URL, got "${url}"`);
    const token = args.flags.token as string | undefined;
    const timeoutMs = (args.flags["timeout-ms"] as number | undefined) ?? 30_000;
    let connecting: Promise<MpregClient> | undefined;
    const ctx: CommandContext = {
      args,
      io,
      json,
      url,
      token,
      timeoutMs,
      client: () => {
        connecting ??= MpregClient.connect(url, {
          reconnect: false,
          timeoutMs,
          ...(token === undefined ? {} : { token }),
          transport: { connectTimeoutMs: 10_000 },
        }).then((c) => (client = c));
        return connecting;
      },
      print: (value, human) => write(io.stdout, json ? JSON.stringify(value) : human()),
    };
    return await cmd.run(ctx);
  } catch (e) {
    if (e instanceof UsageError) {
      write(io.stderr, `mpreg ${cmd.name}: ${e.message}\nusage: ${cmd.usage}\n(mpreg ${cmd.name} --help for more)`);
      return EXIT.USAGE;
    }
    if (json) write(io.stdout, formatError(e, true));
    else write(io.stderr, formatError(e, false));
    return EXIT.FAILED;
  } finally {
    await client?.close().catch(() => undefined);
  }
}

