import { describe, expect, it } from "vitest";
import { validateMessage } from "./validate.js";

describe("validateMessage", () => {
  it("accepts every well-formed message shape and drops unknown fields", () => {
    const m = validateMessage({
      type: "app", from: "a", to: "b", term: 3, index: 4, logTerm: 2, commit: 4, extra: "x",
      entries: [{ index: 5, term: 3, type: "normal", data: new Uint8Array([1]) }, { index: 6, term: 3, type: "conf", data: new Uint8Array(0), conf: { type: "addLearner", node: "z" } }],
    });
    expect(m.entries).toHaveLength(2);
    expect((m as unknown as Record<string, unknown>).extra).toBeUndefined();
    expect(validateMessage({ type: "snap", from: "a", to: "b", term: 1, snapshot: { meta: { index: 9, term: 1, conf: { voters: ["a"], learners: [] } }, data: new Uint8Array(2) } }).snapshot?.meta.index).toBe(9);
    expect(validateMessage({ type: "heartbeatResp", from: "a", to: "b", term: 1, context: "r1" }).context).toBe("r1");
  });

  it("rejects malformed messages with INVALID_REQUEST naming the field", () => {
    const cases: [unknown, RegExp][] = [
      [null, /not an object/],
      [{ type: "nope", from: "a", to: "b", term: 1 }, /unknown type/],
      [{ type: "vote", from: "", to: "b", term: 1 }, /from\/to/],
      [{ type: "vote", from: "a", to: "b", term: -1 }, /term/],
      [{ type: "vote", from: "a", to: "b", term: 1, index: 1.5 }, /index/],
      [{ type: "voteResp", from: "a", to: "b", term: 1, reject: "yes" }, /reject/],
      [{ type: "app", from: "a", to: "b", term: 1, index: 0, entries: [{ index: 2, term: 1, type: "normal", data: new Uint8Array() }] }, /consecutively/],
      [{ type: "app", from: "a", to: "b", term: 1, entries: [{ index: 1, term: 1, type: "normal", data: "x" }] }, /bytes/],
      [{ type: "app", from: "a", to: "b", term: 1, entries: [{ index: 1, term: 1, type: "conf", data: new Uint8Array() }] }, /conf change/],
      [{ type: "snap", from: "a", to: "b", term: 1, snapshot: { meta: { index: 1, term: 1 }, data: new Uint8Array() } }, /conf/],
    ];
    for (const [v, re] of cases) {
      expect(() => validateMessage(v)).toThrow(re);
      try {
        validateMessage(v);
      } catch (e) {
        expect((e as { code: number }).code).toBe(1002);
      }
    }
  });
});

describe("Raft messages are plain data", () => {
  it("every message of a scenario run encodes as MessagePack, and survives a structured clone + validation unchanged", async () => {
    const { encodeFrame } = await import("@mpreg/envelope");
    const { CoreNet } = await import("../test/core-net.js");
    const net = new CoreNet(["a", "b", "c"]);
    net.campaign("a");
    net.propose("a", "x");
    net.get("a").readIndex("r");
    net.deliver();
    net.isolate("c");
    for (let i = 0; i < 5; i++) net.propose("a", `y${i}`);
    const a = net.get("a");
    a.compact(a.log.applied, new Uint8Array([1, 2, 3]));
    net.recover();
    net.tick(3);
    net.get("a").transferLeader("b");
    net.deliver();
    const types = new Set(net.log.map((m) => m.type));
    for (const t of ["app", "appResp", "preVote", "preVoteResp", "vote", "voteResp", "heartbeat", "heartbeatResp", "snap", "timeoutNow"]) {
      expect(types).toContain(t);
    }
    for (const m of net.log) {
      expect(encodeFrame(m, "msgpack").length).toBeGreaterThan(0);
      expect(validateMessage(structuredClone(m))).toEqual(m);
    }
  });
});
