import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isMpregError } from "@mpreg/envelope";
import { FileBackend, MemoryBackend } from "@mpreg/persistence";
import { cacheBuiltins } from "./cache-builtins.js";
import { parseCacheConfig } from "./cache-config.js";
import { CacheService } from "./cache-service.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function code1002(fn: () => unknown, path: string): void {
  try {
    fn();
  } catch (e) {
    expect(isMpregError(e)).toBe(true);
    expect((e as { code: number }).code).toBe(1002);
    expect((e as { details: { path?: string } }).details.path).toBe(path);
    return;
  }
  throw new Error(`expected 1002 at ${path}`);
}

async function rejects1002(p: Promise<unknown>, path: string): Promise<void> {
  await expect(p).rejects.toMatchObject({ code: 1002, details: { path } });
}

describe("L2 tier", () => {
  it("survives a reopen of a file backend: values, TTLs, dependencies and patterns", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mpreg-cache-l2-"));
    dirs.push(dir);
    let t = 1_000_000;
    const config = { namespaces: { docs: { l2: true, max_entries: 100 } } };
    let backend = await FileBackend.open({ dir });
    let c = await CacheService.open({ nodeId: "n", backend, config, now: () => t, timers: false });
    await c.put("doc.1", { title: "one", body: new Uint8Array([1, 2, 3]) }, { namespace: "docs" });
    await c.put("doc.2", "two", { namespace: "docs", dependencies: ["doc.1"] });
    await c.put("doc.3", "three", { namespace: "docs", ttl_ms: 5000 });
    await c.put("img.1", "i", { namespace: "docs" });
    await c.put("mem", "only in L1", {}); // the default namespace has no L2
    await c.close();
    await backend.close();

    backend = await FileBackend.open({ dir });
    c = await CacheService.open({ nodeId: "n", backend, config, now: () => t, timers: false });
    expect(c.stats({ namespace: "docs" }).entries).toBe(0);
    expect(c.stats({ namespace: "docs" }).l2_entries).toBe(4);
    expect(await c.get("doc.1", { namespace: "docs" })).toEqual({ hit: true, value: { title: "one", body: new Uint8Array([1, 2, 3]) } });
    expect(c.stats({ namespace: "docs" })).toMatchObject({ hits: 1, l2_hits: 1, entries: 1 });
    expect((await c.get("doc.1", { namespace: "docs" })).hit).toBe(true);
    expect(c.stats({ namespace: "docs" }).l2_hits).toBe(1); // the second read came from L1
    expect((await c.get("mem")).hit).toBe(false);
    // Dependencies and pattern matching reach entries that are only in L2.
    expect(await c.invalidate({ namespace: "docs", dependency: "doc.1" })).toBe(2);
    expect((await c.get("doc.2", { namespace: "docs" })).hit).toBe(false);
    expect(await c.invalidate({ namespace: "docs", pattern: "img.*" })).toBe(1);
    t += 5000;
    expect((await c.get("doc.3", { namespace: "docs" })).hit).toBe(false);
    await c.close();
    await backend.close();

    backend = await FileBackend.open({ dir });
    c = await CacheService.open({ nodeId: "n", backend, config, now: () => t, timers: false });
    expect(c.stats({ namespace: "docs" }).l2_entries).toBe(0);
    await c.close();
    await backend.close();
  });

  it("read-through: L1 misses are answered from L2 and promoted", async () => {
    const c = await CacheService.open({
      nodeId: "n",
      backend: new MemoryBackend(),
      timers: false,
      config: { namespaces: { default: { l2: true, max_entries: 3, policy: "lru" } } },
    });
    for (let i = 0; i < 10; i++) await c.put(`k${i}`, i);
    expect(c.stats().entries).toBe(3);
    for (let i = 0; i < 10; i++) expect(await c.get(`k${i}`)).toEqual({ hit: true, value: i });
    const s = c.stats();
    expect(s.l2_hits).toBeGreaterThanOrEqual(7);
    expect(s.entries).toBe(3);
    await c.close();
  });

  it("l2_max_entries bounds L2: the oldest-written entry leaves first", async () => {
    const c = await CacheService.open({
      nodeId: "n",
      backend: new MemoryBackend(),
      timers: false,
      config: { namespaces: { default: { l2: true, max_entries: 2, l2_max_entries: 5, policy: "lru" } } },
    });
    for (let i = 0; i < 8; i++) await c.put(`k${i}`, i);
    expect(c.stats().l2_entries).toBe(5);
    expect((await c.get("k0")).hit).toBe(false);
    expect((await c.get("k3")).hit).toBe(true);
    await c.close();
  });
});

