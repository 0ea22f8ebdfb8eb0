/** The `mpreg.queue.*` built-in table, called the way a node calls it. */

import { describe, expect, it } from "vitest";
import { SimClock } from "@mpreg/testkit";
import { ErrorCode, FRAME_VALIDATORS, MpregError, type BuiltinContext, type ServiceBuiltin } from "@mpreg/envelope";
import { queueBuiltins } from "./builtins.js";
import { simService, turn } from "../test/sim.js";

function ctxFor(owner: string, pushed: object[] = [], signal = new AbortController().signal): BuiltinContext {
  return { owner, push: (f) => pushed.push(f), signal, request_id: `u-${owner}` };
}

async function setup() {
  const { service } = await simService(new SimClock({ startMs: 1e6 }));
  const table = new Map<string, ServiceBuiltin>(queueBuiltins(service).map((b) => [b.name, b]));
  // A node awaits run(); it may also throw at once (bad arguments).
  const call = async (name: string, args: unknown[], ctx = ctxFor("c1")) => table.get(`mpreg.queue.${name}`)!.run(args, ctx);
  return { service, table, call };
}

async function rejection(p: Promise<unknown>): Promise<MpregError> {
  try {
    await p;
  } catch (e) {
    return e as MpregError;
  }
  throw new Error("expected a rejection");
}

describe("queueBuiltins", () => {
  it("offers every function of PROTOCOL section 5; delete and purge are admin", async () => {
    const { table } = await setup();
    expect([...table.keys()].sort()).toEqual(
      ["ack", "create", "delete", "extend", "list", "nack", "purge", "receive", "send", "stats", "subscribe", "unsubscribe"].map((n) => `mpreg.queue.${n}`),
    );
    expect([...table.values()].filter((b) => b.admin).map((b) => b.name).sort()).toEqual(["mpreg.queue.delete", "mpreg.queue.purge"]);
    for (const b of table.values()) expect(b.description.length).toBeGreaterThan(0);
  });

  it("runs create, send, receive, ack, nack, extend, stats, list, purge and delete", async () => {
    const { call } = await setup();
    expect(await call("create", ["jobs", { visibility_timeout_ms: 1000 }])).toEqual({ name: "jobs", created: true });
    const sent = (await call("send", ["jobs", { task: 1 }])) as { message_id: string; duplicate: boolean };
    expect(sent.duplicate).toBe(false);
    await call("send", ["jobs", "two"]);
    const got = (await call("receive", ["jobs", { max: 2 }])) as { receipt: string; body: unknown }[];
    expect(got.map((m) => m.body)).toEqual([{ task: 1 }, "two"]);
    expect(await call("ack", ["jobs", got[0]!.receipt])).toEqual({ ok: true });
    expect(await call("extend", ["jobs", got[1]!.receipt, 5000])).toEqual({ ok: true });
    expect(await call("nack", ["jobs", got[1]!.receipt, { delay_ms: 0 }])).toEqual({ ok: true });
    expect(await call("stats", ["jobs"])).toEqual({ visible: 1, in_flight: 0, delayed: 0, dead_lettered: 0, sent: 2, acked: 1 });
    expect(await call("list", [])).toEqual([{ name: "jobs", type: "standard", durable: false, visible: 1, in_flight: 0, delayed: 0, dead_lettered: 0, sent: 2, acked: 1 }]);
    expect(await call("purge", ["jobs"])).toMatchObject({ purged: 1, visible: 0 });
    expect(await call("delete", ["jobs"])).toMatchObject({ deleted: true });
    expect((await rejection(call("stats", ["jobs"]))).code).toBe(ErrorCode.NOT_FOUND);
  });

  it("refuses extra arguments and bad values with 1002 naming them", async () => {
    const { call } = await setup();
    await call("create", ["q"]);
    expect((await rejection(call("send", ["q", 1, {}, "extra"]))).details).toMatchObject({ path: "args[3]" });
    expect((await rejection(call("list", ["x"]))).details).toMatchObject({ path: "args[0]" });
    expect((await rejection(call("create", [42]))).details).toMatchObject({ path: "name" });
    expect((await rejection(call("receive", ["q", { max: 0 }]))).details).toMatchObject({ path: "options.max" });
    expect((await rejection(call("subscribe", ["q", { prefetch: "ten" }]))).details).toMatchObject({ path: "options.prefetch" });
    expect((await rejection(call("ack", ["q", "stale"]))).code).toBe(ErrorCode.NOT_FOUND);
  });

  it("subscribe is connection-bound: queue-delivery frames go to ctx.push; the owner's close returns the leases", async () => {
    const { service, call } = await setup();
    await call("create", ["q"]);
    const pushed: object[] = [];
    const { subscription_id } = (await call("subscribe", ["q", { prefetch: 2 }], ctxFor("conn-a", pushed))) as { subscription_id: string };
    await call("send", ["q", "m1"]);
    await call("send", ["q", "m2"]);
    await call("send", ["q", "m3"]);
    await turn();
    expect(pushed).toHaveLength(2);
    for (const f of pushed) expect(FRAME_VALIDATORS["queue-delivery"].Check(f)).toBe(true);
    expect(pushed[0]).toMatchObject({ role: "queue-delivery", subscription_id, message: { body: "m1", receive_count: 1 } });
    // Another connection cannot end it.
    expect((await rejection(call("unsubscribe", [subscription_id], ctxFor("conn-b")))).code).toBe(ErrorCode.NOT_FOUND);
    await service.closeOwner("conn-a");
    expect(await call("stats", ["q"])).toMatchObject({ visible: 3, in_flight: 0 });
  });

  it("receive leases belong to the calling connection; a long poll ends with its request", async () => {
    const { service, call } = await setup();
    await call("create", ["q"]);
    await call("send", ["q", 1]);
    await call("receive", ["q"], ctxFor("conn-a"));
    await service.closeOwner("conn-a");
    expect(await call("stats", ["q"])).toMatchObject({ visible: 1, in_flight: 0 });
    await call("receive", ["q"], ctxFor("conn-b"));
    const ac = new AbortController();
    const waiting = call("receive", ["q", { wait_ms: 10_000 }], ctxFor("conn-c", [], ac.signal));
    ac.abort();
    expect(await waiting).toEqual([]);
  });
});
