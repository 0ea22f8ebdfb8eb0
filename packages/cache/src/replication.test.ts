import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SeededRandom, SimClock, SimNetwork } from "@mpreg/testkit";
import { isMpregError } from "@mpreg/envelope";
import { CacheService } from "./cache-service.js";
import { MAX_REMOTE_PEERS } from "./cache-replicator.js";
import type { ReplicationMessage } from "./replication-message.js";

const NS = "shared";

interface Cluster {
  clock: SimClock;
  net: SimNetwork<ReplicationMessage>;
  nodes: Map<string, CacheService>;
  /** Which nodes each node currently counts as members (the fabric's view). */
  join(a: string, b: string): void;
  add(id: string): Promise<CacheService>;
}

async function cluster(seed: number, replication: Record<string, unknown> = {}): Promise<Cluster> {
  const clock = new SimClock({ startMs: 1_000_000 });
  const rnd = new SeededRandom(seed);
  const net = new SimNetwork<ReplicationMessage>({ clock, random: rnd.fork(), link: { lossProbability: 0, jitterMs: 0 } });
  const nodes = new Map<string, CacheService>();
  const members = new Map<string, Set<string>>();
  const c: Cluster = {
    clock,
    net,
    nodes,
    join(a, b) {
      members.get(a)!.add(b);
      members.get(b)!.add(a);
      nodes.get(a)!.memberJoined(b);
      nodes.get(b)!.memberJoined(a);
    },
    async add(id) {
      const r = rnd.fork();
      const svc = await CacheService.open({
        nodeId: id,
        now: () => clock.now(),
        random: () => r.next(),
        timers: false,
        config: {
          namespaces: { [NS]: { scope: "replicated", max_entries: 10_000 }, local: {} },
          replication: { anti_entropy_ms: 200, sync_batch: 16, ...replication },
        },
      });
      nodes.set(id, svc);
      members.set(id, new Set());
      // The "fabric": messages are copied (as a real encoding would) and sent over the simulated network.
      svc.onOutbound((out) => {
        const targets = out.to === "all" ? [...members.get(id)!] : [out.node];
        for (const t of targets) net.send(id, t, structuredClone(out.message));
      });
      net.addNode(id, (from, msg) => svc.receive(from, msg));
      return svc;
    },
  };
  return c;
}

/** Every node's answer for each key: equal answers mean the nodes converged. */
async function views(c: Cluster, keys: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [id, svc] of c.nodes) {
    const parts: string[] = [];
    for (const k of keys) {
      const r = await svc.get(k, { namespace: NS });
      parts.push(r.hit ? `${k}=${JSON.stringify(r.value)}` : `${k}=-`);
    }
    out.set(id, parts.join(" "));
  }
  return out;
}

function startAntiEntropy(c: Cluster, everyMs: number): void {
  const loop = () => {
    for (const [id, svc] of c.nodes) if (c.net.isUp(id)) void svc.tick();
    c.clock.setTimeout(loop, everyMs);
  };
  c.clock.setTimeout(loop, everyMs);
}

/**
 * The convergence scenario: three nodes take `totalOps` random writes, deletes and
 * invalidations over a lossy, reordering, duplicating network with a partition; a fourth node
 * joins late. Once writes stop, every node must answer every key alike.
 */
