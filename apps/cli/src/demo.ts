#!/usr/bin/env node
/**
 * `pnpm demo NAME`: runs one demo from demos/ (each file there is one demo; adding a demo is
 * adding a file). `pnpm demo --list` lists them. Exits 0 when the demo completed.
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { runDemo, type Demo } from "./demo-kit.js";

const here = dirname(fileURLToPath(import.meta.url));
const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
const demosDir = join(here, "demos");

function names(): string[] {
  return readdirSync(demosDir)
    .filter((f) => f.endsWith(ext) && !f.endsWith(`.test${ext}`) && !f.endsWith(".d.ts"))
    .map((f) => f.slice(0, -ext.length))
    .sort();
}

async function load(name: string): Promise<Demo> {
  return ((await import(pathToFileURL(join(demosDir, `${name}${ext}`)).href)) as { default: Demo }).default;
}

async function main(argv: string[]): Promise<number> {
  const [name] = argv;
  const all = names();
  if (name === undefined || name === "--list" || name === "--help") {
    process.stdout.write("usage: pnpm demo NAME\n\n");
    for (const n of all) process.stdout.write(`  ${n.padEnd(14)}${(await load(n)).description}\n`);
    return name === undefined ? 2 : 0;
  }
  if (!all.includes(name)) {
    process.stderr.write(`no demo "${name}"; there are: ${all.join(", ")}\n`);
    return 2;
  }
  const started = Date.now();
  await runDemo(await load(name));
  process.stdout.write(`\ndemo ${name} completed in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`demo failed: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
