/**
 * Model-based tests: random interleavings of send, receive (by two owners), ack, nack, extend,
 * closeOwner, clock advance and restart (close the service, reopen the store, open a new service) run against a QueueService
 * on a reopenable memory backend, and against a small reference model written from the rules
 * (linear scans, no indexes). Every answer, receive order, receive count and count must agree.
 */

import { describe, it } from "vitest";
import fc from "fast-check";
import assert from "node:assert/strict";
import { SimClock } from "@mpreg/testkit";
import { ErrorCode, MpregError } from "@mpreg/envelope";
import type { QueueService, QueueType, SendOptions } from "./index.js";
import { reopenable, simService } from "../test/sim.js";

const VIS = 1000;
const MAX_RECEIVES = 3;
const DEDUP_WINDOW = 5000;
const Q = "q";

interface MMsg {
  seq: number;
  body: number;
  priority: number;
  group: string;
  amo: boolean;
  receiveCount: number;
  state: "visible" | "delayed" | "inflight";
  visibleAt: number;
  deadline: number;
  receipt: string | undefined;
  owner: string | undefined;
}

interface Model {
  type: QueueType;
  t: number;
  nextSeq: number;
  nextBody: number;
  msgs: MMsg[];
  dlq: number[];
  sent: number;
  acked: number;
  deadLettered: number;
  /** Every receipt handed out (live or stale), for ack/nack/extend to pick from. */
  receipts: string[];
  dedup: Map<string, { messageId: string; expiresAt: number }>;
  ids: Map<number, string>;
}

interface Real {
  clock: SimClock;
  service: QueueService;
  reopen: () => Promise<void>;
}

/** Runs every timed change due at `t` (order does not matter: delivery order is by seq). */
function advanceModel(m: Model, t: number): void {
  m.t = t;
  for (const x of [...m.msgs]) {
    if (x.state === "inflight" && x.deadline <= t) returnModel(m, x, 0);
    if (x.state === "delayed" && x.visibleAt <= t) x.state = "visible";
  }
  for (const [k, d] of m.dedup) if (d.expiresAt <= t) m.dedup.delete(k);
}

function returnModel(m: Model, x: MMsg, delay: number): void {
  x.receipt = undefined;
  if (x.receiveCount >= MAX_RECEIVES) {
    m.msgs.splice(m.msgs.indexOf(x), 1);
    m.dlq.push(x.body);
    m.deadLettered++;
    return;
  }
  x.visibleAt = m.t + delay;
  x.state = delay > 0 ? "delayed" : "visible";
}

/** Leases in flight become visible (receive counts kept); one that used the last receive is dead-lettered. */
function restartModel(m: Model): void {
  for (const x of [...m.msgs]) {
    if (x.state !== "inflight") continue;
    x.receipt = undefined;
    if (x.receiveCount >= MAX_RECEIVES) {
      m.msgs.splice(m.msgs.indexOf(x), 1);
      m.dlq.push(x.body);
      m.deadLettered++;
    } else x.state = "visible";
  }
}

/**
 * The message the next delivery takes: by priority then send order; for fifo, the oldest group
 * head that is visible while nothing of its group is in flight.
 */
function nextDelivery(m: Model): MMsg | undefined {
  const visible = m.msgs.filter((x) => x.state === "visible");
  if (m.type !== "fifo") return visible.sort((a, b) => b.priority - a.priority || a.seq - b.seq)[0];
  const heads: MMsg[] = [];
  for (const g of new Set(m.msgs.map((x) => x.group))) {
    const inGroup = m.msgs.filter((x) => x.group === g).sort((a, b) => a.seq - b.seq);
    if (inGroup.some((x) => x.state === "inflight")) continue;
    if (inGroup[0]!.state === "visible") heads.push(inGroup[0]!);
  }
  return heads.sort((a, b) => a.seq - b.seq)[0];
}

function live(m: Model, receipt: string): MMsg | undefined {
  return m.msgs.find((x) => x.receipt === receipt && x.state === "inflight");
}

async function expectCode(p: Promise<unknown>, code: number): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MpregError, String(e));
    assert.equal(e.code, code, e.message);
    return;
  }
  assert.fail(`expected error ${code}`);
}

type Cmd = fc.AsyncCommand<Model, Real>;
const cmd = (name: string, run: (m: Model, r: Real) => Promise<void>, check: (m: Model) => boolean = () => true): Cmd => ({
  check,
  run,
  toString: () => name,
});

