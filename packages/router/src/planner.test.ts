import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { isMpregError } from "@mpreg/envelope";
import { MAX_COMMANDS, MAX_NESTING_DEPTH, planRequest, substitute, type PlanCommand } from "./planner.js";

const cmd = (name: string, args: unknown[] = [], kwargs?: Record<string, unknown>): PlanCommand =>
  kwargs === undefined ? { name, fun: "f", args } : { name, fun: "f", args, kwargs };

function refusal(fn: () => unknown): { code: number; details: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    if (isMpregError(e)) return { code: e.code, details: e.details };
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("planRequest", () => {
  it("plans a single independent command as trivial", () => {
    const p = planRequest([cmd("echo", ["hello"])]);
    expect(p.trivial).toBe(true);
    expect(p.leaves).toEqual([0]);
    expect(p.levels).toEqual([[0]]);
    expect(p.commands[0]!.refs).toEqual([]);
  });

  it("orders a chain and returns only the leaf", () => {
    const p = planRequest([cmd("A", ["x"]), cmd("B", ["A"]), cmd("C", ["B.v", 3])]);
    expect(p.commands.map((c) => c.level)).toEqual([0, 1, 2]);
    expect(p.commands[2]!.deps).toEqual([1]);
    expect(p.commands[0]!.dependents).toEqual([1]);
    expect(p.leaves).toEqual([2]);
    expect(p.levels).toEqual([[0], [1], [2]]);
    expect(p.commands[2]!.refs[0]).toMatchObject({ root: "args", path: [0], dep: 1, steps: ["v"] });
  });

  it("keeps every sink as a leaf, including early ones", () => {
    const p = planRequest([cmd("A", ["x"]), cmd("B", ["y"]), cmd("C", ["B"])]);
    expect(p.leaves).toEqual([0, 2]);
  });

  it("creates dependencies from kwargs values but never from keys", () => {
    const p = planRequest([cmd("X", [1]), cmd("Y", [], { v: "X", X: 1, nested: { deep: ["X.a"] } })]);
    expect(p.commands[1]!.deps).toEqual([0]);
    expect(p.commands[1]!.refs.map((r) => r.path)).toEqual([["v"], ["nested", "deep", 0]]);
    const q = planRequest([cmd("X", [1]), cmd("Y", [], { X: 1 })]);
    expect(q.commands[1]!.deps).toEqual([]);
  });

  it("resolves dotted command names by the longest matching name", () => {
    const p = planRequest([cmd("a", [1]), cmd("a.b", [2]), cmd("c", ["a.b.c", "a.x", "a.b", "a"])]);
    const refs = p.commands[2]!.refs;
    expect(refs.map((r) => [r.dep, r.steps])).toEqual([
      [1, ["c"]],
      [0, ["x"]],
      [1, []],
      [0, []],
    ]);
  });

  it("treats strings naming no command as data", () => {
    const p = planRequest([cmd("A", ["nonexistent_cmd", "Ax", ".A", "A_b"])]);
    expect(p.commands[0]!.refs).toEqual([]);
  });

  it("refuses empty, duplicate, oversized and malformed requests with 1002", () => {
    expect(refusal(() => planRequest([]))).toMatchObject({ code: 1002, details: { reason: "empty_cmds" } });
    expect(refusal(() => planRequest([cmd("a"), cmd("a")]))).toMatchObject({
      code: 1002,
      details: { reason: "duplicate_name", path: "cmds[1].name" },
    });
    const many = Array.from({ length: MAX_COMMANDS + 1 }, (_, i) => cmd(`c${i}`));
    expect(refusal(() => planRequest(many))).toMatchObject({ code: 1002, details: { reason: "too_many_commands" } });
    expect(refusal(() => planRequest([{ name: "", fun: "f" }]))).toMatchObject({ details: { reason: "invalid_name" } });
    expect(refusal(() => planRequest([{ name: "a", fun: "f", args: "x" as unknown as unknown[] }]))).toMatchObject({
      details: { reason: "invalid_args", path: "cmds[0].args" },
    });
    expect(planRequest(Array.from({ length: MAX_COMMANDS }, (_, i) => cmd(`c${i}`))).leaves).toHaveLength(MAX_COMMANDS);
  });

  it("refuses nesting deeper than the bound without overflowing the stack", () => {
    let deep: unknown = "x";
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const r = refusal(() => planRequest([cmd("a", [deep])]));
    expect(r).toMatchObject({ code: 1002, details: { reason: "nesting_too_deep" } });
    let ok: unknown = "a0";
    for (let i = 0; i < MAX_NESTING_DEPTH - 1; i++) ok = [ok];
    expect(planRequest([cmd("a0"), cmd("b", [ok])]).commands[1]!.deps).toEqual([0]);
  });

  it("refuses self-references and cycles, naming the cycle", () => {
    expect(refusal(() => planRequest([cmd("echo", ["echo"])]))).toMatchObject({
      code: 1002,
      details: { reason: "dependency_cycle", cycle: ["echo"] },
    });
    const r = refusal(() => planRequest([cmd("ok"), cmd("a", ["b"]), cmd("b", [{ k: "a.x" }])]));
    expect(r.code).toBe(1002);
    expect([...(r.details.cycle as string[])].sort()).toEqual(["a", "b"]);
  });
});

describe("substitute", () => {
  it("replaces whole results and walks keys and array indexes", () => {
    const cmds = [cmd("X", [1]), cmd("Y", ["X", "X.a.0.b", "X.a.1", "X.missing", "X.a.01", "plain"], { k: ["X.a"] })];
    const plan = planRequest(cmds);
    const result = { a: [{ b: 7 }] };
    const out = substitute(plan, 1, new Map([["X", result]]));
    expect(out.args).toEqual([result, 7, "X.a.1", "X.missing", "X.a.01", "plain"]);
    expect(out.args[0]).toBe(result);
    expect(out.kwargs).toEqual({ k: [[{ b: 7 }]] });
    expect(cmds[1]!.args).toEqual(["X", "X.a.0.b", "X.a.1", "X.missing", "X.a.01", "plain"]);
    expect(cmds[1]!.kwargs).toEqual({ k: ["X.a"] });
  });

  it("shows each replacing value to onSubstitute, which may refuse the substitution by throwing", () => {
    const plan = planRequest([cmd("X"), cmd("Y", ["X", "X.a", "X.nope", "plain"], { k: "X" })]);
    const result = { a: "big" };
    const seen: [unknown, string][] = [];
    substitute(plan, 1, new Map([["X", result]]), { onSubstitute: (v, ref) => seen.push([v, ref.original]) });
    // Not for strings that stay as written (a missing step, plain data).
    expect(seen).toEqual([[result, "X"], ["big", "X.a"], [result, "X"]]);
    const refuse = new Error("too much");
    expect(() => substitute(plan, 1, new Map([["X", result]]), { onSubstitute: () => { throw refuse; } })).toThrow(refuse);
  });

  it("does not treat array properties such as length as keys", () => {
    const plan = planRequest([cmd("X"), cmd("Y", ["X.length", "X.0"])]);
    expect(substitute(plan, 1, new Map([["X", [10, 20]]])).args).toEqual(["X.length", 10]);
  });

  it("returns the original containers when nothing is replaced", () => {
    const c = cmd("Y", ["a", { b: [1] }], { z: 1 });
    const plan = planRequest([c]);
    const out = substitute(plan, 0, new Map());
    expect(out.args).toBe(c.args);
    expect(out.kwargs).toBe(c.kwargs);
  });

  it("copies only the containers on the path to a replaced value", () => {
    const untouched = { keep: [1, 2] };
    const c = cmd("Y", [untouched, { v: "X" }]);
    const plan = planRequest([cmd("X"), c]);
    const out = substitute(plan, 1, new Map([["X", 5]]));
    expect(out.args[0]).toBe(untouched);
    expect(out.args[1]).toEqual({ v: 5 });
    expect(c.args![1]).toEqual({ v: "X" });
  });

  it("keeps a __proto__ key as data", () => {
    const kwargs = JSON.parse('{"__proto__": {"v": "X"}}') as Record<string, unknown>;
    const plan = planRequest([cmd("X"), { name: "Y", fun: "f", kwargs }]);
    const out = substitute(plan, 1, new Map([["X", 3]]));
    expect(Object.getPrototypeOf(out.kwargs)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out.kwargs, "__proto__")?.value).toEqual({ v: 3 });
  });
});

