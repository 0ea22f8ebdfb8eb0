import { describe, expect, it } from "vitest";
import { RaftCore } from "../src/raft.js";
import type { Entry, Message, Snapshot } from "../src/types.js";
import { CoreNet, rng } from "./core-net.js";

const enc = (s: string) => new TextEncoder().encode(s);

describe("election", () => {
  it("a campaign wins with a majority and commits a no-op of the new term", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    expect(net.leaders()).toEqual(["a"]);
    const a = net.get("a");
    // Bootstrap: three conf entries at term 1, then the no-op of term 2.
    expect(a.term).toBe(2);
    expect(a.log.lastIndex()).toBe(4);
    expect(a.log.entry(4)!.data.length).toBe(0);
    expect(a.log.committed).toBe(4);
    for (const id of ["b", "c"]) {
      expect(net.get(id).role).toBe("follower");
      expect(net.get(id).lead).toBe("a");
      expect(net.get(id).log.committed).toBe(4);
    }
  });

  it("elects exactly one leader by ticking alone (randomized timeouts)", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const net = new CoreNet(["a", "b", "c", "d", "e"], { seed });
      net.tick(40);
      expect(net.leaders().length).toBe(1);
    }
  });

  it("a candidate without a majority does not win, and a lost election returns to follower", () => {
    const net = new CoreNet(["a", "b", "c"], { preVote: false });
    net.isolate("a");
    net.campaign("a");
    expect(net.get("a").role).toBe("candidate");
    expect(net.get("a").term).toBe(2);
    net.recover();
    // b and c have voted for nobody; both reject a's later request? no: a simply retries.
    net.campaign("b");
    expect(net.leaders()).toEqual(["b"]);
    expect(net.get("a").role).toBe("follower");
  });

  it("split votes: two candidates in the same term both lose, a later election succeeds", () => {
    const net = new CoreNet(["a", "b", "c", "d"], { preVote: false });
    // a and b campaign at the same time; c votes a, d votes b: 2/4 each, no majority (3).
    net.cutLink("a", "d");
    net.cutLink("b", "c");
    net.get("a").campaign();
    net.get("b").campaign();
    net.deliver();
    expect(net.get("a").term).toBe(2);
    expect(net.get("b").term).toBe(2);
    expect(net.leaders()).toEqual([]);
    net.recover();
    net.tick(60);
    expect(net.leaders().length).toBe(1);
    const leader = net.get(net.leaders()[0]!);
    expect(leader.term).toBeGreaterThan(2);
  });

  it("a vote is denied to a candidate whose log is behind", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "x");
    net.isolate("c");
    net.propose("a", "y"); // c misses y
    net.recover();
    net.isolate("a");
    net.campaign("c");
    expect(net.get("c").role).not.toBe("leader");
    net.campaign("b");
    expect(net.get("b").role).toBe("leader");
  });
});

describe("pre-vote and check-quorum", () => {
  it("pre-vote: a partitioned node that keeps timing out does not raise its term or disrupt the leader", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    net.tick(100, ["c"]);
    expect(net.get("c").term).toBe(2); // pre-votes never raised it
    expect(net.get("c").role).toBe("preCandidate");
    net.recover();
    net.tick(3);
    expect(net.get("a").role).toBe("leader");
    expect(net.get("a").term).toBe(2);
    expect(net.get("c").lead).toBe("a");
  });

  it("without pre-vote the same partition forces a new election after healing", () => {
    const net = new CoreNet(["a", "b", "c"], { preVote: false, checkQuorum: false });
    net.campaign("a");
    net.isolate("c");
    net.tick(100, ["c"]);
    expect(net.get("c").term).toBeGreaterThan(5);
    net.recover();
    net.tick(30);
    expect(net.get("a").term).toBeGreaterThan(2); // disrupted
  });

  it("check-quorum: a leader that loses its majority steps down; the majority elects a new leader", () => {
    const net = new CoreNet(["a", "b", "c", "d", "e"]);
    net.campaign("a");
    net.cutLink("a", "c");
    net.cutLink("a", "d");
    net.cutLink("a", "e");
    net.cutLink("b", "c");
    net.cutLink("b", "d");
    net.cutLink("b", "e");
    net.tick(150);
    expect(net.get("a").role).not.toBe("leader");
    const majorityLeaders = ["c", "d", "e"].filter((id) => net.get(id).role === "leader");
    expect(majorityLeaders.length).toBe(1);
    const newLeader = majorityLeaders[0]!;
    net.propose(newLeader, "on-majority-side");
    expect(net.get(newLeader).log.committed).toBe(net.get(newLeader).log.lastIndex());
    net.recover();
    net.tick(5);
    expect(net.leaders()).toEqual([newLeader]);
    for (const id of ["a", "b", "c", "d", "e"]) expect(net.appliedData(id)).toEqual(["on-majority-side"]);
  });

  it("check-quorum lease: followers that hear from the leader ignore a vote request with a higher term", () => {
    const net = new CoreNet(["a", "b", "c"], { preVote: false });
    net.campaign("a");
    const b = net.get("b");
    b.step({ type: "vote", from: "c", to: "b", term: 5, index: 99, logTerm: 99 });
    expect(b.term).toBe(2);
    expect(b.ready().messages).toEqual([]);
  });
});