function commands(type: QueueType): fc.Arbitrary<Cmd>[] {
  const sendArb = fc.record({
    delay: fc.constantFrom(0, 0, 500, 1500),
    priority: fc.integer({ min: 0, max: 3 }),
    group: fc.constantFrom("g1", "g2", "g3"),
    dedup: fc.option(fc.constantFrom("d1", "d2"), { freq: 3, nil: undefined }),
    amo: fc.integer({ min: 0, max: 3 }).map((n) => n === 0),
  });
  const send = sendArb.map((s) =>
      cmd(`send(${JSON.stringify(s)})`, async (m, r) => {
        const opts: SendOptions = {};
        if (s.delay > 0) opts.delay_ms = s.delay;
        if (type === "priority") opts.priority = s.priority;
        if (type === "fifo") opts.group_id = s.group;
        if (s.dedup !== undefined) opts.dedup_id = s.dedup;
        if (s.amo) opts.delivery = "at_most_once";
        const body = m.nextBody++;
        const got = await r.service.send(Q, body, opts);
        advanceModel(m, r.clock.now());
        const seen = s.dedup !== undefined ? m.dedup.get(s.dedup) : undefined;
        if (seen !== undefined) {
          assert.deepEqual(got, { message_id: seen.messageId, duplicate: true });
          return;
        }
        assert.equal(got.duplicate, false);
        if (s.dedup !== undefined) m.dedup.set(s.dedup, { messageId: got.message_id, expiresAt: m.t + DEDUP_WINDOW });
        m.ids.set(body, got.message_id);
        m.sent++;
        m.msgs.push({
          seq: m.nextSeq++,
          body,
          priority: type === "priority" ? s.priority : 0,
          group: type === "fifo" ? s.group : "",
          amo: s.amo,
          receiveCount: 0,
          state: s.delay > 0 ? "delayed" : "visible",
          visibleAt: m.t + s.delay,
          deadline: 0,
          receipt: undefined,
          owner: undefined,
        });
      }),
    );
  const receive = fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.option(fc.constant(200), { nil: undefined }), fc.constantFrom("c1", "c2"))
    .map(([max, vis, owner]) =>
      cmd(`receive(${max},${vis},${owner})`, async (m, r) => {
        const got = await r.service.receive(Q, { max, ...(vis !== undefined ? { visibility_timeout_ms: vis } : {}) }, owner);
        advanceModel(m, r.clock.now());
        // Deliveries are taken one at a time (an at-most-once head leaves at once, so its group goes on).
        const want: [number, number][] = [];
        while (want.length < max) {
          const x = nextDelivery(m);
          if (x === undefined) break;
          x.receiveCount++;
          want.push([x.body, x.receiveCount]);
          const g = got[want.length - 1];
          if (g === undefined) break;
          assert.equal(g.message_id, m.ids.get(x.body));
          m.receipts.push(g.receipt);
          if (x.amo) {
            m.msgs.splice(m.msgs.indexOf(x), 1);
            m.acked++;
            continue;
          }
          x.state = "inflight";
          x.receipt = g.receipt;
          x.owner = owner;
          x.deadline = m.t + (vis ?? VIS);
        }
        assert.deepEqual(
          got.map((x) => [x.body, x.receive_count]),
          want,
        );
      }),
    );
  return [
    // Sends and receives are weighted up so queues fill and leases are often in flight at a restart.
    send,
    send,
    send,
    receive,
    receive,
    fc.nat().map((i) =>
      cmd(
        `ack(#${i})`,
        async (m, r) => {
          const receipt = m.receipts[i % m.receipts.length]!;
          advanceModel(m, r.clock.now());
          const x = live(m, receipt);
          if (receipt.startsWith("amo.")) {
            assert.deepEqual(await r.service.ack(Q, receipt), { ok: true });
          } else if (x === undefined) {
            await expectCode(r.service.ack(Q, receipt), ErrorCode.NOT_FOUND);
          } else {
            assert.deepEqual(await r.service.ack(Q, receipt), { ok: true });
            m.msgs.splice(m.msgs.indexOf(x), 1);
            m.acked++;
          }
        },
        (m) => m.receipts.length > 0,
      ),
    ),
    fc.tuple(fc.nat(), fc.constantFrom(0, 700)).map(([i, delay]) =>
      cmd(
        `nack(#${i},${delay})`,
        async (m, r) => {
          const receipt = m.receipts[i % m.receipts.length]!;
          advanceModel(m, r.clock.now());
          const x = live(m, receipt);
          if (x === undefined) {
            await expectCode(r.service.nack(Q, receipt, { delay_ms: delay }), ErrorCode.NOT_FOUND);
          } else {
            assert.deepEqual(await r.service.nack(Q, receipt, { delay_ms: delay }), { ok: true });
            returnModel(m, x, delay);
          }
        },
        (m) => m.receipts.length > 0,
      ),
    ),
    fc.tuple(fc.nat(), fc.constantFrom(0, 300, 2000)).map(([i, ms]) =>
      cmd(
        `extend(#${i},${ms})`,
        async (m, r) => {
          const receipt = m.receipts[i % m.receipts.length]!;
          advanceModel(m, r.clock.now());
          const x = live(m, receipt);
          if (x === undefined) {
            await expectCode(r.service.extend(Q, receipt, ms), ErrorCode.NOT_FOUND);
          } else {
            assert.deepEqual(await r.service.extend(Q, receipt, ms), { ok: true });
            if (ms === 0) returnModel(m, x, 0);
            else x.deadline = m.t + ms;
          }
        },
        (m) => m.receipts.length > 0,
      ),
    ),
    fc.constantFrom(1, 100, 499, 1000, 3000).map((ms) =>
      cmd(`advance(${ms})`, async (m, r) => {
        r.clock.advance(ms);
        await r.service.idle();
        advanceModel(m, r.clock.now());
      }),
    ),
    fc.constantFrom("c1", "c2").map((owner) =>
      cmd(`closeOwner(${owner})`, async (m, r) => {
        await r.service.closeOwner(owner);
        advanceModel(m, r.clock.now());
        for (const x of [...m.msgs]) if (x.state === "inflight" && x.owner === owner) returnModel(m, x, 0);
      }),
    ),
    fc.constant(
      cmd("restart", async (m, r) => {
        await r.reopen();
        advanceModel(m, r.clock.now());
        restartModel(m);
      }),
    ),
    fc.constant(
      cmd("stats", async (m, r) => {
        const got = await r.service.stats(Q);
        advanceModel(m, r.clock.now());
        const count = (s: MMsg["state"]) => m.msgs.filter((x) => x.state === s).length;
        assert.deepEqual(got, {
          visible: count("visible"),
          in_flight: count("inflight"),
          delayed: count("delayed"),
          dead_lettered: m.deadLettered,
          sent: m.sent,
          acked: m.acked,
        });
        if (m.dlq.length > 0) assert.equal((await r.service.stats(`${Q}.dlq`)).visible, m.dlq.length);
      }),
    ),
  ];
}