async function convergenceScenario(seed: number, totalOps: number, nonVacuous: boolean): Promise<void> {
  const c = await cluster(seed);
  const ids = ["a", "b", "c"];
  for (const id of ids) await c.add(id);
  await c.add("d"); // opened now, but nobody knows it until it joins at 2 s
  const joined = new Set(ids);
  c.join("a", "b");
  c.join("a", "c");
  c.join("b", "c");
  c.net.setDefaultLink({ lossProbability: 0.15, delay: (r) => r.range(1, 40), jitterMs: 20, duplicateProbability: 0.05 });
  startAntiEntropy(c, 200);
  const rnd = new SeededRandom(seed * 7919);
  const keys = Array.from({ length: 30 }, (_, i) => `obj.${i % 3}.k${i}`);
  let ops = 0;
  const step = () => {
    const live = [...joined];
    const svc = c.nodes.get(rnd.pick(live))!;
    const k = rnd.pick(keys);
    const x = rnd.int(100);
    if (x < 60) {
      const deps = rnd.chance(0.3) ? [rnd.pick(keys)] : undefined;
      void svc.put(k, { v: ops, by: svc.nodeId }, { namespace: NS, dependencies: deps, ttl_ms: rnd.chance(0.1) ? 300 : undefined });
    } else if (x < 80) void svc.delete(k, { namespace: NS });
    else if (x < 90) void svc.invalidate({ namespace: NS, dependency: rnd.pick(keys) });
    else void svc.invalidate({ namespace: NS, pattern: `obj.${rnd.int(3)}.*` });
    if (++ops < totalOps) c.clock.setTimeout(step, rnd.range(1, 8));
  };
  c.clock.setTimeout(step, 1);
  // A partition {a, b} | {c} from 0.5 s to 1.5 s; d joins at 2 s.
  c.clock.setTimeout(() => c.net.partition(["a", "b"], ["c"]), 500);
  c.clock.setTimeout(() => c.net.heal(), 1500);
  c.clock.setTimeout(() => {
    for (const id of ids) c.join("d", id);
    joined.add("d");
  }, 2000);
  c.clock.runUntil(c.clock.now() + 3000);
  // Writes stop; loss continues; anti-entropy must bring every node to the same state.
  c.clock.runUntil(c.clock.now() + 6000);
  const v = await views(c, keys);
  const distinct = new Set(v.values());
  expect(distinct.size, [...v.entries()].map(([id, s]) => `${id}: ${s}`).join("\n")).toBe(1);
  const digests = new Set([...c.nodes.values()].map((s) => JSON.stringify(s.replication.digest(NS))));
  expect(digests.size).toBe(1);
  if (nonVacuous) {
    // Some entries survived and something was invalidated (checked on the fixed seeds).
    const sample = [...v.values()][0]!;
    expect(sample).toMatch(/=\{/);
    expect(sample).toMatch(/=-/);
  }
  for (const s of c.nodes.values()) await s.close();
}

describe("replication (seeded simulation)", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`converges under loss, delay, a partition and a late joiner (seed ${seed})`, () => convergenceScenario(seed, 600, true));
  }

  it("converges for any seed (property, shorter runs)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 6, max: 1_000_000 }), (seed) => convergenceScenario(seed, 200, false)),
      { numRuns: Number(process.env.CACHE_SIM_RUNS ?? 8) },
    );
  });

  it("a late write never resurrects an entry deleted after it", async () => {
    const c = await cluster(9);
    for (const id of ["a", "b", "c"]) await c.add(id);
    c.join("a", "b");
    c.join("a", "c");
    c.join("b", "c");
    c.net.setLink("a", "c", { delay: () => 1000 }, false); // a's messages reach c a second late
    const [a, b, cc] = ["a", "b", "c"].map((id) => c.nodes.get(id)!);
    void a!.put("k", "v1", { namespace: NS });
    c.clock.runUntil(c.clock.now() + 50);
    expect((await b!.get("k", { namespace: NS })).hit).toBe(true);
    void b!.delete("k", { namespace: NS });
    c.clock.runUntil(c.clock.now() + 50);
    expect(cc!.replication.tombstoneCount(NS)).toBe(1);
    c.clock.runUntil(c.clock.now() + 2000); // a's old put reaches c now
    for (const n of [a!, b!, cc!]) expect((await n.get("k", { namespace: NS })).hit).toBe(false);
    expect(cc!.replicationStats().stale).toBeGreaterThan(0);
  });

  it("a late write that depends on an invalidated key, or matches an invalidated pattern, arrives dead", async () => {
    const c = await cluster(10);
    for (const id of ["a", "b", "c"]) await c.add(id);
    c.join("a", "b");
    c.join("a", "c");
    c.join("b", "c");
    c.net.setLink("a", "c", { delay: () => 1000 }, false);
    c.net.setLink("a", "b", { delay: () => 1000 }, false);
    const [a, b, cc] = ["a", "b", "c"].map((id) => c.nodes.get(id)!);
    void a!.put("derived", 1, { namespace: NS, dependencies: ["base"] });
    void a!.put("user.7.name", "x", { namespace: NS });
    c.clock.runUntil(c.clock.now() + 10);
    void b!.invalidate({ namespace: NS, dependency: "base" });
    void b!.invalidate({ namespace: NS, pattern: "user.#" });
    c.clock.runUntil(c.clock.now() + 3000);
    for (const n of [a!, b!, cc!]) {
      expect((await n.get("derived", { namespace: NS })).hit).toBe(false);
      expect((await n.get("user.7.name", { namespace: NS })).hit).toBe(false);
    }
    // A write made after the invalidation is not affected.
    void cc!.put("user.7.name", "y", { namespace: NS, dependencies: ["base"] });
    c.clock.runUntil(c.clock.now() + 3000);
    for (const n of [a!, b!, cc!]) expect(await n.get("user.7.name", { namespace: NS })).toEqual({ hit: true, value: "y" });
  });

  it("last writer wins by HLC whatever the arrival order", async () => {
    const c = await cluster(11);
    for (const id of ["a", "b"]) await c.add(id);
    c.join("a", "b");
    const [a, b] = ["a", "b"].map((id) => c.nodes.get(id)!);
    c.net.setLink("a", "b", { delay: () => 500 }, false);
    void a!.put("k", "from-a", { namespace: NS });
    c.clock.advance(5);
    void b!.put("k", "from-b", { namespace: NS }); // later stamp: wins on both
    c.clock.runUntil(c.clock.now() + 1000);
    expect(await a!.get("k", { namespace: NS })).toEqual({ hit: true, value: "from-b" });
    expect(await b!.get("k", { namespace: NS })).toEqual({ hit: true, value: "from-b" });
  });

  it("remote peers (other clusters) of one namespace catch up on join and take part in anti-entropy", async () => {
    const c = await cluster(14);
    const [a, r] = [await c.add("a"), await c.add("r")];
    // a and r are not members of each other (different clusters): only the remote peer link.
    await a.put("k1", "v1", { namespace: NS });
    await a.put("k2", "v2", { namespace: NS });
    expect(r.replication.remotePeerJoined("local", "a")).toBe(false); // not replicated here
    expect(r.replication.remotePeerJoined(NS, "r")).toBe(false); // itself
    expect(r.replication.remotePeerJoined(NS, "a")).toBe(true);
    c.clock.runUntil(c.clock.now() + 100);
    expect(await r.get("k2", { namespace: NS })).toEqual({ hit: true, value: "v2" });
    expect([...r.replication.remotePeers(NS)]).toEqual(["a"]);
    // A write r missed (nothing pushed it: a has no members) arrives by anti-entropy.
    await a.put("k3", "v3", { namespace: NS });
    c.clock.runUntil(c.clock.now() + 50);
    expect((await r.get("k3", { namespace: NS })).hit).toBe(false);
    await r.tick();
    c.clock.runUntil(c.clock.now() + 100);
    expect(await r.get("k3", { namespace: NS })).toEqual({ hit: true, value: "v3" });
    expect(r.replication.digest(NS)).toEqual(a.replication.digest(NS));
    r.replication.remotePeerLeft(NS, "a");
    expect(r.replication.remotePeers(NS).size).toBe(0);
  });

  it("remote peers are bounded per namespace", async () => {
    const c = await cluster(15);
    const a = await c.add("a");
    for (let i = 0; i < MAX_REMOTE_PEERS; i++) expect(a.replication.remotePeerJoined(NS, `x${i}`)).toBe(true);
    expect(a.replication.remotePeerJoined(NS, "one-more")).toBe(false);
    expect(a.replication.remotePeers(NS).size).toBe(MAX_REMOTE_PEERS);
  });

  it("tombstones are bounded and expire after tombstone_ttl_ms", async () => {
    const c = await cluster(12, { max_tombstones: 10, tombstone_ttl_ms: 1000 });
    const a = await c.add("a");
    for (let i = 0; i < 50; i++) await a.delete(`k${i}`, { namespace: NS });
    expect(a.replication.tombstoneCount(NS)).toBe(10);
    expect(a.replicationStats().tombstones_dropped).toBe(40);
    c.clock.advance(1000);
    await a.tick();
    expect(a.replication.tombstoneCount(NS)).toBe(0);
  });

  it("refuses malformed messages with 1002 naming the field; ignores other namespaces and far-future stamps", async () => {
    const c = await cluster(13);
    const a = await c.add("a");
    const bad = (m: unknown, path: string) => {
      try {
        a.receive("x", m);
      } catch (e) {
        expect(isMpregError(e) && e.code === 1002 && e.details.path === path).toBe(true);
        return;
      }
      throw new Error("accepted a malformed message");
    };
    const stamp = { wall: c.clock.now(), counter: 0, node: "x" };
    bad(null, "");
    bad({ type: "put", namespace: NS, key: "", value: 1, stamp }, "key");
    bad({ type: "put", namespace: NS, key: "k", stamp }, "value");
    bad({ type: "put", namespace: NS, key: "k", value: 1, stamp: { wall: -1, counter: 0, node: "x" } }, "stamp.wall");
    bad({ type: "tomb", namespace: NS, keys: ["k"], stamp, cascade: true, pattern: "a.b*" }, "pattern");
    bad({ type: "sync_req", namespace: NS, digest: [1, 2] }, "digest");
    bad({ type: "nope", namespace: NS }, "type");
    a.receive("x", { type: "put", namespace: "local", key: "k", value: 1, stamp });
    a.receive("x", { type: "put", namespace: NS, key: "k", value: 1, stamp: { ...stamp, wall: stamp.wall + 3_600_000 } });
    expect((await a.get("k", { namespace: NS })).hit).toBe(false);
    expect((await a.get("k", { namespace: "local" })).hit).toBe(false);
    expect(a.replicationStats().rejected).toBe(9);
  });
});

