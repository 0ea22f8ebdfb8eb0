import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { entryKey, normalizeEntry, parseEntryKey, MAX_KEY_LENGTH } from "./entries.js";

describe("normalizeEntry", () => {
  it("produces the same JSON whatever the input field order (JSON.stringify is canonical)", () => {
    const fields = {
      kind: "node",
      node_id: "n",
      cluster_id: "c",
      region: "eu",
      urls: ["ws://b", "ws://a", "ws://b"],
      resources: ["z", "a", "z"],
      load: 3,
      status: "ok",
      functions: 2,
      extra: "ignored",
    };
    fc.assert(
      fc.property(fc.shuffledSubarray(Object.keys(fields), { minLength: Object.keys(fields).length }), (order) => {
        const shuffled = Object.fromEntries(order.map((k) => [k, (fields as Record<string, unknown>)[k]]));
        const e = normalizeEntry(shuffled);
        expect(JSON.stringify(e)).toBe(JSON.stringify(normalizeEntry(fields)));
        expect(e).toEqual({ kind: "node", node_id: "n", cluster_id: "c", region: "eu", urls: ["ws://b", "ws://a"], resources: ["a", "z"], load: 3, status: "ok", functions: 2 });
      }),
    );
  });

  it("refuses oversized lists and strings with 1002", () => {
    const base = { kind: "function", name: "f", function_id: "f", version: "1", node_id: "n", cluster_id: "c" };
    for (const bad of [
      { ...base, resources: Array.from({ length: 300 }, (_, i) => `r${i}`) },
      { ...base, name: "x".repeat(600) },
      { ...base, description: 5 },
      { ...base, resources: [""] },
      { ...base, version: "1.0.0-rc1" },
      { kind: "node", node_id: "n", cluster_id: "c", region: "", urls: [], resources: [], load: -1, status: "ok" },
      { kind: "node", node_id: "n", cluster_id: "c", region: 5, urls: [], resources: [], load: 1, status: "ok" },
      { kind: "cache", node_id: "n", cluster_id: "c", namespace: "x" },
      [],
      null,
    ]) {
      expect(() => normalizeEntry(bad)).toThrowError(expect.objectContaining({ code: 1002 }));
    }
  });

  it("keys are unambiguous and name their owner, whatever the names contain", () => {
    const name = fc.string({ minLength: 1, maxLength: 20, unit: "grapheme" });
    fc.assert(
      fc.property(name, name, name, (node, fn, fid) => {
        const e = normalizeEntry({ kind: "function", name: fn, function_id: fid, version: "1", node_id: node, cluster_id: "c" });
        const key = entryKey(e);
        expect(key.length).toBeLessThanOrEqual(MAX_KEY_LENGTH);
        expect(parseEntryKey(key)).toEqual({ kind: "function", owner: node });
        expect(key.split("/")).toHaveLength(5);
      }),
    );
    expect(parseEntryKey("node/a/b")).toBeNull();
    expect(parseEntryKey("thing/a")).toBeNull();
    expect(parseEntryKey("node/%E0%A4%A")).toBeNull();
    expect(parseEntryKey("node/")).toBeNull();
  });
});
