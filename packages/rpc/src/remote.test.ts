import type { UnifiedMessage } from "@mpreg/envelope";
import { describe, expect, it } from "vitest";
import { Executor, type Locator } from "./executor.js";
import { FunctionRegistry } from "./registry.js";
import { RemoteCallHandler, RemoteDispatcher } from "./remote.js";

/** Two nodes, A (ingress) and B, linked by an asynchronous in-process message path. */
function twoNodesWith(opts: { linkUp?: () => boolean; batch?: boolean; refuse?: (msg: UnifiedMessage) => boolean } = {}) {
  const regA = new FunctionRegistry();
  const regB = new FunctionRegistry();
  const linkUp = opts.linkUp ?? (() => true);
  let handlerB!: RemoteCallHandler;
  let dispatcherA!: RemoteDispatcher;
  const delivered: UnifiedMessage[] = [];
  const send = (from: string) => (to: string, msg: UnifiedMessage) => {
    if (!linkUp()) return false;
    if (opts.refuse?.(msg) === true) throw new Error("too large");
    // Round-trip through JSON so nothing but plain data crosses, like a real frame.
    const copy = JSON.parse(JSON.stringify(msg)) as UnifiedMessage;
    setImmediate(() => {
      delivered.push(copy);
      if (to === "B" && from === "A") handlerB.handle(copy);
      if (to === "A" && from === "B") dispatcherA.handleResult(copy);
    });
    return true;
  };
  dispatcherA = new RemoteDispatcher({ nodeId: "A", clusterId: "c", send: send("A"), canSend: opts.batch === true ? () => linkUp() : undefined });
  const executorB = new Executor({ registry: regB, locate: () => ({ kind: "local" }), nodeId: "B", clusterId: "c" });
  handlerB = new RemoteCallHandler({ executor: executorB, nodeId: "B", clusterId: "c", send: send("B") });
  // Commands whose fun A lacks run on B.
  const locate: Locator = (cmd) => (regA.has(cmd.fun) ? { kind: "local" } : { kind: "remote", node_id: "B", cluster_id: "c" });
  const executor = new Executor({ registry: regA, locate, dispatcher: dispatcherA, nodeId: "A", clusterId: "c" });
  return { regA, regB, executor, dispatcherA, handlerB, delivered };
}

