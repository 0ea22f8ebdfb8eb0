import type { CatalogChange, TopicEntry } from "@mpreg/catalog";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EXCHANGE_DEFAULTS, TopicExchange } from "./index.js";
import { ManualClock, codeOf, counterIds, referenceMatch } from "../test/helpers.js";

/**
 * Model-based test of the exchange against a plain reference: random subscribe (with and
 * without backlog, replacing, stealing ids), unsubscribe, publish, remote publish, duplicate
 * deliveries on both paths, disconnects, slow (blocked) sinks, remote catalog interest and
 * clock jumps. After every step each subscription must have received exactly the model's
 * sequence (a prefix while its sink is blocked): every message once, in publish order.
 */

const OWNERS = ["o1", "o2", "o3"] as const;
const NODES = ["n2", "n3", "n4"] as const;
const SUB_IDS = ["s0", "s1", "s2", "s3"] as const;
const MAX_AGE_MS = EXCHANGE_DEFAULTS.retentionMaxAgeMs;
const QUEUE_LIMIT = EXCHANGE_DEFAULTS.maxQueuedPerSubscription;

interface ModelSub {
  owner: string;
  patterns: string[];
  expected: string[];
  got: Set<string>;
}

interface Model {
  now: number;
  subs: Map<string, ModelSub>;
  seen: Set<string>;
  used: string[];
  retained: Array<{ id: string; topic: string; at: number }>;
  remoteEntries: Map<string, { node: string; patterns: string[] }>;
  /** Owners whose received sequences are only a prefix (blocked, or not flushed since). */
  blocked: Set<string>;
  next: number;
}

interface Real {
  ex: TopicExchange;
  clock: ManualClock;
  /** Message ids received per subscription id (cleared when the subscription ends). */
  received: Map<string, string[]>;
  open: Map<string, boolean>;
}

function attach(r: Real, owner: string): void {
  r.open.set(owner, true);
  r.ex.attach(owner, {
    canWrite: () => r.open.get(owner) === true,
    write: (f) => {
      let l = r.received.get(f.subscription_id);
      if (l === undefined) r.received.set(f.subscription_id, (l = []));
      l.push(f.message.message_id);
    },
  });
}

function check(m: Model, r: Real): void {
  for (const [id, sub] of m.subs) {
    const got = r.received.get(id) ?? [];
    if (m.blocked.has(sub.owner)) expect(sub.expected.slice(0, got.length)).toEqual(got);
    else expect(got).toEqual(sub.expected);
  }
  const s = r.ex.stats();
  expect(s.subscriptions).toBe(m.subs.size);
  expect(s.dropped).toBe(0);
}

function matches(patterns: readonly string[], topic: string): boolean {
  return patterns.some((p) => referenceMatch(p, topic));
}

function deliverModel(m: Model, id: string, topic: string): number {
  m.seen.add(id);
  m.used.push(id);
  m.retained.push({ id, topic, at: m.now });
  let n = 0;
  for (const sub of m.subs.values()) {
    if (matches(sub.patterns, topic) && !sub.got.has(id)) {
      sub.got.add(id);
      sub.expected.push(id);
      n++;
    }
  }
  return n;
}

function endSub(m: Model, r: Real, id: string): void {
  m.subs.delete(id);
  r.received.delete(id);
}

type Cmd = fc.Command<Model, Real>;

class Subscribe implements Cmd {
  constructor(
    readonly owner: string,
    readonly id: string | undefined,
    readonly patterns: string[],
    readonly backlog: { seconds?: number; max?: number } | undefined,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const req = { patterns: this.patterns, ...(this.id ? { subscription_id: this.id } : {}), ...(this.backlog ? { backlog: this.backlog } : {}) };
    const existing = this.id === undefined ? undefined : m.subs.get(this.id);
    if (existing !== undefined && existing.owner !== this.owner) {
      expect(codeOf(() => r.ex.subscribe(this.owner, req)).code).toBe(1002);
      return;
    }
    const res = r.ex.subscribe(this.owner, req);
    let sub = m.subs.get(res.subscription_id);
    expect(res.replaced).toBe(sub !== undefined);
    if (sub === undefined) m.subs.set(res.subscription_id, (sub = { owner: this.owner, patterns: [], expected: [], got: new Set() }));
    sub.patterns = [...new Set(this.patterns)];
    let queued = 0;
    if (this.backlog !== undefined) {
      const since = Math.max(this.backlog.seconds === undefined ? -Infinity : m.now - this.backlog.seconds * 1000, m.now - MAX_AGE_MS);
      const max = Math.min(this.backlog.max ?? Infinity, QUEUE_LIMIT);
      const matching = m.retained.filter((x) => x.at >= since && matches(sub.patterns, x.topic));
      // The newest `max` (slice(-Infinity) keeps all).
      const picked = max === 0 ? [] : matching.slice(-max);
      for (const x of picked) {
        if (sub.got.has(x.id)) continue;
        sub.got.add(x.id);
        sub.expected.push(x.id);
        queued++;
      }
    }
    expect(res.backlog).toBe(queued);
    // What a node does after sending the subscribe ack.
    r.ex.flush(this.owner);
    if (r.open.get(this.owner) === true) m.blocked.delete(this.owner);
    check(m, r);
  }
  toString = () => `subscribe(${this.owner}, ${this.id}, ${JSON.stringify(this.patterns)}, ${JSON.stringify(this.backlog)})`;
}

