import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ErrorCode, MAX_FRAME_ELEMENTS, MpregError, isMpregError, type ExecutionSummary as WireSummary, type IntermediateResult as WireIr, type RpcRequest, validateFrame } from "@mpreg/envelope";
import type { PlanCommand } from "@mpreg/router";
import { CancellationSource, Executor, type Dispatcher, type IntermediateResult, type Locator } from "./executor.js";
import { createLocalLocator } from "./locator.js";
import { FunctionRegistry, type HandlerInput } from "./registry.js";

/** Polls `cond` every macrotask until it holds or `ms` pass. */
async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await new Promise((r) => setImmediate(r));
  }
}

async function failure(p: Promise<unknown>): Promise<MpregError> {
  try {
    await p;
  } catch (e) {
    if (isMpregError(e)) return e;
    throw e;
  }
  throw new Error("expected the request to fail");
}

/** A promise with its resolvers. */
function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function baseRegistry(): FunctionRegistry {
  const reg = new FunctionRegistry();
  reg.register("echo", ({ args }) => args[0]);
  reg.register("echos", ({ args }) => [...args]);
  reg.register("sum", ({ args }) => (args[0] as number[]).reduce((a, b) => a + b, 0));
  reg.register("add", async ({ args }) => (args[0] as number) + (args[1] as number));
  reg.register("kw", ({ kwargs }) => ({ ...kwargs }));
  return reg;
}

function localExecutor(reg = baseRegistry(), extra: Partial<ConstructorParameters<typeof Executor>[0]> = {}) {
  return new Executor({ registry: reg, locate: createLocalLocator(reg), nodeId: "node-a", clusterId: "c1", ...extra });
}

const c = (name: string, fun: string, args: unknown[] = [], kwargs?: Record<string, unknown>): PlanCommand =>
  kwargs === undefined ? { name, fun, args } : { name, fun, args, kwargs };

describe("Executor: results and references", () => {
  it("runs a single echo", async () => {
    const ex = localExecutor();
    await expect(ex.execute({ request_id: "r", cmds: [c("echo", "echo", ["Hello World!"])] })).resolves.toEqual({
      r: { echo: "Hello World!" },
    });
    const obj = { message: "test", number: 42, list: [1, 2, 3] };
    expect((await ex.execute({ request_id: "r", cmds: [c("e", "echo", [obj])] })).r).toEqual({ e: obj });
    expect((await ex.execute({ request_id: "r", cmds: [c("e", "echos", ["a", "b"])] })).r).toEqual({ e: ["a", "b"] });
  });

  it("chains and returns every leaf, early sinks included", async () => {
    const ex = localExecutor();
    expect((await ex.execute({ request_id: "r", cmds: [c("A", "echo", ["x"]), c("B", "echo", ["A"])] })).r).toEqual({ B: "x" });
    const r = await ex.execute({ request_id: "r", cmds: [c("A", "echo", ["x"]), c("B", "echo", ["y"]), c("C", "echo", ["B"])] });
    expect(r.r).toEqual({ A: "x", C: "y" });
  });

  it("runs diamonds and fan-in", async () => {
    const ex = localExecutor();
    const r = await ex.execute({
      request_id: "r",
      cmds: [
        c("batch1", "sum", [[1, 2, 3]]),
        c("batch2", "sum", [[4, 5, 6]]),
        c("left", "add", ["batch1", 1]),
        c("right", "add", ["batch2", "batch1"]),
        c("combined", "echos", ["left", "right"]),
      ],
    });
    expect(r.r).toEqual({ combined: [7, 21] });
  });

  it("resolves kwargs references and nested paths including array indexes", async () => {
    const reg = baseRegistry();
    reg.register("data", () => ({ a: { b: 2 }, list: [10, 20], average: 20.5 }));
    const ex = localExecutor(reg);
    const r = await ex.execute({
      request_id: "r",
      cmds: [
        c("X", "data"),
        c("Y", "kw", [], { whole: "X.a", b: "X.a.b", idx: "X.list.1", missing: "X.b", nested: { v: ["X.average"] }, plain: "nonexistent_cmd" }),
      ],
    });
    expect(r.r).toEqual({
      Y: { whole: { b: 2 }, b: 2, idx: 20, missing: "X.b", nested: { v: [20.5] }, plain: "nonexistent_cmd" },
    });
  });

  it("returns every command with return_all", async () => {
    const ex = localExecutor();
    const r = await ex.execute({ request_id: "r", return_all: true, cmds: [c("A", "echo", ["x"]), c("B", "echo", ["A"])] });
    expect(r.r).toEqual({ A: "x", B: "x" });
    expect(Object.keys(r.r)).toEqual(["A", "B"]);
  });

  it("accepts a decoded wire request and produces wire-shaped results", async () => {
    const wire: RpcRequest = {
      role: "rpc",
      u: "01J",
      cmds: [{ name: "a", fun: "echo", args: [1] }, { name: "b", fun: "echos", args: ["a"], kwargs: {} }],
      return_intermediate_results: true,
      include_execution_summary: true,
    };
    const r = await localExecutor().execute({ ...wire, request_id: wire.u });
    const irs: WireIr[] | undefined = r.intermediate_results;
    const summary: WireSummary | undefined = r.execution_summary;
    expect(r.r).toEqual({ b: [1] });
    expect(irs).toHaveLength(2);
    expect(summary?.total_levels).toBe(2);
    const reply = { role: "rpc-response", u: wire.u, r: r.r, error: null, intermediate_results: irs, execution_summary: summary };
    const checked = validateFrame(reply);
    expect(checked.ok ? "ok" : checked.error.message).toBe("ok");
  });

  it("passes ctx and request_id to handlers", async () => {
    const reg = new FunctionRegistry<{ conn: string }>();
    const seen: unknown[] = [];
    reg.register("who", ({ ctx, request_id }) => {
      seen.push(request_id);
      return ctx?.conn;
    });
    const ex = new Executor({ registry: reg, locate: createLocalLocator(reg), nodeId: "n" });
    expect((await ex.execute({ request_id: "req-1", ctx: { conn: "c-7" }, cmds: [c("w", "who")] })).r).toEqual({ w: "c-7" });
    expect(seen).toEqual(["req-1"]);
  });
});