describe.each([
  ["one by one", false],
  ["batching", true],
])("remote execution (%s)", (_mode, batch) => {
  const twoNodes = (opts: Parameters<typeof twoNodesWith>[0] = {}) => twoNodesWith({ ...opts, batch });

  it("runs a dependency chain across two nodes", async () => {
    const { regA, regB, executor } = twoNodes();
    regA.register("double", ({ args }) => (args[0] as number) * 2);
    regB.register("inc", ({ args }) => (args[0] as number) + 1);
    const r = await executor.execute({
      request_id: "r1",
      cmds: [
        { name: "a", fun: "inc", args: [1] },
        { name: "b", fun: "double", args: ["a"] },
        { name: "c", fun: "inc", args: ["b"] },
      ],
      include_execution_summary: true,
    });
    expect(r.r).toEqual({ c: 5 });
    expect(r.execution_summary?.remote_commands).toBe(2);
  });

  it("a remote handler that throws gives 1003 naming the remote node", async () => {
    const { regB, executor } = twoNodes();
    regB.register("boom", () => {
      throw new RangeError("bad range");
    });
    await expect(executor.execute({ request_id: "r2", cmds: [{ name: "x", fun: "boom" }] })).rejects.toMatchObject({
      code: 1003,
      details: { command: "x", fun: "boom", node_id: "B", error_type: "RangeError", message: "bad range" },
    });
  });

  it("a function missing on the remote node gives 1001", async () => {
    const { executor } = twoNodes();
    await expect(executor.execute({ request_id: "r3", cmds: [{ name: "x", fun: "ghost" }] })).rejects.toMatchObject({ code: 1001 });
  });

  it("a timeout cancels the remote handler", async () => {
    const { regB, executor, handlerB } = twoNodes();
    let aborted = false;
    regB.register("hang", ({ signal }) => {
      signal.addEventListener("abort", () => {
        aborted = true;
      });
      return new Promise(() => {});
    });
    await expect(executor.execute({ request_id: "r4", cmds: [{ name: "h", fun: "hang" }], timeout_ms: 50 })).rejects.toMatchObject({ code: 1004 });
    const deadline = Date.now() + 5000;
    while (!aborted && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(aborted).toBe(true);
    while (handlerB.size > 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(handlerB.size).toBe(0);
  });

  it("a failing sibling command cancels the remote call (cancellation path), and nothing is left behind", async () => {
    const { regA, regB, executor, handlerB, dispatcherA, delivered } = twoNodes();
    let aborted = false;
    regB.register("hang", ({ signal }) => {
      signal.addEventListener("abort", () => (aborted = true));
      return new Promise(() => {});
    });
    regA.register("failLater", () => new Promise((_, reject) => setTimeout(() => reject(new Error("sibling failed")), 20)));
    await expect(
      executor.execute({ request_id: "r7", cmds: [{ name: "h", fun: "hang" }, { name: "f", fun: "failLater" }] }),
    ).rejects.toMatchObject({ code: 1003, details: { command: "f" } });
    const deadline = Date.now() + 5000;
    while ((!aborted || handlerB.size > 0) && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(aborted).toBe(true);
    expect(handlerB.size).toBe(0);
    expect(dispatcherA.size).toBe(0);
    expect(delivered.some((m) => m.topic === "mpreg.rpc.cancel")).toBe(true);
  });

  it("a dispatch with only an AbortSignal (no cancellation) is cancelled through the signal", async () => {
    const { regB, dispatcherA, handlerB } = twoNodes();
    let aborted = false;
    regB.register("hang", ({ signal }) => {
      signal.addEventListener("abort", () => (aborted = true));
      return new Promise(() => {});
    });
    const c = new AbortController();
    const p = dispatcherA.dispatch({
      command: { name: "h", fun: "hang" },
      node_id: "B",
      cluster_id: "c",
      request_id: "r8",
      signal: c.signal,
      deadline: Date.now() + 10_000,
    });
    const deadline = Date.now() + 5000;
    while (handlerB.size === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    c.abort(new Error("caller gave up"));
    await expect(p).rejects.toThrow("caller gave up");
    while (!aborted && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(aborted).toBe(true);
    expect(dispatcherA.size).toBe(0);
  });

  it("a node that goes away fails its calls with 1005", async () => {
    const { regB, executor, dispatcherA } = twoNodes();
    regB.register("hang", () => new Promise(() => {}));
    const p = executor.execute({ request_id: "r5", cmds: [{ name: "h", fun: "hang" }] });
    const deadline = Date.now() + 5000;
    while (dispatcherA.size === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    dispatcherA.nodeGone("B");
    await expect(p).rejects.toMatchObject({ code: 1005, details: { node_id: "B", command: "h" } });
    expect(dispatcherA.size).toBe(0);
  });

  it("no link to the node is 1005", async () => {
    const { regB, executor } = twoNodes({ linkUp: () => false });
    regB.register("inc", ({ args }) => (args[0] as number) + 1);
    await expect(executor.execute({ request_id: "r6", cmds: [{ name: "x", fun: "inc", args: [1] }] })).rejects.toMatchObject({ code: 1005 });
  });

  it("ignores stray results and answers malformed calls with 1002", async () => {
    const { dispatcherA, handlerB, delivered } = twoNodes();
    expect(
      dispatcherA.handleResult({
        message_id: "m",
        topic: "mpreg.rpc.result",
        message_type: "rpc",
        delivery: "fire_and_forget",
        payload: { kind: "result", ok: true, value: 1 },
        timestamp: 0,
        headers: { correlation_id: "nobody", trace_id: "t", source_node: "B", source_cluster: "c", routing_path: ["B"], federation_path: ["c"], hops_remaining: 8, priority: 0 },
      }),
    ).toBe(false);
    handlerB.handle({
      message_id: "m2",
      topic: "mpreg.rpc.call",
      message_type: "rpc",
      delivery: "fire_and_forget",
      payload: { kind: "call", command: "not an object" },
      timestamp: 0,
      headers: { correlation_id: "c1", trace_id: "t", source_node: "A", source_cluster: "c", routing_path: ["A"], federation_path: ["c"], hops_remaining: 8, priority: 0 },
    });
    const deadline = Date.now() + 5000;
    while (delivered.length === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(delivered[0]?.payload).toMatchObject({ kind: "result", ok: false, error: { code: 1002 } });
  });
});

describe("batches of calls and results", () => {
  const batched = () => twoNodesWith({ batch: true });

  it("calls to one node in one turn travel as one mpreg.rpc.calls message, their results as one mpreg.rpc.results", async () => {
    const { regB, executor, delivered, dispatcherA, handlerB } = batched();
    regB.register("inc", ({ args }) => (args[0] as number) + 1);
    regB.register("boom", () => {
      throw new Error("no");
    });
    const cmds = [1, 2, 3].map((i) => ({ name: `x${i}`, fun: "inc", args: [i] }));
    const runs = [executor.execute({ request_id: "b1", cmds }), executor.execute({ request_id: "b2", cmds: [{ name: "y", fun: "inc", args: [10] }] })];
    const failing = executor.execute({ request_id: "b3", cmds: [{ name: "z", fun: "boom" }] });
    expect((await runs[0])!.r).toEqual({ x1: 2, x2: 3, x3: 4 });
    expect((await runs[1])!.r).toEqual({ y: 11 });
    await expect(failing).rejects.toMatchObject({ code: 1003, details: { command: "z", node_id: "B" } });
    expect(delivered.map((m) => m.topic)).toEqual(["mpreg.rpc.calls", "mpreg.rpc.results"]);
    expect((delivered[0]!.payload as { calls: unknown[] }).calls).toHaveLength(5);
    expect((delivered[1]!.payload as { results: unknown[] }).results).toHaveLength(5);
    expect(dispatcherA.stats).toEqual({ batches: 1, batchedCalls: 5 });
    expect(handlerB.stats).toEqual({ batches: 1, batchedResults: 5 });
    expect(dispatcherA.size).toBe(0);
  });

  it("a lone call travels as mpreg.rpc.call and gets a single mpreg.rpc.result (what older nodes speak)", async () => {
    const { regB, executor, delivered } = batched();
    regB.register("inc", ({ args }) => (args[0] as number) + 1);
    expect((await executor.execute({ request_id: "s1", cmds: [{ name: "x", fun: "inc", args: [1] }] })).r).toEqual({ x: 2 });
    expect(delivered.map((m) => m.topic)).toEqual(["mpreg.rpc.call", "mpreg.rpc.result"]);
  });

  it("a node it cannot reach fails the call at once with 1005, nothing queued", async () => {
    let up = false;
    const { regB, executor, delivered, dispatcherA } = twoNodesWith({ batch: true, linkUp: () => up });
    regB.register("inc", ({ args }) => (args[0] as number) + 1);
    await expect(executor.execute({ request_id: "u1", cmds: [{ name: "x", fun: "inc", args: [1] }] })).rejects.toMatchObject({
      code: 1005,
      details: { node_id: "B", command: "x", reason: "no link to the node" },
    });
    expect(dispatcherA.size).toBe(0);
    expect(delivered).toHaveLength(0);
    up = true;
  });

  it("a batch refused as one frame is sent one by one", async () => {
    const { regB, executor, delivered } = twoNodesWith({ batch: true, refuse: (m) => m.topic === "mpreg.rpc.calls" || m.topic === "mpreg.rpc.results" });
    regB.register("inc", ({ args }) => (args[0] as number) + 1);
    const r = await executor.execute({ request_id: "f1", cmds: [1, 2, 3].map((i) => ({ name: `x${i}`, fun: "inc", args: [i] })) });
    expect(r.r).toEqual({ x1: 2, x2: 3, x3: 4 });
    expect(delivered.map((m) => m.topic).sort()).toEqual(["mpreg.rpc.call", "mpreg.rpc.call", "mpreg.rpc.call", "mpreg.rpc.result", "mpreg.rpc.result", "mpreg.rpc.result"]);
  });

  it("a call aborted before the end of its turn never leaves, and no cancel follows it", async () => {
    const { regB, dispatcherA, delivered } = batched();
    let ran = 0;
    regB.register("inc", ({ args }) => (ran++, (args[0] as number) + 1));
    const c = new AbortController();
    const call = (id: string, signal: AbortSignal) =>
      dispatcherA.dispatch({ command: { name: id, fun: "inc", args: [1] }, node_id: "B", cluster_id: "c", request_id: id, signal, deadline: Date.now() + 10_000 });
    const gone = call("a", c.signal);
    const kept = call("b", new AbortController().signal);
    c.abort(new Error("gave up"));
    await expect(gone).rejects.toThrow("gave up");
    expect(await kept).toBe(2);
    expect(ran).toBe(1);
    expect(delivered.map((m) => m.topic)).toEqual(["mpreg.rpc.call", "mpreg.rpc.result"]);
  });

  it("drops malformed batches and entries without ids; answers malformed entries with 1002", async () => {
    const { handlerB, dispatcherA, delivered } = batched();
    const headers = { correlation_id: "m", trace_id: "t", source_node: "A", source_cluster: "c", routing_path: ["A"], federation_path: ["c"], hops_remaining: 8, priority: 0 };
    const msg = (topic: string, payload: unknown): UnifiedMessage => ({ message_id: "m", topic, message_type: "rpc", delivery: "fire_and_forget", payload, timestamp: 0, headers });
    expect(handlerB.handle(msg("mpreg.rpc.calls", { kind: "calls", calls: "nope" }))).toBe(true);
    expect(handlerB.handle(msg("mpreg.rpc.calls", { kind: "calls", calls: new Array(1000).fill({ id: "x" }) }))).toBe(true);
    expect(handlerB.handle(msg("mpreg.rpc.calls", { kind: "calls", calls: [null, { command: { name: "a", fun: "f" } }, { id: "k1", command: 7 }, { id: "k2", command: { name: "a" } }] }))).toBe(true);
    const deadline = Date.now() + 5000;
    while (delivered.length === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({ topic: "mpreg.rpc.results", payload: { kind: "results", results: [{ id: "k1", ok: false, error: { code: 1002 } }, { id: "k2", ok: false, error: { code: 1002 } }] } });
    expect(dispatcherA.handleResult(msg("mpreg.rpc.results", { kind: "results", results: [null, { id: "nobody", ok: true, value: 1 }] }))).toBe(true);
    expect(dispatcherA.handleResult(msg("mpreg.rpc.results", "junk"))).toBe(true);
  });

  it("dispatchWith answers through its callback; a caller that throws does not stop the other answers of a batch", async () => {
    const { regB, dispatcherA } = batched();
    regB.register("inc", ({ args }) => (args[0] as number) + 1);
    const got: unknown[] = [];
    const call = (n: number, done: (ok: boolean, v: unknown) => void) =>
      dispatcherA.dispatchWith({ command: { name: `c${n}`, fun: "inc", args: [n] }, node_id: "B", cluster_id: "c", request_id: `w${n}`, signal: new AbortController().signal, deadline: Date.now() + 10_000 }, done);
    call(1, () => {
      throw new Error("caller bug");
    });
    call(2, (ok, v) => got.push([ok, v]));
    const deadline = Date.now() + 5000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    expect(got).toEqual([[true, 3]]);
    expect(dispatcherA.size).toBe(0);
  });

  it("takes a result only from the node the call went to", async () => {
    const { regB, dispatcherA, handlerB, delivered } = twoNodesWith({ batch: true });
    regB.register("hang", () => new Promise(() => {}));
    const p = dispatcherA.dispatch({ command: { name: "x", fun: "hang" }, node_id: "B", cluster_id: "c", request_id: "q", signal: new AbortController().signal, deadline: Date.now() + 10_000 });
    const deadline = Date.now() + 5000;
    while (handlerB.size === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    const id = delivered[0]!.headers.correlation_id;
    const headers = { correlation_id: id, trace_id: "t", source_node: "C", source_cluster: "c", routing_path: ["C"], federation_path: ["c"], hops_remaining: 8, priority: 0 };
    const forged = (topic: string, payload: unknown): UnifiedMessage => ({ message_id: "f", topic, message_type: "rpc", delivery: "fire_and_forget", payload, timestamp: 0, headers });
    expect(dispatcherA.handleResult(forged("mpreg.rpc.result", { kind: "result", ok: true, value: "forged" }))).toBe(false);
    dispatcherA.handleResult(forged("mpreg.rpc.results", { kind: "results", results: [{ id, ok: true, value: "forged" }] }));
    expect(dispatcherA.size).toBe(1);
    // From B it is taken.
    expect(dispatcherA.handleResult({ ...forged("mpreg.rpc.result", { kind: "result", ok: true, value: "real" }), headers: { ...headers, source_node: "B" } })).toBe(true);
    expect(await p).toBe("real");
    handlerB.close();
  });
});
