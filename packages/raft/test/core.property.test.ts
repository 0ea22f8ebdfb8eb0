import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RaftCore } from "../src/raft.js";
import type { Entry, HardState, Message, Snapshot } from "../src/types.js";
import { rng } from "./core-net.js";

/**
 * Property test of the pure core: fast-check drives random schedules of ticks, deliveries (in
 * any order), drops, duplicates, proposals, compactions and crash-restarts from the persisted
 * state, and the Raft safety invariants are checked after every action.
 */
type Action =
  | { t: "tick"; node: number }
  | { t: "deliver"; pick: number }
  | { t: "drop"; pick: number }
  | { t: "dup"; pick: number }
  | { t: "propose"; node: number }
  | { t: "compact"; node: number }
  | { t: "restart"; node: number }
  | { t: "conf"; node: number; kind: number }
  | { t: "transfer"; node: number };

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant("tick" as const), node: fc.nat(4) }) },
  { weight: 10, arbitrary: fc.record({ t: fc.constant("deliver" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("drop" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("dup" as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant("propose" as const), node: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("compact" as const), node: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("restart" as const), node: fc.nat(4) }) },
);

/** Adds membership changes and leader transfers to the schedule. */
const actionWithConf: fc.Arbitrary<Action> = fc.oneof(
  { weight: 20, arbitrary: action },
  { weight: 5, arbitrary: fc.record({ t: fc.constant("conf" as const), node: fc.nat(5), kind: fc.nat(2) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant("transfer" as const), node: fc.nat(5) }) },
);

interface Disk {
  hs: HardState | undefined;
  snapshot: Snapshot | undefined;
  entries: Entry[];
}

/** The state-machine image of index `i` (any node makes the same one): several chunks long. */
function snapshotImage(i: number): Uint8Array {
  return new TextEncoder().encode(`image of everything up to ${i}`);
}

function run(n: number, actions: Action[], seed: number, chunked = true): { leaders: number; maxCommit: number; confCommitted: number; installed: number } {
  // One spare node outside the initial membership can be added by conf changes.
  const ids = Array.from({ length: n + 1 }, (_, i) => `n${i}`);
  const disks: Disk[] = ids.map(() => ({ hs: undefined, snapshot: undefined, entries: [] }));
  const boot = { voters: ids.slice(0, n), learners: [] };
  const mk = (i: number, gen: number) => {
    const d = disks[i]!;
    const fresh = !d.hs && !d.snapshot && d.entries.length === 0;
    return new RaftCore(
      // Tiny snapshot chunks: transfers take several messages, which the schedule drops,
      // duplicates and reorders.
      { id: ids[i]!, random: rng(seed * 31 + i * 7 + gen * 1009), electionTick: 5, ...(chunked ? { maxSnapshotChunkBytes: 8, maxSnapshotInflight: 2 } : {}) },
      fresh ? (i < n ? { bootstrap: boot } : {}) : { ...(d.hs ? { hardState: d.hs } : {}), ...(d.snapshot ? { snapshot: d.snapshot } : {}), entries: d.entries.slice() },
    );
  };
  const cores = ids.map((_, i) => mk(i, 0));
  const total = ids.length;
  let gen = 1;
  const pool: Message[] = [];
  const leaderOfTerm = new Map<number, string>();
  const committed = new Map<number, number>(); // index -> term, committed somewhere
  let proposals = 0;
  let installed = 0;

  const process = (i: number) => {
    const c = cores[i]!;
    while (c.hasReady()) {
      const rd = c.ready();
      const d = disks[i]!;
      if (rd.snapshot) {
        // A snapshot assembled from chunks is exactly the image its leader made.
        const want = snapshotImage(rd.snapshot.meta.index);
        if (Buffer.compare(Buffer.from(rd.snapshot.data), Buffer.from(want)) !== 0) {
          throw new Error(`${c.id} installed a corrupt snapshot at ${rd.snapshot.meta.index}`);
        }
        d.snapshot = rd.snapshot;
        installed++;
        d.entries = [];
      }
      if (rd.entries.length > 0) {
        const first = rd.entries[0]!.index;
        d.entries = d.entries.filter((e) => e.index < first).concat(rd.entries);
      }
      if (rd.hardState) d.hs = rd.hardState;
      pool.push(...rd.messages);
      c.advance(rd);
    }
  };
  const check = () => {
    for (const c of cores) {
      if (c.role === "leader") {
        const prev = leaderOfTerm.get(c.term);
        if (prev !== undefined && prev !== c.id) throw new Error(`two leaders in term ${c.term}`);
        if (prev === undefined) {
          leaderOfTerm.set(c.term, c.id);
          for (const [idx, t] of committed) {
            if (idx > c.log.snapIndex && c.log.term(idx) !== t) throw new Error(`leader ${c.id} misses committed ${idx}`);
          }
        }
      }
      for (let k = c.log.snapIndex + 1; k <= c.log.committed; k++) {
        const t = c.log.term(k)!;
        const known = committed.get(k);
        if (known !== undefined && known !== t) throw new Error(`committed entry ${k} differs on ${c.id}`);
        committed.set(k, t);
      }
    }
    // Log matching: same index and term => same entries up to there.
    for (let a = 0; a < n; a++) {
      for (let b = a + 1; b < n; b++) {
        const la = cores[a]!.log;
        const lb = cores[b]!.log;
        const lo = Math.max(la.snapIndex, lb.snapIndex) + 1;
        const hi = Math.min(la.lastIndex(), lb.lastIndex());
        let matched = false;
        for (let k = hi; k >= lo; k--) {
          const ea = la.entry(k)!;
          const eb = lb.entry(k)!;
          if (!matched && ea.term === eb.term) matched = true;
          if (matched && (ea.term !== eb.term || Buffer.compare(Buffer.from(ea.data), Buffer.from(eb.data)) !== 0)) {
            throw new Error(`log matching violated at ${k} between ${cores[a]!.id} and ${cores[b]!.id}`);
          }
        }
      }
    }
  };

  for (let i = 0; i < n; i++) process(i);
  for (const a of actions) {
    switch (a.t) {
      case "tick": {
        const i = a.node % total;
        cores[i]!.tick();
        process(i);
        break;
      }
      case "deliver":
      case "drop":
      case "dup": {
        if (pool.length === 0) break;
        const k = a.pick % pool.length;
        const m = pool[k]!;
        if (a.t !== "dup") pool.splice(k, 1);
        if (a.t === "drop") break;
        const i = ids.indexOf(m.to);
        cores[i]!.step(structuredClone(m));
        process(i);
        break;
      }
      case "propose": {
        // Propose at a leader (the newest one when a deposed leader has not noticed yet).
        const leaders = cores.map((c, i) => [c, i] as const).filter(([c]) => c.role === "leader");
        if (leaders.length > 0) {
          const [c, i] = leaders[a.node % leaders.length]!;
          if (c.leadTransferTarget === null) {
            c.propose(new TextEncoder().encode(`p${proposals++}`));
            process(i);
          }
        }
        break;
      }
      case "compact": {
        const i = a.node % total;
        const c = cores[i]!;
        // The latest snapshot may be ahead of the log's start (the leader keeps the log after a
        // snapshot still on its way to a follower).
        if (c.log.applied > Math.max(c.log.snapIndex, c.latestSnapshot()?.meta.index ?? 0)) {
          const s = c.compact(c.log.applied, snapshotImage(c.log.applied));
          disks[i]!.snapshot = s;
          disks[i]!.entries = disks[i]!.entries.filter((e) => e.index > s.meta.index);
        }
        break;
      }
      case "restart": {
        const i = a.node % total;
        cores[i] = mk(i, gen++);
        process(i);
        break;
      }
      case "conf":
      case "transfer": {
        const leaders = cores.filter((c) => c.role === "leader");
        const l = leaders[0];
        if (!l) break;
        const target = ids[a.node % total]!;
        try {
          if (a.t === "transfer") l.transferLeader(target);
          else {
            const type = (["addLearner", "addVoter", "remove"] as const)[a.kind % 3]!;
            l.proposeConfChange({ type, node: target });
          }
        } catch {
          // Refused (one change at a time, not a member, transfer running...): fine.
        }
        process(cores.indexOf(l));
        break;
      }
    }
    check();
  }
  let confCommitted = 0;
  for (const c of cores) {
    let k = 0;
    for (let i = c.log.snapIndex + 1; i <= c.log.committed; i++) if (c.log.entry(i)!.type === "conf") k++;
    confCommitted = Math.max(confCommitted, k - n); // beyond the bootstrap entries
  }
  return { leaders: leaderOfTerm.size, maxCommit: Math.max(...cores.map((c) => c.log.committed)), confCommitted, installed };
}

describe("core safety under random schedules (fast-check)", () => {
  it("3 nodes: election safety, log matching, leader completeness, state machine safety", () => {
    fc.assert(
      fc.property(fc.array(action, { minLength: 100, maxLength: 600 }), fc.nat(1000), (actions, seed) => {
        run(3, actions, seed);
      }),
      { numRuns: 400 },
    );
  });

  it("5 nodes: the same invariants", () => {
    fc.assert(
      fc.property(fc.array(action, { minLength: 100, maxLength: 600 }), fc.nat(1000), (actions, seed) => {
        run(5, actions, seed);
      }),
      { numRuns: 200 },
    );
  });

  it("3 nodes + a spare, with membership changes and leader transfers", () => {
    fc.assert(
      fc.property(fc.array(actionWithConf, { minLength: 100, maxLength: 600 }), fc.nat(1000), (actions, seed) => {
        run(3, actions, seed);
      }),
      { numRuns: 600 },
    );
  });

  it("5 nodes + a spare, with membership changes and leader transfers", () => {
    fc.assert(
      fc.property(fc.array(actionWithConf, { minLength: 100, maxLength: 600 }), fc.nat(1000), (actions, seed) => {
        run(5, actions, seed);
      }),
      { numRuns: 300 },
    );
  });

  it("membership changes really happen in those schedules", () => {
    let changes = 0;
    let runs = 0;
    fc.assert(
      fc.property(fc.array(actionWithConf, { minLength: 300, maxLength: 600 }), fc.nat(1000), (actions, seed) => {
        changes += run(3, actions, seed, false).confCommitted > 0 ? 1 : 0;
        runs++;
      }),
      { numRuns: 100, seed: 7 },
    );
    expect(changes).toBeGreaterThan(runs / 10);
  });

  it("the checks are live: with enough ticks and deliveries a leader commits proposals", () => {
    const actions: Action[] = [];
    for (let r = 0; r < 40; r++) {
      for (let node = 0; node < 3; node++) actions.push({ t: "tick", node });
      for (let k = 0; k < 12; k++) actions.push({ t: "deliver", pick: 0 });
      actions.push({ t: "propose", node: r % 3 });
    }
    const res = run(3, actions, 1);
    expect(res.leaders).toBeGreaterThanOrEqual(1);
    expect(res.maxCommit).toBeGreaterThan(10); // bootstrap (3) + no-op + proposals
  });
});
