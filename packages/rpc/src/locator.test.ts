import { describe, expect, it } from "vitest";
import { ErrorCode, MpregError, isMpregError } from "@mpreg/envelope";
import { Catalog } from "@mpreg/catalog";
import type { PlanCommand } from "@mpreg/router";
import { Executor, type Dispatcher, type Location } from "./executor.js";
import { createCatalogLocator, createLocalLocator } from "./locator.js";
import { FunctionRegistry } from "./registry.js";

interface NodeSpec {
  node: string;
  cluster: string;
  functions: { name: string; version?: string; resources?: string[] }[];
}

/**
 * A small fabric: node A's catalog learns every node's functions through real catalog deltas;
 * each node has a real registry (handlers answer `<node>:<version>`) and its own local executor.
 */
function fabric(specs: NodeSpec[], loads: Record<string, number> = {}, registryOnA?: FunctionRegistry) {
  const catalogA = new Catalog({ nodeId: "A", clusterId: "c1" });
  const registries = new Map<string, FunctionRegistry>();
  const executors = new Map<string, Executor>();
  for (const s of specs) {
    const reg = new FunctionRegistry();
    const own = s.node === "A" ? catalogA : new Catalog({ nodeId: s.node, clusterId: s.cluster });
    for (const f of s.functions) {
      reg.register(f.name, () => `${s.node}:${f.version ?? "1.0.0"}`, { version: f.version ?? "1.0.0", resources: f.resources ?? [] });
      const delta = own.registerLocal(
        { kind: "function", name: f.name, function_id: f.name, version: f.version ?? "1.0.0", resources: f.resources ?? [] },
        1_000,
      );
      if (own !== catalogA) expect(catalogA.applyDelta(delta, 1_000).status).toBe("applied");
    }
    registries.set(s.node, reg);
    executors.set(s.node, new Executor({ registry: reg, locate: createLocalLocator(reg), nodeId: s.node, clusterId: s.cluster }));
  }
  const registryA = registryOnA ?? registries.get("A") ?? new FunctionRegistry();
  let randomValue = 0;
  const locate = createCatalogLocator({
    catalog: catalogA,
    registry: registryA,
    selfNodeId: "A",
    selfClusterId: "c1",
    load: (n) => loads[n],
    random: () => randomValue,
  });
  // The dispatcher runs the command on the chosen node's own executor: a real second node.
  const dispatcher: Dispatcher = {
    async dispatch({ command, node_id, request_id, signal }) {
      const ex = executors.get(node_id);
      if (ex === undefined) throw new MpregError(ErrorCode.UNREACHABLE, "no such node", { command: command.name, node_id, reason: "unknown" });
      return ex.executeLocal({ command, request_id, signal });
    },
  };
  const executor = new Executor({ registry: registryA, locate, dispatcher, nodeId: "A", clusterId: "c1" });
  return { locate, executor, setRandom: (r: number) => (randomValue = r) };
}

const cmd = (fun: string, extra: Partial<PlanCommand> = {}): PlanCommand => ({ name: "x", fun, ...extra });

function where(loc: Location | MpregError): string {
  if (loc instanceof Error) throw loc;
  return loc.kind === "local" ? "local" : `${loc.node_id}@${loc.cluster_id}`;
}

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (isMpregError(e)) return e.code;
    throw e;
  }
  throw new Error("expected an MpregError");
}

const specs: NodeSpec[] = [
  { node: "A", cluster: "c1", functions: [{ name: "both" }] },
  { node: "B", cluster: "c1", functions: [{ name: "both" }, { name: "shared" }, { name: "tensor", resources: ["cpu"] }] },
  { node: "C", cluster: "c1", functions: [{ name: "shared" }, { name: "tensor", resources: ["gpu"] }, { name: "v", version: "2.0.0" }] },
  { node: "D", cluster: "c2", functions: [{ name: "far" }, { name: "shared" }, { name: "v", version: "1.5.0" }] },
];

