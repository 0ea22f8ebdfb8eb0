/** `mpreg call FUN [ARGS...]` and `mpreg call --file request.json`. */
import { readFileSync } from "node:fs";
import { MpregError, isMpregError, type RpcCommand } from "@mpreg/envelope";
import { UsageError, jsonArg } from "../args.js";
import type { Command } from "../command.js";
import { humanValue } from "../output.js";

/** Request-level options a request file may set besides `cmds`. */
const FILE_OPTIONS = ["timeout_ms", "return_all", "return_intermediate_results", "include_execution_summary"] as const;

/** Reads a request file: `{cmds: [...], ...options}` or a bare array of commands. */
export function readRequestFile(path: string): { cmds: RpcCommand[]; options: Record<string, unknown> } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (Array.isArray(data)) return { cmds: data as RpcCommand[], options: {} };
  if (typeof data === "object" && data !== null && Array.isArray((data as { cmds?: unknown }).cmds)) {
    const obj = data as Record<string, unknown>;
    const options = Object.fromEntries(FILE_OPTIONS.filter((k) => obj[k] !== undefined).map((k) => [k, obj[k]]));
    return { cmds: obj.cmds as RpcCommand[], options };
  }
  throw new UsageError(`${path} must hold {"cmds": [...]} or an array of commands`);
}

export const callCommand: Command = {
  name: "call",
  summary: "call a function, or send a multi-command request from a file",
  usage: "mpreg call FUN [ARG...] [--kwargs JSON] [--locs r1,r2]\n       mpreg call --file request.json [--all]",
  details: [
    "Each ARG is parsed as JSON when it can be, else passed as a string:",
    "  mpreg call add 1 2            → 3",
    "  mpreg call upper hello        → HELLO",
    "  mpreg call echo '{\"a\": [1]}'",
    "A request file holds {\"cmds\": [{\"name\", \"fun\", \"args\"}...]} (optionally timeout_ms, return_all)",
    "or just the array; a command's args may name an earlier command to use its result",
    "(PROTOCOL section 3). The reply's leaves are printed as {name: result}.",
  ].join("\n"),
  flags: {
    file: { kind: "string", help: "send the multi-command request in this JSON file", value: "FILE" },
    kwargs: { kind: "string", help: "keyword arguments as a JSON object", value: "JSON" },
    locs: { kind: "string", help: "resources the function must have, comma-separated", value: "R1,R2" },
    "function-id": { kind: "string", help: "call this function_id only", value: "ID" },
    version: { kind: "string", help: "version constraint, e.g. ^1.2", value: "C" },
    "target-cluster": { kind: "string", help: "run it in this cluster", value: "C" },
    all: { kind: "bool", help: "with --file: every command's result, not only the leaves" },
  },
  async run(ctx) {
    const { positionals, flags } = ctx.args;
    const file = flags.file as string | undefined;
    if (file !== undefined) {
      if (positionals.length > 0) throw new UsageError("give either FUN [ARG...] or --file, not both");
      const { cmds, options } = readRequestFile(file);
      const client = await ctx.client();
      const reply = await client.request(cmds, {
        timeout_ms: (options.timeout_ms as number | undefined) ?? ctx.timeoutMs,
        return_all: flags.all === true || options.return_all === true,
        return_intermediate_results: options.return_intermediate_results === true,
        include_execution_summary: options.include_execution_summary === true,
      });
      const { role: _role, u: _u, error: _error, ...shown } = reply;
      ctx.print(shown.intermediate_results || shown.execution_summary ? shown : reply.r, () => humanValue(reply.r));
      return 0;
    }
    const [fun, ...rawArgs] = positionals;
    if (fun === undefined) throw new UsageError("name the function to call (or give --file)");
    let kwargs: Record<string, unknown> | undefined;
    if (flags.kwargs !== undefined) {
      const k = jsonArg(flags.kwargs as string, false);
      if (typeof k !== "object" || k === null || Array.isArray(k)) throw new UsageError("--kwargs must be a JSON object");
      kwargs = k as Record<string, unknown>;
    }
    const client = await ctx.client();
    const options = {
      timeout_ms: ctx.timeoutMs,
      ...(kwargs === undefined ? {} : { kwargs }),
      ...(flags.locs === undefined ? {} : { locs: String(flags.locs).split(",").map((s) => s.trim()).filter(Boolean) }),
      ...(flags["function-id"] === undefined ? {} : { function_id: flags["function-id"] as string }),
      ...(flags.version === undefined ? {} : { version_constraint: flags.version as string }),
      ...(flags["target-cluster"] === undefined ? {} : { target_cluster: flags["target-cluster"] as string }),
    };
    const result = await client.call(fun, rawArgs.map((a) => jsonArg(a)), options).catch((e: unknown) => {
      throw withoutCallName(e, fun);
    });
    ctx.print(result, () => humanValue(result));
    return 0;
  },
};

/**
 * The client names a single call's command `<fun>@<nonce>`: an internal label the user never
 * wrote, so it is dropped from the error's details.
 */
function withoutCallName(e: unknown, fun: string): unknown {
  if (!isMpregError(e) || typeof e.details.command !== "string" || !e.details.command.startsWith(`${fun}@`)) return e;
  const { command: _internal, ...details } = e.details;
  return new MpregError(e.code, e.message, details);
}
