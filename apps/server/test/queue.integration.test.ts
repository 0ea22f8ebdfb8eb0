/**
 * Queues over the wire (PROTOCOL section 5) across real node processes: a queue owned by node B
 * used from a client on node A (forwarded to the owner), and a durable queue whose node is
 * SIGKILLed while a producer and a consumer run, round after round: every answered send is
 * received after the restart, and no acked message comes back.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
const nodes: NodeProcess[] = [];
const clients: MpregClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await Promise.all(nodes.splice(0).map((n) => n.kill()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(args: string[]): Promise<NodeProcess> {
  const n = await startNode({ bin: CLI, args: ["start", "--port", "0", "--cluster-id", "q", ...FAST, ...args] });
  nodes.push(n);
  return n;
}

async function connect(n: NodeProcess): Promise<MpregClient> {
  const c = await MpregClient.connect(n.url, { reconnect: false });
  clients.push(c);
  return c;
}

interface Received {
  message_id: string;
  receipt: string;
  body: unknown;
  receive_count: number;
}

describe("queues across nodes", () => {
  it("serves a queue owned by B to a client on A (send, receive, ack, stats), and 1001 for an unknown queue", async () => {
    const b = await start(["--name", "B"]);
    const a = await start(["--name", "A", "--peers", b.url]);
    const [ca, cb] = [await connect(a), await connect(b)];
    await cb.call("mpreg.queue.create", ["jobs", { visibility_timeout_ms: 5000 }]);
    await waitFor(async () => ((await ca.call("catalog_query", [{ entry_type: "queues", name: "jobs" }])) as { items: unknown[] }).items.length === 1, {
      timeoutMs: 10_000,
      description: "A learns that B owns jobs",
    });
    for (let i = 0; i < 5; i++) await ca.call("mpreg.queue.send", ["jobs", { n: i }]);
    const got = (await ca.call("mpreg.queue.receive", ["jobs", { max: 10 }])) as Received[];
    expect(got.map((m) => m.body)).toEqual([0, 1, 2, 3, 4].map((n) => ({ n })));
    for (const m of got.slice(0, 3)) await ca.call("mpreg.queue.ack", ["jobs", m.receipt]);
    // B (the owner) sees the same queue.
    expect(await cb.call("mpreg.queue.stats", ["jobs"])).toMatchObject({ in_flight: 2, sent: 5, acked: 3 });
    await expect(ca.call("mpreg.queue.ack", ["jobs", "stale-receipt"])).rejects.toMatchObject({ code: 1001 });
    await expect(ca.call("mpreg.queue.send", ["nope", 1])).rejects.toMatchObject({ code: 1001 });
    await expect(ca.call("mpreg.queue.create", ["bad name!", {}])).rejects.toMatchObject({ code: 1002 });
  });

  it("relays a subscription on A to B's queue: every message once, at most prefetch unacked, unsubscribe and close end it", async () => {
    const b = await start(["--name", "B"]);
    const a = await start(["--name", "A", "--peers", b.url]);
    const [ca, cb] = [await connect(a), await connect(b)];
    await cb.call("mpreg.queue.create", ["work", { visibility_timeout_ms: 60_000 }]);
    await waitFor(async () => ((await ca.call("catalog_query", [{ entry_type: "queues", name: "work" }])) as { items: unknown[] }).items.length === 1, {
      timeoutMs: 10_000,
      description: "A learns that B owns work",
    });
    await expect(ca.queue("nope").subscribe()).rejects.toMatchObject({ code: 1001 });
    const N = 20;
    for (let i = 0; i < N; i++) await cb.call("mpreg.queue.send", ["work", i]);
    const sub = await ca.queue("work").subscribe({ prefetch: 3 });
    const got: unknown[] = [];
    for await (const m of sub) {
      got.push(m.body);
      // The relay holds at most `prefetch` messages out at the owner.
      expect(((await cb.call("mpreg.queue.stats", ["work"])) as { in_flight: number }).in_flight).toBeLessThanOrEqual(3);
      await m.ack();
      if (got.length === N) break;
    }
    expect(got).toEqual(Array.from({ length: N }, (_, i) => i));
    await waitFor(async () => ((await cb.call("mpreg.queue.stats", ["work"])) as { acked: number; in_flight: number }).acked === N, { timeoutMs: 5000, description: "all acked at B" });
    // A second relayed subscription ends with its connection: nothing more is leased for it.
    const c2 = await connect(a);
    const sub2 = await c2.queue("work").subscribe({ prefetch: 1 });
    await cb.call("mpreg.queue.send", ["work", "one"]);
    const it2 = sub2[Symbol.asyncIterator]();
    expect((await it2.next()).value?.body).toBe("one");
    await c2.close();
    await cb.call("mpreg.queue.send", ["work", "two"]);
    // "two" stays visible at B for a consumer there (the closed connection's relay receives no more).
    await waitFor(async () => ((await cb.call("mpreg.queue.receive", ["work", {}])) as Received[]).some((m) => m.body === "two"), {
      timeoutMs: 5000,
      description: "two is received at B",
    });
  });

  it("makes the messages leased to a connection visible again when it closes", async () => {
    const a = await start(["--name", "A"]);
    const c1 = await connect(a);
    const c2 = await connect(a);
    await c1.call("mpreg.queue.create", ["work", { visibility_timeout_ms: 60_000 }]);
    await c1.call("mpreg.queue.send", ["work", "job"]);
    expect(((await c1.call("mpreg.queue.receive", ["work", {}])) as Received[]).length).toBe(1);
    expect(await c2.call("mpreg.queue.receive", ["work", {}])).toEqual([]);
    await c1.close();
    await waitFor(async () => ((await c2.call("mpreg.queue.receive", ["work", {}])) as Received[]).length === 1, { timeoutMs: 5000, description: "lease returned" });
  });
});

describe("a durable queue across SIGKILL", () => {
  const rounds = Number(process.env.MPREG_QUEUE_CRASH_ROUNDS ?? (process.env.MPREG_LONG ? 100 : 20));

  it(`loses no answered send and resurrects no acked message over ${rounds} kill rounds`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "mpreg-queue-crash-"));
    dirs.push(dir);
    const answered = new Set<number>();
    const acked = new Set<number>();
    // Acks sent whose answer may have been lost to the kill: applied or not, either is correct.
    const ackSent = new Set<number>();
    let next = 0;
    for (let round = 0; round < rounds; round++) {
      const n = await start(["--name", "Q", "--data-dir", dir]);
      const c = await connect(n);
      await c.call("mpreg.queue.create", ["durable", { visibility_timeout_ms: 200, max_receives: 1000 }]);
      // Everything received now must be an answered send that was never acked.
      let stop = false;
      const consumer = (async () => {
        while (!stop) {
          const got = (await c.call("mpreg.queue.receive", ["durable", { max: 10, wait_ms: 20 }]).catch(() => null)) as Received[] | null;
          // The node is gone: stop (an immediately failing call would spin without yielding).
          if (got === null) break;
          for (const m of got) {
            const id = (m.body as { id: number }).id;
            expect(acked.has(id)).toBe(false);
            ackSent.add(id);
            const ok = await c.call("mpreg.queue.ack", ["durable", m.receipt]).then(() => true, () => false);
            if (ok) acked.add(id);
          }
        }
      })();
      const producer = (async () => {
        while (!stop) {
          const id = next++;
          const ok = await c.call("mpreg.queue.send", ["durable", { id }]).then(() => true, () => false);
          if (ok) answered.add(id);
          else break;
        }
      })();
      await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 200)));
      await nodes.pop()!.kill();
      stop = true;
      await Promise.all([producer, consumer]);
      clients.pop();
      await c.close().catch(() => undefined);
    }
    // Drain after the last restart: every answered, unacked send is still there.
    const n = await start(["--name", "Q", "--data-dir", dir]);
    const c = await connect(n);
    const left = new Set<number>();
    await waitFor(
      async () => {
        const got = (await c.call("mpreg.queue.receive", ["durable", { max: 100, wait_ms: 50 }])) as Received[];
        for (const m of got) {
          const id = (m.body as { id: number }).id;
          expect(acked.has(id)).toBe(false);
          left.add(id);
          await c.call("mpreg.queue.ack", ["durable", m.receipt]);
        }
        return [...answered].every((id) => acked.has(id) || ackSent.has(id) || left.has(id));
      },
      { timeoutMs: 20_000, description: "every answered send received" },
    );
    expect(answered.size).toBeGreaterThan(rounds);
    console.log(`${rounds} rounds: ${answered.size} answered sends, ${acked.size} acked before a kill, ${left.size} received after the last restart`);
  }, 300_000);
});
