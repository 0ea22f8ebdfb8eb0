/**
 * The compliance suite every StorageBackend must pass. It is plain code (node:assert), so any
 * test runner can drive it: `runComplianceSuite("file", () => harness, { describe, it })`.
 */

import assert from "node:assert/strict";
import type { StorageBackend } from "./interfaces.js";
import { storageErrorKind } from "./errors.js";

/** Opens a backend on one piece of storage; `open()` again after `close()` must see the same data. */
export interface ComplianceHarness {
  open(): Promise<StorageBackend>;
  /** Removes the storage (called once at the end of each case). */
  cleanup?(): Promise<void>;
}

/** The part of a test runner the suite needs (vitest, node:test and jest all fit). */
export interface ComplianceTestApi {
  describe(name: string, fn: () => void): void;
  it(name: string, fn: () => Promise<void>, timeoutMs?: number): void;
}

export interface ComplianceCase {
  name: string;
  run(h: ComplianceHarness): Promise<void>;
}

const te = new TextEncoder();
const td = new TextDecoder();
const b = (s: string): Uint8Array => te.encode(s);
const s = (u: Uint8Array | undefined): string | undefined => (u === undefined ? undefined : td.decode(u));
const hex = (u: Uint8Array): string => Buffer.from(u).toString("hex");

async function withBackend(h: ComplianceHarness, fn: (be: StorageBackend) => Promise<void>): Promise<void> {
  const be = await h.open();
  try {
    await fn(be);
  } finally {
    await be.close();
  }
}

async function rejectsKind(p: Promise<unknown> | (() => unknown), kind: string): Promise<void> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    assert.equal(storageErrorKind(e), kind, `expected a "${kind}" storage error, got ${String(e)}`);
    return;
  }
  assert.fail(`expected a "${kind}" storage error, but the call succeeded`);
}

function shuffle<T>(arr: T[], seed: number): T[] {
  let x = seed >>> 0 || 1;
  for (let i = arr.length - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % (i + 1);
    [arr[i], arr[j]] = [arr[j]!, arr[i]!];
  }
  return arr;
}