describe("Executor: refusals before anything runs", () => {
  it("refuses cycles, empty and duplicate requests with 1002", async () => {
    const ex = localExecutor();
    expect((await failure(ex.execute({ request_id: "r", cmds: [] }))).code).toBe(1002);
    expect((await failure(ex.execute({ request_id: "r", cmds: [c("echo", "echo", ["echo"])] }))).code).toBe(1002);
    expect((await failure(ex.execute({ request_id: "r", cmds: [c("a", "echo", ["b"]), c("b", "echo", ["a"])] }))).code).toBe(1002);
    expect((await failure(ex.execute({ request_id: "r", timeout_ms: -1, cmds: [c("a", "echo")] }))).code).toBe(1002);
  });

  it("runs nothing when any command has no candidate (1001)", async () => {
    const reg = baseRegistry();
    let ran = 0;
    reg.register("count", () => ++ran);
    const ex = localExecutor(reg);
    const e = await failure(ex.execute({ request_id: "r", cmds: [c("first", "count"), c("second", "nope", ["first"])] }));
    expect(e.code).toBe(ErrorCode.NOT_FOUND);
    expect(e.details).toMatchObject({ command: "second", fun: "nope" });
    expect(ran).toBe(0);
  });

  it("honours version constraints, resources and target_cluster in the local locator", async () => {
    const reg = new FunctionRegistry();
    reg.register("v", () => "1.0", { version: "1.0.0" });
    reg.register("v", () => "1.2", { version: "1.2.0" });
    reg.register("v", () => "2.0", { version: "2.0.0", resources: ["gpu"] });
    const ex = new Executor({ registry: reg, locate: createLocalLocator(reg, { nodeResources: ["cpu"], clusterId: "c1" }), nodeId: "n" });
    const run = (cmd: Partial<PlanCommand>) => ex.execute({ request_id: "r", cmds: [{ name: "x", fun: "v", ...cmd }] });
    expect((await run({})).r).toEqual({ x: "2.0" });
    expect((await run({ version_constraint: ">=1.0,<2.0" })).r).toEqual({ x: "1.2" });
    expect((await run({ locs: ["cpu"] })).r).toEqual({ x: "2.0" });
    expect((await run({ locs: ["gpu", "cpu"] })).r).toEqual({ x: "2.0" });
    expect((await failure(run({ locs: ["tpu"] }))).code).toBe(1001);
    expect((await failure(run({ version_constraint: ">=3.0" }))).code).toBe(1001);
    expect((await failure(run({ version_constraint: ">=banana" }))).code).toBe(1002);
    expect((await run({ target_cluster: "c1" })).r).toEqual({ x: "2.0" });
    expect((await failure(run({ target_cluster: "c2" }))).code).toBe(1001);
  });
});

