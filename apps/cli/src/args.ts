/** The one argument parser of the client commands: flags, positionals, suggestions. */
import { didYouMean } from "@mpreg/envelope";

/** How a flag takes its value. `bool` flags take none (`--json`); `list` flags repeat. */
export type FlagKind = "string" | "int" | "bool" | "list";

/** One flag of a command. */
export interface FlagSpec {
  kind: FlagKind;
  /** One line for `--help`. */
  help: string;
  /** Shown in `--help` as the default. */
  default?: string;
  /** Environment variable read when the flag is absent. */
  env?: string;
  /** Placeholder for the value in `--help` (default by kind). */
  value?: string;
}

/** The flags every client command takes. */
export const COMMON_FLAGS: Record<string, FlagSpec> = {
  url: { kind: "string", help: "node to talk to", default: "ws://127.0.0.1:6666", env: "MPREG_URL", value: "ws://HOST:PORT" },
  token: { kind: "string", help: "bearer token, when the node requires one", env: "MPREG_TOKEN", value: "T" },
  json: { kind: "bool", help: "machine output: one JSON value (errors too, as {error})" },
  "timeout-ms": { kind: "int", help: "request timeout", default: "30000", value: "MS" },
  help: { kind: "bool", help: "this help" },
};

/** Parsed arguments: positionals in order, flags by name (kebab-case, as typed). */
export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | number | boolean | string[]>;
}

/** A mistake in the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Parses `argv` against `spec` (plus nothing else): `--flag value`, `--flag=value`, bare
 * `--bool`, `--` ends the flags, `-h` is `--help`. Values of environment-backed flags come
 * from `env` when absent. An unknown flag is a UsageError naming the close match.
 */
export function parseArgs(argv: readonly string[], spec: Record<string, FlagSpec>, env: NodeJS.ProcessEnv = {}): ParsedArgs {
  const positionals: string[] = [];
  const flags: ParsedArgs["flags"] = {};
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (onlyPositionals || !arg.startsWith("-") || arg === "-" || /^-\d/.test(arg)) {
      positionals.push(arg);
      continue;
    }
    if (arg === "--") {
      onlyPositionals = true;
      continue;
    }
    let name = arg === "-h" ? "help" : arg.replace(/^--?/, "");
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const f = spec[name];
    if (f === undefined) {
      const close = didYouMean(name, Object.keys(spec));
      throw new UsageError(`unknown option --${name}${close ? `; did you mean --${close}?` : ""}`);
    }
    if (f.kind === "bool") {
      if (value !== undefined && !/^(true|false|1|0)$/.test(value)) throw new UsageError(`--${name} takes no value`);
      flags[name] = value === undefined || value === "true" || value === "1";
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
    }
    setValue(flags, name, f, value, `--${name}`);
  }
  for (const [name, f] of Object.entries(spec)) {
    const fromEnv = f.env === undefined ? undefined : env[f.env];
    if (flags[name] === undefined && fromEnv !== undefined && fromEnv !== "") setValue(flags, name, f, fromEnv, f.env!);
  }
  return { positionals, flags };
}

function setValue(flags: ParsedArgs["flags"], name: string, f: FlagSpec, value: string, source: string): void {
  if (f.kind === "int") {
    if (!/^\d+$/.test(value)) throw new UsageError(`${source}: expected a non-negative integer, got "${value}"`);
    flags[name] = Number(value);
  } else if (f.kind === "list") {
    flags[name] = [...((flags[name] as string[] | undefined) ?? []), value];
  } else {
    flags[name] = value;
  }
}

/** The `--help` block of a flag table. */
export function flagsHelp(spec: Record<string, FlagSpec>): string {
  const rows = Object.entries(spec).map(([name, f]) => {
    const left = `--${name}${f.kind === "bool" ? "" : ` ${f.value ?? (f.kind === "int" ? "N" : "S")}`}`;
    const extra = [f.env ? `env ${f.env}` : "", f.default ? `default ${f.default}` : ""].filter(Boolean).join(", ");
    return [left, `${f.help}${extra ? ` (${extra})` : ""}`] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`).join("\n");
}

/**
 * A command-line value: JSON when it parses, else the bare string (so `call upper hi` passes
 * "hi"); with `lenient` false, text that is not JSON is a UsageError.
 */
export function jsonArg(text: string, lenient = true): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    if (lenient) return text;
    throw new UsageError(`not valid JSON: ${(e as Error).message}`);
  }
}
