import {
  decodeFrame,
  encodeFrame,
  isMpregError,
  type Encoding,
  type Frame,
  type RpcRequest,
} from "@mpreg/envelope";
import { createMemoryConnectionPair, createWsListener, type Connection, type WsListener } from "@mpreg/transport";
import { afterEach, describe, expect, it } from "vitest";
import { MpregClient } from "./client.js";

/**
 * A tiny node for the tests: real listener, real codec. Functions:
 *  echo [x] -> x; add [a, b] -> a + b; fail -> 1003; slow -> never answers;
 *  kick -> closes the connection; progress -> two rpc-progress pushes then the reply;
 *  push -> a pubsub-notification push then the reply; late [ms, x] -> answers x after ms.
 */
interface TinyNode {
  listener: WsListener;
  url: string;
  conns: Connection[];
  frames: Array<{ frame: RpcRequest; isBinary: boolean }>;
  reverse: boolean;
  lateSent: number;
}

function serve(conn: Connection, node: Pick<TinyNode, "frames" | "reverse" | "lateSent">): void {
  let batch: Array<() => void> = [];
  conn.onMessage((data, isBinary) => {
    const enc: Encoding = isBinary ? "msgpack" : "json";
    const res = decodeFrame(data, enc);
    const reply = (f: object): void => {
      if (conn.open) conn.send(encodeFrame(f, enc));
    };
    if (!res.ok) return reply({ role: "rpc-response", u: res.u, r: null, error: res.error.toWire() });
    const frame = res.frame as Frame;
    if (frame.role !== "rpc") return;
    node.frames.push({ frame, isBinary });
    const r: Record<string, unknown> = {};
    for (const cmd of frame.cmds) {
      const args = cmd.args ?? [];
      switch (cmd.fun) {
        case "echo":
          r[cmd.name] = args[0];
          break;
        case "add":
          r[cmd.name] = (args[0] as number) + (args[1] as number);
          break;
        case "fail":
          return reply({
            role: "rpc-response",
            u: frame.u,
            r: null,
            error: { code: 1003, message: "boom", details: { command: cmd.name, fun: "fail", node_id: "n1", error_type: "Error", message: "boom" } },
          });
        case "slow":
          return;
        case "kick":
          conn.close(4000, "kicked");
          return;
        case "progress":
          for (let i = 0; i < 2; i++) {
            reply({
              role: "rpc-progress",
              u: frame.u,
              intermediate_result: {
                level_index: i, level_results: {}, accumulated_results: {}, total_levels: 2,
                completed_levels: i + 1, execution_time_ms: 1, timestamp: Date.now(),
              },
            });
          }
          r[cmd.name] = "done";
          break;
        case "push":
          reply({
            role: "pubsub-notification",
            subscription_id: "s1",
            message: { topic: "a.b", payload: 1, headers: {}, message_id: "m1", publisher: "p", timestamp: 1 },
          });
          r[cmd.name] = "pushed";
          break;
        case "late": {
          const [ms, x] = args as [number, unknown];
          setTimeout(() => {
            reply({ role: "rpc-response", u: frame.u, r: { [cmd.name]: x }, error: null });
            node.lateSent++;
          }, ms);
          return;
        }
        default:
          return reply({ role: "rpc-response", u: frame.u, r: null, error: { code: 1001, message: "no such function", details: { fun: cmd.fun, reason: "no such function" } } });
      }
    }
    const send = (): void => reply({ role: "rpc-response", u: frame.u, r, error: null });
    if (!node.reverse) return send();
    // Answer a whole turn's requests in reverse order, to prove correlation by u.
    batch.push(send);
    if (batch.length === 1) {
      setImmediate(() => {
        const b = batch;
        batch = [];
        for (let i = b.length - 1; i >= 0; i--) b[i]!();
      });
    }
  });
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function tinyNode(opts: { authTokens?: string[] } = {}): Promise<TinyNode> {
  const listener = createWsListener({ pingIntervalMs: 0, ...opts });
  const node: TinyNode = { listener, url: "", conns: [], frames: [], reverse: false, lateSent: 0 };
  listener.onConnection((c) => {
    node.conns.push(c);
    serve(c, node);
  });
  node.url = (await listener.listen({ port: 0 })).url;
  cleanups.push(() => listener.close());
  return node;
}

async function client(url: string, opts: Parameters<typeof MpregClient.connect>[1] = {}): Promise<MpregClient> {
  // No cluster_map refresh: these tests count the frames the node receives.
  const c = await MpregClient.connect(url, { discovery: false, ...opts });
  cleanups.push(() => c.close());
  return c;
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string; details: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    expect(isMpregError(e)).toBe(true);
    return e as never;
  }
  throw new Error("expected a rejection");
}