describe("Executor: failures, timeouts, cancellation", () => {
  it("fails with 1003 on a throwing handler, aborts the others and starts nothing more", async () => {
    const reg = baseRegistry();
    const slowSignal: AbortSignal[] = [];
    let laterRan = false;
    reg.register("boom", async () => {
      await Promise.resolve();
      throw new TypeError("bad input");
    });
    reg.register("slow", ({ signal }) => {
      slowSignal.push(signal);
      return new Promise(() => undefined);
    });
    reg.register("later", () => (laterRan = true));
    const ex = localExecutor(reg);
    const e = await failure(
      ex.execute({ request_id: "r", cmds: [c("s", "slow"), c("b", "boom"), c("after", "later", ["b"])] }),
    );
    expect(e.code).toBe(ErrorCode.EXECUTION_FAILED);
    expect(e.details).toEqual({ command: "b", fun: "boom", node_id: "node-a", error_type: "TypeError", message: "bad input" });
    await waitFor(() => slowSignal[0]?.aborted === true);
    expect(laterRan).toBe(false);
  });

  it("hands an already aborted signal to a handler that asks for it after the failure", async () => {
    const reg = baseRegistry();
    const gate = deferred();
    let late: AbortSignal | undefined;
    reg.register("fail", () => {
      throw new Error("x");
    });
    reg.register("late", async (input) => {
      await gate.promise;
      late = input.signal;
    });
    const p = localExecutor(reg).execute({ request_id: "r", cmds: [c("l", "late"), c("f", "fail")] });
    expect((await failure(p)).code).toBe(1003);
    gate.resolve();
    await waitFor(() => late !== undefined);
    expect(late!.aborted).toBe(true);
    expect(isMpregError(late!.reason)).toBe(true);
  });

  it("reports the first failure only", async () => {
    const reg = baseRegistry();
    const gate = deferred();
    reg.register("first", () => {
      throw new Error("first");
    });
    reg.register("second", async () => {
      await gate.promise;
      throw new Error("second");
    });
    const ex = localExecutor(reg);
    const e = await failure(ex.execute({ request_id: "r", cmds: [c("s", "second"), c("f", "first")] }));
    gate.resolve();
    expect(e.details.message).toBe("first");
  });

  it("passes a handler's own MpregError through unchanged", async () => {
    const reg = baseRegistry();
    reg.register("stale", () => {
      throw MpregError.notFound("stale receipt", { receipt: "x" });
    });
    const e = await failure(localExecutor(reg).execute({ request_id: "r", cmds: [c("s", "stale")] }));
    expect(e.code).toBe(1001);
    expect(e.details).toEqual({ receipt: "x", reason: "stale receipt" });
  });

  it("times out a handler that never returns with 1004 and aborts its signal", async () => {
    const reg = baseRegistry();
    let signal: AbortSignal | undefined;
    reg.register("hang", (input: HandlerInput) => {
      signal = input.signal;
      return new Promise(() => undefined);
    });
    const ex = localExecutor(reg);
    const e = await failure(
      ex.execute({ request_id: "r", timeout_ms: 30, cmds: [c("a", "echo", ["x"]), c("h", "hang", ["a"]), c("z", "echo", ["h"])] }),
    );
    expect(e.code).toBe(ErrorCode.TIMEOUT);
    expect(e.details).toEqual({ completed: ["a"], pending: ["h", "z"] });
    await waitFor(() => signal?.aborted === true);
  });

  it("fails when the caller's signal aborts", async () => {
    const reg = baseRegistry();
    let signal: AbortSignal | undefined;
    reg.register("hang", (input) => {
      signal = input.signal;
      return new Promise(() => undefined);
    });
    const ac = new AbortController();
    const p = localExecutor(reg).execute({ request_id: "r", signal: ac.signal, cmds: [c("h", "hang")] });
    await waitFor(() => signal !== undefined);
    ac.abort(new MpregError(ErrorCode.UNREACHABLE, "connection closed", { reason: "closed" }));
    expect((await failure(p)).code).toBe(ErrorCode.UNREACHABLE);
    expect(signal!.aborted).toBe(true);
  });

  it("fails when the caller's cancellation aborts, and leaves no listener behind on it", async () => {
    const reg = baseRegistry();
    let signal: AbortSignal | undefined;
    reg.register("hang", (input) => {
      signal = input.signal;
      return new Promise(() => undefined);
    });
    reg.register("later", ({ args }) => new Promise((r) => setTimeout(() => r(args[0]), 5)));
    const source = new CancellationSource();
    const ex = localExecutor(reg);
    // A request that ends on its own unregisters; a synchronous one never registers.
    expect((await ex.execute({ request_id: "a", cancellation: source, cmds: [c("x", "later", [1])] })).r).toEqual({ x: 1 });
    expect(source.size).toBe(0);
    const p = ex.execute({ request_id: "r", cancellation: source, cmds: [c("h", "hang")] });
    await waitFor(() => signal !== undefined);
    expect(source.size).toBe(1);
    source.abort(new MpregError(ErrorCode.UNREACHABLE, "connection closed", { reason: "closed" }));
    expect((await failure(p)).code).toBe(ErrorCode.UNREACHABLE);
    expect(signal!.aborted).toBe(true);
    expect(source.size).toBe(0);
    // Once aborted, a new request fails at once.
    expect((await failure(ex.execute({ request_id: "b", cancellation: source, cmds: [c("x", "later", [1])] }))).code).toBe(ErrorCode.UNREACHABLE);
  });
});