class Unsubscribe implements Cmd {
  constructor(
    readonly owner: string,
    readonly id: string,
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const sub = m.subs.get(this.id);
    if (sub === undefined || sub.owner !== this.owner) {
      expect(codeOf(() => r.ex.unsubscribe(this.owner, this.id)).code).toBe(1001);
    } else {
      r.ex.unsubscribe(this.owner, this.id);
      endSub(m, r, this.id);
    }
    check(m, r);
  }
  toString = () => `unsubscribe(${this.owner}, ${this.id})`;
}

class Publish implements Cmd {
  constructor(readonly topic: string) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const id = `p${m.next++}`;
    const nodes = new Set<string>();
    for (const e of m.remoteEntries.values()) if (matches(e.patterns, this.topic)) nodes.add(e.node);
    const res = r.ex.publish({ topic: this.topic, payload: id, message_id: id });
    expect(res.duplicate).toBe(false);
    expect(res.delivered).toBe(deliverModel(m, id, this.topic));
    expect([...res.forwardTo].sort()).toEqual([...nodes].sort());
    check(m, r);
  }
  toString = () => `publish(${this.topic})`;
}

class RemotePublish implements Cmd {
  constructor(readonly topic: string) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const id = `r${m.next++}`;
    const res = r.ex.deliverRemote({ topic: this.topic, payload: id, headers: {}, message_id: id, publisher: "n2", timestamp: m.now });
    expect(res.duplicate).toBe(false);
    expect(res.delivered).toBe(deliverModel(m, id, this.topic));
    check(m, r);
  }
  toString = () => `remotePublish(${this.topic})`;
}

class Duplicate implements Cmd {
  constructor(
    readonly index: number,
    readonly remote: boolean,
    readonly topic: string,
  ) {}
  check = (m: Readonly<Model>) => m.used.length > 0;
  run(m: Model, r: Real): void {
    const id = m.used[this.index % m.used.length] as string;
    // The duplicate may even claim another topic: the id alone decides.
    const res = this.remote
      ? r.ex.deliverRemote({ topic: this.topic, payload: 0, headers: {}, message_id: id, publisher: "n3", timestamp: 0 })
      : r.ex.publish({ topic: this.topic, payload: 0, message_id: id });
    expect(res.duplicate).toBe(true);
    expect(res.delivered).toBe(0);
    check(m, r);
  }
  toString = () => `duplicate(${this.index}, ${this.remote ? "remote" : "local"}, ${this.topic})`;
}

class Disconnect implements Cmd {
  constructor(readonly owner: string) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const ids = [...m.subs].filter(([, s]) => s.owner === this.owner).map(([id]) => id);
    expect(r.ex.closeOwner(this.owner)).toBe(ids.length);
    for (const id of ids) endSub(m, r, id);
    // The owner name comes back as a fresh connection with an open sink.
    m.blocked.delete(this.owner);
    attach(r, this.owner);
    check(m, r);
  }
  toString = () => `disconnect(${this.owner})`;
}

/**
 * The owner's connection stops taking writes (`block`), or takes them again: with a `flush`
 * from the driver, or on its own without one (buffer drained, no flush yet), when what waits is
 * written by whatever comes next; until a flush only a prefix is guaranteed.
 */
class SetSink implements Cmd {
  constructor(
    readonly owner: string,
    readonly state: "block" | "unblock" | "unblock-no-flush",
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    r.open.set(this.owner, this.state !== "block");
    if (this.state === "unblock") {
      r.ex.flush(this.owner);
      m.blocked.delete(this.owner);
    } else {
      m.blocked.add(this.owner);
    }
    check(m, r);
  }
  toString = () => `${this.state}(${this.owner})`;
}