describe("replication", () => {
  it("a candidate whose last entry has an older term cannot win (election restriction)", () => {
    const net = new CoreNet(["a", "b", "c", "d", "e"], { checkQuorum: false });
    net.campaign("a"); // term 2, no-op at 6 (after five bootstrap entries)
    net.isolate("a");
    net.get("a").propose(enc("old")); // index 7, term 2, only on a
    net.deliver();
    net.campaign("b"); // term 3, no-op at 7 on b..e
    expect(net.get("b").role).toBe("leader");
    net.recover();
    net.isolate("b");
    const a = net.get("a");
    expect(a.log.term(7)).toBe(2);
    expect(net.get("c").log.term(7)).toBe(3);
    // a learns of term 3 (making it a follower) without receiving b's log.
    a.step({ type: "appResp", from: "c", to: "a", term: 3, index: 0 });
    expect(a.role).toBe("follower");
    net.campaign("a");
    expect(a.role).not.toBe("leader");
  });

  it("a leader does not commit an earlier-term entry replicated to a majority until its no-op commits", () => {
    const net = new CoreNet(["a", "b", "c"], { checkQuorum: false });
    net.campaign("a");
    // Leader a appends at term 1 but only b persists it; the ack is dropped.
    net.isolate("c");
    net.ignore("appResp");
    net.propose("a", "t1");
    net.recover();
    expect(net.get("b").log.lastIndex()).toBe(5);
    expect(net.get("a").log.committed).toBe(4);
    // b becomes leader of term 2; entry 2 (term 1) is on a majority but may commit only with b's no-op.
    net.isolate("a");
    net.isolate("c");
    net.get("b").campaign();
    net.recover();
    net.isolate("a");
    net.ignore("appResp");
    net.deliver(); // b's votes: c grants; b becomes leader, sends appends, acks are dropped
    expect(net.get("b").role).toBe("leader");
    expect(net.get("b").log.committed).toBe(4);
    net.recover();
    net.tick(2);
    expect(net.get("b").log.committed).toBe(6); // entry 5 committed together with the term-3 no-op
    expect(net.appliedData("c")).toEqual(["t1"]);
  });

  it("log divergence is repaired: a deposed leader's uncommitted entries are replaced", () => {
    const net = new CoreNet(["a", "b", "c", "d", "e"], { checkQuorum: false });
    net.campaign("a");
    net.propose("a", "1");
    net.isolate("a");
    for (let i = 0; i < 5; i++) net.get("a").propose(enc(`lost${i}`));
    net.deliver();
    net.campaign("b");
    for (let i = 0; i < 30; i++) net.propose("b", `b${i}`);
    net.recover();
    net.tick(5);
    const want = ["1", ...Array.from({ length: 30 }, (_, i) => `b${i}`)];
    for (const id of ["a", "b", "c", "d", "e"]) {
      expect(net.appliedData(id)).toEqual(want);
      expect(net.get(id).log.lastIndex()).toBe(net.get("b").log.lastIndex());
    }
  });

  it("the conflict hint skips a whole divergent term in one round trip", () => {
    const net = new CoreNet(["a", "b", "c"], { checkQuorum: false });
    net.campaign("a");
    net.isolate("a");
    for (let i = 0; i < 50; i++) net.get("a").propose(enc(`x${i}`));
    net.deliver();
    net.campaign("b");
    net.propose("b", "y");
    net.recover();
    net.log.length = 0;
    net.tick(2);
    const rejects = net.log.filter((m) => m.type === "appResp" && m.from === "a" && m.reject);
    expect(rejects.length).toBeLessThanOrEqual(2);
    expect(net.appliedData("a")).toEqual(["y"]);
  });

  it("a follower never truncates on a stale or reordered append", () => {
    const f = new RaftCore({ id: "f", random: rng(1) }); // a joining node: empty log
    const ent = (i: number): Entry => ({ index: i, term: 1, type: "normal", data: enc(`e${i}`) });
    const app = (prev: number, ents: Entry[], commit: number): Message => ({
      type: "app", from: "l", to: "f", term: 1, index: prev, logTerm: prev === 0 ? 0 : 1, entries: ents, commit,
    });
    f.step(app(0, [ent(1), ent(2), ent(3), ent(4)], 0));
    expect(f.log.lastIndex()).toBe(4);
    // An older message with fewer entries arrives late.
    f.step(app(0, [ent(1), ent(2)], 0));
    expect(f.log.lastIndex()).toBe(4);
    f.step(app(1, [ent(2)], 2));
    expect(f.log.lastIndex()).toBe(4);
    expect(f.log.committed).toBe(2); // min(commit, last index of the message)
    const rd = f.ready();
    const acks = rd.messages.filter((m) => m.type === "appResp").map((m) => m.index);
    expect(acks).toEqual([4, 2, 2]);
  });

  it("batches and pipelines: many proposals travel in few messages", () => {
    const net = new CoreNet(["a", "b", "c"], { maxMsgEntries: 100 });
    net.campaign("a");
    const a = net.get("a");
    for (let i = 0; i < 250; i++) a.propose(enc(`p${i}`));
    net.log.length = 0;
    net.deliver();
    const apps = net.log.filter((m) => m.type === "app" && (m.entries?.length ?? 0) > 0);
    expect(apps.every((m) => m.entries!.length <= 100)).toBe(true);
    expect(net.appliedData("c").length).toBe(250);
    expect(a.progress("b")!.state).toBe("replicate");
  });
});