/** Every case of the suite, usable one by one. */
export const complianceCases: readonly ComplianceCase[] = [
  {
    name: "kv: get, put, overwrite, delete; values are copies",
    run: (h) =>
      withBackend(h, async (be) => {
        const kv = be.kv("basic");
        assert.equal(await kv.get(b("missing")), undefined);
        const v = b("one");
        await kv.put(b("k"), v);
        v[0] = 0; // changing the caller's buffer must not change the stored value
        assert.equal(s(await kv.get(b("k"))), "one");
        const got = (await kv.get(b("k")))!;
        got[0] = 0;
        assert.equal(s(await kv.get(b("k"))), "one");
        await kv.put(b("k"), b("two"));
        assert.equal(s(await kv.get(b("k"))), "two");
        await kv.del(b("k"));
        assert.equal(await kv.get(b("k")), undefined);
        await kv.del(b("k")); // deleting a missing key is fine
        await kv.put(new Uint8Array(0), b("empty key"));
        assert.equal(s(await kv.get(new Uint8Array(0))), "empty key");
        await kv.put(b("z"), new Uint8Array(0));
        assert.deepEqual(await kv.get(b("z")), new Uint8Array(0));
      }),
  },
  {
    name: "kv: scans are ordered by unsigned bytes, with bounds, limit and reverse",
    run: (h) =>
      withBackend(h, async (be) => {
        const kv = be.kv("order");
        const keys: Uint8Array[] = [
          new Uint8Array([]),
          new Uint8Array([0x00]),
          new Uint8Array([0x00, 0x00]),
          new Uint8Array([0x01]),
          new Uint8Array([0x7f]),
          new Uint8Array([0x80]),
          new Uint8Array([0x80, 0x00]),
          new Uint8Array([0xfe, 0xff]),
          new Uint8Array([0xff]),
          new Uint8Array([0xff, 0x00]),
          new Uint8Array([0xff, 0xff]),
          b("a"),
          b("aa"),
          b("ab"),
          b("b"),
        ];
        const sorted = [...keys].sort((x, y) => Buffer.compare(x, y)).map(hex);
        for (const k of shuffle([...keys], 7)) await kv.put(k, k);
        const all = await kv.range();
        assert.deepEqual(all.map((e) => hex(e.key)), sorted);
        for (const e of all) assert.equal(hex(e.value), hex(e.key));
        assert.deepEqual((await kv.range({ reverse: true })).map((e) => hex(e.key)), [...sorted].reverse());
        assert.deepEqual((await kv.range({ limit: 3 })).map((e) => hex(e.key)), sorted.slice(0, 3));
        assert.deepEqual(
          (await kv.range({ limit: 2, reverse: true })).map((e) => hex(e.key)),
          [...sorted].reverse().slice(0, 2),
        );
        assert.deepEqual(await kv.range({ limit: 0 }), []);
        const gte = new Uint8Array([0x01]);
        const lt = new Uint8Array([0xff]);
        const inside = sorted.filter((k) => k >= hex(gte) && k < hex(lt));
        assert.deepEqual((await kv.range({ gte, lt })).map((e) => hex(e.key)), inside);
        assert.deepEqual((await kv.range({ gte, lt, reverse: true, limit: 2 })).map((e) => hex(e.key)), [...inside].reverse().slice(0, 2));
        assert.deepEqual((await kv.range({ gte: lt, lt: gte })).length, 0);
        assert.deepEqual((await kv.range({ gte: b("a"), lt: b("a") })).length, 0);
        assert.deepEqual((await kv.range({ gte: b("b") })).map((e) => hex(e.key)), sorted.filter((k) => k >= hex(b("b"))));
        assert.deepEqual((await kv.range({ lt: new Uint8Array([0x00, 0x00]) })).map((e) => hex(e.key)), ["", "00"]);
      }),
  },
  {
    name: "kv: prefix scans treat % and _ literally; empty and 0x00/0xff prefixes",
    run: (h) =>
      withBackend(h, async (be) => {
        const kv = be.kv("prefix");
        const names = ["a_b", "a%b", "axb", "a_", "a%", "ab", "a", "_", "%", "%%", "b", "a\\b", "a\\_"];
        for (const n of names) await kv.put(b(n), b(n));
        const keysOf = async (p: string | Uint8Array, extra: object = {}) =>
          (await kv.range({ prefix: typeof p === "string" ? b(p) : p, ...extra })).map((e) => s(e.key));
        assert.deepEqual(await keysOf("a_"), ["a_", "a_b"]);
        assert.deepEqual(await keysOf("a%"), ["a%", "a%b"]);
        assert.deepEqual(await keysOf("%"), ["%", "%%"]);
        assert.deepEqual(await keysOf("_"), ["_"]);
        assert.deepEqual(await keysOf("a\\"), ["a\\_", "a\\b"]);
        assert.deepEqual(await keysOf("a"), ["a", "a%", "a%b", "a\\_", "a\\b", "a_", "a_b", "ab", "axb"]);
        assert.deepEqual(await keysOf("zz"), []);
        assert.equal((await kv.range({ prefix: new Uint8Array(0) })).length, names.length);
        assert.deepEqual(await keysOf("a", { gte: b("a_") }), ["a_", "a_b", "ab", "axb"]);
        assert.deepEqual(await keysOf("a", { lt: b("a_") }), ["a", "a%", "a%b", "a\\_", "a\\b"]);
        assert.deepEqual(await keysOf("a", { limit: 2, reverse: true }), ["axb", "ab"]);

        const bin = be.kv("prefix-binary");
        const binKeys = [
          [],
          [0x00],
          [0x00, 0x00],
          [0x00, 0xff],
          [0x01],
          [0xfe],
          [0xfe, 0xff],
          [0xff],
          [0xff, 0x00],
          [0xff, 0xff],
          [0xff, 0xff, 0xff],
        ].map((k) => new Uint8Array(k));
        for (const k of binKeys) await bin.put(k, k);
        const binOf = async (p: number[], extra: object = {}) =>
          (await bin.range({ prefix: new Uint8Array(p), ...extra })).map((e) => hex(e.key));
        assert.deepEqual(await binOf([0x00]), ["00", "0000", "00ff"]);
        assert.deepEqual(await binOf([0xff]), ["ff", "ff00", "ffff", "ffffff"]);
        assert.deepEqual(await binOf([0xff, 0xff]), ["ffff", "ffffff"]);
        assert.deepEqual(await binOf([0xfe]), ["fe", "feff"]);
        assert.deepEqual(await binOf([0xff], { reverse: true, limit: 1 }), ["ffffff"]);
        assert.equal((await binOf([])).length, binKeys.length);
      }),
  },
  {
    name: "kv: batches apply all or nothing; later operations on a key win",
    run: (h) =>
      withBackend(h, async (be) => {
        const kv = be.kv("batch");
        await kv.put(b("keep"), b("1"));
        await kv.batch([
          { type: "put", key: b("a"), value: b("1") },
          { type: "put", key: b("b"), value: b("1") },
          { type: "del", key: b("keep") },
          { type: "put", key: b("c"), value: b("x") },
          { type: "del", key: b("c") },
          { type: "del", key: b("d") },
          { type: "put", key: b("d"), value: b("back") },
          { type: "put", key: b("a"), value: b("2") },
        ]);
        assert.deepEqual(
          (await kv.range()).map((e) => [s(e.key), s(e.value)]),
          [
            ["a", "2"],
            ["b", "1"],
            ["d", "back"],
          ],
        );
        // A batch with one bad operation changes nothing.
        await rejectsKind(
          kv.batch([
            { type: "put", key: b("a"), value: b("3") },
            { type: "del", key: b("b") },
            { type: "put", key: "not bytes" as unknown as Uint8Array, value: b("x") },
          ]),
          "invalid",
        );
        await rejectsKind(
          kv.batch([
            { type: "put", key: b("a"), value: b("3") },
            { type: "bogus" } as never,
          ]),
          "invalid",
        );
        assert.equal(s(await kv.get(b("a"))), "2");
        assert.equal(s(await kv.get(b("b"))), "1");
        await kv.batch([]);
        assert.equal((await kv.range()).length, 3);
      }),
  },
  {
    name: "namespaces never see each other's data; the same name gives the same store",
    run: (h) =>
      withBackend(h, async (be) => {
        assert.equal(be.kv("ns/a"), be.kv("ns/a"));
        assert.equal(be.log("ns/a"), be.log("ns/a"));
        await be.kv("ns/a").put(b("k"), b("a"));
        await be.kv("ns/b").put(b("k"), b("b"));
        await be.kv("ns").put(b("/a"), b("parent"));
        await be.log("ns/a").append([b("log")]);
        await be.snapshots("ns/a").save({ index: 1, data: b("snap") });
        assert.equal(s(await be.kv("ns/a").get(b("k"))), "a");
        assert.equal(s(await be.kv("ns/b").get(b("k"))), "b");
        assert.deepEqual((await be.kv("ns").range()).map((e) => s(e.key)), ["/a"]);
        assert.equal((await be.kv("ns/c").range()).length, 0);
        assert.equal(await be.log("ns/b").lastIndex(), 0);
        assert.equal(await be.snapshots("ns/b").loadLatest(), undefined);
        assert.equal((await be.kv("ns/a").range({ prefix: b("") })).length, 1);
        assert.throws(() => be.kv(""), (e) => storageErrorKind(e) === "invalid");
      }),
  },
  {
    name: "log: append, read, truncateTail and dropHead",
    run: (h) =>
      withBackend(h, async (be) => {
        const log = be.log("log");
        assert.equal(await log.firstIndex(), 1);
        assert.equal(await log.lastIndex(), 0);
        assert.deepEqual(await log.read(1), []);
        assert.equal(await log.append([b("r1"), b("r2"), b("r3")]), 1);
        assert.equal(await log.append([b("r4")]), 4);
        assert.equal(await log.append([]), 5);
        assert.equal(await log.lastIndex(), 4);
        const texts = async (from: number, to?: number) =>
          (await log.read(from, to)).map((e) => `${e.index}:${s(e.data)}`);
        assert.deepEqual(await texts(1), ["1:r1", "2:r2", "3:r3", "4:r4"]);
        assert.deepEqual(await texts(2, 4), ["2:r2", "3:r3"]);
        assert.deepEqual(await texts(3, 3), []);
        assert.deepEqual(await texts(4, 100), ["4:r4"]);
        assert.deepEqual(await texts(9), []);
        // Tail truncation: the next append reuses the index.
        await log.truncateTail(3);
        assert.equal(await log.lastIndex(), 2);
        assert.equal(await log.append([b("x3")]), 3);
        assert.deepEqual(await texts(1), ["1:r1", "2:r2", "3:x3"]);
        await log.truncateTail(10); // past the end: nothing happens
        assert.equal(await log.lastIndex(), 3);
        // Head drop: later indexes do not move.
        await log.append([b("r4"), b("r5")]);
        await log.dropHead(2);
        assert.equal(await log.firstIndex(), 3);
        assert.equal(await log.lastIndex(), 5);
        assert.deepEqual(await texts(1), ["3:x3", "4:r4", "5:r5"]);
        await log.dropHead(1); // already dropped: nothing happens
        assert.equal(await log.firstIndex(), 3);
        await log.dropHead(5); // everything: the log is empty but remembers where it is
        assert.equal(await log.firstIndex(), 6);
        assert.equal(await log.lastIndex(), 5);
        assert.deepEqual(await texts(1), []);
        assert.equal(await log.append([b("r6")]), 6);
        // Dropping past the end (e.g. after installing a snapshot) moves the log forward.
        await log.dropHead(20);
        assert.equal(await log.firstIndex(), 21);
        assert.equal(await log.lastIndex(), 20);
        assert.equal(await log.append([b("r21")]), 21);
        // Truncating below the first index empties the log and restarts it there.
        await log.truncateTail(15);
        assert.equal(await log.firstIndex(), 15);
        assert.equal(await log.lastIndex(), 14);
        assert.equal(await log.append([b("r15")]), 15);
        assert.deepEqual(await texts(1), ["15:r15"]);
        await rejectsKind(log.read(0), "invalid");
        await rejectsKind(log.truncateTail(0), "invalid");
        await rejectsKind(log.dropHead(-1), "invalid");
        await rejectsKind(log.append([b("ok"), 5 as unknown as Uint8Array]), "invalid");
        assert.equal(await log.lastIndex(), 15);
      }),
  },
  {
    name: "snapshots: save and load the latest with metadata",
    run: (h) =>
      withBackend(h, async (be) => {
        const snaps = be.snapshots("snap");
        assert.equal(await snaps.loadLatest(), undefined);
        await snaps.save({ index: 10, meta: { term: 2, peers: ["a", "b"] }, data: b("state@10") });
        await snaps.save({ index: 20, meta: { term: 3 }, data: b("state@20") });
        const got = (await snaps.loadLatest())!;
        assert.equal(got.meta.index, 20);
        assert.deepEqual(got.meta.meta, { term: 3 });
        assert.equal(typeof got.meta.createdAt, "number");
        assert.equal(s(got.data), "state@20");
        await snaps.save({ index: 0, data: new Uint8Array(0) });
        const empty = (await snaps.loadLatest())!;
        assert.equal(empty.meta.index, 0);
        assert.deepEqual(empty.meta.meta, {});
        assert.equal(empty.data.length, 0);
        await rejectsKind(snaps.save({ index: -1, data: b("x") }), "invalid");
        await rejectsKind(snaps.save({ index: 1, data: "x" as unknown as Uint8Array }), "invalid");
      }),
  },
  {
    name: "data survives close and reopen",
    run: async (h) => {
      await withBackend(h, async (be) => {
        await be.kv("p").put(b("k1"), b("v1"));
        await be.kv("p").batch([
          { type: "put", key: b("k2"), value: b("v2") },
          { type: "put", key: b("k3"), value: b("v3") },
        ]);
        await be.kv("p").del(b("k3"));
        await be.kv("q").put(new Uint8Array([0xff, 0x00]), new Uint8Array([0x00, 0xff]));
        const log = be.log("p");
        await log.append([b("a"), b("b"), b("c"), b("d")]);
        await log.dropHead(1);
        await log.truncateTail(4);
        await be.snapshots("p").save({ index: 7, meta: { x: 1 }, data: b("snap") });
        await be.log("emptied").append([b("1"), b("2")]);
        await be.log("emptied").dropHead(2);
      });
      await withBackend(h, async (be) => {
        assert.deepEqual(
          (await be.kv("p").range()).map((e) => [s(e.key), s(e.value)]),
          [
            ["k1", "v1"],
            ["k2", "v2"],
          ],
        );
        assert.deepEqual(await be.kv("q").get(new Uint8Array([0xff, 0x00])), new Uint8Array([0x00, 0xff]));
        const log = be.log("p");
        assert.equal(await log.firstIndex(), 2);
        assert.equal(await log.lastIndex(), 3);
        assert.deepEqual((await log.read(1)).map((e) => s(e.data)), ["b", "c"]);
        assert.equal(await log.append([b("e")]), 4);
        const snap = (await be.snapshots("p").loadLatest())!;
        assert.equal(snap.meta.index, 7);
        assert.deepEqual(snap.meta.meta, { x: 1 });
        assert.equal(s(snap.data), "snap");
        assert.equal(await be.log("emptied").firstIndex(), 3);
        assert.equal(await be.log("emptied").lastIndex(), 2);
      });
      await withBackend(h, async (be) => {
        assert.deepEqual((await be.log("p").read(1)).map((e) => s(e.data)), ["b", "c", "e"]);
      });
    },
  },
  {
    name: "concurrent writers: nothing lost, log indexes unique, batches never interleave",
    run: (h) =>
      withBackend(h, async (be) => {
        const kv = be.kv("conc");
        const log = be.log("conc");
        const writers = 32;
        const perWriter = 10;
        const firstIndexes: number[] = [];
        const inconsistent: string[] = [];
        const batchKeys = ["x1", "x2", "x3", "x4"];
        await Promise.all(
          Array.from({ length: writers }, async (_, w) => {
            for (let i = 0; i < perWriter; i++) {
              const ops: Promise<unknown>[] = [
                kv.put(b(`w${w}/${i}`), b(`${w}:${i}`)),
                log.append([b(`${w}:${i}:a`), b(`${w}:${i}:b`)]).then((n) => firstIndexes.push(n)),
                kv.batch(batchKeys.map((k) => ({ type: "put" as const, key: b(k), value: b(`${w}:${i}`) }))),
                kv.range({ prefix: b("x") }).then((es) => {
                  const vals = new Set(es.map((e) => s(e.value)));
                  if (vals.size > 1) inconsistent.push([...vals].join(","));
                }),
              ];
              await Promise.all(ops);
            }
          }),
        );
        assert.deepEqual(inconsistent, []);
        assert.equal((await kv.range({ prefix: b("w") })).length, writers * perWriter);
        for (let w = 0; w < writers; w++) assert.equal(s(await kv.get(b(`w${w}/${perWriter - 1}`))), `${w}:${perWriter - 1}`);
        assert.equal(await log.lastIndex(), writers * perWriter * 2);
        firstIndexes.sort((x, y) => x - y);
        assert.deepEqual(firstIndexes, Array.from({ length: writers * perWriter }, (_, i) => 1 + 2 * i));
        // Each append's two records are adjacent: appends never interleave.
        for (const e of await log.read(1)) {
          const [w, i, part] = s(e.data)!.split(":");
          const other = (await log.read(part === "a" ? e.index + 1 : e.index - 1, part === "a" ? e.index + 2 : e.index))[0]!;
          assert.equal(s(other.data), `${w}:${i}:${part === "a" ? "b" : "a"}`);
        }
        const xs = await kv.range({ prefix: b("x") });
        assert.equal(new Set(xs.map((e) => s(e.value))).size, 1);
      }),
  },
  {
    name: "closed backends refuse work; flush works while open",
    run: async (h) => {
      const be = await h.open();
      await be.kv("c").put(b("k"), b("v"));
      await be.flush();
      await be.close();
      await be.close(); // closing twice is harmless
      await rejectsKind(be.kv("c").get(b("k")), "closed");
      await rejectsKind(be.kv("c").put(b("k"), b("v")), "closed");
      await rejectsKind(be.log("c").append([b("x")]), "closed");
      await rejectsKind(be.snapshots("c").loadLatest(), "closed");
      await withBackend(h, async (again) => assert.equal(s(await again.kv("c").get(b("k"))), "v"));
    },
  },
];

/** Registers every compliance case under `describe(name)`. */
export function runComplianceSuite(
  name: string,
  makeHarness: () => ComplianceHarness | Promise<ComplianceHarness>,
  api: ComplianceTestApi,
): void {
  api.describe(`storage compliance: ${name}`, () => {
    for (const c of complianceCases) {
      api.it(c.name, async () => {
        const h = await makeHarness();
        try {
          await c.run(h);
        } finally {
          await h.cleanup?.();
        }
      });
    }
  });
}