class RemoteEntry implements Cmd {
  constructor(
    readonly node: string,
    readonly sid: string,
    readonly patterns: string[],
  ) {}
  check = () => true;
  run(m: Model, r: Real): void {
    const key = `topic/${this.node}/${this.sid}`;
    const entry: TopicEntry = { kind: "topic", node_id: this.node, cluster_id: "c", subscription_id: this.sid, patterns: this.patterns };
    const old = m.remoteEntries.get(key);
    let change: CatalogChange | undefined;
    if (this.patterns.length === 0) {
      if (old !== undefined) change = { type: "removed", key, entry: { ...entry, patterns: old.patterns } };
      m.remoteEntries.delete(key);
    } else {
      change = old === undefined ? { type: "added", key, entry } : { type: "updated", key, entry };
      m.remoteEntries.set(key, { node: this.node, patterns: this.patterns });
    }
    if (change !== undefined) r.ex.applyCatalogChange(change);
    check(m, r);
  }
  toString = () => `remoteEntry(${this.node}, ${this.sid}, ${JSON.stringify(this.patterns)})`;
}

class Advance implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  run(m: Model, r: Real): void {
    m.now += this.ms;
    r.clock.advance(this.ms);
    check(m, r);
  }
  toString = () => `advance(${this.ms})`;
}

const seg = fc.constantFrom("a", "b", "c");
const topicArb = fc.array(seg, { minLength: 1, maxLength: 3 }).map((s) => s.join("."));
const patternArb = fc
  .array(fc.oneof({ weight: 3, arbitrary: seg }, { weight: 1, arbitrary: fc.constantFrom("*", "#") }), { minLength: 1, maxLength: 3 })
  .map((s) => s.join("."));
const ownerArb = fc.constantFrom(...OWNERS);
const backlogArb = fc.option(
  fc.record(
    {
      seconds: fc.option(fc.oneof(fc.constantFrom(0, 1, 5, 60, 600, 3600, 4000), fc.integer({ min: 0, max: 7200 })), { nil: undefined }),
      max: fc.option(fc.nat(6), { nil: undefined }),
    },
    { requiredKeys: [] },
  ),
  { nil: undefined },
);

const commands = [
  fc.tuple(ownerArb, fc.option(fc.constantFrom(...SUB_IDS), { nil: undefined }), fc.array(patternArb, { minLength: 1, maxLength: 3 }), backlogArb).map(
    ([o, id, p, b]) => new Subscribe(o, id, p, b),
  ),
  fc.tuple(ownerArb, fc.constantFrom(...SUB_IDS, "id-missing")).map(([o, id]) => new Unsubscribe(o, id)),
  topicArb.map((t) => new Publish(t)),
  topicArb.map((t) => new Publish(t)),
  topicArb.map((t) => new RemotePublish(t)),
  fc.tuple(fc.nat(), fc.boolean(), topicArb).map(([i, remote, t]) => new Duplicate(i, remote, t)),
  ownerArb.map((o) => new Disconnect(o)),
  fc.tuple(ownerArb, fc.constantFrom("block" as const, "unblock" as const, "unblock-no-flush" as const)).map(([o, st]) => new SetSink(o, st)),
  fc.tuple(fc.constantFrom(...NODES), fc.constantFrom("x", "y"), fc.array(patternArb, { maxLength: 2 })).map(
    ([n, sid, p]) => new RemoteEntry(n, sid, [...new Set(p)]),
  ),
  // Round steps, so backlog windows (whole seconds) and the retention age fall exactly on messages.
  fc.constantFrom(0, 1000, 5000, 60_000, 600_000, 3_600_000).map((ms) => new Advance(ms)),
];

describe("TopicExchange against a reference model", () => {
  it("exactly once per subscription, in publish order, through every operation", () => {
    fc.assert(
      fc.property(fc.commands(commands, { maxCommands: 100, size: "max" }), (cmds) => {
        const clock = new ManualClock();
        const real: Real = {
          ex: new TopicExchange({ nodeId: "n1", now: clock.now, newId: counterIds("auto") }),
          clock,
          received: new Map(),
          open: new Map(),
        };
        for (const o of OWNERS) attach(real, o);
        const model: Model = {
          now: clock.t,
          subs: new Map(),
          seen: new Set(),
          used: [],
          retained: [],
          remoteEntries: new Map(),
          blocked: new Set(),
          next: 0,
        };
        fc.modelRun(() => ({ model, real }), cmds);
        // Drain everything: then every subscription holds exactly its model sequence.
        for (const o of OWNERS) real.open.set(o, true);
        model.blocked.clear();
        real.ex.flushAll();
        check(model, real);
        for (const [id] of model.subs) {
          const got = real.received.get(id) ?? [];
          expect(new Set(got).size).toBe(got.length);
        }
        expect(real.ex.stats().queued).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
