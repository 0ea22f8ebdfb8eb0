import { MpregError, ErrorCode } from "@mpreg/envelope";
import { describe, expect, it } from "vitest";
import { onLeader } from "./leader.js";

describe("onLeader", () => {
  it("runs locally on the leader and forwards from a follower", async () => {
    expect(await onLeader({ id: "a", leaderId: "a" }, { local: async () => "here", forward: async () => "there" })).toBe("here");
    expect(await onLeader({ id: "a", leaderId: "b" }, { local: async () => "here", forward: async (l) => `to ${l}` })).toBe("to b");
  });

  it("waits for an election, then acts", async () => {
    const view = { id: "a", leaderId: null as string | null };
    setTimeout(() => (view.leaderId = "c"), 30);
    expect(await onLeader(view, { local: async () => "here", forward: async (l) => `to ${l}`, pollMs: 5 })).toBe("to c");
  });

  it("fails with 1005 no_leader when no leader appears in time", async () => {
    await expect(onLeader({ id: "a", leaderId: null }, { local: async () => 1, forward: async () => 2, waitMs: 30, pollMs: 5 })).rejects.toMatchObject({
      code: ErrorCode.UNREACHABLE,
      details: { reason: "no_leader" },
    });
  });

  it("decides again when leadership moved under a local proposal; other errors pass through", async () => {
    const view = { id: "a", leaderId: "a" as string | null };
    const result = await onLeader(view, {
      local: async () => {
        view.leaderId = "b";
        throw new MpregError(ErrorCode.UNREACHABLE, "raft: not the leader", { reason: "not_leader", leader: "b" });
      },
      forward: async (l) => `to ${l}`,
    });
    expect(result).toBe("to b");
    await expect(onLeader({ id: "a", leaderId: "a" }, { local: async () => { throw new Error("boom"); }, forward: async () => 0 })).rejects.toThrow("boom");
  });

  it("stops waiting when the signal aborts", async () => {
    const c = new AbortController();
    setTimeout(() => c.abort(new Error("cancelled")), 20);
    await expect(onLeader({ id: "a", leaderId: null }, { local: async () => 1, forward: async () => 2, signal: c.signal, pollMs: 5 })).rejects.toThrow("cancelled");
  });
});