describe("Executor: concurrency", () => {
  it("starts each command when its own dependencies are done (no level barrier)", async () => {
    const reg = baseRegistry();
    const slow = deferred<string>();
    const order: string[] = [];
    reg.register("slow", () => slow.promise);
    reg.register("fast", async ({ args }) => {
      order.push(String(args[0]));
      return args[0];
    });
    const ex = localExecutor(reg);
    // Level 0: slow, f0. Level 1: f1 (needs f0 only). f1 must finish before slow does.
    const p = ex.execute({ request_id: "r", cmds: [c("s", "slow"), c("f0", "fast", ["a"]), c("f1", "fast", ["f0"]), c("end", "echos", ["s", "f1"])] });
    await waitFor(() => order.length === 2);
    expect(order).toEqual(["a", "a"]);
    slow.resolve("S");
    expect((await p).r).toEqual({ end: ["S", "a"] });
  });

  it("runs independent commands of one request concurrently", async () => {
    const reg = baseRegistry();
    const n = 5;
    let arrived = 0;
    const open = deferred();
    reg.register("barrier", async () => {
      if (++arrived === n) open.resolve();
      await open.promise;
      return arrived;
    });
    const ex = localExecutor(reg);
    const r = await ex.execute({ request_id: "r", cmds: Array.from({ length: n }, (_, i) => c(`b${i}`, "barrier")) });
    expect(Object.values(r.r)).toEqual([n, n, n, n, n]);
  });

  it("completes 64 concurrent requests whose handlers wait for each other", async () => {
    const reg = baseRegistry();
    const n = 64;
    let arrived = 0;
    const open = deferred();
    reg.register("barrier", async ({ args }) => {
      if (++arrived === n) open.resolve();
      await open.promise;
      return args[0];
    });
    const ex = localExecutor(reg);
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => ex.execute({ request_id: `r${i}`, cmds: [c("b", "barrier", [i])] })),
    );
    expect(results.map((r) => r.r.b)).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});

describe("Executor: intermediate results and summary", () => {
  it("emits one entry per level in level order, with progress callbacks", async () => {
    const ex = localExecutor();
    const progress: IntermediateResult[] = [];
    const r = await ex.execute({
      request_id: "r",
      return_intermediate_results: true,
      include_execution_summary: true,
      onProgress: (ir) => progress.push(ir),
      cmds: [c("step1", "echo", [1]), c("other", "add", [1, 1]), c("step2", "add", ["step1", 1]), c("step3", "add", ["step2", "other"])],
    });
    expect(r.r).toEqual({ step3: 4 });
    const irs = r.intermediate_results!;
    expect(irs.map((i) => [i.level_index, i.completed_levels, i.total_levels])).toEqual([
      [0, 1, 3],
      [1, 2, 3],
      [2, 3, 3],
    ]);
    expect(irs[0]!.level_results).toEqual({ step1: 1, other: 2 });
    expect(irs[1]!.level_results).toEqual({ step2: 2 });
    expect(irs[1]!.accumulated_results).toEqual({ step1: 1, other: 2, step2: 2 });
    expect(irs[2]!.accumulated_results).toEqual({ step1: 1, other: 2, step2: 2, step3: 4 });
    expect(progress).toEqual(irs);
    for (const ir of irs) expect(ir.execution_time_ms).toBeGreaterThanOrEqual(0);
    expect(r.execution_summary).toMatchObject({ total_levels: 3, commands_executed: 4, remote_commands: 0, cross_cluster_commands: 0 });
    expect(r.execution_summary!.level_execution_times).toHaveLength(3);
    const s = r.execution_summary!;
    expect(s.level_execution_times[s.bottleneck_level_index]).toBe(Math.max(...s.level_execution_times));
  });

  it("emits a level only once every lower level is complete", async () => {
    const reg = baseRegistry();
    const slow = deferred<string>();
    reg.register("slow", () => slow.promise);
    const ex = localExecutor(reg);
    const seen: number[] = [];
    const p = ex.execute({
      request_id: "r",
      onProgress: (ir) => seen.push(ir.level_index),
      cmds: [c("s", "slow"), c("a", "echo", [1]), c("b", "echo", ["a"])],
    });
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([]); // level 1 (b) is done but level 0 waits for s
    slow.resolve("x");
    const r = await p;
    expect(seen).toEqual([0, 1]);
    expect(r.intermediate_results).toBeUndefined();
    expect(r.execution_summary).toBeUndefined();
  });
});