describe("append size", () => {
  it("an append message carries at most maxMsgBytes of entry data (one oversized entry still goes alone)", () => {
    const net = new CoreNet(["a", "b", "c"], { maxMsgBytes: 1000 });
    net.campaign("a");
    const a = net.get("a");
    for (let i = 0; i < 30; i++) a.propose(new Uint8Array(i === 7 ? 5000 : 300).fill(i));
    net.log.length = 0;
    net.deliver();
    const apps = net.log.filter((m) => m.type === "app" && (m.entries?.length ?? 0) > 0);
    for (const m of apps) {
      const bytes = m.entries!.reduce((n, e) => n + e.data.length, 0);
      if (m.entries!.length > 1) expect(bytes).toBeLessThanOrEqual(1000);
    }
    expect(apps.some((m) => m.entries!.length === 1 && m.entries![0]!.data.length === 5000)).toBe(true);
    expect(apps.some((m) => m.entries!.length === 3)).toBe(true); // 3 × 300 fit, 4 do not
    expect(net.nodes.get("c")!.applied.filter((e) => e.data.length > 0).length).toBe(30);
  });
});

describe("snapshots", () => {
  it("a lagging follower catches up from a snapshot after the leader compacted its log", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    for (let i = 0; i < 20; i++) net.propose("a", `v${i}`);
    const a = net.get("a");
    a.compact(a.log.applied, enc("image@" + a.log.applied));
    expect(a.log.firstIndex()).toBe(25);
    net.recover();
    net.tick(3);
    const c = net.nodes.get("c")!;
    expect(c.snapshots.length).toBe(1);
    expect(new TextDecoder().decode(c.snapshots[0]!.data)).toBe("image@24");
    expect(c.core.log.committed).toBe(24);
    net.propose("a", "after");
    expect(net.appliedData("c")).toEqual(["after"]);
    expect(c.core.confState().voters).toEqual(["a", "b", "c"]);
  });

  it("a lost snapshot is resent", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    for (let i = 0; i < 5; i++) net.propose("a", `v${i}`);
    const a = net.get("a");
    a.compact(a.log.applied, enc("img"));
    net.recover();
    net.ignore("snap");
    net.tick(5);
    expect(net.get("a").progress("c")!.state).toBe("snapshot");
    net.recover();
    net.tick(30);
    expect(net.get("c").log.committed).toBe(a.log.committed);
  });
});

