/**
 * Seeded simulation: several nodes own entries and change them over time; their deltas travel
 * over a channel that loses, duplicates and reorders; one node restarts with a lost counter.
 * After delivery and anti-entropy, every catalog equals the owners' own view.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "@mpreg/testkit";
import { Catalog, type CatalogDelta } from "./catalog.js";

const TTL = 60_000;

interface Msg {
  to: number;
  delta: CatalogDelta;
}


/** Entries (key → JSON) owned by `owner` as seen by catalog `c`. */
function ownedBy(c: Catalog, owner: string, now: number): Map<string, string> {
  const out = new Map<string, string>();
  for (const d of c.snapshot(now).deltas) if (d.kind === "upsert" && d.owner === owner) out.set(d.key, JSON.stringify(d.entry));
  return out;
}

function runSimulation(seed: number): void {
  const rng = new SeededRandom(seed);
  const N = 5;
  const ids = Array.from({ length: N }, (_, i) => `n${i}`);
  const nodes = ids.map((id) => new Catalog({ nodeId: id, clusterId: "c1", defaultTtlMs: TTL }));
  let inflight: Msg[] = [];
  let now = 1_000_000;
  let corrections = 0;
  let oldKeys: string[] = [];

  const broadcast = (from: number, deltas: (CatalogDelta | null | undefined)[]) => {
    for (const delta of deltas) {
      if (delta == null) continue;
      for (let to = 0; to < N; to++) {
        if (to === from) continue;
        if (rng.chance(0.25)) continue; // lost
        inflight.push({ to, delta });
        if (rng.chance(0.15)) inflight.push({ to, delta }); // duplicated
      }
    }
  };

  const deliver = (count: number) => {
    for (let k = 0; k < count && inflight.length > 0; k++) {
      const i = rng.int(inflight.length); // reordered: any in-flight message may arrive next
      const [m] = inflight.splice(i, 1) as [Msg];
      const r = nodes[m.to]!.applyDelta(m.delta, now);
      expect(r.status).not.toBe("invalid");
      if (r.correction) {
        corrections++;
        broadcast(m.to, [r.correction]);
      }
    }
  };

  const antiEntropy = () => {
    for (let a = 0; a < N; a++) {
      for (let b = 0; b < N; b++) {
        if (a === b) continue;
        for (const d of nodes[a]!.deltasSince(nodes[b]!.digest(), now)) {
          const r = nodes[b]!.applyDelta(d, now);
          if (r.correction) {
            corrections++;
            // corrections go to everyone, reliably, in this phase
            for (let c = 0; c < N; c++) if (c !== b) nodes[c]!.applyDelta(r.correction, now);
          }
        }
      }
    }
  };

  const step = (i: number) => {
    const who = rng.int(N);
    const c = nodes[who]!;
    const action = rng.int(10);
    if (action < 4) {
      const name = `f${rng.int(6)}`;
      broadcast(who, [
        c.registerLocal({ kind: "function", name, function_id: name, version: `1.${rng.int(3)}`, resources: rng.sample(["cpu", "gpu", "db"], rng.int(3)) }, now),
      ]);
    } else if (action < 6) {
      const mine = c.queryFunctions({ node_id: ids[who]! });
      if (mine.length > 0) broadcast(who, [c.unregisterLocal(rng.pick(mine), now)]);
    } else if (action < 8) {
      broadcast(who, [c.registerLocal({ kind: "node", region: "eu", urls: [`ws://${ids[who]}`], resources: ["cpu"], load: rng.int(5), status: "ok" }, now)]);
    } else if (action < 9) {
      broadcast(who, [c.registerLocal({ kind: "topic", subscription_id: "subs", patterns: rng.sample(["a.*", "b.#", "c"], 1 + rng.int(2)) }, now)]);
    } else {
      broadcast(who, c.refreshLocal(now));
    }
    deliver(rng.int(6));
    now += 50 + rng.int(100);
    if (i === 200) {
      // n4 restarts: its counter is lost, it only re-registers one function.
      oldKeys = [...ownedBy(nodes[4]!, "n4", now).keys()];
      nodes[4] = new Catalog({ nodeId: "n4", clusterId: "c1", defaultTtlMs: TTL });
      broadcast(4, [nodes[4].registerLocal({ kind: "function", name: "fresh", function_id: "fresh", version: "1" }, now)]);
    }
  };

  for (let i = 0; i < 300; i++) step(i);
  deliver(inflight.length * 2);
  inflight = [];
  antiEntropy();
  antiEntropy();

  for (let owner = 0; owner < N; owner++) {
    const truth = ownedBy(nodes[owner]!, ids[owner]!, now);
    for (let i = 0; i < N; i++) expect(ownedBy(nodes[i]!, ids[owner]!, now)).toEqual(truth);
  }
  const d0 = nodes[0]!.digest();
  for (let i = 1; i < N; i++) expect(nodes[i]!.digest()).toEqual(d0);
  // the restarted node's old entries are gone everywhere: only what it registered since is left
  const n4Now = ownedBy(nodes[4]!, "n4", now);
  const gone = oldKeys.filter((k) => !n4Now.has(k));
  expect(gone.length).toBeGreaterThan(0);
  for (let i = 0; i < N; i++) for (const k of gone) expect(nodes[i]!.get(k)).toBeUndefined();
  expect(corrections).toBeGreaterThan(0); // the restart was actually repaired by corrections
}

describe("seeded simulation: lossy, duplicating, reordering delivery + anti-entropy", () => {
  for (const seed of [1, 2, 3, 42, 1234]) {
    it(`converges to the owners' view (seed ${seed})`, () => runSimulation(seed));
  }
});
