/** What every client command is, and what it gets to run. */
import type { MpregClient } from "@mpreg/client";
import type { FlagSpec, ParsedArgs } from "./args.js";

/** Where the commands write and what they read; `process` in the real CLI, fakes in tests. */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  env: NodeJS.ProcessEnv;
  /** Aborted on SIGINT/SIGTERM: long-running commands (`sub`, `bench`) end cleanly on it. */
  signal?: AbortSignal;
}

/** What a command's `run` receives. */
export interface CommandContext {
  args: ParsedArgs;
  io: CliIo;
  /** `--json`: print one JSON value on stdout. */
  json: boolean;
  url: string;
  token: string | undefined;
  timeoutMs: number;
  /** The client, connected on first use (no reconnect) and closed when the command ends. */
  client(): Promise<MpregClient>;
  /** Prints `value` as JSON with `--json`, else the human text. */
  print(value: unknown, human: () => string): void;
}

/** One `mpreg` command (one file under commands/). */
export interface Command {
  name: string;
  /** One line for the command list. */
  summary: string;
  /** Synopsis lines, without the common flags. */
  usage: string;
  /** More words for `--help` (examples, exit codes). */
  details?: string;
  /** Flags beyond the common ones. */
  flags?: Record<string, FlagSpec>;
  /** Resolves to the exit code; a thrown MpregError prints as an error reply (exit 1). */
  run(ctx: CommandContext): Promise<number>;
}
