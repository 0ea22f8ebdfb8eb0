import { describe, expect, it } from "vitest";
import { loadMsgpack } from "../test/msgpack.js";
import { SimCluster } from "../test/sim-cluster.js";

const LONG = process.env.MPREG_LONG === "1";
const SEEDS = LONG ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] : [1, 2, 3];
const GOSSIP_ROUND_MS = 200;
const PARTITION_N = LONG ? 100 : 30;

describe("gossip simulation (seeded, virtual time)", () => {
  for (const seed of SEEDS) {
    it(`100 nodes, 5% loss: a catalog change reaches every node within 25 gossip rounds (seed ${seed})`, () => {
      const c = new SimCluster({ n: 100, seed, link: { lossProbability: 0.05 } });
      c.joinAll();
      expect(c.runUntilMembershipConverged(60_000)).toBeDefined();
      const rounds: number[] = [];
      const times: number[] = [];
      for (let k = 0; k < 3; k++) {
        const origin = c.random.pick(c.ids);
        const t0 = c.clock.now();
        c.node(origin).publish({ key: `fn/${k}`, version: 1, data: { node: origin } });
        c.flush(origin);
        const t = c.clock.runUntilTrue(() => c.allHave(`fn/${k}`, 1), { maxMs: 30_000, stepMs: 10 });
        expect(t, `item ${k} did not converge`).toBeDefined();
        rounds.push(Math.ceil(((t as number) - t0) / GOSSIP_ROUND_MS));
        times.push((t as number) - t0);
      }
      console.log(`[gossip sim] seed=${seed} n=100 loss=5%: convergence rounds (200 ms) per change = ${rounds.join(", ")} (virtual ms ${times.map((x) => x.toFixed(0)).join(", ")})`);
      for (const r of rounds) expect(r).toBeLessThanOrEqual(25);
    });

    it(`100 nodes: a crashed node is declared dead by every live node within the documented bound (seed ${seed})`, () => {
      const c = new SimCluster({ n: 100, seed: seed + 100, link: { lossProbability: 0.05 } });
      c.joinAll();
      expect(c.runUntilMembershipConverged(60_000)).toBeDefined();
      const victim = "n42";
      const t0 = c.clock.now();
      c.crash(victim);
      const node0 = c.node("n0");
      // Documented bound: the longest suspicion (no confirmations) + 10 probe intervals for first
      // detection and dissemination of the verdict.
      const bound = node0.suspicionTimeoutMs(0) + 10 * node0.config.probeIntervalMs;
      const t = c.clock.runUntilTrue(
        () => c.upIds().every((id) => ["dead", undefined].includes(c.node(id).member(victim)?.status)),
        { maxMs: bound, stepMs: 50 },
      );
      console.log(`[gossip sim] seed=${seed} n=100: crash detected by all in ${t === undefined ? "NEVER" : t - t0} ms (bound ${bound} ms)`);
      expect(t).toBeDefined();
    });
  }

  for (const seed of LONG ? [7, 8, 9, 10] : [7]) it(`5% loss and random 500 ms pauses for 10 simulated minutes: no false dead (seed ${seed})`, () => {
    let falseDead = 0;
    let suspicions = 0;
    const c = new SimCluster({
      n: 100,
      seed,
      link: { lossProbability: 0.05 },
      onEvent: (_node, e) => {
        if (e.type === "member-dead" || e.type === "member-left") falseDead++;
        if (e.type === "member-suspect") suspicions++;
      },
    });
    c.joinAll();
    expect(c.runUntilMembershipConverged(60_000)).toBeDefined();
    suspicions = 0;
    // Every 2 s one random node stalls for 500 ms (its inbox is held, it is not ticked).
    let pauses = 0;
    const pauseLoop = (): void => {
      c.net.pause(c.random.pick(c.ids), 500);
      pauses++;
      c.clock.setTimeout(pauseLoop, 2000);
    };
    c.clock.setTimeout(pauseLoop, 2000);
    c.clock.advance(10 * 60_000);
    console.log(`[gossip sim] seed=${seed} n=${c.ids.length} 10 min, 5% loss, ${pauses} pauses of 500 ms: suspect events=${suspicions} false dead=${falseDead}`);
    expect(falseDead).toBe(0);
    expect(c.membershipConverged()).toBe(true);
  });

  for (const seed of SEEDS) {
    it(`a partition heals: memberships and item sets become equal again (seed ${seed})`, () => {
      const c = new SimCluster({ n: PARTITION_N, seed: seed + 200, link: { lossProbability: 0.01 } });
      c.joinAll();
      expect(c.runUntilMembershipConverged(60_000)).toBeDefined();
      const left = c.ids.slice(0, PARTITION_N / 2);
      const right = c.ids.slice(PARTITION_N / 2);
      c.net.partition(left, right);
      // Each side keeps publishing while cut off.
      for (let i = 0; i < 20; i++) {
        const side = i % 2 === 0 ? left : right;
        const origin = c.random.pick(side);
        c.node(origin).publish({ key: `k${i}`, version: 1 + i, data: i });
        c.flush(origin);
        c.clock.advance(500);
      }
      c.clock.advance(60_000);
      // By now each side has declared the other dead.
      expect(c.node(left[0] as string).member(right[0] as string)?.status).toBe("dead");
      const tHeal = c.clock.now();
      c.net.heal();
      const sameItems = (): boolean => {
        const ref = JSON.stringify(c.node("n0").items().sort((a, b) => a.key.localeCompare(b.key)));
        return c.ids.every((id) => JSON.stringify(c.node(id).items().sort((a, b) => a.key.localeCompare(b.key))) === ref);
      };
      const t = c.clock.runUntilTrue(() => sameItems() && c.membershipConverged(), { maxMs: 120_000, stepMs: 100 });
      console.log(`[gossip sim] seed=${seed} n=${PARTITION_N} partition half/half for 70 s: healed (items + membership) ${t === undefined ? "NEVER" : t - tHeal} ms after heal`);
      expect(t).toBeDefined();
      expect(c.node("n0").itemCount).toBe(20);
    });
  }

  it("a crashed node that restarts refutes its death and is alive everywhere again", () => {
    const c = new SimCluster({ n: 20, seed: 11 });
    c.joinAll();
    expect(c.runUntilMembershipConverged(30_000)).toBeDefined();
    c.crash("n5");
    expect(c.clock.runUntilTrue(() => c.upIds().every((id) => c.node(id).member("n5")?.status === "dead"), { maxMs: 120_000 })).toBeDefined();
    c.restart("n5", "n0");
    expect(c.runUntilMembershipConverged(60_000)).toBeDefined();
    expect(c.node("n5").currentIncarnation).toBeGreaterThan(0);
  });

  it("GOODBYE: a leaving node is `left` everywhere quickly and never `dead`", () => {
    const seen: string[] = [];
    const c = new SimCluster({
      n: 20,
      seed: 12,
      onEvent: (_n, e) => {
        if ((e.type === "member-left" || e.type === "member-dead") && e.id === "n3") seen.push(e.type);
      },
    });
    c.joinAll();
    expect(c.runUntilMembershipConverged(30_000)).toBeDefined();
    const t0 = c.clock.now();
    c.node("n3").leave(t0);
    c.flush("n3");
    const t = c.clock.runUntilTrue(() => c.upIds().every((id) => id === "n3" || c.node(id).member("n3")?.status === "left"), {
      maxMs: 10_000,
      stepMs: 10,
    });
    expect(t).toBeDefined();
    console.log(`[gossip sim] n=20 GOODBYE known to all ${(t as number) - t0} ms after leave()`);
    c.crash("n3"); // the process exits after its goodbye
    c.clock.advance(120_000);
    expect(seen.every((s) => s === "member-left")).toBe(true);
  });
});