describe("chunked snapshots", () => {
  const image = (i: number) => enc(`the image of every entry up to index ${i}, long enough for several chunks`);

  /** A 3-node net where c lags behind a compacted leader a; chunks of 8 bytes, 2 in flight. */
  function laggingNet(seed: number) {
    const ids = ["a", "b", "c"];
    const cores = ids.map((id, i) => new RaftCore({ id, random: rng(seed * 10 + i), electionTick: 10, maxSnapshotChunkBytes: 8, maxSnapshotInflight: 2 }, { bootstrap: { voters: ids, learners: [] } }));
    const pool: Message[] = [];
    const installed: Snapshot[] = [];
    const proc = (c: RaftCore) => {
      while (c.hasReady()) {
        const rd = c.ready();
        if (rd.snapshot && c.id === "c") installed.push(rd.snapshot);
        pool.push(...rd.messages);
        c.advance(rd);
      }
    };
    const deliverAll = (ok: (m: Message) => boolean) => {
      while (pool.length > 0) {
        const m = pool.shift()!;
        if (!ok(m)) continue;
        const c = cores[ids.indexOf(m.to)]!;
        c.step(m);
        proc(c);
      }
    };
    const a = cores[0]!;
    a.campaign();
    proc(a);
    deliverAll(() => true);
    for (let i = 0; i < 10; i++) {
      a.propose(new Uint8Array([i]));
      proc(a);
      deliverAll((m) => m.to !== "c" && m.from !== "c");
    }
    a.compact(a.log.applied, image(a.log.applied));
    return { ids, cores, pool, installed, proc };
  }

  it("a snapshot arrives in order, in chunks under the limit, through loss, duplication and reordering", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { ids, cores, pool, installed, proc } = laggingNet(seed);
      const r = rng(seed);
      let maxInflight = 0;
      for (let s = 0; s < 5000 && installed.length === 0; s++) {
        const inflight = pool.filter((m) => m.type === "snap").length;
        maxInflight = Math.max(maxInflight, inflight);
        if (pool.length === 0 || r() < 0.05) {
          for (const c of cores) {
            c.tick();
            proc(c);
          }
          continue;
        }
        const m = pool.splice(Math.floor(r() * pool.length), 1)[0]!;
        if (m.type === "snap") expect(m.snapshot!.data.length).toBeLessThanOrEqual(8);
        if (r() < 0.1) continue; // lost
        if (r() < 0.1) pool.push(structuredClone(m)); // duplicated
        const c = cores[ids.indexOf(m.to)]!;
        c.step(structuredClone(m));
        proc(c);
      }
      expect(installed.length, `seed ${seed}`).toBe(1);
      expect(new TextDecoder().decode(installed[0]!.data)).toBe(new TextDecoder().decode(image(installed[0]!.meta.index)));
      // Flow control: never more than the window (plus duplicates and resends) in the network.
      expect(maxInflight).toBeLessThanOrEqual(12);
    }
  });

  it("a stalled transfer resumes from what the follower holds; a follower that restarted gets it from the start", () => {
    const { ids, cores, pool, installed, proc } = laggingNet(3);
    const a = cores[0]!;
    const deliverTo = (id: string, keep: (m: Message) => boolean) => {
      const batch = pool.splice(0);
      for (const m of batch) {
        if (m.to !== id || !keep(m)) continue;
        const core = cores[ids.indexOf(id)]!;
        core.step(m);
        proc(core);
      }
    };
    /** An election timeout without snapshot progress: other traffic flows; chunks sent meanwhile stay in the pool. */
    const timeout = () => {
      const held: Message[] = [];
      for (let t = 0; t < 11; t++) {
        a.tick();
        proc(a);
        for (let k = 0; k < 100 && pool.length > 0; k++) {
          const m = pool.shift()!;
          if (m.type === "snap") held.push(m);
          if (m.type === "snap" || m.type === "snapResp") continue;
          const core = cores[ids.indexOf(m.to)]!;
          core.step(m);
          proc(core);
        }
      }
      expect(a.role).toBe("leader");
      pool.push(...held);
    };
    // Heartbeats and probes until the leader starts sending the snapshot to c.
    for (let i = 0; i < 50 && !pool.some((m) => m.type === "snap"); i++) {
      a.tick();
      proc(a);
      for (let k = 0; k < 100 && pool.length > 0 && !pool.some((m) => m.type === "snap"); k++) {
        const m = pool.shift()!;
        const core = cores[ids.indexOf(m.to)]!;
        core.step(m);
        proc(core);
      }
    }
    pool.splice(0, pool.length, ...pool.filter((m) => m.type === "snap"));
    expect(pool.filter((m) => m.type === "snap").map((m) => m.offset)).toEqual([0, 8]);
    // c takes the first two chunks but its answers are lost; the leader, without progress for an
    // election timeout, sends from the last acknowledged byte (0) again.
    deliverTo("c", (m) => m.type === "snap");
    pool.splice(0);
    timeout();
    expect(pool.filter((m) => m.type === "snap").map((m) => m.offset)).toEqual([0, 8]);
    // c answers the duplicates with what it holds (16 bytes): the leader continues from there.
    deliverTo("c", (m) => m.type === "snap");
    deliverTo("a", (m) => m.type === "snapResp");
    expect(pool.filter((m) => m.type === "snap").map((m) => m.offset)).toEqual([16, 24]);
    // c restarts (its partial transfer is gone): it refuses chunk 16 and the leader starts over.
    const c = cores[2]!;
    cores[2] = new RaftCore(
      { id: "c", random: rng(99), electionTick: 10, maxSnapshotChunkBytes: 8, maxSnapshotInflight: 2 },
      { hardState: c.hardState(), entries: c.log.entries.slice() },
    );
    deliverTo("c", (m) => m.type === "snap");
    deliverTo("a", (m) => m.type === "snapResp");
    expect(pool.filter((m) => m.type === "snap").map((m) => m.offset)).toEqual([0, 8]);
    for (let i = 0; i < 100 && installed.length === 0; i++) {
      deliverTo("c", () => true);
      deliverTo("a", () => true);
    }
    expect(installed.length).toBe(1);
    expect(new TextDecoder().decode(installed[0]!.data)).toBe(new TextDecoder().decode(image(installed[0]!.meta.index)));
  });
});