describe("createCatalogLocator", () => {
  it("prefers this node, then the lower load in its cluster, then other clusters", () => {
    const { locate } = fabric(specs, { A: 50, B: 3, C: 1, D: 0 });
    expect(where(locate(cmd("both")))).toBe("local");
    expect(where(locate(cmd("shared")))).toBe("C@c1");
    expect(where(locate(cmd("far")))).toBe("D@c2");
  });

  it("breaks ties between equal nodes with the random source", () => {
    const { locate, setRandom } = fabric(specs, { B: 2, C: 2 });
    setRandom(0);
    expect(where(locate(cmd("shared")))).toBe("B@c1");
    setRandom(0.99);
    expect(where(locate(cmd("shared")))).toBe("C@c1");
  });

  it("filters by resources, version constraint and target_cluster", () => {
    const { locate } = fabric(specs);
    expect(where(locate(cmd("tensor", { locs: ["gpu"] })))).toBe("C@c1");
    expect(where(locate(cmd("tensor", { locs: ["cpu"] })))).toBe("B@c1");
    expect(code(() => locate(cmd("tensor", { locs: ["tpu"] })))).toBe(1001);
    expect(where(locate(cmd("v", { version_constraint: "<2" })))).toBe("D@c2");
    expect(where(locate(cmd("v")))).toBe("C@c1");
    expect(code(() => locate(cmd("v", { version_constraint: ">=3.0" })))).toBe(1001);
    expect(code(() => locate(cmd("v", { version_constraint: ">=banana" })))).toBe(1002);
    expect(where(locate(cmd("shared", { target_cluster: "c2" })))).toBe("D@c2");
    expect(code(() => locate(cmd("shared", { target_cluster: "c9" })))).toBe(1001);
    expect(code(() => locate(cmd("nope")))).toBe(1001);
  });

  it("falls back to another node when the catalog says this node has a function its registry lacks", () => {
    const { locate } = fabric(specs, {}, new FunctionRegistry());
    expect(where(locate(cmd("both")))).toBe("B@c1");
  });

  it("runs a multi-node request end to end through real registries", async () => {
    const { executor } = fabric(specs, { B: 1, C: 0 });
    const r = await executor.execute({
      request_id: "r",
      include_execution_summary: true,
      cmds: [
        { name: "a", fun: "both" },
        { name: "b", fun: "tensor", locs: ["cpu"] },
        { name: "d", fun: "far" },
      ],
    });
    expect(r.r).toEqual({ a: "A:1.0.0", b: "B:1.0.0", d: "D:1.0.0" });
    expect(r.execution_summary).toMatchObject({ remote_commands: 2, cross_cluster_commands: 1 });
  });

  it("refuses the whole request before anything runs when one command has no endpoint", async () => {
    const { executor } = fabric(specs);
    const p = executor.execute({ request_id: "r", cmds: [{ name: "a", fun: "both" }, { name: "z", fun: "nope", args: ["a"] }] });
    await expect(p).rejects.toMatchObject({ code: 1001, details: { command: "z", fun: "nope" } });
  });

  it("words an unknown function for a person: the cluster and a close match, never the command name", () => {
    const { locate } = fabric(specs);
    const err = (() => {
      try {
        locate(cmd("sahred", { name: "sahred@01ABCDEF" }));
      } catch (e) {
        return e as MpregError;
      }
      throw new Error("expected a refusal");
    })();
    expect(err.code).toBe(1001);
    expect(err.message).toBe("no function `sahred` in cluster `c1`; did you mean `shared`?");
    expect(err.message).not.toContain("@01ABCDEF");
    expect(() => locate(cmd("zzzzzz"))).toThrow(/^no function `zzzzzz` in cluster `c1`$/);
    expect(() => locate(cmd("fra", { target_cluster: "c2" }))).toThrow("no function `fra` in cluster `c2`; did you mean `far`?");
    // A known name whose filters match nothing keeps the precise reason.
    expect(() => locate(cmd("tensor", { locs: ["tpu"] }))).toThrow(/no endpoint of tensor matches/);
    const local = new FunctionRegistry();
    local.register("echo", () => 1);
    expect(() => createLocalLocator(local, { clusterId: "default" })(cmd("ech"))).toThrow("no function `ech` in cluster `default`; did you mean `echo`?");
  });

  it("remembers a 'runs here' decision while the registry is unchanged and this node is not excluded", async () => {
    const catalog = new Catalog({ nodeId: "A", clusterId: "c1" });
    const registry = new FunctionRegistry();
    registry.register("f", () => "A");
    const own = catalog.registerLocal({ kind: "function", name: "f", function_id: "f", version: "1.0.0", resources: [] }, 1_000)!;
    const other = new Catalog({ nodeId: "B", clusterId: "c1" });
    const delta = other.registerLocal({ kind: "function", name: "f", function_id: "f", version: "1.0.0", resources: [] }, 1_000);
    expect(catalog.applyDelta(delta, 1_000).status).toBe("applied");
    let excluded = new Set<string>();
    const locate = createCatalogLocator({
      catalog,
      registry,
      selfNodeId: "A",
      selfClusterId: "c1",
      load: () => 0,
      random: () => 0,
      exclude: () => excluded,
    });
    expect(where(locate(cmd("f")))).toBe("local");
    // Remembered: the catalog is not asked again (its self entry gone is not seen)...
    catalog.unregisterLocal(own.key, 1_000);
    expect(where(locate(cmd("f")))).toBe("local");
    // ...but this node excluded is seen at once,
    excluded = new Set(["A"]);
    expect(where(locate(cmd("f")))).toBe("B@c1");
    excluded = new Set();
    // a command with a filter is never remembered,
    expect(where(locate(cmd("f", { function_id: "f" })))).toBe("B@c1");
    // and a registry change forgets everything.
    registry.unregister("f");
    expect(where(locate(cmd("f")))).toBe("B@c1");
  });
});

