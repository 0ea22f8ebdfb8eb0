/** Formatting shared by the commands: JSON, tables, errors. */
import { errorCodeName, isMpregError } from "@mpreg/envelope";

/** A value as a person reads it: strings bare, everything else as indented JSON. */
export function humanValue(v: unknown): string {
  if (typeof v === "string") return v;
  return JSON.stringify(v, null, 2) ?? "null";
}

/** Left-aligned columns with a header row; cells are stringified. */
export function table(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === null || c === undefined ? "-" : String(c))))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join("").trimEnd()).join("\n");
}

/** Hints for errors a newcomer meets first. */
function hint(code: number, message: string): string {
  if (code === 1005 && /cannot connect/.test(message)) return "\n  is a node running there? start one with `mpreg start`, or pass --url / MPREG_URL";
  if (code === 1006) return "\n  pass a token with --token or MPREG_TOKEN";
  const service = /no function `mpreg\.(kv|queue|cache)\./.exec(message)?.[1];
  if (code === 1001 && service === "kv") return "\n  this node serves no Raft group: start it with --raft-group NAME --raft-members a,b,c";
  if (code === 1001 && service !== undefined) return `\n  no node of this cluster serves the ${service} built-ins yet`;
  return "";
}

/**
 * An error as the CLI prints it: `error 1001 NOT_FOUND: <message>` for a person, or
 * `{"error": {code, name, message, details}}` for `--json`.
 */
export function formatError(e: unknown, json: boolean): string {
  const code = isMpregError(e) ? e.code : 1003;
  const message = e instanceof Error ? e.message : String(e);
  if (json) {
    const details = isMpregError(e) ? e.details : {};
    return JSON.stringify({ error: { code, name: errorCodeName(code), message, details } });
  }
  return `error ${code} ${errorCodeName(code)}: ${message}${hint(code, message)}`;
}
