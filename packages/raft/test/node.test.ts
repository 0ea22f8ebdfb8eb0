import { isMpregError, type MpregError } from "@mpreg/envelope";
import { MemoryBackend, MemoryVolume } from "@mpreg/persistence";
import type { StorageBackend } from "@mpreg/persistence";
import { describe, expect, it } from "vitest";
import { decodeValue } from "../src/kv.js";
import { RaftKV } from "../src/raft-kv.js";
import type { Message } from "../src/types.js";
import { rng } from "./core-net.js";
import { LocalCluster } from "./local-cluster.js";

/** A key's value (decoded) and version as a member's state machine holds it. */
function stored(kv: RaftKV, key: string): { value: unknown; version: number } | undefined {
  const r = kv.state.get(key);
  return r ? { value: decodeValue(r.value), version: r.version } : undefined;
}

async function rejection(p: Promise<unknown>): Promise<MpregError> {
  try {
    await p;
  } catch (e) {
    if (isMpregError(e)) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

describe("RaftNode + RaftKV", () => {
  it("a single-member cluster elects itself and serves put/get/cas/delete", async () => {
    const kv = await RaftKV.open({
      id: "solo",
      storage: new MemoryBackend(),
      bootstrap: { voters: ["solo"], learners: [] },
      send: () => undefined,
      random: rng(1),
    });
    for (let i = 0; i < 30 && kv.node.role !== "leader"; i++) {
      kv.node.tick();
      await kv.node.idle();
    }
    expect(kv.node.role).toBe("leader");
    expect(await kv.put("a", "1")).toEqual({ version: 1, revision: 1 });
    expect(await kv.get("a")).toEqual({ found: true, value: "1", version: 1, mod_revision: 1 });
    expect(await kv.cas("a", 5, "x")).toEqual({ ok: false, version: 1, revision: 1 });
    expect(await kv.cas("a", 1, "2")).toEqual({ ok: true, version: 2, revision: 2 });
    expect(await kv.cas("b", 0, "new")).toEqual({ ok: true, version: 1, revision: 3 });
    expect(await kv.delete("a")).toEqual({ deleted: true, revision: 4 });
    expect(await kv.delete("a")).toEqual({ deleted: false, revision: 4 });
    expect(await kv.get("a")).toEqual({ found: false });
  });

  it("followers reject writes with the leader's id and serve linearizable reads themselves", async () => {
    const c = await new LocalCluster(3).start();
    const leader = await c.waitLeader();
    const follower = [...c.nodes.values()].find((k) => k && k !== leader)!;
    const putP = follower.put("k", "v");
    await c.settle();
    const e = await rejection(putP);
    expect(e.details.reason).toBe("not_leader");
    expect(e.details.leader).toBe(leader.node.id);
    const ok = leader.put("k", "v");
    await c.settle();
    expect(await ok).toMatchObject({ version: 1 });
    // The follower's read asks the leader for a confirmed read index, waits until it has
    // applied that index, and answers from its own state machine.
    const read = follower.get("k");
    await c.settle();
    expect(await read).toMatchObject({ value: "v", version: 1 });
    const own = leader.get("k");
    await c.settle();
    expect(await own).toMatchObject({ value: "v", version: 1 });
  });

  it("a follower read sees a write acknowledged just before it, even before its own log has it", async () => {
    const c = await new LocalCluster(3).start();
    const leader = await c.waitLeader();
    const follower = [...c.nodes.values()].find((k) => k && k !== leader)!;
    for (let i = 0; i < 5; i++) {
      const p = leader.put("x", `v${i}`);
      await c.settle();
      await p;
      const r = follower.get("x");
      await c.settle();
      expect(await r).toMatchObject({ value: `v${i}` });
    }
  });

  it("recovers term, vote, log and state from storage alone after every node crashes", async () => {
    const c = await new LocalCluster(3, { snapshotEvery: 7 }).start();
    let leader = await c.waitLeader();
    for (let i = 0; i < 20; i++) {
      const p = leader.put(`k${i % 4}`, `v${i}`);
      await c.settle();
      await p;
    }
    const before = new Map([...c.nodes].map(([id, kv]) => [id, kv!.node.status()]));
    for (const id of c.ids) c.crash(id);
    for (const id of c.ids) await c.open(id);
    for (const id of c.ids) {
      const s = c.nodes.get(id)!.node.status();
      const b = before.get(id)!;
      expect(s.term).toBe(b.term);
      expect(s.lastIndex).toBe(b.lastIndex);
      expect(s.snapshotIndex).toBeGreaterThan(0); // snapshots were taken and reloaded
      expect(s.conf.voters).toEqual(c.ids);
    }
    leader = await c.waitLeader();
    const reads = [0, 1, 2, 3].map((k) => leader.get(`k${k}`));
    await c.settle();
    expect((await Promise.all(reads)).map((v) => (v.found ? v.value : undefined))).toEqual(["v16", "v17", "v18", "v19"]);
    for (const kv of c.nodes.values()) expect(stored(kv!, "k3")).toEqual({ value: "v19", version: 5 });
  });

  it("a lagging node catches up through InstallSnapshot and survives a restart afterwards", async () => {
    const c = await new LocalCluster(3, { snapshotEvery: 5 }).start();
    const leader = await c.waitLeader();
    const lagger = c.ids.find((id) => id !== leader.node.id)!;
    c.isolate(lagger);
    for (let i = 0; i < 30; i++) {
      const p = leader.put("x", `${i}`);
      await c.settle();
      await p;
    }
    c.heal();
    await c.tick(5);
    const lag = c.nodes.get(lagger)!;
    expect(stored(lag, "x")).toEqual({ value: "29", version: 30 });
    expect(c.sent.some((m) => m.type === "snap" && m.to === lagger)).toBe(true);
    c.crash(lagger);
    const again = await c.open(lagger);
    expect(stored(again, "x")).toEqual({ value: "29", version: 30 });
    const p = leader.put("x", "after");
    await c.settle();
    await p;
    await c.tick(2);
    expect(stored(again, "x")).toEqual({ value: "after", version: 31 });
  });

  it("persists the vote before the vote is sent", async () => {
    const events: string[] = [];
    const volumes = new Map<string, MemoryVolume>();
    const wrap = (id: string, inner: StorageBackend): StorageBackend => ({
      kind: inner.kind,
      kv: (ns) => {
        const s = inner.kv(ns);
        return {
          ...s,
          get: (k) => s.get(k),
          del: (k) => s.del(k),
          batch: (o) => s.batch(o),
          range: (o) => s.range(o),
          put: async (k, v) => {
            await s.put(k, v);
            if (new TextDecoder().decode(k) === "hardstate") events.push(`${id} persisted ${new TextDecoder().decode(v)}`);
          },
        };
      },
      log: (ns) => inner.log(ns),
      snapshots: (ns) => inner.snapshots(ns),
      flush: () => inner.flush(),
      close: () => inner.close(),
    });
    const c = new LocalCluster(3, {
      storage: async (id) => {
        let v = volumes.get(id);
        if (!v) volumes.set(id, (v = new MemoryVolume()));
        v.inUse = false;
        return wrap(id, new MemoryBackend({ volume: v }));
      },
    });
    // Log sends in the same timeline as persists.
    const origPush = c.sent.push.bind(c.sent);
    c.sent.push = (...ms: Message[]) => {
      for (const m of ms) events.push(`${m.from} sent ${m.type} to ${m.to} term ${m.term} reject ${m.reject === true}`);
      return origPush(...ms);
    };
    await c.start();
    await c.waitLeader();
    const grants = events.filter((e) => / sent voteResp .* reject false$/.test(e));
    expect(grants.length).toBeGreaterThan(0);
    for (const g of grants) {
      const [from, , , , to, , term] = g.split(" ");
      const sentAt = events.indexOf(g);
      // The granting node persisted {term, vote: candidate} before the grant left.
      const persistedAt = events.findIndex(
        (e) => e.startsWith(`${from} persisted`) && e.includes(`"vote":"${to}"`) && e.includes(`"term":${term}`),
      );
      expect(persistedAt).toBeGreaterThanOrEqual(0);
      expect(persistedAt).toBeLessThan(sentAt);
    }
  });

  it("a storage failure stops the node and fails its pending requests instead of acting on unpersisted state", async () => {
    const kv = await RaftKV.open({
      id: "solo",
      storage: new MemoryBackend({ maxBytes: 4000 }),
      bootstrap: { voters: ["solo"], learners: [] },
      send: () => undefined,
      random: rng(2),
    });
    for (let i = 0; i < 30 && kv.node.role !== "leader"; i++) {
      kv.node.tick();
      await kv.node.idle();
    }
    const p = kv.put("big", "x".repeat(10_000));
    const e = await rejection(p);
    expect(e.details.outcome).toBe("unknown");
    await expect(kv.node.idle()).rejects.toThrow(/full/);
    expect((await rejection(kv.put("a", "b"))).details.outcome).toBe("unknown");
  });

  it("times out a proposal that cannot commit (outcome unknown) and bounds pending requests", async () => {
    const c = await new LocalCluster(3, { requestTimeoutTicks: 5, maxPendingRequests: 3 }).start();
    const leader = await c.waitLeader();
    for (const id of c.ids) if (id !== leader.node.id) c.isolate(id);
    const ps = [leader.put("a", "1"), leader.put("a", "2"), leader.put("a", "3")];
    const over = await rejection(leader.put("a", "4"));
    expect(over.code).toBe(1007);
    await c.idle();
    for (let i = 0; i < 7; i++) {
      leader.node.tick();
      await leader.node.idle();
    }
    for (const p of ps) expect((await rejection(p)).details.outcome).toBe("unknown");
  });

  it("membership change through the driver: a fourth node joins as learner, then voter", async () => {
    const c = await new LocalCluster(3).start();
    const leader = await c.waitLeader();
    const p0 = leader.put("k", "v");
    await c.settle();
    await p0;
    // The new node starts with empty storage and no bootstrap.
    const joiner = await RaftKV.open({
      id: "n4",
      storage: new MemoryBackend(),
      send: (_to, m) => c.queue.push(structuredClone(m)),
      random: rng(9),
    });
    c.nodes.set("n4", joiner);
    const add = leader.node.proposeConfChange({ type: "addLearner", node: "n4" });
    await c.settle();
    await add;
    await c.tick(2);
    expect(stored(joiner, "k")).toEqual({ value: "v", version: 1 });
    const promote = leader.node.proposeConfChange({ type: "addVoter", node: "n4" });
    await c.settle();
    await promote;
    await c.tick(2);
    expect(joiner.node.status().conf.voters).toEqual(["n1", "n2", "n3", "n4"]);
    const t = leader.node.transferLeader("n4");
    await c.settle();
    await t;
    await c.tick(2);
    expect(joiner.node.role).toBe("leader");
  });
});

describe("RaftNode on the file backend", () => {
  it("a whole cluster restarted from its data directories keeps every committed write", async () => {
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { FileBackend } = await import("@mpreg/persistence");
    const root = await mkdtemp(join(tmpdir(), "mpreg-raft-file-"));
    const backends: { close(): Promise<void> }[] = [];
    const mk = () =>
      new LocalCluster(3, {
        snapshotEvery: 6,
        storage: async (id) => {
          const b = await FileBackend.open({ dir: join(root, id), fsync: "batch" });
          backends.push(b);
          return b;
        },
      });
    try {
      const c = await mk().start();
      const leader = await c.waitLeader();
      for (let i = 0; i < 15; i++) {
        const p = leader.put(`k${i % 3}`, `v${i}`);
        await c.settle();
        await p;
      }
      for (const kv of c.nodes.values()) await kv!.node.stop();
      for (const b of backends.splice(0)) await b.close();

      const again = await mk().start();
      for (const kv of again.nodes.values()) expect(kv!.node.status().snapshotIndex).toBeGreaterThan(0);
      const l2 = await again.waitLeader();
      const reads = [0, 1, 2].map((k) => l2.get(`k${k}`));
      await again.settle();
      expect((await Promise.all(reads)).map((v) => (v.found ? v.value : undefined))).toEqual(["v12", "v13", "v14"]);
      for (const kv of again.nodes.values()) await kv!.node.stop();
      for (const b of backends.splice(0)) await b.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
