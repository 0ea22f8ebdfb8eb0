/**
 * Crash test across processes: a child runs a QueueService on a file backend, sending and
 * receiving+acking, printing each answered send and ack; it is killed with SIGKILL at a random
 * moment (sometimes while it opens and recovers the store), the store is read back, and then:
 * - every answered send is in the store (visible again, or still delayed), unless an ack of it
 *   was asked for (an ack may be durable before its answer);
 * - no acked message is in the store.
 * The fsync policy rotates over always, batch and none (a process crash loses nothing under any).
 *
 * Rounds: 20 by default, `MPREG_LONG=1` runs 150 (or `MPREG_CRASH_ROUNDS=<n>`).
 * The child imports the built package (`dist/`): build first (`pnpm --filter @mpreg/queue... build`;
 * the turbo `test` task does it).
 */

import { afterAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import fs from "node:fs";
import fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { FileBackend } from "@mpreg/persistence";
import { loadStore } from "../src/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const child = path.join(here, "crash-child.mjs");
const built = path.join(here, "..", "dist", "index.js");
// A private copy of the build (inside the package, so its imports resolve the same way).
const copyDir = path.join(here, `.dist-copy-${process.pid}`);
const entryUrl = pathToFileURL(path.join(copyDir, "index.js")).href;
const ROUNDS = Number(process.env["MPREG_CRASH_ROUNDS"] ?? (process.env["MPREG_LONG"] ? 150 : 20));
const POLICIES = ["always", "batch", "none"] as const;

let seed = 0x9e3779b9;
function rand(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

/** A child that has loaded its modules and waits for `run` before it opens the store. */
interface Child {
  loaded: Promise<void>;
  /** Starts it, kills it `killAfterMs` after "ready" (or after the start, when `early`), returns its complete lines. */
  run(round: number, fsync: string, killAfterMs: number, early: boolean): Promise<string[]>;
  kill(): void;
}

function spawnChild(dir: string): Child {
  const p = spawn(process.execPath, [child, dir, entryUrl], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let onLoaded!: () => void;
  const loaded = new Promise<void>((r) => (onLoaded = r));
  let onData: (() => void) | undefined;
  p.stdout.setEncoding("utf8").on("data", (d: string) => {
    out += d;
    if (out.startsWith("loaded\n")) onLoaded();
    onData?.();
  });
  p.stderr.setEncoding("utf8").on("data", (d: string) => (err += d));
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    p.on("error", reject);
    p.on("close", (code, signal) => resolve({ code, signal }));
  });
  const ready = Promise.race([loaded, closed.then(({ code }) => Promise.reject(new Error(`child exited while loading (${code}): ${err}`)))]);
  ready.catch(() => {}); // the last child is killed while it waits: nobody awaits it then
  return {
    loaded: ready,
    async run(round, fsync, killAfterMs, early) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      if (early) timer = setTimeout(() => p.kill("SIGKILL"), killAfterMs);
      const guard = setTimeout(() => p.kill("SIGKILL"), 20_000);
      onData = () => {
        if (timer === undefined && out.includes("\nready\n")) timer = setTimeout(() => p.kill("SIGKILL"), killAfterMs);
      };
      p.stdin.write(`${round} ${fsync}\n`);
      const { code, signal } = await closed;
      clearTimeout(timer);
      clearTimeout(guard);
      if (signal !== "SIGKILL") throw new Error(`child exited by itself (code ${code}, signal ${signal}): ${err}`);
      const lines = out.split("\n");
      lines.pop(); // an unterminated last line was cut by the kill
      return lines;
    },
    kill: () => p.kill("SIGKILL"),
  };
}

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await fsp.rm(d, { recursive: true, force: true });
});

describe("queue crash safety (SIGKILL)", () => {
  it(
    `keeps every answered send and never returns an acked message across ${ROUNDS} kill rounds`,
    async () => {
      if (!fs.existsSync(built)) throw new Error(`${built} is missing: build the package first (pnpm --filter @mpreg/queue... build)`);
      await fsp.mkdir(copyDir, { recursive: true });
      await fsp.copyFile(built, path.join(copyDir, "index.js"));
      dirs.push(copyDir);
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "mpreg-queue-crash-"));
      dirs.push(dir);
      const sent = new Set<string>();
      const acked = new Set<string>();
      const acking = new Set<string>();
      let inStoreChecked = 0;
      let next = spawnChild(dir);
      for (let round = 0; round < ROUNDS; round++) {
        // Mostly kills while it works; some while it opens and recovers the store.
        const early = rand(5) === 0;
        const current = next;
        await current.loaded;
        const running = current.run(round, POLICIES[round % POLICIES.length]!, early ? rand(150) : 30 + rand(250), early);
        // The next child loads its modules meanwhile; it opens the store only when told to.
        next = spawnChild(dir);
        const lines = await running;
        for (const line of lines) {
          const [kind, id] = line.split(" ");
          if (kind === "sent") sent.add(id!);
          else if (kind === "acked") acked.add(id!);
          else if (kind === "acking") acking.add(id!);
        }
        const be = await FileBackend.open({ dir, fsync: "always" });
        try {
          const state = await loadStore(be.kv("queues"));
          const stored = new Set<string>();
          for (const q of state.queues) for (const m of q.messages) stored.add(m.record.id);
          expect(state.dropped, `round ${round}: unreadable records`).toEqual([]);
          for (const id of sent) {
            if (!acking.has(id)) expect(stored.has(id), `round ${round}: answered send ${id} is lost`).toBe(true);
          }
          for (const id of acked) expect(stored.has(id), `round ${round}: acked ${id} came back`).toBe(false);
          inStoreChecked += stored.size;
        } finally {
          await be.close();
        }
      }
      next.kill();
      // The kills must have hit real work, or the test proves nothing.
      expect(sent.size).toBeGreaterThan(ROUNDS);
      expect(acked.size).toBeGreaterThan(ROUNDS);
      console.log(`queue crash test: ${ROUNDS} rounds, ${sent.size} answered sends, ${acked.size} answered acks checked (${inStoreChecked} stored message checks)`);
    },
    ROUNDS * 6000 + 30_000,
  );
});