describe("getOrCompute", () => {
  it("runs the loader once for concurrent misses and caches the result", async () => {
    const c = await CacheService.open({ nodeId: "n", timers: false });
    let calls = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const loader = async () => {
      calls++;
      await gate;
      return "v";
    };
    const all = Promise.all(Array.from({ length: 20 }, () => c.getOrCompute("k", loader)));
    await new Promise((r) => setImmediate(r));
    release();
    expect(await all).toEqual(Array(20).fill("v"));
    expect(calls).toBe(1);
    expect(await c.get("k")).toEqual({ hit: true, value: "v" });
    expect(await c.getOrCompute("k", loader)).toBe("v");
    expect(calls).toBe(1);
  });

  it("a failing loader fails every waiter and caches nothing; the next call tries again", async () => {
    const c = await CacheService.open({ nodeId: "n", timers: false });
    let calls = 0;
    const failing = async () => {
      calls++;
      await new Promise((r) => setImmediate(r));
      throw new Error("boom");
    };
    const rs = await Promise.allSettled([c.getOrCompute("k", failing), c.getOrCompute("k", failing)]);
    expect(rs.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(calls).toBe(1);
    expect((await c.get("k")).hit).toBe(false);
    expect(await c.getOrCompute("k", () => 5)).toBe(5);
  });

  it("a result whose key was invalidated while loading is returned but not cached", async () => {
    const c = await CacheService.open({ nodeId: "n", timers: false });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const p = c.getOrCompute("k", async () => {
      await gate;
      return "old";
    }, { dependencies: ["src"] });
    await new Promise((r) => setImmediate(r));
    await c.invalidate({ pattern: "k" });
    release();
    expect(await p).toBe("old");
    expect((await c.get("k")).hit).toBe(false);
  });
});

describe("configuration", () => {
  it("fills defaults and always has a default namespace", () => {
    const cfg = parseCacheConfig({ namespaces: { sessions: { policy: "lru", ttl_ms: 1000 } } });
    expect(Object.keys(cfg.namespaces).sort()).toEqual(["default", "sessions"]);
    expect(cfg.namespaces.default).toMatchObject({ policy: "tinylfu", max_entries: 10_000, scope: "local", l2: false });
    expect(cfg.namespaces.sessions).toMatchObject({ policy: "lru", ttl_ms: 1000, l2_max_entries: 100_000 });
  });

  it("names the option path in every error", () => {
    code1002(() => parseCacheConfig({ namespaces: { x: { max_entries: 0 } } }), "namespaces.x.max_entries");
    code1002(() => parseCacheConfig({ namespaces: { x: { max_bytes: 1.5 } } }), "namespaces.x.max_bytes");
    code1002(() => parseCacheConfig({ namespaces: { x: { policy: "fifo" } } }), "namespaces.x.policy");
    code1002(() => parseCacheConfig({ namespaces: { x: { scope: "global" } } }), "namespaces.x.scope");
    code1002(() => parseCacheConfig({ namespaces: { x: { l2: "yes" } } }), "namespaces.x.l2");
    code1002(() => parseCacheConfig({ namespaces: { x: { ttl_ms: -5 } } }), "namespaces.x.ttl_ms");
    code1002(() => parseCacheConfig({ namespaces: { x: { max_entry: 5 } } }), "namespaces.x.max_entry");
    code1002(() => parseCacheConfig({ namespaces: { "bad name": {} } }), "namespaces.bad name");
    code1002(() => parseCacheConfig({ namespaces: { x: 5 } }), "namespaces.x");
    code1002(() => parseCacheConfig({ replication: { sync_batch: 0 } }), "replication.sync_batch");
    code1002(() => parseCacheConfig({ other: 1 }), "cache.other");
    code1002(() => parseCacheConfig({ namespaces: { x: { federate: "yes", scope: "replicated" } } }), "namespaces.x.federate");
    code1002(() => parseCacheConfig({ namespaces: { x: { federate: true } } }), "namespaces.x.federate");
  });

  it("federate is off by default and needs a replicated namespace", () => {
    const cfg = parseCacheConfig({ namespaces: { prices: { scope: "replicated", federate: true }, sessions: { scope: "replicated" } } });
    expect(cfg.namespaces.prices?.federate).toBe(true);
    expect(cfg.namespaces.sessions?.federate).toBe(false);
    expect(cfg.namespaces.default?.federate).toBe(false);
  });

  it("refuses l2 without a backend, naming the namespace's l2 option", async () => {
    await rejects1002(CacheService.open({ nodeId: "n", timers: false, config: { namespaces: { d: { l2: true } } } }), "namespaces.d.l2");
  });
});

describe("built-ins (PROTOCOL section 6)", () => {
  async function builtins() {
    const c = await CacheService.open({
      nodeId: "n",
      timers: false,
      config: { namespaces: { small: { max_bytes: 2000 } } },
    });
    const ctx = { owner: "conn1", push: () => {}, signal: new AbortController().signal, request_id: "r1" };
    const fns = new Map(cacheBuiltins(c).map((b) => [b.name, async (...args: unknown[]) => b.run(args, ctx)]));
    return { c, call: (name: string, ...args: unknown[]) => fns.get(name)!(...args) };
  }

  it("offers get, put, delete, invalidate and stats with the documented results", async () => {
    const { call } = await builtins();
    expect(cacheBuiltins(await CacheService.open({ nodeId: "x", timers: false })).map((b) => b.name)).toEqual([
      "mpreg.cache.get",
      "mpreg.cache.put",
      "mpreg.cache.delete",
      "mpreg.cache.invalidate",
      "mpreg.cache.stats",
    ]);
    expect(await call("mpreg.cache.get", "a")).toEqual({ hit: false });
    expect(await call("mpreg.cache.put", "a.1", { x: 1 })).toEqual({ ok: true });
    expect(await call("mpreg.cache.put", "a.2", 2, { namespace: "small", ttl_ms: 1000, dependencies: ["a.1"], cost: 3 })).toEqual({ ok: true });
    expect(await call("mpreg.cache.get", "a.1")).toEqual({ hit: true, value: { x: 1 } });
    expect(await call("mpreg.cache.get", "a.2", { namespace: "small" })).toEqual({ hit: true, value: 2 });
    expect(await call("mpreg.cache.stats", {})).toEqual({ hits: 1, misses: 1, evictions: 0, entries: 1, bytes: expect.any(Number) });
    expect(await call("mpreg.cache.invalidate", { namespace: "small", dependency: "a.1" })).toEqual({ invalidated: 1 });
    expect(await call("mpreg.cache.put", "b", null)).toEqual({ ok: true });
    expect(await call("mpreg.cache.invalidate", { pattern: "a.*" })).toEqual({ invalidated: 1 });
    expect(await call("mpreg.cache.delete", "b")).toEqual({ deleted: true });
    expect(await call("mpreg.cache.delete", "b")).toEqual({ deleted: false });
    expect(await call("mpreg.cache.stats")).toMatchObject({ entries: 0 });
  });

  it("refuses bad arguments with 1002 naming the field", async () => {
    const { call } = await builtins();
    await rejects1002(call("mpreg.cache.get", 5), "key");
    await rejects1002(call("mpreg.cache.get", "k", "ns"), "args[1]");
    await rejects1002(call("mpreg.cache.get", "k", { namespace: "nope" }), "namespace");
    await rejects1002(call("mpreg.cache.get", "k", { namespace: 3 }), "namespace");
    await rejects1002(call("mpreg.cache.put", "k"), "value");
    await rejects1002(call("mpreg.cache.put", "k", "x".repeat(5000), { namespace: "small" }), "value");
    await rejects1002(call("mpreg.cache.put", "k", 1, { ttl_ms: "soon" }), "ttl_ms");
    await rejects1002(call("mpreg.cache.put", "k", 1, { dependencies: "a" }), "dependencies");
    await rejects1002(call("mpreg.cache.put", "k", 1, { dependencies: [""] }), "dependencies[0]");
    await rejects1002(call("mpreg.cache.put", "k", 1, { cost: -1 }), "cost");
    await rejects1002(call("mpreg.cache.put", "x".repeat(2000), 1), "key");
    await rejects1002(call("mpreg.cache.delete", null), "key");
    await rejects1002(call("mpreg.cache.invalidate", { pattern: "a.#x" }), "pattern");
    await rejects1002(call("mpreg.cache.invalidate", { dependency: 4 }), "dependency");
    await rejects1002(call("mpreg.cache.stats", { namespace: "nope" }), "namespace");
  });
});
