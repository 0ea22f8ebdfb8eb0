import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { isMpregError } from "@mpreg/envelope";
import { compareVersions, parseConstraint, parseVersion, satisfies } from "@mpreg/catalog";
import { FunctionRegistry, type RegistryEvent } from "./registry.js";

const h = (tag: string) => () => tag;

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (isMpregError(e)) return e.code;
    throw e;
  }
  throw new Error("expected an MpregError");
}

describe("FunctionRegistry", () => {
  it("registers with defaults and resolves", () => {
    const reg = new FunctionRegistry();
    const fn = reg.register("echo", h("e"));
    expect(fn).toMatchObject({ name: "echo", function_id: "echo", version: "1.0.0", resources: [], description: "" });
    expect(reg.resolve("echo")).toBe(fn);
    expect(reg.size).toBe(1);
  });

  it("normalises and validates versions", () => {
    const reg = new FunctionRegistry();
    expect(reg.register("a", h("a"), { version: "v1.2.3" }).version).toBe("1.2.3");
    expect(reg.register("b", h("b"), { version: "1" }).version).toBe("1.0.0");
    for (const bad of ["", "1.2.3.4", "1.x", "v", "1..2"]) expect(code(() => reg.register("c", h("c"), { version: bad }))).toBe(1002);
    expect(reg.has("c")).toBe(false);
  });

  it("keeps several versions and picks the highest satisfying one", () => {
    const reg = new FunctionRegistry();
    reg.register("f", h("1.2"), { version: "1.2.0" });
    reg.register("f", h("2.0"), { version: "2.0.0" });
    reg.register("f", h("1.0"), { version: "1.0.0" });
    expect(reg.resolve("f").version).toBe("2.0.0");
    expect(reg.resolve("f", { version_constraint: ">=1.0,<2.0" }).version).toBe("1.2.0");
    expect(reg.resolve("f", { version_constraint: "^1.0.0" }).version).toBe("1.2.0");
    expect(code(() => reg.resolve("f", { version_constraint: ">=3.0" }))).toBe(1001);
    expect(code(() => reg.resolve("f", { version_constraint: ">=banana" }))).toBe(1002);
    expect(reg.list().map((f) => f.version)).toEqual(["2.0.0", "1.2.0", "1.0.0"]);
  });

  it("refuses the same (name, version) twice and conflicting function_ids", () => {
    const reg = new FunctionRegistry();
    reg.register("update", h("a"), { function_id: "func-A" });
    expect(code(() => reg.register("update", h("b"), { function_id: "func-A" }))).toBe(1002);
    expect(code(() => reg.register("update", h("b"), { function_id: "func-B", version: "2" }))).toBe(1002);
    expect(code(() => reg.register("other", h("b"), { function_id: "func-A" }))).toBe(1002);
    expect(reg.register("update", h("b"), { function_id: "func-A", version: "2" }).version).toBe("2.0.0");
  });

  it("filters by function_id and resources", () => {
    const reg = new FunctionRegistry();
    reg.register("t", h("cpu"), { resources: ["cpu", "cpu"], version: "1.0.0" });
    reg.register("t", h("gpu"), { resources: ["gpu"], version: "1.1.0" });
    expect(reg.resolve("t", { resources: ["cpu"] }).version).toBe("1.0.0");
    expect(reg.resolve("t", { resources: ["gpu"] }).version).toBe("1.1.0");
    expect(reg.find("t", { resources: ["tpu"] })).toBeNull();
    expect(reg.find("t", { function_id: "other" })).toBeNull();
    expect(reg.resolve("t", { function_id: "t" }).version).toBe("1.1.0");
    expect(reg.resolve("t", { resources: ["cpu"] }).resources).toEqual(["cpu"]);
  });

  it("reports changes to listeners and survives a throwing listener", () => {
    const reg = new FunctionRegistry();
    const events: string[] = [];
    reg.onChange(() => {
      throw new Error("bad listener");
    });
    const off = reg.onChange((e: RegistryEvent) => events.push(`${e.type}:${e.fn.name}@${e.fn.version}`));
    reg.register("a", h("a"));
    reg.register("a", h("a2"), { version: "2" });
    expect(reg.unregister("a", "1")).toBe(1);
    off();
    expect(reg.unregister("a")).toBe(1);
    expect(events).toEqual(["registered:a@1.0.0", "registered:a@2.0.0", "unregistered:a@1.0.0"]);
    expect(reg.has("a")).toBe(false);
    expect(reg.size).toBe(0);
    // The function_id is free again once the name is gone.
    reg.register("b", h("b"), { function_id: "a" });
  });

  it("enforces its bounds", () => {
    const reg = new FunctionRegistry({ maxFunctions: 2, maxListeners: 1 });
    reg.register("a", h("a"));
    reg.register("b", h("b"));
    expect(code(() => reg.register("c", h("c")))).toBe(1007);
    reg.onChange(() => undefined);
    expect(code(() => reg.onChange(() => undefined))).toBe(1007);
  });
});

describe("FunctionRegistry properties", () => {
  it("resolve picks the highest registered version that satisfies the constraint and resources", () => {
    const version = fc.tuple(fc.nat(3), fc.nat(3), fc.nat(3)).map(([a, b, c]) => `${a}.${b}.${c}`);
    const op = fc.constantFrom(">=", "<=", ">", "<", "==", "^", "~");
    const constraint = fc.array(fc.tuple(op, version), { minLength: 1, maxLength: 2 }).map((cs) => cs.map(([o, v]) => `${o}${v}`).join(","));
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(version, fc.subarray(["cpu", "gpu"])), { selector: ([v]) => v, minLength: 1, maxLength: 12 }),
        constraint,
        fc.subarray(["cpu", "gpu"]),
        (entries, c, need) => {
          const reg = new FunctionRegistry();
          for (const [v, res] of entries) reg.register("f", () => v, { version: v, resources: res });
          const parsed = parseConstraint(c);
          const want = entries
            .filter(([v, res]) => satisfies(parseVersion(v), parsed) && need.every((r) => res.includes(r)))
            .map(([v]) => v)
            .sort((a, b) => compareVersions(parseVersion(b), parseVersion(a)))[0];
          expect(reg.find("f", { version_constraint: c, resources: need })?.version ?? null).toBe(want ?? null);
        },
      ),
      { numRuns: 300 },
    );
  });
});
