/**
 * Model-based tests: random sequences of operations (including close-and-reopen) run against
 * each backend and against a plain in-memory model; every read must agree with the model.
 */

import { describe, it } from "vitest";
import fc from "fast-check";
import assert from "node:assert/strict";
import type { BatchOp, StorageBackend } from "./interfaces.js";
import { MemoryBackend, MemoryVolume } from "./memory.js";
import { FileBackend } from "./file.js";
import { SqliteBackend } from "./sqlite.js";
import { useTempDirs } from "../test/temp-dirs.js";

const hex = (u: Uint8Array) => Buffer.from(u).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

interface Model {
  kv: Map<string, Map<string, string>>; // ns -> hex key -> hex value
  log: { first: number; last: number; entries: string[] };
  snap: { index: number; data: string } | undefined;
}

interface Real {
  be: StorageBackend;
  open: () => Promise<StorageBackend>;
}

const NAMESPACES = ["a", "a/b"];
const LOG = "log";

// Few distinct bytes, so keys collide and edge bytes (0x00, 0xff, '%', '_') are common.
const keyArb = fc.uint8Array({ maxLength: 3 }).map((u) => u.map((b) => [0x00, 0x01, 0x25, 0x5f, 0xfe, 0xff][b % 6]!));
const valueArb = fc.uint8Array({ maxLength: 24 });
const nsArb = fc.constantFrom(...NAMESPACES);

function table(m: Model, ns: string): Map<string, string> {
  let t = m.kv.get(ns);
  if (!t) m.kv.set(ns, (t = new Map()));
  return t;
}

function applyBatch(m: Model, ns: string, ops: BatchOp[]): void {
  const t = table(m, ns);
  for (const o of ops) {
    if (o.type === "put") t.set(hex(o.key), hex(o.value));
    else t.delete(hex(o.key));
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

const cmd = (name: string, run: (m: Model, r: Real) => Promise<void>): Cmd => ({
  check: () => true,
  run,
  toString: () => name,
});

const batchOpArb: fc.Arbitrary<BatchOp> = fc.oneof(
  fc.record({ type: fc.constant("put" as const), key: keyArb, value: valueArb }),
  fc.record({ type: fc.constant("del" as const), key: keyArb }),
);

const commands: fc.Arbitrary<Cmd>[] = [
  fc.tuple(nsArb, keyArb, valueArb).map(([ns, k, v]) =>
    cmd(`put(${ns},${hex(k)},${hex(v)})`, async (m, r) => {
      await r.be.kv(ns).put(k, v);
      table(m, ns).set(hex(k), hex(v));
    }),
  ),
  fc.tuple(nsArb, keyArb).map(([ns, k]) =>
    cmd(`del(${ns},${hex(k)})`, async (m, r) => {
      await r.be.kv(ns).del(k);
      table(m, ns).delete(hex(k));
    }),
  ),
  fc.tuple(nsArb, fc.array(batchOpArb, { maxLength: 6 })).map(([ns, ops]) =>
    cmd(`batch(${ns},${ops.map((o) => `${o.type}:${hex(o.key)}`).join(" ")})`, async (m, r) => {
      await r.be.kv(ns).batch(ops);
      applyBatch(m, ns, ops);
    }),
  ),
  // Several writers at once on distinct keys.
  fc.tuple(nsArb, fc.uniqueArray(keyArb, { maxLength: 5, selector: hex }), valueArb).map(([ns, keys, v]) =>
    cmd(`concurrentPuts(${ns},${keys.map(hex).join(" ")})`, async (m, r) => {
      await Promise.all(keys.map((k) => r.be.kv(ns).put(k, v)));
      for (const k of keys) table(m, ns).set(hex(k), hex(v));
    }),
  ),
  fc.tuple(nsArb, keyArb).map(([ns, k]) =>
    cmd(`get(${ns},${hex(k)})`, async (m, r) => {
      const got = await r.be.kv(ns).get(k);
      assert.equal(got === undefined ? undefined : hex(got), table(m, ns).get(hex(k)));
    }),
  ),
  fc
    .record({
      ns: nsArb,
      prefix: fc.option(keyArb, { nil: undefined }),
      gte: fc.option(keyArb, { nil: undefined }),
      lt: fc.option(keyArb, { nil: undefined }),
      limit: fc.option(fc.nat(6), { nil: undefined }),
      reverse: fc.boolean(),
    })
    .map((o) =>
      cmd(`range(${JSON.stringify({ ...o, prefix: o.prefix && hex(o.prefix), gte: o.gte && hex(o.gte), lt: o.lt && hex(o.lt) })})`, async (m, r) => {
        const { ns, ...opts } = o;
        const got = (await r.be.kv(ns).range(opts)).map((e) => [hex(e.key), hex(e.value)]);
        let want = [...table(m, ns).entries()]
          .filter(([k]) => (o.prefix === undefined || k.startsWith(hex(o.prefix))) && (o.gte === undefined || k >= hex(o.gte)) && (o.lt === undefined || k < hex(o.lt)))
          .sort(([x], [y]) => Buffer.compare(unhex(x), unhex(y)));
        if (o.reverse) want.reverse();
        if (o.limit !== undefined) want = want.slice(0, o.limit);
        assert.deepEqual(got, want);
      }),
    ),
  fc.array(valueArb, { maxLength: 4 }).map((recs) =>
    cmd(`append(${recs.length})`, async (m, r) => {
      const first = await r.be.log(LOG).append(recs);
      assert.equal(first, m.log.last + 1);
      if (recs.length > 0 && m.log.entries.length === 0) m.log.first = m.log.last + 1;
      m.log.entries.push(...recs.map(hex));
      m.log.last += recs.length;
    }),
  ),
  // Indexes relative to the model's last index, so the edges (last, last+1, first-1) are common.
  fc.integer({ min: -6, max: 2 }).map((delta) =>
    cmd(`truncateTail(last${delta >= 0 ? "+" : ""}${delta})`, async (m, r) => {
      const from = Math.max(1, m.log.last + delta);
      await r.be.log(LOG).truncateTail(from);
      const l = m.log;
      if (from > l.last) return;
      if (from >= l.first) l.entries.length = from - l.first;
      else {
        l.entries = [];
        l.first = from;
      }
      l.last = from - 1;
    }),
  ),
  fc.integer({ min: -6, max: 3 }).map((delta) =>
    cmd(`dropHead(last${delta >= 0 ? "+" : ""}${delta})`, async (m, r) => {
      const upTo = Math.max(0, m.log.last + delta);
      await r.be.log(LOG).dropHead(upTo);
      const l = m.log;
      if (upTo < l.first) return;
      l.entries.splice(0, Math.min(upTo, l.last) - l.first + 1);
      l.first = upTo + 1;
      l.last = Math.max(l.last, upTo);
    }),
  ),
  fc.tuple(fc.integer({ min: -8, max: 2 }), fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined })).map(([delta, len]) =>
    cmd(`read(last${delta >= 0 ? "+" : ""}${delta},${len})`, async (m, r) => {
      const from = Math.max(1, m.log.last + delta);
      const to = len === undefined ? undefined : Math.max(1, from + len);
      const log = r.be.log(LOG);
      assert.equal(await log.firstIndex(), m.log.first);
      assert.equal(await log.lastIndex(), m.log.last);
      const got = (await log.read(from, to)).map((e) => `${e.index}:${hex(e.data)}`);
      const want: string[] = [];
      for (let i = Math.max(from, m.log.first); i < Math.min(to ?? Infinity, m.log.last + 1); i++) {
        want.push(`${i}:${m.log.entries[i - m.log.first]}`);
      }
      assert.deepEqual(got, want);
    }),
  ),
  fc.tuple(fc.nat(100), valueArb).map(([index, data]) =>
    cmd(`saveSnapshot(${index})`, async (m, r) => {
      await r.be.snapshots("s").save({ index, meta: { index }, data });
      m.snap = { index, data: hex(data) };
    }),
  ),
  fc.constant(
    cmd("loadSnapshot", async (m, r) => {
      const s = await r.be.snapshots("s").loadLatest();
      assert.deepEqual(s && { index: s.meta.index, data: hex(s.data) }, m.snap);
    }),
  ),
  fc.constant(
    cmd("reopen", async (_m, r) => {
      await r.be.close();
      r.be = await r.open();
    }),
  ),
];

