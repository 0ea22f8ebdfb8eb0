/**
 * Power-loss tests: the file backend runs on the simulated disk of `power-loss-fs.ts`; random
 * operations from concurrent writers, a power cut at a random file-system operation (during
 * writes, group commits, compactions, snapshot saves, or the open and recovery themselves),
 * then a reopen on what survived. Each round has up to three such epochs, so recovery itself
 * gets cut too. After every cut:
 * - the backend opens without error (every policy);
 * - the state (kv namespaces and the log) is exactly the state after some prefix of the
 *   operations in the order they were applied, and with `always`/`batch` that prefix holds every
 *   acknowledged write; with `none` it holds every write acknowledged before an acknowledged
 *   `flush()` (or `close()`);
 * - the latest snapshot is the last acknowledged save or a later one (`always`/`batch`).
 * fast-check with a fixed seed: deterministic. `MPREG_LONG=1` runs ten times the rounds; `MPREG_POWER_LOSS_ROUNDS=n` sets them, `MPREG_PL_SEED` the seed;
 * `MPREG_PL_TRACE=1` with `MPREG_PL_PATH=<path from a failure report>` replays one round, tracing it.
 */

import { describe, it } from "vitest";
import fc from "fast-check";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { BatchOp, StorageBackend } from "../src/interfaces.js";
import { FileBackend, type FsyncPolicy } from "../src/file.js";
import { storageErrorKind } from "../src/errors.js";
import { createLogger } from "@mpreg/envelope";
import { PowerLossFs, seededRandom, type DirLossMode, type FileLossMode } from "./power-loss-fs.js";

// Every cut makes the backend log a failed write and most reopens log a cut tail: thousands of
// expected lines. MPREG_PL_TRACE=1 keeps them and traces every file-system operation.

const LONG = process.env["MPREG_LONG"] !== undefined && process.env["MPREG_LONG"] !== "0";
const ROUNDS = Number(process.env["MPREG_POWER_LOSS_ROUNDS"] ?? (LONG ? 6000 : 600));
const DIR = "/data/mpreg";
const TRACE = process.env["MPREG_PL_TRACE"] === "1";
if (!TRACE) createLogger("persistence").setLevel("silent", false);
const NAMESPACES = ["a", "b"];
const LOG = "log";
const SNAP = "s";

const hex = (u: Uint8Array) => Buffer.from(u).toString("hex");

// ---------------------------------------------------------------- the model

interface Model {
  kv: Map<string, Map<string, string>>;
  log: { first: number; last: number; entries: string[] };
}

const emptyModel = (): Model => ({ kv: new Map(NAMESPACES.map((ns) => [ns, new Map()])), log: { first: 1, last: 0, entries: [] } });

function cloneModel(m: Model): Model {
  return { kv: new Map([...m.kv].map(([ns, t]) => [ns, new Map(t)])), log: { ...m.log, entries: [...m.log.entries] } };
}

