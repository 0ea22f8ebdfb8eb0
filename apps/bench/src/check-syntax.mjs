// `typecheck` for a plain-JavaScript package: every .mjs file here must parse (`node --check`).
import { readdirSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const dir = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith(".mjs")).sort();
let failed = 0;
for (const f of files) {
  const r = spawnSync(process.execPath, ["--check", join(dir, f)], { encoding: "utf8" });
  if (r.status !== 0) {
    failed++;
    process.stderr.write(`${f}: syntax error\n${r.stderr}\n`);
  }
}
console.log(`checked ${files.length} files, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