describe("Executor: remote commands", () => {
  /** A second node: its own registry behind a dispatcher that calls its handlers. */
  function twoNodes() {
    const local = baseRegistry();
    const remote = new FunctionRegistry();
    remote.register("remote_step", ({ args }) => ({ final: `processed_${String(args[0])}`, computed: 42 }));
    remote.register("remote_boom", () => {
      throw new RangeError("remote bad");
    });
    const dispatched: { node_id: string; args: unknown }[] = [];
    const dispatcher: Dispatcher = {
      async dispatch({ command, node_id, signal, request_id }) {
        dispatched.push({ node_id, args: command.args });
        const fn = remote.resolve(command.fun, { function_id: command.function_id, version_constraint: command.version_constraint });
        try {
          return await fn.handler({ args: command.args ?? [], kwargs: command.kwargs ?? {}, signal, request_id, ctx: undefined });
        } catch (e) {
          const err = e as Error;
          throw new MpregError(ErrorCode.EXECUTION_FAILED, err.message, {
            command: command.name,
            fun: command.fun,
            node_id,
            error_type: err.name,
            message: err.message,
          });
        }
      },
    };
    const localLocate = createLocalLocator(local);
    const locate: Locator = (cmd) => {
      if (local.has(cmd.fun)) return localLocate(cmd);
      if (remote.find(cmd.fun) !== null) return { kind: "remote", node_id: "node-b", cluster_id: cmd.target_cluster ?? "c1" };
      return MpregError.notFound(`function ${cmd.fun} is not registered`);
    };
    return { ex: localExecutor(local, { locate, dispatcher }), dispatched };
  }

  it("substitutes before dispatching and counts remote commands", async () => {
    const { ex, dispatched } = twoNodes();
    const r = await ex.execute({
      request_id: "r",
      include_execution_summary: true,
      cmds: [
        c("step1", "echo", ["test_input"]),
        c("step2", "remote_step", ["step1"]),
        { name: "step3", fun: "remote_step", args: ["x"], target_cluster: "c2" },
        c("out", "echos", ["step2.final", "step2.computed", "step3.computed"]),
      ],
    });
    expect(r.r).toEqual({ out: ["processed_test_input", 42, 42] });
    expect(dispatched.map((d) => d.args)).toContainEqual(["test_input"]);
    expect(dispatched.map((d) => d.args)).toContainEqual(["x"]);
    expect(dispatched.every((d) => d.node_id === "node-b")).toBe(true);
    expect(r.execution_summary).toMatchObject({ remote_commands: 2, cross_cluster_commands: 1, commands_executed: 4 });
  });

  it("gives the dispatcher the request's absolute deadline and signal", async () => {
    const reg = baseRegistry();
    const seen: { deadline: number; aborted: boolean }[] = [];
    let t = 0;
    const ex = new Executor({
      registry: reg,
      nodeId: "n",
      locate: () => ({ kind: "remote", node_id: "b", cluster_id: "c1" }),
      dispatcher: {
        async dispatch({ deadline, signal }) {
          seen.push({ deadline, aborted: signal.aborted });
          return 1;
        },
      },
      now: () => (t += 5),
      wallClock: () => 1_000_000,
    });
    await ex.execute({ request_id: "r", timeout_ms: 2_000, cmds: [c("x", "f")] });
    // Started at t=5; asked at t=10: 5 ms of the budget were already spent.
    expect(seen).toEqual([{ deadline: 1_000_000 + 2_000 - 5, aborted: false }]);
  });

  it("fails the request on a remote failure, with the remote node in the details", async () => {
    const { ex } = twoNodes();
    const e = await failure(ex.execute({ request_id: "r", cmds: [c("x", "remote_boom")] }));
    expect(e.code).toBe(1003);
    expect(e.details).toMatchObject({ command: "x", node_id: "node-b", error_type: "RangeError" });
  });

  it("maps a dispatcher that cannot reach the node to 1005 and refuses remote without a dispatcher", async () => {
    const reg = baseRegistry();
    const locate: Locator = () => ({ kind: "remote", node_id: "gone", cluster_id: "c1" });
    const broken = new Executor({
      registry: reg,
      locate,
      nodeId: "n",
      dispatcher: { dispatch: () => Promise.reject(new Error("socket closed")) },
    });
    const e = await failure(broken.execute({ request_id: "r", cmds: [c("x", "f")] }));
    expect(e.code).toBe(1005);
    expect(e.details).toMatchObject({ command: "x", node_id: "gone", reason: "socket closed" });
    const none = new Executor({ registry: reg, locate, nodeId: "n" });
    expect((await failure(none.execute({ request_id: "r", cmds: [c("x", "f")] }))).code).toBe(1005);
  });
});

