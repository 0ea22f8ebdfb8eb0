import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeJson } from "./codec.js";
import { KvStateMachine, encodeKvCommand, type KvCommand } from "./kv.js";

const apply = (m: KvStateMachine, cmd: KvCommand) => m.apply(encodeKvCommand(cmd));

describe("KvStateMachine limits", () => {
  it("refuses a write past maxBytes with store_full, lets shrinking writes and deletes through", () => {
    const m = new KvStateMachine({ maxBytes: 1000 });
    const v = "x".repeat(100);
    let i = 0;
    for (; i < 100; i++) {
      const r = apply(m, { op: "put", key: `k${i}`, value: v });
      if (r.op === "error") {
        expect(r.reason).toBe("store_full");
        break;
      }
    }
    expect(i).toBeGreaterThan(3);
    expect(m.byteSize).toBeLessThanOrEqual(1000);
    expect(m.get(`k${i}`)).toBeUndefined();
    // A smaller value for an existing key fits; so does a new key once one is deleted.
    expect(apply(m, { op: "put", key: "k0", value: "small" })).toMatchObject({ op: "put", version: 2 });
    expect(apply(m, { op: "delete", key: "k1" })).toEqual({ op: "delete", deleted: true });
    expect(apply(m, { op: "put", key: `k${i}`, value: v })).toMatchObject({ op: "put", version: 1 });
  });

  it("counts the snapshot's bytes: the encoded snapshot never exceeds maxBytes", () => {
    const m = new KvStateMachine({ maxBytes: 50_000 });
    for (let i = 0; i < 2000; i++) apply(m, { op: "put", key: `key-${i}`, value: `é"\u0001${"v".repeat(i % 50)}` });
    expect(m.snapshot().length).toBeLessThanOrEqual(50_000);
  });

  it("property: byteSize always equals the size recomputed from the entries, also after restore", () => {
    const cmd = fc.oneof(
      fc.record({ op: fc.constant("put" as const), key: fc.string({ maxLength: 4 }), value: fc.string({ maxLength: 40 }) }),
      fc.record({ op: fc.constant("delete" as const), key: fc.string({ maxLength: 4 }) }),
      fc.record({ op: fc.constant("cas" as const), key: fc.string({ maxLength: 4 }), version: fc.nat(3), value: fc.string({ maxLength: 40 }) }),
    );
    fc.assert(
      fc.property(fc.array(cmd, { maxLength: 200 }), (cmds) => {
        const a = new KvStateMachine({ maxBytes: 2000 });
        const b = new KvStateMachine({ maxBytes: 2000 });
        for (const c of cmds) expect(apply(a, c)).toEqual(apply(b, c)); // deterministic
        const restored = new KvStateMachine({ maxBytes: 2000 });
        restored.restore(a.snapshot());
        expect(restored.byteSize).toBe(a.byteSize);
        expect(a.byteSize).toBeLessThanOrEqual(2000);
        return true;
      }),
    );
  });

  it("refuses a malformed command without changing anything", () => {
    const m = new KvStateMachine();
    expect(m.apply(encodeJson({ op: "nope" }))).toEqual({ op: "error", reason: "bad_command" });
    expect(m.byteSize).toBe(0);
  });
});