describe("membership", () => {
  it("adds a learner, promotes it to voter, then removes a voter", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "before");
    net.add("d", { random: rng(99) }, undefined);
    net.get("a").proposeConfChange({ type: "addLearner", node: "d" });
    net.tick(3);
    expect(net.get("d").confState()).toEqual({ voters: ["a", "b", "c"], learners: ["d"] });
    expect(net.appliedData("d")).toEqual(["before"]);
    // A learner never campaigns.
    net.isolate("d");
    net.tick(50, ["d"]);
    expect(net.get("d").role).toBe("follower");
    net.recover();
    net.get("a").proposeConfChange({ type: "addVoter", node: "d" });
    net.tick(3);
    expect(net.get("a").confState().voters).toEqual(["a", "b", "c", "d"]);
    // One change at a time: a second one waits for the first to commit.
    net.isolate("b");
    net.isolate("c");
    net.get("a").proposeConfChange({ type: "remove", node: "c" });
    expect(() => net.get("a").proposeConfChange({ type: "remove", node: "b" })).toThrow(/in progress/);
    net.recover();
    net.tick(3);
    expect(net.get("a").confState().voters).toEqual(["a", "b", "d"]);
    // c is gone: the remaining three make progress even with c isolated.
    net.isolate("c");
    net.propose("a", "after");
    expect(net.appliedData("d")).toEqual(["before", "after"]);
  });

  it("a removed leader steps down and the rest elect a new one", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.get("a").proposeConfChange({ type: "remove", node: "a" });
    net.tick(3);
    expect(net.get("a").role).toBe("follower");
    net.tick(40, ["b", "c"]);
    const leaders = net.leaders();
    expect(leaders.length).toBe(1);
    expect(["b", "c"]).toContain(leaders[0]);
    expect(net.get(leaders[0]!).confState().voters).toEqual(["b", "c"]);
  });
});

describe("leader transfer", () => {
  it("hands leadership to an up-to-date follower at once", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "x");
    net.get("a").transferLeader("c");
    net.deliver();
    expect(net.leaders()).toEqual(["c"]);
    expect(net.get("c").term).toBe(3);
  });

  it("catches a lagging target up first and refuses proposals meanwhile", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    net.propose("a", "x");
    net.recover();
    net.ignore("app");
    net.get("a").transferLeader("c");
    expect(() => net.get("a").propose(enc("y"))).toThrow(/transfer/);
    net.recover();
    net.tick(2);
    expect(net.leaders()).toEqual(["c"]);
    expect(net.appliedData("c")).toEqual(["x"]);
  });

  it("a transfer that cannot finish is abandoned after an election timeout", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("c");
    net.get("a").transferLeader("c");
    net.tick(12);
    expect(net.get("a").role).toBe("leader");
    expect(net.get("a").leadTransferTarget).toBe(null);
    net.propose("a", "ok");
  });
});