describe("createCatalogLocator: remembered remote choices", () => {
  function setup(providers: string[]) {
    const catalog = new Catalog({ nodeId: "A", clusterId: "c1" });
    for (const node of providers) {
      const own = new Catalog({ nodeId: node, clusterId: "c1" });
      const delta = own.registerLocal({ kind: "function", name: "f", function_id: "f", version: "1.0.0", resources: [] }, 1_000);
      expect(catalog.applyDelta(delta, 1_000).status).toBe("applied");
    }
    let queries = 0;
    let generation = 0;
    let excluded: ReadonlySet<string> = new Set();
    const locate = createCatalogLocator({
      catalog: { queryFunctions: (q) => (queries++, catalog.queryFunctions(q)) },
      registry: new FunctionRegistry(),
      selfNodeId: "A",
      selfClusterId: "c1",
      load: () => 0,
      random: () => 0,
      exclude: () => excluded,
      catalogGeneration: () => generation,
    });
    return {
      locate,
      queries: () => queries,
      bump: () => generation++,
      exclude: (ids: string[]) => (excluded = new Set(ids)),
    };
  }

  it("remembers a plain command's single remote candidate until the catalog or the excluded set changes", () => {
    const t = setup(["B"]);
    expect(t.locate(cmd("f"))).toEqual({ kind: "remote", node_id: "B", cluster_id: "c1" });
    expect(t.locate(cmd("f"))).toEqual({ kind: "remote", node_id: "B", cluster_id: "c1" });
    expect(t.queries()).toBe(1);
    // Not for a command with a filter.
    t.locate(cmd("f", { version_constraint: ">=1.0.0" }));
    expect(t.queries()).toBe(2);
    t.bump();
    t.locate(cmd("f"));
    expect(t.queries()).toBe(3);
    t.exclude(["B"]);
    expect(() => t.locate(cmd("f"))).toThrow(/no reachable endpoint/);
    expect(t.queries()).toBe(4);
  });

  it("never remembers a choice between several candidates (load and ties decide each time)", () => {
    const t = setup(["B", "C"]);
    t.locate(cmd("f"));
    t.locate(cmd("f"));
    expect(t.queries()).toBe(2);
  });
});
