/** Relayed subscriptions, run against a real (in-memory) queue service as if it lived on another node. */

import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "@mpreg/testkit";
import type { BuiltinContext, QueueDelivery, ServiceBuiltin } from "@mpreg/envelope";
import { queueBuiltins } from "./builtins.js";
import { QueueService } from "./queue-service.js";
import { relaySubscriptions, type RelayedBuiltins } from "./relayed-subscriptions.js";

const open: { service: QueueService; relayed: RelayedBuiltins }[] = [];
afterEach(async () => {
  for (const { service, relayed } of open.splice(0)) {
    relayed.close();
    await service.close();
  }
});

async function setup() {
  const service = await QueueService.open({});
  // isLocal false: every subscription is relayed, over the service's own receive/ack/nack.
  const relayed = relaySubscriptions(queueBuiltins(service), { isLocal: () => false, slotHoldMs: 60_000 });
  open.push({ service, relayed });
  const table = new Map<string, ServiceBuiltin>(relayed.builtins.map((b) => [b.name, b]));
  const pushed: QueueDelivery[] = [];
  const ctx: BuiltinContext = { owner: "conn-1", push: (f) => pushed.push(f as QueueDelivery), signal: new AbortController().signal, request_id: "u1" };
  const call = async (name: string, args: unknown[], c = ctx) => table.get(`mpreg.queue.${name}`)!.run(args, c);
  return { service, relayed, call, pushed };
}

describe("relaySubscriptions", () => {
  it("delivers every message once, keeps at most prefetch unsettled, and frees a slot on ack", async () => {
    const { service, call, pushed } = await setup();
    await call("create", ["jobs"]);
    for (let i = 0; i < 6; i++) await call("send", ["jobs", i]);
    const { subscription_id } = (await call("subscribe", ["jobs", { prefetch: 2 }])) as { subscription_id: string };
    expect(subscription_id).toMatch(/^relay-/);
    await waitFor(() => pushed.length === 2, { timeoutMs: 5000, description: "two deliveries" });
    expect((await service.stats("jobs")).in_flight).toBe(2);
    for (let done = 0; done < 6; done++) {
      await waitFor(() => pushed.length > done, { timeoutMs: 5000, description: `delivery ${done}` });
      await call("ack", ["jobs", pushed[done]!.message.receipt]);
      expect((await service.stats("jobs")).in_flight).toBeLessThanOrEqual(2);
    }
    expect(pushed.map((f) => f.message.body)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(pushed.every((f) => f.role === "queue-delivery" && f.subscription_id === subscription_id)).toBe(true);
    await waitFor(async () => (await service.stats("jobs")).acked === 6, { timeoutMs: 5000, description: "six acked" });
  });

  it("gives unsettled deliveries back when the owner closes or unsubscribes; 1001 for an unknown queue", async () => {
    const { service, relayed, call, pushed } = await setup();
    await expect(call("subscribe", ["nope", {}])).rejects.toMatchObject({ code: 1001 });
    await expect(call("subscribe", ["jobs", { prefetch: 0 }])).rejects.toMatchObject({ code: 1002 });
    await call("create", ["jobs"]);
    await call("send", ["jobs", "a"]);
    await call("subscribe", ["jobs", { prefetch: 5 }]);
    await waitFor(() => pushed.length === 1, { timeoutMs: 5000, description: "one delivery" });
    relayed.closeOwner("conn-1");
    expect(relayed.size()).toBe(0);
    await waitFor(async () => (await service.stats("jobs")).visible === 1, { timeoutMs: 5000, description: "a given back" });
    const { subscription_id } = (await call("subscribe", ["jobs", {}])) as { subscription_id: string };
    await waitFor(() => pushed.length === 2, { timeoutMs: 5000, description: "a delivered again" });
    expect(pushed[1]!.message).toMatchObject({ body: "a", receive_count: 2 });
    expect(await call("unsubscribe", [subscription_id])).toEqual({ ok: true });
    await waitFor(async () => (await service.stats("jobs")).visible === 1, { timeoutMs: 5000, description: "a given back again" });
    expect(relayed.size()).toBe(0);
  });

  it("keeps a dead-lettered message's `dead_letter` in the relayed delivery", async () => {
    const { call, pushed } = await setup();
    await call("create", ["jobs", { max_receives: 1 }]);
    await call("send", ["jobs", "x"]);
    const [m] = (await call("receive", ["jobs", {}])) as { receipt: string }[];
    await call("nack", ["jobs", m!.receipt]);
    await call("subscribe", ["jobs.dlq", {}]);
    await waitFor(() => pushed.length === 1, { timeoutMs: 5000, description: "the dead letter delivered" });
    expect(pushed[0]!.message).toMatchObject({ body: "x", dead_letter: { reason: "max_receives", source_queue: "jobs", last_return: "nack" } });
  });
});