describe("wire form", () => {
  it("every message of a simulated run survives a MessagePack round trip (joins, probes, sync, crash, leave)", async () => {
    const { encode, decode } = await loadMsgpack();
    let count = 0;
    const c = new SimCluster({
      n: 15,
      seed: 21,
      link: { lossProbability: 0.05 },
      wire: (m) => {
        count++;
        return decode(encode(m));
      },
    });
    c.joinAll();
    expect(c.runUntilMembershipConverged(30_000)).toBeDefined();
    c.node("n1").publish({ key: "k", version: 1, data: { nested: [1, "two", null], bin: new Uint8Array([1, 2]) } });
    c.flush("n1");
    c.crash("n2");
    c.node("n3").leave(c.clock.now());
    c.flush("n3");
    c.node("n4").updateMeta({ url: "sim://n4/v2" }, c.clock.now());
    c.flush("n4");
    c.clock.advance(60_000);
    expect(count).toBeGreaterThan(1000);
    expect(c.node("n0").item("k")?.data).toEqual({ nested: [1, "two", null], bin: new Uint8Array([1, 2]) });
    expect(c.node("n0").member("n2")?.status).toBe("dead");
    expect(c.node("n0").member("n3")?.status).toBe("left");
    expect(c.node("n0").member("n4")?.meta).toEqual({ url: "sim://n4/v2" });
  });
});
