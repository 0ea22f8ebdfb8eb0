import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SimClock } from "./clock.js";
import { SimNetwork, fixedDelay, uniformDelay } from "./network.js";
import { SeededRandom } from "./random.js";

function setup(seed: number, link = {}) {
  const clock = new SimClock();
  const net = new SimNetwork<number>({ clock, random: new SeededRandom(seed), link, sizeOf: () => 10 });
  const inbox = new Map<string, { from: string; msg: number; at: number }[]>();
  for (const id of ["a", "b", "c"]) {
    inbox.set(id, []);
    net.addNode(id, (from, msg) => inbox.get(id)!.push({ from, msg, at: clock.now() }));
  }
  return { clock, net, inbox };
}

describe("SimNetwork", () => {
  it("delivers after the link delay and counts bytes", () => {
    const { clock, net, inbox } = setup(1, { delay: fixedDelay(7) });
    net.send("a", "b", 1);
    clock.advance(6);
    expect(inbox.get("b")).toEqual([]);
    clock.advance(1);
    expect(inbox.get("b")).toEqual([{ from: "a", msg: 1, at: 7 }]);
    expect(net.traffic("a").bytesSent).toBe(10);
    expect(net.traffic("b").bytesReceived).toBe(10);
  });

  it("is deterministic for a seed under loss, duplication and jitter", () => {
    const run = (seed: number) => {
      const { clock, net, inbox } = setup(seed, {
        delay: uniformDelay(1, 10),
        jitterMs: 20,
        lossProbability: 0.2,
        duplicateProbability: 0.1,
      });
      for (let i = 0; i < 500; i++) net.send("a", "b", i);
      clock.advance(1000);
      return { got: inbox.get("b")!.map((x) => x.msg), stats: { ...net.stats } };
    };
    const r1 = run(9);
    expect(run(9)).toEqual(r1);
    expect(run(10).got).not.toEqual(r1.got);
    // loss and duplication happened, and jitter reordered messages
    expect(r1.stats.droppedLoss).toBeGreaterThan(50);
    expect(r1.stats.duplicated).toBeGreaterThan(10);
    const sorted = r1.got.slice().sort((x, y) => x - y);
    expect(r1.got).not.toEqual(sorted);
    expect(r1.got.length).toBe(500 - r1.stats.droppedLoss + r1.stats.duplicated);
  });

  it("partitions cut traffic between groups until healed", () => {
    const { clock, net, inbox } = setup(2);
    net.partition(["a"], ["b"]);
    net.send("a", "b", 1);
    net.send("a", "c", 2);
    net.send("b", "c", 3);
    clock.advance(100);
    expect(inbox.get("b")).toEqual([]);
    expect(inbox.get("c")!.map((x) => x.msg).sort()).toEqual([2, 3]);
    net.send("c", "b", 4); // in flight when the partition starts: dropped at arrival
    net.partition(["b"], ["c"]);
    clock.advance(100);
    expect(inbox.get("b")).toEqual([]);
    net.heal();
    net.send("a", "b", 5);
    clock.advance(100);
    expect(inbox.get("b")!.map((x) => x.msg)).toEqual([5]);
    net.block("a", "c", false);
    net.send("a", "c", 6);
    net.send("c", "a", 7);
    clock.advance(100);
    expect(inbox.get("a")!.map((x) => x.msg)).toEqual([7]);
  });

  it("crash drops in-flight and new messages; restart uses the new handler", () => {
    const { clock, net, inbox } = setup(3, { delay: fixedDelay(10) });
    net.send("a", "b", 1);
    clock.advance(5);
    net.crash("b");
    expect(net.send("a", "b", 2)).toBe(false);
    expect(net.send("b", "a", 3)).toBe(false);
    clock.advance(20);
    expect(inbox.get("b")).toEqual([]);
    const after: number[] = [];
    net.restart("b", (_f, m) => after.push(m));
    net.send("a", "b", 4);
    clock.advance(20);
    expect(after).toEqual([4]);
    expect(net.stats.droppedCrash).toBe(3);
  });

  it("pause holds messages and delivers them when the pause ends", () => {
    const { clock, net, inbox } = setup(4, { delay: fixedDelay(1) });
    net.pause("b", 500);
    expect(net.isPaused("b")).toBe(true);
    net.send("a", "b", 1);
    net.send("c", "b", 2);
    clock.advance(499);
    expect(inbox.get("b")).toEqual([]);
    clock.advance(1);
    expect(net.isPaused("b")).toBe(false);
    expect(inbox.get("b")!.map((x) => [x.msg, x.at])).toEqual([
      [1, 500],
      [2, 500],
    ]);
  });

  it("rejects unknown nodes and duplicate ids", () => {
    const { net } = setup(5);
    expect(() => net.send("a", "zz", 1)).not.toThrow();
    expect(() => net.send("zz", "a", 1)).toThrowError(/unknown node/);
    expect(() => net.addNode("a", () => {})).toThrowError(/already exists/);
  });

  it("property: every message is accounted for (delivered or dropped) once the network is idle", () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        fc.array(fc.tuple(fc.constantFrom("a", "b", "c"), fc.constantFrom("a", "b", "c", "x")), { maxLength: 60 }),
        (seed, loss, dup, sends) => {
          const { clock, net } = setup(seed, { lossProbability: loss, duplicateProbability: dup, jitterMs: 5 });
          net.addNode("x", () => {});
          net.crash("x");
          sends.forEach(([f, t], i) => {
            if (i === 20) net.partition(["a"], ["b", "c"]);
            if (i === 40) net.heal();
            net.send(f, t, i);
          });
          clock.advance(1000);
          const s = net.stats;
          expect(net.messagesInFlight).toBe(0);
          expect(s.delivered + s.droppedLoss + s.droppedPartition + s.droppedCrash + s.droppedOverflow).toBe(s.sent + s.duplicated);
        },
      ),
    );
  });
});