describe("Executor properties", () => {
  it("random DAGs: every command runs once, after its dependencies, with the right inputs", async () => {
    const dag = fc.integer({ min: 1, max: 15 }).chain((n) =>
      fc.record({
        deps: fc.tuple(...Array.from({ length: n }, (_, i) => fc.uniqueArray(fc.nat(Math.max(0, i - 1)), { maxLength: i === 0 ? 0 : 3 }))),
        delays: fc.array(fc.nat(3), { minLength: n, maxLength: n }),
        sync: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
      }),
    );
    await fc.assert(
      fc.asyncProperty(dag, async ({ deps, delays, sync }) => {
        const reg = new FunctionRegistry();
        const done = new Set<string>();
        const log: string[] = [];
        reg.register("node", async ({ args }) => {
          const [selfIndex, delay, isSync, ...inputs] = args as [number, number, boolean, ...number[]];
          const self = `n${selfIndex}`;
          log.push(self);
          const value = 1 + inputs.reduce((a, b) => a + b, 0);
          if (isSync) {
            done.add(self);
            return value;
          }
          for (let k = 0; k < delay; k++) await Promise.resolve();
          done.add(self);
          return value;
        });
        const cmds = deps.map((ds, i) => c(`n${i}`, "node", [i, delays[i], sync[i], ...ds.map((d) => `n${d}`)]));
        // Each handler must see its dependencies finished: check through a wrapper locator.
        const locate = createLocalLocator(reg);
        const ex = new Executor({
          registry: reg,
          nodeId: "n",
          locate: (cmd) => {
            const loc = locate(cmd);
            if (loc instanceof Error || loc.kind !== "local" || loc.fn === undefined) throw new Error("expected a local function");
            const fn = loc.fn;
            const i = Number(cmd.name.slice(1));
            return {
              kind: "local",
              fn: {
                ...fn,
                handler: (input: HandlerInput) => {
                  for (const d of deps[i]!) expect(done.has(`n${d}`)).toBe(true);
                  return fn.handler(input);
                },
              },
            };
          },
        });
        const r = await ex.execute({ request_id: "r", cmds, return_all: true });
        const expected: number[] = [];
        deps.forEach((ds, i) => (expected[i] = 1 + ds.reduce((a, d) => a + expected[d]!, 0)));
        expect(Object.values(r.r)).toEqual(expected);
        expect([...log].sort()).toEqual(cmds.map((x) => x.name).sort());
      }),
      { numRuns: 150 },
    );
  });
});

describe("Executor: bounds", () => {
  it("runs a 1000-step synchronous chain without growing the stack", async () => {
    const reg = baseRegistry();
    reg.register("inc", ({ args }) => (args[0] as number) + 1);
    const cmds = Array.from({ length: 1000 }, (_, i) => c(`s${i}`, "inc", [i === 0 ? 0 : `s${i - 1}`]));
    expect((await localExecutor(reg).execute({ request_id: "r", cmds })).r).toEqual({ s999: 1000 });
  });
});

describe("Executor.executeLocal (receiving side of a remote call)", () => {
  it("runs one substituted command without treating its strings as references", async () => {
    const ex = localExecutor();
    await expect(ex.executeLocal({ command: c("echo", "echo", ["echo"]), request_id: "r" })).resolves.toBe("echo");
    await expect(ex.executeLocal({ command: c("x", "kw", [], { a: "x.y" }), request_id: "r" })).resolves.toEqual({ a: "x.y" });
  });

  it("picks the highest satisfying version and maps failures", async () => {
    const reg = baseRegistry();
    reg.register("v", () => "1", { version: "1.0.0" });
    reg.register("v", () => "2", { version: "2.0.0" });
    reg.register("bad", async () => {
      throw new SyntaxError("nope");
    });
    reg.register("void", () => undefined);
    const ex = localExecutor(reg);
    await expect(ex.executeLocal({ command: { name: "a", fun: "v", version_constraint: "<2" }, request_id: "r" })).resolves.toBe("1");
    await expect(ex.executeLocal({ command: { name: "a", fun: "v" }, request_id: "r" })).resolves.toBe("2");
    await expect(ex.executeLocal({ command: { name: "a", fun: "void" }, request_id: "r" })).resolves.toBeNull();
    expect((await failure(ex.executeLocal({ command: { name: "a", fun: "missing" }, request_id: "r" }))).details).toMatchObject({
      command: "a",
      fun: "missing",
    });
    expect((await failure(ex.executeLocal({ command: { name: "a", fun: "bad" }, request_id: "r" }))).details).toEqual({
      command: "a",
      fun: "bad",
      node_id: "node-a",
      error_type: "SyntaxError",
      message: "nope",
    });
  });

  it("honours the deadline and aborts the handler's signal", async () => {
    const reg = baseRegistry();
    let signal: AbortSignal | undefined;
    reg.register("hang", (input) => {
      signal = input.signal;
      return new Promise(() => undefined);
    });
    const ex = localExecutor(reg);
    const e = await failure(ex.executeLocal({ command: c("h", "hang"), request_id: "r", deadline: Date.now() + 20 }));
    expect(e.code).toBe(1004);
    expect(e.details).toEqual({ completed: [], pending: ["h"] });
    await waitFor(() => signal?.aborted === true);
    expect((await failure(ex.executeLocal({ command: c("h", "hang"), request_id: "r", deadline: Date.now() - 1 }))).code).toBe(1004);
  });

  it("takes a Cancellation instead of a signal: aborted before or while the handler runs", async () => {
    const reg = baseRegistry();
    let signal: AbortSignal | undefined;
    reg.register("hang", (input) => {
      signal = input.signal;
      return new Promise(() => undefined);
    });
    const ex = localExecutor(reg);
    let listener: (() => void) | undefined;
    const canc = { aborted: false, reason: undefined as unknown, onAbort: (cb: () => void) => ((listener = cb), () => (listener = undefined)) };
    const p = failure(ex.executeLocal({ command: c("h", "hang"), request_id: "r", cancellation: canc }));
    expect(listener).toBeDefined();
    const why = new MpregError(ErrorCode.UNREACHABLE, "caller gone");
    canc.aborted = true;
    canc.reason = why;
    listener!();
    expect(await p).toBe(why);
    expect(signal?.aborted).toBe(true);
    expect(listener).toBeUndefined();
    expect(await failure(ex.executeLocal({ command: c("e", "echo", [1]), request_id: "r", cancellation: canc }))).toBe(why);
  });
});