describe("replicated namespace with L2", () => {
  it("keeps values and stamps across a reopen; an older write from a peer still loses", async () => {
    const { MemoryBackend, MemoryVolume } = await import("@mpreg/persistence");
    const volume = new MemoryVolume();
    let t = 5_000_000;
    const config = { namespaces: { [NS]: { scope: "replicated", l2: true } } };
    let backend = new MemoryBackend({ volume });
    let a = await CacheService.open({ nodeId: "a", backend, config, now: () => t, timers: false });
    const sent: unknown[] = [];
    a.onOutbound((o) => sent.push(o.message));
    await a.put("k", "v2", { namespace: NS, dependencies: ["d"] });
    const digest = a.replication.digest(NS);
    const stamp = (sent[0] as { stamp: { wall: number } }).stamp;
    await a.close();
    await backend.close();

    backend = new MemoryBackend({ volume });
    a = await CacheService.open({ nodeId: "a", backend, config, now: () => t, timers: false });
    expect(a.replication.digest(NS)).toEqual(digest);
    expect(await a.get("k", { namespace: NS })).toEqual({ hit: true, value: "v2" });
    // A write stamped before the stored one loses; the clock resumed past the stored stamp.
    a.receive("b", { type: "put", namespace: NS, key: "k", value: "v1", stamp: { wall: stamp.wall - 1, counter: 0, node: "b" } });
    expect(await a.get("k", { namespace: NS })).toEqual({ hit: true, value: "v2" });
    expect(a.replication.clock.last.wall).toBeGreaterThanOrEqual(stamp.wall);
    // The dependency survived the reopen too.
    expect(await a.invalidate({ namespace: NS, dependency: "d" })).toBe(1);
    t += 1;
    await a.close();
    await backend.close();
  });
});