/** A canonical text of a state, to compare the model with what the backend recovered. */
function render(m: Model): string {
  const kv = NAMESPACES.map((ns) => `${ns}{${[...m.kv.get(ns)!].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}=${v}`).join(",")}}`);
  return `${kv.join(" ")} log[${m.log.first}..${m.log.last}:${m.log.entries.join(",")}]`;
}

/** A concrete state change, as applied (arguments resolved against the state at call time). */
type Change =
  | { t: "kv"; ns: string; ops: BatchOp[] }
  | { t: "append"; recs: Uint8Array[] }
  | { t: "trunc"; from: number }
  | { t: "drop"; upTo: number };

function apply(m: Model, c: Change): void {
  const l = m.log;
  switch (c.t) {
    case "kv": {
      const t = m.kv.get(c.ns)!;
      for (const o of c.ops) (o.type === "put" ? t.set(hex(o.key), hex(o.value)) : t.delete(hex(o.key)));
      return;
    }
    case "append":
      if (c.recs.length === 0) return;
      if (l.entries.length === 0) l.first = l.last + 1;
      l.entries.push(...c.recs.map(hex));
      l.last += c.recs.length;
      return;
    case "trunc":
      if (c.from > l.last) return;
      if (c.from >= l.first) l.entries.length = c.from - l.first;
      else {
        l.entries = [];
        l.first = c.from;
      }
      l.last = c.from - 1;
      return;
    case "drop":
      if (c.upTo < l.first) return;
      l.entries.splice(0, Math.min(c.upTo, l.last) - l.first + 1);
      l.first = c.upTo + 1;
      l.last = Math.max(l.last, c.upTo);
      return;
  }
}

async function readState(be: StorageBackend): Promise<Model> {
  const m = emptyModel();
  for (const ns of NAMESPACES) for (const e of await be.kv(ns).range()) m.kv.get(ns)!.set(hex(e.key), hex(e.value));
  const log = be.log(LOG);
  m.log = { first: await log.firstIndex(), last: await log.lastIndex(), entries: (await log.read(1)).map((e) => hex(e.data)) };
  return m;
}

// ---------------------------------------------------------------- operations

type Op =
  | { t: "put"; ns: string; key: Uint8Array; value: Uint8Array }
  | { t: "del"; ns: string; key: Uint8Array }
  | { t: "batch"; ns: string; ops: BatchOp[] }
  | { t: "append"; recs: Uint8Array[] }
  | { t: "trunc"; delta: number }
  | { t: "drop"; delta: number }
  | { t: "snap"; size: number }
  | { t: "compact" }
  | { t: "flush" };

const keyArb = fc.uint8Array({ minLength: 1, maxLength: 2 }).map((u) => u.map((b) => b % 5));
// Mostly small; some large enough that the log spans several 4 KiB pages (pages mode).
const valueArb = fc
  .oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) }, { weight: 1, arbitrary: fc.integer({ min: 500, max: 3000 }) })
  .map((n) => new Uint8Array(n).map((_, i) => (n * 31 + i) & 0xff));
const nsArb = fc.constantFrom(...NAMESPACES);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant("put" as const), ns: nsArb, key: keyArb, value: valueArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("del" as const), ns: nsArb, key: keyArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant("batch" as const),
      ns: nsArb,
      ops: fc.array(
        fc.oneof(
          fc.record({ type: fc.constant("put" as const), key: keyArb, value: valueArb }),
          fc.record({ type: fc.constant("del" as const), key: keyArb }),
        ),
        { minLength: 1, maxLength: 4 },
      ),
    }),
  },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("append" as const), recs: fc.array(valueArb, { minLength: 1, maxLength: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("trunc" as const), delta: fc.integer({ min: -4, max: 1 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("drop" as const), delta: fc.integer({ min: -4, max: 1 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("snap" as const), size: fc.integer({ min: 0, max: 200 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: "compact" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "flush" as const }) },
);

interface Epoch {
  /** Writers running at once, each a sequence of operations. */
  writers: Op[][];
  /** The power fails just before this file-system operation (counted from the open). */
  crashAt: number;
  /** Close the backend before the cut when the run ends first. */
  closeAtEnd: boolean;
  /** How unsynced directory operations survive (see DirLossMode). */
  dirOps: DirLossMode;
  /** How unsynced file writes survive (see FileLossMode). */
  fileWrites: FileLossMode;
  /** Small: compaction every few writes; large: a log of many pages. */
  compactBytes: number;
  lossSeed: number;
  fsSeed: number;
}

const epochArb: fc.Arbitrary<Epoch> = fc.record({
  writers: fc.array(fc.array(opArb, { maxLength: 14 }), { minLength: 1, maxLength: 3 }),
  // Often early (open and recovery take ~10-20 operations), mostly during the writes.
  crashAt: fc.oneof(
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 30 }) },
    { weight: 5, arbitrary: fc.integer({ min: 1, max: 90 }) },
    { weight: 1, arbitrary: fc.constant(Number.MAX_SAFE_INTEGER) }, // after the run (maybe after close)
  ),
  closeAtEnd: fc.boolean(),
  dirOps: fc.constantFrom("prefix" as const, "subset" as const),
  compactBytes: fc.constantFrom(600, 64 * 1024),
  fileWrites: fc.oneof({ weight: 3, arbitrary: fc.constant("prefix" as const) }, { weight: 1, arbitrary: fc.constant("pages" as const) }),
  lossSeed: fc.integer(),
  fsSeed: fc.integer(),
});

/** What one epoch did: the applied changes in order and what must have survived. */
interface Run {
  changes: Change[];
  /** Every change before this position must be in the recovered state. */
  mustHave: number;
  snaps: number; // saves issued (snapshot index = 1-based save number of the epoch, offset by base)
  snapAcked: number; // highest acknowledged save index (0: none)
}

interface Stats {
  rounds: number;
  epochs: number;
  cutDuringOpen: number;
  cutDuringWrites: number;
  cutAfter: number;
  acked: number;
  compactions: number;
  tornTails: number;
  /** Opens that needed `repair: true` (pages mode only). */
  repairs: number;
}

async function runEpoch(fs: PowerLossFs, policy: FsyncPolicy, e: Epoch, base: Model, snapBase: number, stats: Stats, repair: boolean): Promise<Run> {
  const run: Run = { changes: [], mustHave: 0, snaps: snapBase, snapAcked: 0 };
  const live = cloneModel(base); // the state as applied so far (call order = apply order)
  let be: FileBackend;
  try {
    be = await FileBackend.open({ dir: DIR, fs, fsync: policy, batchDelayMs: 0, compactBytes: e.compactBytes, repair });
  } catch (err) {
    assert.ok(fs.isCrashed, `open failed without a power cut: ${String(err)}`);
    stats.cutDuringOpen++;
    return run;
  }
  stats.tornTails += be.recovery.truncatedBytes > 0 ? 1 : 0;
  const startGen = be.recovery.generation;
  // 1 + the highest position (in run.changes) acknowledged, and what a flush made durable.
  let ackedUpTo = 0;
  const durableUpTo = { n: 0 };
  const issue = (c: Change, p: Promise<unknown>): Promise<void> => {
    const pos = run.changes.length;
    // A truncation or drop that changes nothing writes no record, so its promise resolves at
    // once and says nothing about the writes before it.
    const noop = (c.t === "trunc" && c.from > live.log.last) || (c.t === "drop" && c.upTo < live.log.first);
    if (TRACE) console.log(`issue ${pos} ${c.t}`);
    run.changes.push(c);
    apply(live, c);
    return p.then(
      () => {
        if (!noop) ackedUpTo = Math.max(ackedUpTo, pos + 1);
        stats.acked++;
        if (TRACE) console.log(`ack ${pos}`);
      },
      (err: unknown) => assert.ok(fs.isCrashed && storageErrorKind(err) !== undefined, `write failed without a power cut: ${String(err)}`),
    );
  };
  const writer = async (ops: Op[]) => {
    for (const op of ops) {
      if (fs.isCrashed) return;
      switch (op.t) {
        case "put":
          await issue({ t: "kv", ns: op.ns, ops: [{ type: "put", key: op.key, value: op.value }] }, be.kv(op.ns).put(op.key, op.value));
          break;
        case "del":
          await issue({ t: "kv", ns: op.ns, ops: [{ type: "del", key: op.key }] }, be.kv(op.ns).del(op.key));
          break;
        case "batch":
          await issue({ t: "kv", ns: op.ns, ops: op.ops }, be.kv(op.ns).batch(op.ops));
          break;
        case "append":
          await issue({ t: "append", recs: op.recs }, be.log(LOG).append(op.recs));
          break;
        case "trunc": {
          const from = Math.max(1, live.log.last + op.delta);
          await issue({ t: "trunc", from }, be.log(LOG).truncateTail(from));
          break;
        }
        case "drop": {
          const upTo = Math.max(0, live.log.last + op.delta);
          await issue({ t: "drop", upTo }, be.log(LOG).dropHead(upTo));
          break;
        }
        case "snap": {
          const index = ++run.snaps;
          const data = new Uint8Array(op.size).fill(index & 0xff);
          await be
            .snapshots(SNAP)
            .save({ index, meta: { index }, data })
            .then(
              () => (run.snapAcked = Math.max(run.snapAcked, index)),
              (err: unknown) => assert.ok(fs.isCrashed, `snapshot save failed without a power cut: ${String(err)}`),
            );
          break;
        }
        case "compact":
          await be.compact().catch((err: unknown) => assert.ok(fs.isCrashed, `compaction failed without a power cut: ${String(err)}`));
          break;
        case "flush": {
          // flush() makes durable whatever was acknowledged before it was called.
          const covers = ackedUpTo;
          await be.flush().then(
            () => (durableUpTo.n = Math.max(durableUpTo.n, covers)),
            (err: unknown) => assert.ok(fs.isCrashed, `flush failed without a power cut: ${String(err)}`),
          );
          break;
        }
      }
    }
  };
  await Promise.all(e.writers.map((w) => writer(w)));
  if (!fs.isCrashed && e.closeAtEnd) {
    const covers = run.changes.length;
    await be.close().then(
      () => (durableUpTo.n = covers),
      (err: unknown) => assert.ok(fs.isCrashed, `close failed without a power cut: ${String(err)}`),
    );
  }
  if (fs.isCrashed) stats.cutDuringWrites++;
  else stats.cutAfter++;
  stats.compactions += (be as unknown as { gen: number }).gen - startGen;
  fs.crash();
  await be.close().catch(() => undefined); // releases the directory in this process; the disk is dead
  run.mustHave = Math.max(policy === "none" ? 0 : ackedUpTo, durableUpTo.n);
  return run;
}

/**
 * Opens a copy of the survivor and checks it; returns the recovered state and snapshot index,
 * and whether the open needed `repair: true`: only allowed when pages were written back out of
 * order, where a later record may survive an earlier one, which open refuses as mid-log damage.
 */
async function verify(
  fs: PowerLossFs,
  policy: FsyncPolicy,
  base: Model,
  run: Run,
  label: string,
  pages: boolean,
  stats: Stats,
): Promise<{ state: Model; snap: number; repaired: boolean }> {
  const side = fs.clone();
  let repaired = false;
  const be = await FileBackend.open({ dir: DIR, fs: side, fsync: policy }).catch(async (err: unknown) => {
    if (!(pages && storageErrorKind(err) === "corrupt" && /intact records after it/.test(String(err)))) {
      assert.fail(`${label}: open after power loss failed: ${String(err)}`);
    }
    repaired = true;
    stats.repairs++;
    return FileBackend.open({ dir: DIR, fs: fs.clone(), fsync: policy, repair: true });
  });
  try {
    const got = render(await readState(be));
    const m = cloneModel(base);
    const candidates: string[] = [render(m)];
    for (const c of run.changes) {
      apply(m, c);
      candidates.push(render(m));
    }
    const at = candidates.findIndex((s, i) => i >= run.mustHave && s === got);
    assert.ok(
      at >= 0,
      `${label}: recovered state is not the state after a prefix of ${run.changes.length} changes holding the first ${run.mustHave}\n got ${got}\n` +
        `want one of (from ${run.mustHave}):\n  ${candidates.slice(run.mustHave).join("\n  ")}`,
    );
    let snap = 0;
    // Under every policy a snapshot file is synced before it replaces the old one: never torn.
    const s = await be.snapshots(SNAP).loadLatest();
    if (s !== undefined) {
      snap = s.meta.index;
      assert.ok(s.data.every((b) => b === (snap & 0xff)), `${label}: snapshot ${snap} has the wrong data`);
    }
    if (policy !== "none") {
      assert.ok(snap >= run.snapAcked, `${label}: snapshot ${run.snapAcked} was acknowledged, recovered ${snap}`);
    }
    return { state: await readState(be), snap, repaired };
  } finally {
    await be.close();
  }
}

function powerLossProperty(policy: FsyncPolicy, stats: Stats) {
  return fc.asyncProperty(fc.array(epochArb, { minLength: 1, maxLength: 3 }), async (epochs) => {
    stats.rounds++;
    let fs = new PowerLossFs();
    let base = emptyModel();
    let snapBase = 0;
    let repair = false;
    for (const [i, e] of epochs.entries()) {
      stats.epochs++;
      fs = fs.clone({ random: seededRandom(e.fsSeed), ...(TRACE ? { trace: (l: string) => console.log(`fs ${l}`) } : {}) });
      fs.crashAtOp = e.crashAt;
      const run = await runEpoch(fs, policy, e, base, snapBase, stats, repair);
      fs = fs.powerLoss(seededRandom(e.lossSeed), { dirOps: e.dirOps, fileWrites: e.fileWrites });
      const { state, snap, repaired } = await verify(fs, policy, base, run, `epoch ${i + 1}`, e.fileWrites === "pages", stats);
      repair = repaired;
      base = state;
      snapBase = Math.max(run.snaps, snap);
    }
  });
}

describe("power loss (file backend on a simulated disk)", () => {
  for (const policy of ["always", "batch", "none"] as const) {
    it(`fsync ${policy}: opens after every cut and keeps what was acknowledged`, async () => {
      const stats: Stats = { rounds: 0, epochs: 0, cutDuringOpen: 0, cutDuringWrites: 0, cutAfter: 0, acked: 0, compactions: 0, tornTails: 0, repairs: 0 };
      const runs = policy === "none" ? Math.ceil(ROUNDS / 2) : ROUNDS;
      await fc.assert(powerLossProperty(policy, stats), {
        seed: Number(process.env["MPREG_PL_SEED"] ?? 0x5eed) + policy.length,
        numRuns: runs,
        endOnFailure: true,
        ...(process.env["MPREG_PL_PATH"] ? { path: process.env["MPREG_PL_PATH"] } : {}),
      });
      console.log(`power loss (${policy}): ${JSON.stringify(stats)}`);
      assert.ok(stats.cutDuringOpen > 0 && stats.cutDuringWrites > 0, "cuts land both during open and during writes");
    }, LONG ? 1_800_000 : 120_000);
  }
});