describe("Executor: results", () => {
  it("reports a handler that returns nothing as null", async () => {
    const reg = baseRegistry();
    reg.register("void", () => undefined);
    const r = await localExecutor(reg).execute({ request_id: "r", return_all: true, cmds: [c("v", "void"), c("e", "echo", ["v"])] });
    expect(r.r).toEqual({ v: null, e: null });
    expect(Object.prototype.hasOwnProperty.call(r.r, "v")).toBe(true);
  });
});

describe("Executor: size limits (reply, reference fan-out)", () => {
  const MiB = 1 << 20;

  it("refuses [a = echo(1 MiB), b = echos(a × 1000)] with 1007 fan_out_too_large at once, before echos runs", async () => {
    const reg = baseRegistry();
    let echosRan = false;
    reg.register("echos", ({ args }) => {
      echosRan = true;
      return [...args];
    }, { version: "2.0.0" });
    const ex = localExecutor(reg);
    const cmds = [c("a", "echo", ["x".repeat(MiB)]), c("b", "echos", new Array(1000).fill("a"))];
    const t0 = performance.now();
    const err = await failure(ex.execute({ request_id: "amp", cmds }));
    const ms = performance.now() - t0;
    expect(err.code).toBe(ErrorCode.OVERLOADED);
    expect(err.details).toMatchObject({ reason: "fan_out_too_large", limit_bytes: 64 * MiB, command: "b" });
    expect(err.details.estimated_bytes as number).toBeGreaterThan(64 * MiB);
    expect(err.message).toMatch(/maxSubstitutedBytes/);
    expect(echosRan).toBe(false);
    expect(ms).toBeLessThan(500);
    expect(ex.stats.fanOutTooLarge).toBe(1);
    // The same shape within the limit still runs (60 × 1 KiB).
    const ok = await ex.execute({ request_id: "ok", cmds: [c("a", "echo", ["x".repeat(1024)]), c("b", "echos", new Array(60).fill("a"))] });
    expect((ok.r.b as string[]).length).toBe(60);
  });

  it("counts what references substitute across the whole request, walked paths included", async () => {
    const ex = localExecutor(baseRegistry(), { maxSubstitutedBytes: 10_000 });
    const big = { blob: "y".repeat(4000), small: 1 };
    // Three commands each take 4 KB: the third passes the 10 000-byte budget.
    const cmds = [c("a", "echo", [big]), c("b", "echo", ["a.blob"]), c("c", "echo", ["a.blob"]), c("d", "echo", ["a.blob", "b", "c"])];
    const err = await failure(ex.execute({ request_id: "r", cmds }));
    expect(err.details).toMatchObject({ reason: "fan_out_too_large", command: "d" });
    // Small walked values cost little: a thousand references to a.small fit.
    const many = await ex.execute({ request_id: "r", cmds: [c("a", "echo", [big]), c("b", "echos", new Array(1000).fill("a.small"))] });
    expect((many.r.b as number[]).length).toBe(1000);
  });

  it("refuses a reply over maxReplyBytes with 1007 reply_too_large, counting only what the reply returns", async () => {
    const ex = localExecutor(baseRegistry(), { maxReplyBytes: 2000 });
    const err = await failure(ex.execute({ request_id: "r", cmds: [c("a", "echo", ["z".repeat(3000)])] }));
    expect(err).toMatchObject({ code: 1007, details: { reason: "reply_too_large", limit_bytes: 2000, command: "a" } });
    expect(err.message).toMatch(/maxReplyBytes/);
    // A large intermediate value that the reply does not return is fine...
    const r = await ex.execute({ request_id: "r", cmds: [c("a", "echo", ["z".repeat(3000)]), c("n", "kw", [], { s: "a.length" })] });
    expect(r.r).toEqual({ n: { s: "a.length" } });
    // ...unless return_all returns it.
    await expect(ex.execute({ request_id: "r", return_all: true, cmds: [c("a", "echo", ["z".repeat(3000)]), c("n", "echo", [1])] })).rejects.toMatchObject({
      details: { reason: "reply_too_large" },
    });
    // Two leaves of 1200 bytes: each fits, together they do not.
    await expect(ex.execute({ request_id: "r", cmds: [c("a", "echo", ["q".repeat(1200)]), c("b", "echo", ["q".repeat(1200)])] })).rejects.toMatchObject({
      details: { reason: "reply_too_large", command: "b" },
    });
    expect(ex.stats.replyTooLarge).toBe(3);
  });

  it("counts intermediate results (each repeats everything accumulated) and each progress push", async () => {
    const chain = (n: number) => Array.from({ length: n }, (_, i) => c(`s${i}`, "echo", [i === 0 ? "w".repeat(300) : `s${i - 1}`]));
    const ex = localExecutor(baseRegistry(), { maxReplyBytes: 4000 });
    // Without intermediate results the reply is one 300-byte leaf.
    await expect(ex.execute({ request_id: "r", cmds: chain(8) })).resolves.toBeDefined();
    // With them: 8 levels repeating a growing accumulation (300, 600, ... 2400 bytes).
    await expect(ex.execute({ request_id: "r", cmds: chain(8), return_intermediate_results: true })).rejects.toMatchObject({
      details: { reason: "reply_too_large" },
    });
    // A pushed progress frame over the limit fails the request too.
    const pushes: unknown[] = [];
    await expect(ex.execute({ request_id: "r", cmds: chain(20), onProgress: (ir) => pushes.push(ir) })).rejects.toMatchObject({
      details: { reason: "reply_too_large" },
    });
    expect(pushes.length).toBeGreaterThan(0);
    expect(pushes.length).toBeLessThan(20);
  });

  it("bounds the result of a command run for another node (executeLocal)", async () => {
    const ex = localExecutor(baseRegistry(), { maxReplyBytes: 1000 });
    await expect(ex.executeLocal({ request_id: "r", command: c("a", "echo", ["v".repeat(2000)]) })).rejects.toMatchObject({
      code: 1007,
      details: { reason: "reply_too_large", command: "a" },
    });
    await expect(ex.executeLocal({ request_id: "r", command: c("a", "echo", ["v".repeat(500)]) })).resolves.toBe("v".repeat(500));
  });

  it("refuses a reply holding more values than a frame may (maxReplyValues), so the receiver's decoder never has to", async () => {
    const ex = localExecutor(baseRegistry(), { maxReplyValues: 100 });
    const err = await failure(ex.execute({ request_id: "r", cmds: [c("a", "echo", [new Array(200).fill(0)])] }));
    expect(err).toMatchObject({ code: 1007, details: { reason: "reply_too_large", limit_values: 100, command: "a" } });
    expect(err.message).toMatch(/maxReplyValues/);
    await expect(ex.execute({ request_id: "r", cmds: [c("a", "echo", [new Array(90).fill(0)])] })).resolves.toBeDefined();
    await expect(ex.executeLocal({ request_id: "r", command: c("a", "echo", [new Array(200).fill(0)]) })).rejects.toMatchObject({
      details: { reason: "reply_too_large", limit_values: 100 },
    });
    // The default leaves room for the reply's own fields under the decoder's MAX_FRAME_ELEMENTS.
    expect(localExecutor().maxReplyValues).toBe(MAX_FRAME_ELEMENTS - 64);
  });

  it("validates the limits, naming the option; Infinity disables them", async () => {
    for (const [opt, v] of [["maxReplyBytes", 0], ["maxReplyBytes", -1], ["maxSubstitutedBytes", 1.5], ["maxSubstitutedBytes", Number.NaN], ["maxReplyValues", 0]] as const) {
      expect(() => localExecutor(baseRegistry(), { [opt]: v }), `${opt}=${v}`).toThrowError(expect.objectContaining({ code: 1002, details: expect.objectContaining({ path: opt }) }));
    }
    const d = localExecutor();
    expect([d.maxReplyBytes, d.maxSubstitutedBytes]).toEqual([16 * MiB, 64 * MiB]);
    const off = localExecutor(baseRegistry(), { maxReplyBytes: Infinity, maxSubstitutedBytes: Infinity });
    const r = await off.execute({ request_id: "r", cmds: [c("a", "echo", ["x".repeat(MiB)]), c("b", "echos", new Array(20).fill("a"))] });
    expect((r.r.b as string[]).length).toBe(20);
  });
});