describe("ReadIndex", () => {
  it("a read is released after a quorum confirms leadership, at the commit index", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "x");
    const a = net.get("a");
    a.readIndex("r1");
    net.deliver();
    const rs = net.nodes.get("a")!.reads.map((r) => `${r.context}@${r.index}`);
    expect(rs).toEqual(["r1@5"]);
  });

  it("a leader cut off from its quorum never confirms a read", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.isolate("a");
    const a = net.get("a");
    a.readIndex("r");
    net.tick(3, ["a"]);
    const got = net.nodes.get("a")!.reads.length;
    expect(got).toBe(0);
    expect(() => new CoreNet(["x", "y", "z"]).get("y").readIndex("q")).toThrow(/not the leader/);
  });
});

describe("ReadIndex on followers", () => {
  const reads = (net: CoreNet, id: string) => net.nodes.get(id)!.reads.map((r) => `${r.context}@${r.index}`);

  it("a follower's read gets the leader's commit index once a quorum confirms the leader", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "x");
    net.propose("a", "y");
    // Cut a → c so the quorum needed for the confirmation is a + b.
    net.cutLink("a", "c");
    net.get("c").readIndex("c/r1");
    net.deliver();
    expect(reads(net, "c")).toEqual([]); // c's request never reached a
    net.recover();
    net.get("b").readIndex("b/r1");
    net.deliver();
    const commit = net.get("a").hardState().commit;
    expect(reads(net, "b")).toEqual([`b/r1@${commit}`]);
    expect(reads(net, "a")).toEqual([]); // answered to b, not released on a
    expect(net.log.some((m) => m.type === "readIndex" && m.from === "b" && m.to === "a")).toBe(true);
    expect(net.log.some((m) => m.type === "readIndexResp" && m.to === "b" && m.index === commit)).toBe(true);
  });

  it("a leader cut off from its quorum never answers a follower's read", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.cutLink("a", "c");
    net.ignore("heartbeatResp");
    net.get("b").readIndex("b/r");
    net.tick(3, ["a"]);
    expect(reads(net, "b")).toEqual([]);
  });

  it("a fresh leader answers only after its no-op commits; without a leader a read is refused", () => {
    const net = new CoreNet(["a", "b", "c"]);
    expect(() => net.get("b").readIndex("b/r0")).toThrow(/not the leader/);
    net.ignore("appResp");
    net.campaign("a");
    net.get("b").readIndex("b/r1");
    net.deliver();
    expect(reads(net, "b")).toEqual([]); // a's no-op is not committed yet
    net.recover();
    net.tick(2, ["a"]);
    expect(reads(net, "b")).toEqual([`b/r1@${net.get("a").hardState().commit}`]);
  });

  it("an answer from another leader or an older term releases nothing", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    const term = net.get("a").term;
    net.get("b").step({ type: "readIndexResp", from: "c", to: "b", term, index: 1, context: "b/x" });
    net.get("b").step({ type: "readIndexResp", from: "a", to: "b", term: term - 1, index: 1, context: "b/y" });
    net.deliver();
    expect(reads(net, "b")).toEqual([]);
  });
});

describe("durability", () => {
  it("a core rebuilt from its persisted state keeps term, vote, log and membership", () => {
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "x");
    net.get("a").proposeConfChange({ type: "addLearner", node: "z" });
    net.deliver();
    const b = net.get("b");
    const restarted = new RaftCore(
      { id: "b", random: rng(5) },
      { hardState: b.hardState(), entries: b.log.entries.slice(), bootstrap: { voters: ["a", "b", "c"], learners: [] } },
    );
    expect(restarted.term).toBe(b.term);
    expect(restarted.vote).toBe(b.vote);
    expect(restarted.log.lastIndex()).toBe(b.log.lastIndex());
    expect(restarted.confState()).toEqual({ voters: ["a", "b", "c"], learners: ["z"] });
  });

  it("rejects bad configuration and inconsistent stored state", () => {
    expect(() => new RaftCore({ id: "a", random: rng(1), electionTick: 2, heartbeatTick: 2 })).toThrow();
    expect(
      () => new RaftCore({ id: "a", random: rng(1) }, { hardState: { term: 1, vote: null, commit: 5 } }),
    ).toThrow(/commit/);
  });
});
