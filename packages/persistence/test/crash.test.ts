/**
 * Crash tests: a child process writes with fsync "always" and prints each acknowledged write;
 * it is killed with SIGKILL at random moments (also while opening, recovering and compacting);
 * after each kill the store must open without error and hold every acknowledged write.
 *
 * SQLite (`synchronous=FULL`, with fsync "always" and with group commit "batch") stands in for
 * the power-loss model of power-loss.test.ts, which cannot run against it: SQLite does its file
 * I/O in C through its own VFS, not through the `FileSystem` interface the model simulates, and
 * better-sqlite3 cannot plug in a JavaScript VFS. After half of the SQLite kills a torn frame
 * (random bytes) is appended to the WAL, the artifact a power cut adds to a process crash
 * (unsynced data past the last synced commit); SQLite must discard it by its frame checksums.
 *
 * Rounds: 50 by default, `MPREG_LONG=1` runs 400 (or `MPREG_CRASH_ROUNDS=<n>`) on the file
 * backend, and a fifth as many on the SQLite backend.
 * The child imports the built package (`dist/`): run `npx tsup` first when testing locally
 * (the turbo `test` task builds first).
 */

import { describe, it, expect, afterAll } from "vitest";
import { spawn } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { FileBackend } from "../src/file.js";
import { SqliteBackend } from "../src/sqlite.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, "crash-child.mjs");
const built = path.join(here, "..", "dist", "index.js");
// A private copy of the build (inside the package, so its imports resolve the same way).
const copyDir = path.join(here, `.dist-copy-${process.pid}`);
const entryUrl = pathToFileURL(path.join(copyDir, "index.js")).href;
const ROUNDS = Number(process.env["MPREG_CRASH_ROUNDS"] ?? (process.env["MPREG_LONG"] ? 400 : 50));
const SQLITE_ROUNDS = Math.max(1, Math.floor(ROUNDS / 5));
type Backend = "file" | "sqlite";

const te = new TextEncoder();
const td = new TextDecoder();

let seed = 0x2545f491;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

/**
 * Runs the child and kills it `killAfterMs` after it reported "ready" (or after it was spawned,
 * when `early`: then the kill may land while it opens and recovers). Returns its complete lines.
 */
function runAndKill(
  backend: Backend,
  fsync: "always" | "batch",
  dir: string,
  round: number,
  killAfterMs: number,
  early: boolean,
): Promise<{ lines: string[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, dir, String(round), entryUrl, backend, fsync], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (early) timer = setTimeout(() => p.kill("SIGKILL"), killAfterMs);
    // A child that never gets ready is killed too (and the round then checks recovery only).
    const guard = setTimeout(() => p.kill("SIGKILL"), 20_000);
    p.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (timer === undefined && out.startsWith("ready\n")) timer = setTimeout(() => p.kill("SIGKILL"), killAfterMs);
    });
    p.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
    p.on("error", reject);
    p.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      if (signal !== "SIGKILL") {
        reject(new Error(`child exited by itself (code ${code}, signal ${signal}): ${err}`));
        return;
      }
      const lines = out.split("\n");
      lines.pop(); // an unterminated last line was cut by the kill: not a complete report
      resolve({ lines, stderr: err });
    });
  });
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});

describe("crash safety (SIGKILL)", () => {
  const crashTest = (backend: Backend, rounds: number, fsync: "always" | "batch" = "always") =>
  it(
    `${backend} (fsync ${fsync}): keeps every acknowledged write across ${rounds} kill rounds`,
    async () => {
      if (!fs.existsSync(built)) throw new Error(`${built} is missing: build the package first (npx tsup)`);
      await fsp.mkdir(copyDir, { recursive: true });
      await fsp.copyFile(built, path.join(copyDir, "index.js"));
      dirs.push(copyDir);
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "mpreg-crash-"));
      dirs.push(dir);
      const ackedKv = new Map<string, number>(); // key -> highest acknowledged version
      const ackedLog = new Map<number, string>(); // index -> data
      let acks = 0;
      let earlyKills = 0;
      for (let round = 0; round < rounds; round++) {
        // Mostly kills during steady writing; some land while the child starts and recovers.
        const early = rand(5) === 0;
        const { lines } = await runAndKill(backend, fsync, dir, round, early ? rand(400) : rand(200), early);
        if (backend === "sqlite" && rand(2) === 0) {
          // What a power cut can add to a process crash: a torn, half-written frame after the
          // last one synced. SQLite must ignore it (frame checksums) and lose nothing acknowledged.
          const wal = path.join(dir, "mpreg.sqlite-wal");
          if (fs.existsSync(wal)) fs.appendFileSync(wal, Buffer.from(Array.from({ length: 512 + rand(8192) }, () => rand(256))));
        }
        if (!lines.includes("ready")) earlyKills++;
        for (const line of lines) {
          const [kind, a, b] = line.split(" ");
          if (kind === "kv") ackedKv.set(a!, Math.max(ackedKv.get(a!) ?? 0, Number(b)));
          else if (kind === "batch") ackedKv.set(`${a}/batch`, Math.max(ackedKv.get(`${a}/batch`) ?? 0, Number(b)));
          else if (kind === "log") ackedLog.set(Number(a), b!);
          if (kind !== "ready") acks++;
        }

        const be = backend === "file" ? await FileBackend.open({ dir, fsync: "always" }) : await SqliteBackend.open({ dir, fsync: "always" });
        try {
          const kv = be.kv("crash");
          for (const [key, v] of ackedKv) {
            if (key.endsWith("/batch")) {
              const w = key.slice(0, -"/batch".length);
              const vals = await Promise.all([0, 1, 2].map(async (j) => td.decode((await kv.get(te.encode(`${w}/b${j}`)))!)));
              expect(new Set(vals).size, `batch of ${w} is torn: ${vals.join(",")}`).toBe(1);
              expect(Number(vals[0]!.split(":")[1]), `round ${round}: batch ${w}`).toBeGreaterThanOrEqual(v);
            } else {
              const got = await kv.get(te.encode(key));
              expect(got, `round ${round}: acknowledged ${key}@${v} is missing`).toBeDefined();
              const stored = Number(td.decode(got!).split(":")[1]);
              expect(stored, `round ${round}: ${key}`).toBeGreaterThanOrEqual(v);
            }
          }
          const log = be.log("crash");
          const entries = new Map((await log.read(1)).map((e) => [e.index, td.decode(e.data)]));
          for (const [index, data] of ackedLog) expect(entries.get(index), `round ${round}: log ${index}`).toBe(data);
        } finally {
          await be.close();
        }
      }
      // The kills must have hit real work, or the test proves nothing.
      expect(acks).toBeGreaterThan(rounds);
      expect(ackedLog.size).toBeGreaterThan(0);
      console.log(`crash test (${backend}, fsync ${fsync}): ${rounds} rounds, ${acks} acknowledged writes checked, ${earlyKills} kills before ready`);
    },
    rounds * 3000 + 30_000,
  );
  crashTest("file", ROUNDS);
  crashTest("sqlite", SQLITE_ROUNDS);
  crashTest("sqlite", SQLITE_ROUNDS, "batch");
});