// ---------------------------------------------------------------- properties

/** A random DAG: command i may reference only commands j < i; names are shuffled dotted names. */
const dagArb = fc
  .integer({ min: 1, max: 25 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1), fc.boolean(), fc.boolean()), { maxLength: n * 3 }),
      perm: fc.shuffledSubarray(
        Array.from({ length: n }, (_, i) => i),
        { minLength: n, maxLength: n },
      ),
      dotted: fc.boolean(),
    }),
  )
  .map(({ n, edges, perm, dotted }) => {
    // Dotted names exercise the longest-match rule (`c1` vs `c1.x`).
    const name = (i: number) => (dotted && i % 2 === 1 ? `c${i - 1}.x` : `c${i}`);
    const args: unknown[][] = Array.from({ length: n }, () => []);
    const kwargs: Record<string, unknown>[] = Array.from({ length: n }, () => ({}));
    const expected: Set<number>[] = Array.from({ length: n }, () => new Set());
    edges.forEach(([a, b, inKw, withPath], k) => {
      if (a === b) return;
      const [from, to] = a > b ? [a, b] : [b, a];
      const ref = withPath ? `${name(to)}.f.0` : name(to);
      if (inKw) kwargs[from]![`k${k}`] = { nested: [ref] };
      else args[from]!.push(ref);
      expected[from]!.add(to);
    });
    const cmds = perm.map((i) => ({ name: name(i), fun: "f", args: args[i], kwargs: kwargs[i] }));
    const pos = new Map(perm.map((i, p) => [i, p]));
    return { cmds, expected: perm.map((i) => new Set([...expected[i]!].map((d) => pos.get(d)!))) };
  });

