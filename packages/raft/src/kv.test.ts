import { Encoder } from "@msgpack/msgpack";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareKeys } from "./key-order.js";
import {
  KvStateMachine,
  decodeValue,
  encodeKvCommand,
  encodeValue,
  keyBytes,
  type KvCommand,
  type KvEvent,
  type KvResult,
} from "./kv.js";
import { SortedKeys } from "./sorted-keys.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const te = new TextEncoder();

let nextIndex = 1;
const apply = (m: KvStateMachine, cmd: KvCommand, index = nextIndex++): KvResult => m.apply(encodeKvCommand(cmd), index);
const put = (key: string, value: unknown, lease?: number): KvCommand =>
  lease === undefined ? { op: "put", key, value: encodeValue(value) } : { op: "put", key, value: encodeValue(value), lease };

/** Every key of the store with its record, as plain comparable data. */
function dump(m: KvStateMachine): unknown[] {
  return m.range("", undefined, Number.MAX_SAFE_INTEGER).items.map(([k, r]) => [k, hex(r.value), r.version, r.mod_revision, r.create_revision, r.lease]);
}

describe("key order", () => {
  it("property: compareKeys orders strings as their UTF-8 bytes", () => {
    const s = fc.string({ unit: "grapheme", maxLength: 6 });
    fc.assert(
      fc.property(s, s, (a, b) => {
        const c = Math.sign(compareKeys(a, b));
        expect(c).toBe(Math.sign(Buffer.compare(keyBytes(a), keyBytes(b))));
      }),
      { numRuns: 2000 },
    );
    // The case UTF-16 code units get wrong: U+FF5E (3 UTF-8 bytes EF..) sorts before U+1F600 (F0..).
    expect(compareKeys("\uff5e", "\u{1f600}")).toBeLessThan(0);
    expect("\uff5e" < "\u{1f600}").toBe(false);
  });

  it("property: SortedKeys iterates like a sorted array, from any start", () => {
    const op = fc.record({ add: fc.boolean(), key: fc.string({ unit: "grapheme", maxLength: 3 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3000 }), fc.string({ maxLength: 2 }), (ops, start) => {
        const s = new SortedKeys();
        const ref = new Set<string>();
        for (const o of ops) {
          if (o.add) {
            s.add(o.key);
            ref.add(o.key);
          } else {
            s.delete(o.key);
            ref.delete(o.key);
          }
        }
        const sorted = [...ref].sort(compareKeys);
        expect([...s.from()]).toEqual(sorted);
        expect([...s.from(start)]).toEqual(sorted.filter((k) => compareKeys(k, start) >= 0));
        expect(s.size).toBe(ref.size);
      }),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------- the reference model

interface RefRec {
  value: string; // hex of the encoded value
  version: number;
  mod: number;
  create: number;
  lease: number;
}

/** A naive model of PROTOCOL section 10's semantics, written independently of the store. */
class RefStore {
  keys = new Map<string, RefRec>();
  leases = new Map<number, number>();
  rev = 0;
  events: KvEvent[][] = [];

  /** Applies a list of changes at one revision (or refuses it when a lease is missing). */
  private write(changes: [string, RefRec | null][]): boolean {
    for (const [, r] of changes) if (r && r.lease && !this.leases.has(r.lease)) return false;
    const net = new Map<string, RefRec | null>();
    for (const [k, r] of changes) net.set(k, r);
    const evs: KvEvent[] = [];
    const rev = this.rev + 1;
    for (const [k, r] of net) {
      if (r) {
        r.mod = rev;
        if (!r.create) r.create = rev;
        this.keys.set(k, r);
        evs.push({ type: "put", key: k, value: Buffer.from(r.value, "hex"), mod_revision: rev });
      } else if (this.keys.has(k)) {
        this.keys.delete(k);
        evs.push({ type: "delete", key: k, mod_revision: rev });
      }
    }
    if (evs.length > 0) {
      this.rev = rev;
      this.events.push(evs);
    }
    return true;
  }

  apply(cmd: KvCommand, index: number): unknown {
    const view = new Map(this.keys);
    const get = (k: string) => view.get(k);
    const changes: [string, RefRec | null][] = [];
    const doPut = (k: string, v: Uint8Array, lease: number) => {
      const cur = get(k);
      const r: RefRec = { value: hex(v), version: (cur?.version ?? 0) + 1, mod: 0, create: cur?.create ?? 0, lease };
      view.set(k, r);
      changes.push([k, r]);
      return r.version;
    };
    const doDelete = (k: string) => {
      if (!get(k)) return false;
      view.delete(k);
      changes.push([k, null]);
      return true;
    };
    switch (cmd.op) {
      case "put": {
        const version = doPut(cmd.key, cmd.value, cmd.lease ?? 0);
        return this.write(changes) ? { op: "put", version, revision: this.rev } : "lease_not_found";
      }
      case "delete": {
        const deleted = doDelete(cmd.key);
        this.write(changes);
        return { op: "delete", deleted, revision: this.rev };
      }
      case "cas": {
        const cur = get(cmd.key)?.version ?? 0;
        if (cur !== cmd.version) return { op: "cas", ok: false, version: cur, revision: this.rev };
        const version = doPut(cmd.key, cmd.value, 0);
        this.write(changes);
        return { op: "cas", ok: true, version, revision: this.rev };
      }
      case "txn": {
        const ok = cmd.compare.every((c) => {
          const r = get(c.key);
          if (c.target === "value") {
            if (!r) return false;
            const a = decodeValue(Buffer.from(r.value, "hex"));
            const b = decodeValue(c.value as Uint8Array);
            const d = c.op === "==" || c.op === "!=" ? (r.value === hex(c.value as Uint8Array) ? 0 : 1)
              : typeof a === "number" && typeof b === "number" ? a - b
              : typeof a === "string" && typeof b === "string" ? compareKeys(a, b)
              : a instanceof Uint8Array && b instanceof Uint8Array ? Buffer.compare(a, b) : undefined;
            if (d === undefined) return false;
            return c.op === "==" ? d === 0 : c.op === "!=" ? d !== 0 : c.op === "<" ? d < 0 : d > 0;
          }
          const have = c.target === "version" ? (r?.version ?? 0) : (r?.mod ?? 0);
          const d = have - (c.value as number);
          return c.op === "==" ? d === 0 : c.op === "!=" ? d !== 0 : c.op === "<" ? d < 0 : d > 0;
        });
        const results: unknown[] = [];
        for (const op of ok ? cmd.success : cmd.failure) {
          if ("put" in op) results.push({ version: doPut(op.put.key, op.put.value, op.put.lease ?? 0), revision: -1 });
          else if ("delete" in op) results.push({ deleted: doDelete(op.delete), revision: -1 });
          else {
            const r = get(op.get);
            // A key this txn wrote has the txn's revision (filled in below).
            results.push(r ? { found: true, value: r.value, version: r.version, mod_revision: r.mod === 0 ? -1 : r.mod } : { found: false });
          }
        }
        if (!this.write(changes)) return "lease_not_found";
        for (const r of results as { revision?: number; mod_revision?: number }[]) {
          if (r.revision === -1) r.revision = this.rev;
          if (r.mod_revision === -1) r.mod_revision = this.rev;
        }
        return { op: "txn", succeeded: ok, results, revision: this.rev };
      }
      case "lease_grant":
        this.leases.set(index, cmd.ttl);
        return { op: "lease_grant", id: index, ttl: cmd.ttl };
      case "lease_revoke":
      case "lease_expire": {
        if (!this.leases.has(cmd.id)) return cmd.op === "lease_revoke" ? { op: cmd.op, revoked: false, revision: this.rev } : { op: cmd.op, expired: false, revision: this.rev };
        const mine = [...this.keys].filter(([, r]) => r.lease === cmd.id).map(([k]) => k).sort(compareKeys);
        for (const k of mine) doDelete(k);
        this.write(changes);
        this.leases.delete(cmd.id);
        return cmd.op === "lease_revoke" ? { op: cmd.op, revoked: true, revision: this.rev } : { op: cmd.op, expired: true, revision: this.rev };
      }
    }
  }

  dump(): unknown[] {
    return [...this.keys].sort(([a], [b]) => compareKeys(a, b)).map(([k, r]) => [k, r.value, r.version, r.mod, r.create, r.lease]);
  }
}

/** Results with encoded values as hex (the reference keeps hex). */
function plain(r: KvResult): unknown {
  if (r.op === "error") return r.reason;
  if (r.op === "txn") {
    return { ...r, results: r.results.map((x) => ("found" in x && x.found ? { ...x, value: hex(x.value) } : x)) };
  }
  return r;
}

const KEYS = ["a", "b", "é", "\u{1f600}", "a/1", "a/2"];
const keyArb = fc.constantFrom(...KEYS);
const valueArb = fc.oneof(fc.integer({ min: -3, max: 3 }), fc.constantFrom("x", "y", "z"), fc.constant(new Uint8Array([1, 2])), fc.constant(null), fc.constant({ m: [1] }));
const leaseArb = fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined });
const txnOp = fc.oneof(
  fc.record({ put: fc.record({ key: keyArb, value: valueArb.map(encodeValue), lease: leaseArb }, { requiredKeys: ["key", "value"] }) }),
  fc.record({ delete: keyArb }),
  fc.record({ get: keyArb }),
);
const compareArb = fc.oneof(
  fc.record({ key: keyArb, target: fc.constantFrom("version" as const, "mod_revision" as const), op: fc.constantFrom("==" as const, "!=" as const, "<" as const, ">" as const), value: fc.nat(6) }),
  fc.record({ key: keyArb, target: fc.constant("value" as const), op: fc.constantFrom("==" as const, "!=" as const, "<" as const, ">" as const), value: valueArb.map(encodeValue) }),
);
const cmdArb: fc.Arbitrary<KvCommand> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ key: keyArb, value: valueArb, lease: leaseArb }).map(({ key, value, lease }) => put(key, value, lease)) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("delete" as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("cas" as const), key: keyArb, version: fc.nat(3), value: valueArb.map(encodeValue) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("txn" as const),
      compare: fc.array(compareArb, { maxLength: 3 }),
      success: fc.array(txnOp, { maxLength: 4 }),
      failure: fc.array(txnOp, { maxLength: 4 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("lease_grant" as const), ttl: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("lease_revoke" as const), id: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("lease_expire" as const), id: fc.integer({ min: 1, max: 40 }) }) },
);