describe("MpregClient", () => {
  it("call resolves with the result, over binary MessagePack frames", async () => {
    const node = await tinyNode();
    const c = await client(node.url);
    expect(await c.call("echo", [{ a: [1, "x", null] }])).toEqual({ a: [1, "x", null] });
    // An argument equal to the function name is plain data, not a self-reference.
    expect(await c.call("echo", ["echo"])).toBe("echo");
    expect(await c.call("add", [2, 3])).toBe(5);
    expect(node.frames.every((f) => f.isBinary)).toBe(true);
    expect(c.pendingCount).toBe(0);
  });

  it("call carries kwargs, locs, function_id, version_constraint, target_cluster and timeout_ms", async () => {
    const node = await tinyNode();
    const c = await client(node.url, { timeoutMs: 5000 });
    await c.call("echo", [1], {
      kwargs: { k: 1 }, locs: ["gpu"], function_id: "f1", version_constraint: ">=1.0", target_cluster: "c2", timeout_ms: 1234,
    });
    await c.call("echo", [2]);
    const [first, second] = node.frames.map((f) => f.frame);
    expect(first!.cmds).toHaveLength(1);
    expect(first!.cmds[0]).toMatchObject({ fun: "echo", args: [1], kwargs: { k: 1 }, locs: ["gpu"], function_id: "f1", version_constraint: ">=1.0", target_cluster: "c2" });
    expect(first!.timeout_ms).toBe(1234);
    expect(second!.timeout_ms).toBe(5000);
    expect(second!.cmds[0]).not.toHaveProperty("kwargs");
  });

  it("request resolves with the whole reply and sends the flags", async () => {
    const node = await tinyNode();
    const c = await client(node.url);
    const reply = await c.request(
      [{ name: "a", fun: "echo", args: [1] }, { name: "b", fun: "add", args: [1, 2] }],
      { return_all: true, include_execution_summary: true },
    );
    expect(reply.role).toBe("rpc-response");
    expect(reply.r).toEqual({ a: 1, b: 3 });
    expect(reply.error).toBeNull();
    const sent = node.frames[0]!.frame;
    expect(sent.return_all).toBe(true);
    expect(sent.include_execution_summary).toBe(true);
    expect(sent.stream_progress).toBeUndefined();
  });

  it("error replies reject with the wire code, message and details", async () => {
    const node = await tinyNode();
    const c = await client(node.url);
    const e = await rejection(c.call("fail"));
    expect(e.code).toBe(1003);
    expect(e.message).toBe("boom");
    expect(e.details).toMatchObject({ fun: "fail", node_id: "n1", error_type: "Error" });
    const nf = await rejection(c.request([{ name: "x", fun: "nope" }]));
    expect(nf.code).toBe(1001);
    expect(nf.details).toMatchObject({ fun: "nope" });
    // The node refuses a schema violation (empty name) with 1002, correlated by u.
    const bad = await rejection(c.request([{ name: "", fun: "echo" }]));
    expect(bad.code).toBe(1002);
  });

  it("streams progress to onProgress before the reply", async () => {
    const node = await tinyNode();
    const c = await client(node.url);
    const seen: number[] = [];
    const reply = await c.request([{ name: "p", fun: "progress" }], { onProgress: (ir) => seen.push(ir.completed_levels) });
    expect(seen).toEqual([1, 2]);
    expect(reply.r).toEqual({ p: "done" });
    expect(node.frames[0]!.frame.stream_progress).toBe(true);
  });

  it("surfaces other pushes through onPush", async () => {
    const node = await tinyNode();
    const c = await client(node.url);
    const pushes: unknown[] = [];
    c.onPush((f) => pushes.push(f));
    expect(await c.call("push")).toBe("pushed");
    expect(pushes).toEqual([expect.objectContaining({ role: "pubsub-notification", subscription_id: "s1" })]);
  });

  it("correlates many concurrent requests answered out of order", async () => {
    const node = await tinyNode();
    node.reverse = true;
    const c = await client(node.url);
    const n = 500;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => c.call("echo", [i])));
    expect(results).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it("rejects with 1004 when the node never answers (client deadline), and drops a late reply", async () => {
    const node = await tinyNode();
    const c = await client(node.url, { deadlineGraceMs: 10 });
    const e = await rejection(c.request([{ name: "s", fun: "slow" }], { timeout_ms: 30 }));
    expect(e.code).toBe(1004);
    expect(e.details).toMatchObject({ completed: [], pending: ["s"] });
    expect(c.pendingCount).toBe(0);
    const late = await rejection(c.call("late", [80, "x"], { timeout_ms: 20 }));
    expect(late.code).toBe(1004);
    // The late reply arrives after the deadline and is ignored (the echo behind it on the same
    // connection proves it was received); the client still works.
    await waitFor(() => node.lateSent === 1);
    expect(await c.call("echo", ["ok"])).toBe("ok");
    expect(c.pendingCount).toBe(0);
  });

  it("bounds pending requests: past maxPending it rejects with 1007 locally", async () => {
    const node = await tinyNode();
    const c = await client(node.url, { maxPending: 2, deadlineGraceMs: 10 });
    const a = c.call("slow", [], { timeout_ms: 200 });
    const b = c.call("slow", [], { timeout_ms: 200 });
    const e = await rejection(c.call("echo", [1]));
    expect(e.code).toBe(1007);
    expect(node.frames.length).toBeLessThanOrEqual(2);
    await Promise.allSettled([a, b]);
    expect(await c.call("echo", [1])).toBe(1);
  });

  it("rejects pending requests with 1005 when the link drops, then works after reconnect", async () => {
    const node = await tinyNode();
    const c = await client(node.url, { reconnect: { initialDelayMs: 5, maxDelayMs: 20 } });
    const states: boolean[] = [];
    c.onDisconnect((_code, _reason, will) => states.push(will));
    let reconnected = 0;
    c.onReconnect(() => reconnected++);
    const slow = c.call("slow");
    const e = await rejection(c.call("kick"));
    expect(e.code).toBe(1005);
    expect((await rejection(slow)).code).toBe(1005);
    expect(states).toEqual([true]);
    await waitFor(() => reconnected === 1);
    expect(c.state).toBe("open");
    expect(await c.call("echo", ["back"])).toBe("back");
  });

  it("while reconnecting, calls fail at once with 1005 instead of waiting", async () => {
    const node = await tinyNode();
    // A long retry delay holds the client in the reconnecting state.
    const c = await client(node.url, { reconnect: { initialDelayMs: 60_000 }, transport: { random: () => 0.99 } });
    const delays: number[] = [];
    c.onReconnecting((_attempt, delay) => delays.push(delay));
    expect((await rejection(c.call("kick"))).code).toBe(1005);
    await waitFor(() => delays.length === 1);
    expect(c.state).toBe("reconnecting");
    const e = await rejection(c.call("echo", [1]));
    expect(e.code).toBe(1005);
    expect(e.message).toMatch(/reconnecting/);
    expect(c.pendingCount).toBe(0);
  });

  it("refuses arguments that cannot be encoded with 1002, without leaking a pending entry", async () => {
    const node = await tinyNode();
    const c = await client(node.url);
    const e = await rejection(c.call("echo", [10n]));
    expect(e.code).toBe(1002);
    expect(c.pendingCount).toBe(0);
    expect((await rejection(c.call("echo", [1], { timeout_ms: 0 }))).code).toBe(1002);
  });

  it("close() rejects pending requests with 1005 and refuses new ones", async () => {
    const node = await tinyNode();
    const c = await MpregClient.connect(node.url, { discovery: false });
    const p = c.call("slow");
    await waitFor(() => node.frames.length === 1);
    await c.close();
    expect((await rejection(p)).code).toBe(1005);
    expect((await rejection(c.call("echo", [1]))).code).toBe(1005);
    expect(c.state).toBe("closed");
  });

  it("sends the token and fails with 1006 without it", async () => {
    const node = await tinyNode({ authTokens: ["t0k"] });
    const c = await client(node.url, { token: "t0k" });
    expect(await c.call("echo", [1])).toBe(1);
    expect((await rejection(MpregClient.connect(node.url))).code).toBe(1006);
  });

  it("works over an in-memory connection pair", async () => {
    const [a, b] = createMemoryConnectionPair();
    serve(b, { frames: [], reverse: false, lateSent: 0 });
    const c = new MpregClient(a);
    expect(await c.call("add", [40, 2])).toBe(42);
    await c.close();
    expect(c.state).toBe("closed");
  });
});