describe("planner properties", () => {
  it("orders every command after all it references; leaves are exactly the unreferenced", () => {
    fc.assert(
      fc.property(dagArb, ({ cmds, expected }) => {
        const plan = planRequest(cmds);
        const n = cmds.length;
        for (let i = 0; i < n; i++) expect(new Set(plan.commands[i]!.deps)).toEqual(expected[i]);
        const position = new Map(plan.order.map((c, p) => [c, p]));
        expect(position.size).toBe(n);
        for (let i = 0; i < n; i++) {
          for (const d of expected[i]!) expect(position.get(d)!).toBeLessThan(position.get(i)!);
          const lvl = expected[i]!.size === 0 ? 0 : 1 + Math.max(...[...expected[i]!].map((d) => plan.commands[d]!.level));
          expect(plan.commands[i]!.level).toBe(lvl);
          expect(plan.levels[lvl]).toContain(i);
        }
        const referenced = new Set(expected.flatMap((s) => [...s]));
        const leaves = Array.from({ length: n }, (_, i) => i).filter((i) => !referenced.has(i));
        expect(plan.leaves).toEqual(leaves);
        for (const i of plan.leaves) expect(plan.commands[i]!.dependents).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses graphs with a cycle and names a real cycle", () => {
    const cyclicArb = dagArb.chain(({ cmds }) =>
      fc.record({
        cmds: fc.constant(cmds),
        cycle: fc.uniqueArray(fc.nat(cmds.length - 1), { minLength: 1, maxLength: cmds.length }),
      }),
    );
    fc.assert(
      fc.property(cyclicArb, ({ cmds, cycle }) => {
        // Close a loop cycle[0] -> cycle[1] -> ... -> cycle[0] on top of the DAG.
        const withCycle = cmds.map((c) => ({ ...c, args: [...(c.args ?? [])] }));
        cycle.forEach((from, k) => withCycle[from]!.args.push(withCycle[cycle[(k + 1) % cycle.length]!]!.name));
        const r = refusal(() => planRequest(withCycle));
        expect(r.code).toBe(1002);
        expect(r.details.reason).toBe("dependency_cycle");
        const names = r.details.cycle as string[];
        expect(names.length).toBeGreaterThan(0);
        const plan = planRequest(withCycle.map((c) => ({ ...c, args: [] as unknown[], kwargs: {} }))); // for byName
        // Each named command really references the next (wrapping around).
        const depsOf = (name: string): Set<string> => {
          const c = withCycle[plan.byName.get(name)!]!;
          const probe = planRequest([...withCycle.map((x) => ({ name: x.name, fun: "f" })), { name: "\u0000probe", fun: "f", args: c.args, kwargs: c.kwargs }]);
          return new Set(probe.commands[probe.commands.length - 1]!.deps.map((d) => probe.commands[d]!.name));
        };
        names.forEach((name, k) => expect(depsOf(name).has(names[(k + 1) % names.length]!)).toBe(true));
      }),
      { numRuns: 200 },
    );
  });

  it("matches references like a naive longest-prefix implementation", () => {
    const seg = fc.constantFrom("a", "b", "", "ab");
    const dotted = fc.array(seg, { minLength: 1, maxLength: 4 }).map((xs) => xs.join(".")).filter((x) => x.length > 0);
    fc.assert(
      fc.property(fc.uniqueArray(dotted, { minLength: 1, maxLength: 8 }), fc.array(dotted, { maxLength: 8 }), (names, strings) => {
        // The probe command's name cannot collide with the generated ones.
        const plan = planRequest([...names.map((name) => ({ name, fun: "f" })), { name: "probe-", fun: "f", args: strings }]);
        const got = plan.commands[names.length]!.refs.map((r) => [r.path[0], names[r.dep], r.steps.join(".")]);
        const want = strings.flatMap((str, k) => {
          const hits = names.filter((nm) => str === nm || str.startsWith(`${nm}.`)).sort((x, y) => y.length - x.length);
          const best = hits[0];
          return best === undefined ? [] : [[k, best, str === best ? "" : str.slice(best.length + 1)]];
        });
        expect(got).toEqual(want);
      }),
      { numRuns: 500 },
    );
  });

  it("stays linear with hostile nested dotted names", () => {
    const names = Array.from({ length: MAX_COMMANDS - 1 }, (_, i) => Array.from({ length: i + 1 }, () => "a").join("."));
    const long = names[names.length - 1]!;
    const args = Array.from({ length: 200 }, () => `${long}.a.x`);
    const plan = planRequest([...names.map((name) => ({ name, fun: "f" })), { name: "probe", fun: "f", args }]);
    const refs = plan.commands[names.length]!.refs;
    expect(refs).toHaveLength(200);
    expect(refs[0]!.dep).toBe(names.length - 1);
    expect(refs[0]!.steps).toEqual(["a", "x"]);
  });

  it("substitutes random paths like a reference implementation", () => {
    const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small" },
        fc.integer(),
        fc.constantFrom("s", "t"),
        fc.array(tie("value"), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom("a", "b", "0", "1"), tie("value"), { maxKeys: 3 }),
      ),
    })).value;
    const step = fc.constantFrom("a", "b", "0", "1", "2", "01", "length");
    const reference = (value: unknown, steps: string[], original: string): unknown => {
      let cur = value;
      for (const s of steps) {
        if (Array.isArray(cur)) {
          if (!/^(0|[1-9]\d*)$/.test(s) || Number(s) >= cur.length) return original;
          cur = cur[Number(s)];
        } else if (cur !== null && typeof cur === "object" && Object.keys(cur).includes(s)) {
          cur = (cur as Record<string, unknown>)[s];
        } else return original;
      }
      return cur;
    };
    fc.assert(
      fc.property(json, fc.array(fc.array(step, { maxLength: 4 }), { minLength: 1, maxLength: 5 }), (result, paths) => {
        const strings = paths.map((p) => ["X", ...p].join("."));
        const c = { name: "Y", fun: "f", args: [...strings], kwargs: { deep: { list: [...strings] } } };
        const plan = planRequest([{ name: "X", fun: "f" }, c]);
        const snapshot = JSON.stringify(result);
        const out = substitute(plan, 1, new Map([["X", result]]));
        const want = paths.map((p, k) => reference(result, p, strings[k]!));
        expect(out.args).toEqual(want);
        expect(out.kwargs).toEqual({ deep: { list: want } });
        expect(c.args).toEqual(strings);
        expect(JSON.stringify(result)).toBe(snapshot);
      }),
      { numRuns: 500 },
    );
  });
});
