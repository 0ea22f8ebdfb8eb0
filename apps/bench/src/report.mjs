// Rendering the results: a padded Markdown table (readable on a terminal and in docs) and the
// docs/benchmarks.md section this benchmark owns.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** Heading of the section of docs/benchmarks.md that this benchmark rewrites. */
export const DOCS_HEADING = "## RPC round trips (issue 2)";

const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a");
const kilo = (n) => (Number.isFinite(n) ? `${(n / 1000).toFixed(1)}k` : "n/a");

/**
 * @param {{ label: string, inFlight: number, rps: number, p50Us: number, p99Us: number,
 *   runsRps: number[], reference?: string }[]} rows
 */
export function renderTable(rows) {
  const header = ["case", "in-flight", "rps", "p50 µs", "p99 µs", "rps of each run", "reference rps"];
  const body = rows.map((r) => [
    r.label,
    String(r.inFlight),
    int(r.rps),
    int(r.p50Us),
    int(r.p99Us),
    r.runsRps.map(kilo).join(" / "),
    r.reference ?? "",
  ]);
  const right = [false, true, true, true, true, false, false];
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) =>
    `| ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (right[i] ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [line(header), rule, ...body.map(line)].join("\n");
}

/**
 * Replace (or append) the section under `heading` (a `## ` line) in a Markdown file, leaving
 * every other section as it is. A section runs from its heading to the next `## ` heading.
 * @param {string} file
 * @param {string} heading
 * @param {string} body
 */
export function writeSection(file, heading, body) {
  const section = `${heading}\n\n${body.trim()}\n`;
  const old = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmarks\n";
  const lines = old.split("\n");
  const start = lines.findIndex((l) => l.trim() === heading);
  let next;
  if (start === -1) {
    next = `${old.replace(/\s*$/, "")}\n\n${section}`;
  } else {
    let end = lines.findIndex((l, i) => i > start && /^## /.test(l));
    if (end === -1) end = lines.length;
    const before = lines.slice(0, start).join("\n").replace(/\s*$/, "");
    const after = lines.slice(end).join("\n").replace(/^\s*/, "");
    next = `${before ? `${before}\n\n` : ""}${section}${after ? `\n${after}` : ""}`;
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, next.endsWith("\n") ? next : `${next}\n`);
}

/** Replace (or append) this benchmark's section, {@link DOCS_HEADING}. */
export function writeDocsSection(file, body) {
  writeSection(file, DOCS_HEADING, body);
}