const tempDir = useTempDirs("mpreg-model-");

function modelTest(name: string, makeOpen: () => Promise<() => Promise<StorageBackend>>, numRuns: number): void {
  it(`${name} behaves like the model`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 40 }), async (cmds) => {
        const open = await makeOpen();
        const real: Real = { be: await open(), open };
        const model: Model = { kv: new Map(), log: { first: 1, last: 0, entries: [] }, snap: undefined };
        try {
          await fc.asyncModelRun(() => ({ model, real }), cmds);
          // A final reopen must show exactly the model.
          await real.be.close();
          real.be = await open();
          for (const ns of NAMESPACES) {
            const got = (await real.be.kv(ns).range()).map((e) => `${hex(e.key)}=${hex(e.value)}`);
            const want = [...table(model, ns).entries()]
              .sort(([x], [y]) => Buffer.compare(unhex(x), unhex(y)))
              .map(([k, v]) => `${k}=${v}`);
            assert.deepEqual(got, want);
          }
          assert.deepEqual((await real.be.log(LOG).read(1)).map((e) => hex(e.data)), model.log.entries);
        } finally {
          await real.be.close();
        }
      }),
      { numRuns },
    );
  }, process.env["MPREG_LONG"] ? 1_200_000 : 120_000);
}

const runs = process.env["MPREG_LONG"] ? 500 : 60;

describe("model-based tests", () => {
  modelTest("memory", async () => {
    const volume = new MemoryVolume();
    return async () => new MemoryBackend({ volume });
  }, runs * 2);
  modelTest("file (always)", async () => {
    const dir = await tempDir();
    return () => FileBackend.open({ dir, fsync: "always" });
  }, runs);
  modelTest("file (batch, compacting often)", async () => {
    const dir = await tempDir();
    return () => FileBackend.open({ dir, fsync: "batch", batchDelayMs: 1, compactBytes: 300 });
  }, runs);
  modelTest("file (none)", async () => {
    const dir = await tempDir();
    return () => FileBackend.open({ dir, fsync: "none" });
  }, runs);
  modelTest("sqlite (batch)", async () => {
    const dir = await tempDir();
    return () => SqliteBackend.open({ dir, fsync: "batch", batchDelayMs: 1 });
  }, runs);
  modelTest("sqlite (always)", async () => {
    const dir = await tempDir();
    return () => SqliteBackend.open({ dir, fsync: "always" });
  }, runs);
});
