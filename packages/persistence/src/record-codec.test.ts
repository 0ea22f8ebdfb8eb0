import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { Type } from "typebox";
import { createRecordCodec } from "./record-codec.js";
import { storageErrorKind } from "./errors.js";
import { MemoryBackend } from "./memory.js";
import { PersistentState, TypedKV } from "./persistent-state.js";

const V1 = Type.Object({ name: Type.String() });
const V2 = Type.Object({ name: Type.String(), tags: Type.Array(Type.String()) });
const V3 = Type.Object({ first: Type.String(), tags: Type.Array(Type.String()), size: Type.Integer() });

describe("record codec", () => {
  it("round-trips and writes the version byte first", () => {
    const c = createRecordCodec({ schema: V2, version: 2 });
    fc.assert(
      fc.property(fc.string(), fc.array(fc.string()), (name, tags) => {
        const bytes = c.encode({ name, tags });
        expect(bytes[0]).toBe(2);
        expect(c.decode(bytes)).toEqual({ name, tags });
      }),
    );
  });

  it("migrates old records version by version", () => {
    const v1 = createRecordCodec({ schema: V1, version: 1 });
    const v2 = createRecordCodec({ schema: V2, version: 2 });
    const v3 = createRecordCodec({
      schema: V3,
      version: 3,
      migrations: {
        1: (o) => ({ ...(o as object), tags: [] }),
        2: (o) => {
          const { name, tags } = o as { name: string; tags: string[] };
          return { first: name, tags, size: tags.length };
        },
      },
    });
    expect(v3.decode(v1.encode({ name: "a" }))).toEqual({ first: "a", tags: [], size: 0 });
    expect(v3.decode(v2.encode({ name: "b", tags: ["x", "y"] }))).toEqual({ first: "b", tags: ["x", "y"], size: 2 });
  });

  it("rejects bad input with clear errors", () => {
    const v2 = createRecordCodec({ schema: V2, version: 2 });
    const v3 = createRecordCodec({ schema: V3, version: 3, migrations: { 2: (o) => o } });
    const kind = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return [storageErrorKind(e), (e as Error).message];
      }
      return ["none"];
    };
    expect(kind(() => v2.decode(v3.encode({ first: "a", tags: [], size: 1 })))).toEqual(["invalid", "record has version 3, this code reads up to 2"]);
    expect(kind(() => v3.decode(createRecordCodec({ schema: V1, version: 1 }).encode({ name: "a" })))[1]).toMatch(/no migration from record version 1/);
    expect(kind(() => v3.decode(v2.encode({ name: "a", tags: [] })))[1]).toMatch(/does not match its schema/);
    expect(kind(() => v2.decode(new Uint8Array([2, 0xc1])))[1]).toMatch(/not valid MessagePack/);
    expect(kind(() => v2.decode(new Uint8Array([2])))[1]).toMatch(/too short/);
    expect(kind(() => v2.encode({ name: 5 } as never))[1]).toMatch(/does not match its schema at \/name/);
    expect(() => createRecordCodec({ schema: V1, version: 256 })).toThrow(/1\.\.255/);
  });
});

describe("typed stores", () => {
  const Counter = Type.Object({ n: Type.Integer(), history: Type.Array(Type.Integer()) });
  const codec = createRecordCodec({ schema: Counter, version: 1 });

  it("PersistentState loads on open and persists each transition atomically", async () => {
    const be = new MemoryBackend();
    const kv = be.kv("machine");
    const s1 = await PersistentState.open({ kv, key: "state", codec, initial: () => ({ n: 0, history: [] }) });
    expect(s1.current).toEqual({ n: 0, history: [] });
    await Promise.all([1, 2, 3].map((i) => s1.transition((s) => ({ n: s.n + i, history: [...s.history, i] }))));
    expect(s1.current).toEqual({ n: 6, history: [1, 2, 3] });
    await s1.transitionWith((s) => ({ state: { ...s, n: s.n + 1 }, ops: [{ type: "put", key: new Uint8Array([9]), value: new Uint8Array([7]) }] }));
    expect(await kv.get(new Uint8Array([9]))).toEqual(new Uint8Array([7]));
    // A failing write leaves the state where it was.
    await expect(s1.transition(() => ({ n: "bad" }) as never)).rejects.toThrow(/schema/);
    expect(s1.current.n).toBe(7);
    const s2 = await PersistentState.open({ kv, key: "state", codec, initial: () => ({ n: -1, history: [] }) });
    expect(s2.current).toEqual({ n: 7, history: [1, 2, 3] });
    await be.close();
  });

  it("TypedKV stores typed values under string keys", async () => {
    const be = new MemoryBackend();
    const t = new TypedKV(be.kv("typed"), codec);
    await t.put("b/1", { n: 1, history: [] });
    await t.put("a/1", { n: 2, history: [] });
    await t.put("b/2", { n: 3, history: [1] });
    expect(await t.get("a/1")).toEqual({ n: 2, history: [] });
    expect((await t.entries("b/")).map(([k, v]) => [k, v.n])).toEqual([["b/1", 1], ["b/2", 3]]);
    await be.kv("typed").batch([t.delOp("b/1"), t.putOp("c", { n: 4, history: [] })]);
    expect((await t.entries()).map(([k]) => k)).toEqual(["a/1", "b/2", "c"]);
    await be.close();
  });
});
