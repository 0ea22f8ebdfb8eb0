import { MpregError, ErrorCode } from "@mpreg/envelope";
import { describe, expect, it } from "vitest";
import { onLeader, onMember } from "./leader.js";

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

  it("passes a forwarded operation's error through without deciding again", async () => {
    let forwards = 0;
    const err = new MpregError(ErrorCode.UNREACHABLE, "raft: not the leader", { reason: "not_leader", leader: "c" });
    await expect(
      onLeader({ id: "a", leaderId: "b" }, { local: async () => 1, forward: async () => { forwards++; throw err; } }),
    ).rejects.toBe(err);
    expect(forwards).toBe(1);
  });

  it("stops waiting when the signal aborts", async () => {
    const c = new AbortController();
    setTimeout(() => c.abort(new Error("cancelled")), 20);
    await expect(onLeader({ id: "a", leaderId: null }, { local: async () => 1, forward: async () => 2, signal: c.signal, pollMs: 5 })).rejects.toThrow("cancelled");
  });
});

describe("onMember", () => {
  it("runs here on any member once a leader is known, waiting for an election first", async () => {
    expect(await onMember({ id: "a", leaderId: "b" }, { run: async () => "here" })).toBe("here");
    const view = { id: "a", leaderId: null as string | null };
    setTimeout(() => (view.leaderId = "c"), 30);
    expect(await onMember(view, { run: async () => "after election", pollMs: 5 })).toBe("after election");
  });

  it("tries again when the leader was lost under it; fails with no_leader in time; other errors pass", async () => {
    const view = { id: "a", leaderId: "b" as string | null };
    let calls = 0;
    const r = await onMember(view, {
      run: async () => {
        if (++calls === 1) {
          view.leaderId = null;
          setTimeout(() => (view.leaderId = "c"), 20);
          throw new MpregError(ErrorCode.UNREACHABLE, "raft: not the leader", { reason: "not_leader", leader: null });
        }
        return calls;
      },
      pollMs: 5,
    });
    expect(r).toBe(2);
    await expect(onMember({ id: "a", leaderId: null }, { run: async () => 1, waitMs: 30, pollMs: 5 })).rejects.toMatchObject({
      details: { reason: "no_leader" },
    });
    await expect(onMember({ id: "a", leaderId: "a" }, { run: async () => { throw new Error("boom"); } })).rejects.toThrow("boom");
  });
});