function modelTest(type: QueueType, numRuns: number): void {
  it(`a ${type} queue behaves like the model across restarts`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands(type), { maxCommands: 80, size: "+1" }), async (cmds) => {
        const vol = reopenable();
        const clock = new SimClock({ startMs: 1_000_000 });
        const open = async () => (await simService(clock, { backend: await vol.open() })).service;
        const real: Real = {
          clock,
          service: await open(),
          reopen: async () => {
            await real.service.close();
            real.service = await open();
          },
        };
        await real.service.create(Q, { type, visibility_timeout_ms: VIS, max_receives: MAX_RECEIVES, dedup_window_ms: DEDUP_WINDOW });
        const model: Model = {
          type,
          t: clock.now(),
          nextSeq: 1,
          nextBody: 1,
          msgs: [],
          dlq: [],
          sent: 0,
          acked: 0,
          deadLettered: 0,
          receipts: [],
          dedup: new Map(),
          ids: new Map(),
        };
        try {
          await fc.asyncModelRun(() => ({ model, real }), cmds);
          // Finally, after a restart, the dead-letter queue holds exactly the model's.
          await real.reopen();
          advanceModel(model, clock.now());
          restartModel(model);
          if (model.dlq.length > 0) {
            const got = await real.service.receive(`${Q}.dlq`, { max: 100 });
            assert.deepEqual(got.map((x) => x.body).sort(), [...model.dlq].sort());
          }
        } finally {
          await real.service.close();
        }
      }),
      { numRuns },
    );
  });
}

describe("model-based", () => {
  const runs = process.env["MPREG_LONG"] ? 400 : 60;
  modelTest("standard", runs);
  modelTest("priority", runs);
  modelTest("fifo", runs);
});
