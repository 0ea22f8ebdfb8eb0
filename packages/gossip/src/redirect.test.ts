import { describe, expect, it } from "vitest";
import { redirectable } from "./redirect.js";

describe("redirectable", () => {
  it("is true only for pushes and anti-entropy requests", () => {
    expect(redirectable({ type: "gossip", members: [], items: [] })).toBe(true);
    expect(redirectable({ type: "sync-req", full: false, start: "", end: null, digest: [], members: [] })).toBe(true);
    expect(redirectable({ type: "ping", seq: 1, target: "z", members: [], items: [] })).toBe(false);
    expect(redirectable({ type: "ack", seq: 1, from: "z", members: [], items: [] } as never)).toBe(false);
  });
});