describe("KvStateMachine", () => {
  it("model-based: results, state, events and snapshots match a naive reference for random command sequences", () => {
    fc.assert(
      fc.property(fc.array(cmdArb, { maxLength: 40 }), fc.nat(40), (cmds, cut) => {
        const m = new KvStateMachine({ historyRevisions: 1000 });
        const events: KvEvent[][] = [];
        m.listener = { onRevision: (_r, evs) => events.push([...evs]), onLease: () => undefined, onRestore: () => undefined };
        const ref = new RefStore();
        cmds.forEach((cmd, i) => {
          // Halfway, the state goes through a snapshot into a fresh machine.
          if (i === cut) {
            const copy = new KvStateMachine({ historyRevisions: 1000 });
            copy.restore(m.snapshot());
            expect(dump(copy)).toEqual(dump(m));
            expect(copy.revision).toBe(m.revision);
            expect(copy.byteSize).toBe(m.byteSize);
            expect(copy.leaseList().sort()).toEqual(m.leaseList().sort());
            expect(copy.historyFrom(1)).toEqual(m.historyFrom(1));
          }
          const got = apply(m, cmd, i + 1);
          const want = ref.apply(cmd, i + 1);
          expect(plain(got)).toEqual(want);
          expect(dump(m)).toEqual(ref.dump());
          expect(m.revision).toBe(ref.rev);
        });
        expect(events.map((e) => e.map((x) => ({ ...x, value: x.value && hex(x.value) })))).toEqual(
          ref.events.map((e) => e.map((x) => ({ ...x, value: x.value && hex(x.value) }))),
        );
        // The history holds each revision's events, in order, with no gap.
        expect(m.historyFrom(1).map((h) => h.revision)).toEqual(Array.from({ length: m.revision }, (_, i) => i + 1));
      }),
      { numRuns: 400 },
    );
  });

  it("frames large binary and string values by hand exactly as the MessagePack encoder does", () => {
    const enc = new Encoder();
    for (const n of [257, 300, 0xffff, 0x10000, 200_000]) {
      const bin = new Uint8Array(n).map((_, i) => i & 0xff);
      expect(Buffer.compare(encodeValue(bin), enc.encode(bin))).toBe(0);
      const str = "é".repeat(Math.ceil(n / 2)) + "x";
      expect(Buffer.compare(encodeValue(str), enc.encode(str))).toBe(0);
      expect(decodeValue(encodeValue(str))).toBe(str);
    }
  });

  it("keeps any MessagePack value, binary included, and orders range results by UTF-8 bytes", () => {
    const m = new KvStateMachine();
    const bin = new Uint8Array([0, 255, 7]);
    apply(m, put("\u{1f600}", bin));
    apply(m, put("\uff5e", { nested: [1, "two", null, true] }));
    apply(m, put("a", 3.5));
    const items = m.range("", undefined, 10).items;
    expect(items.map(([k]) => k)).toEqual(["a", "\uff5e", "\u{1f600}"]);
    expect(decodeValue(items[2]![1].value)).toEqual(bin);
    expect(decodeValue(items[1]![1].value)).toEqual({ nested: [1, "two", null, true] });
    // [start, end), limit and more.
    expect(m.range("a", "\u{1f600}", 10)).toMatchObject({ more: false });
    expect(m.range("a", "\u{1f600}", 10).items.map(([k]) => k)).toEqual(["a", "\uff5e"]);
    expect(m.range("b", undefined, 1)).toMatchObject({ more: true });
  });

  it("refuses a write past the quota with 1007 quota and applies nothing; shrinking writes pass", () => {
    const m = new KvStateMachine({ quotaBytes: 2000 });
    const v = "x".repeat(200);
    let i = 0;
    for (; i < 100; i++) {
      const r = apply(m, put(`k${i}`, v));
      if (r.op === "error") {
        expect(r).toMatchObject({ code: 1007, reason: "quota" });
        break;
      }
    }
    expect(i).toBeGreaterThan(3);
    expect(m.byteSize).toBeLessThanOrEqual(2000);
    const rev = m.revision;
    // A transaction that would pass the quota in its last put applies nothing at all.
    const t = apply(m, { op: "txn", compare: [], success: [{ delete: "k0" }, { put: { key: "new", value: encodeValue(v.repeat(5)) } }], failure: [] });
    expect(t).toMatchObject({ op: "error", code: 1007, reason: "quota" });
    expect(m.get("k0")).toBeDefined();
    expect(m.revision).toBe(rev);
    expect(apply(m, put("k0", "small"))).toMatchObject({ op: "put", version: 2 });
    expect(apply(m, { op: "delete", key: "k1" })).toMatchObject({ deleted: true });
    expect(apply(m, put(`k${i}`, v))).toMatchObject({ op: "put", version: 1 });
  });

  it("refuses a quota whose snapshots would not fit the storage's snapshot limit", () => {
    expect(() => new KvStateMachine({ quotaBytes: 1024 * 1024 * 1024 })).toThrow(/quotaBytes/);
    expect(new KvStateMachine().limits.quotaBytes).toBe(256 * 1024 * 1024);
  });

  it("refuses bad input naming the problem, without changing anything", () => {
    const m = new KvStateMachine({ maxValueBytes: 100, maxKeyBytes: 8 });
    const before = m.snapshot();
    expect(apply(m, put("k", "x".repeat(200)))).toMatchObject({ code: 1002, reason: "value_too_large", path: "value" });
    expect(apply(m, put("123456789", 1))).toMatchObject({ code: 1002, reason: "key_too_large" });
    expect(apply(m, put("\ud800x", 1))).toMatchObject({ code: 1002, reason: "bad_key" });
    expect(apply(m, put("", 1))).toMatchObject({ code: 1002, reason: "bad_key" });
    expect(apply(m, put("k", 1, 99))).toMatchObject({ code: 1001, reason: "lease_not_found" });
    expect(apply(m, { op: "lease_grant", ttl: 0 })).toMatchObject({ code: 1002, reason: "bad_ttl" });
    expect(apply(m, { op: "txn", compare: [{ key: "k", target: "nope", op: "==", value: 1 }], success: [], failure: [] } as unknown as KvCommand)).toMatchObject({
      code: 1002,
      path: "compare[0].target",
    });
    expect(m.apply(te.encode("garbage"), 1)).toMatchObject({ code: 1002, reason: "bad_command" });
    expect(m.apply(new Uint8Array([0xc1]), 1)).toMatchObject({ code: 1002, reason: "bad_command" });
    expect(m.snapshot()).toEqual(before);
  });

  it("a lease's keys go at one revision when it expires; a put without lease detaches a key", () => {
    const m = new KvStateMachine();
    const g = apply(m, { op: "lease_grant", ttl: 500 }, 7);
    expect(g).toEqual({ op: "lease_grant", id: 7, ttl: 500 });
    apply(m, put("b", 1, 7));
    apply(m, put("a", 1, 7));
    apply(m, put("c", 1, 7));
    apply(m, put("c", 2)); // detached
    const rev = m.revision;
    const evs: KvEvent[][] = [];
    m.listener = { onRevision: (_r, e) => evs.push([...e]), onLease: () => undefined, onRestore: () => undefined };
    expect(apply(m, { op: "lease_expire", id: 7 })).toEqual({ op: "lease_expire", expired: true, revision: rev + 1 });
    expect(evs).toEqual([[{ type: "delete", key: "a", mod_revision: rev + 1 }, { type: "delete", key: "b", mod_revision: rev + 1 }]]);
    expect(m.get("c")).toBeDefined();
    expect(apply(m, { op: "lease_revoke", id: 7 })).toMatchObject({ revoked: false });
  });

  it("keeps a bounded history: the oldest revisions are compacted, deterministically", () => {
    const m = new KvStateMachine({ historyRevisions: 5 });
    for (let i = 0; i < 12; i++) apply(m, put("k", i));
    expect(m.compactRevision).toBe(7);
    expect(m.historyFrom(1).map((h) => h.revision)).toEqual([8, 9, 10, 11, 12]);
    const copy = new KvStateMachine({ historyRevisions: 5 });
    copy.restore(m.snapshot());
    expect(copy.compactRevision).toBe(7);
    expect(copy.historyFrom(10).map((h) => h.revision)).toEqual([10, 11, 12]);
    const bytes = new KvStateMachine({ historyBytes: 1000 });
    for (let i = 0; i < 50; i++) apply(bytes, put(`k${i}`, "v".repeat(100)));
    expect(bytes.historyFrom(1).length).toBeLessThan(10);
    expect(bytes.compactRevision).toBeGreaterThan(40);
  });

  it("restores the JSON snapshots and replays the JSON commands of the first version", () => {
    const m = new KvStateMachine();
    m.restore(te.encode(JSON.stringify([["a", { value: JSON.stringify({ x: 1 }), version: 3 }]])));
    expect(decodeValue(m.get("a")!.value)).toEqual({ x: 1 });
    expect(m.get("a")!.version).toBe(3);
    expect(m.apply(te.encode(JSON.stringify({ op: "put", key: "a", value: JSON.stringify([1, 2]) })), 9)).toMatchObject({ op: "put", version: 4 });
    expect(decodeValue(m.get("a")!.value)).toEqual([1, 2]);
  });

  it("a 32 MiB store snapshots and restores quickly (values copied once)", () => {
    const m = new KvStateMachine();
    const v = new Uint8Array(1 << 19).fill(7);
    for (let i = 0; i < 64; i++) expect(apply(m, put(`big/${i}`, v))).toMatchObject({ op: "put" });
    const t0 = performance.now();
    const snap = m.snapshot();
    const copy = new KvStateMachine();
    copy.restore(snap);
    const ms = performance.now() - t0;
    expect(snap.length).toBeGreaterThan(32 << 20);
    expect(copy.byteSize).toBe(m.byteSize);
    expect(ms).toBeLessThan(5000);
  });
});
