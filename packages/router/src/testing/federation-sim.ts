/**
 * A deterministic, discrete-event simulation of federated clusters in one process: one
 * speaker per cluster (a path-vector {@link RouteTable} or a link-state
 * {@link ClusterLinkState}), driven as docs/federation.md asks of a real driver. A message
 * sent at time t on link a–b arrives at t + latency(a, b) (links are FIFO); at each instant,
 * every message due is delivered, then each cluster that received one (or saw a link change)
 * polls and sends. Every `tickIntervalMs` every cluster ticks and polls.
 *
 * With the default constant latency this is round-based: all messages of one generation
 * arrive together, and "rounds" is the number of generations.
 */
import { MpregError } from "@mpreg/envelope";
import { ClusterLinkState, type ClusterLinkStateOptions } from "../cluster-link-state.js";
import type { ClusterRoute } from "../cluster-route.js";
import { RouteTable, type RouteTableOptions } from "../route-table.js";
import { shortestDistances, type ClusterGraph } from "./cluster-graph.js";

/** Which routing mode the simulated clusters run. */
export type SimMode = "path-vector" | "link-state";

/** What the simulation needs of a cluster's routing state machine. */
export interface SimSpeaker {
  linkUp(n: string, now: number, opts?: { cost?: number }): void;
  linkDown(n: string, now: number): boolean;
  receive(from: string, msg: unknown, now: number): { accepted: boolean };
  tick(now: number): void;
  /** Messages to send, each with how many routes or announcements it carries. */
  out(now: number): { to: string; msg: unknown; entries: number }[];
  bestRoute(d: string): ClusterRoute | undefined;
  routesTo(d: string, avoid?: ReadonlySet<string>): ClusterRoute[];
}

class PathVectorSpeaker implements SimSpeaker {
  constructor(readonly table: RouteTable) {}
  linkUp(n: string, now: number, opts?: { cost?: number }): void {
    this.table.linkUp(n, now, opts);
  }
  linkDown(n: string, now: number): boolean {
    return this.table.linkDown(n, now);
  }
  receive(from: string, msg: unknown, now: number): { accepted: boolean } {
    return this.table.receive(from, msg, now);
  }
  tick(now: number): void {
    this.table.tick(now);
  }
  out(now: number): { to: string; msg: unknown; entries: number }[] {
    return this.table.poll(now).updates.map((u) => ({ to: u.to, msg: u.update, entries: u.update.routes.length + u.update.withdrawn.length }));
  }
  bestRoute(d: string): ClusterRoute | undefined {
    return this.table.bestRoute(d);
  }
  routesTo(d: string, avoid?: ReadonlySet<string>): ClusterRoute[] {
    return this.table.routesTo(d, avoid);
  }
}

/** Link-state messages carry a batch of announcements; the sim delivers them one by one. */
class LinkStateSpeaker implements SimSpeaker {
  constructor(readonly ls: ClusterLinkState) {}
  linkUp(n: string, now: number, opts?: { cost?: number }): void {
    this.ls.linkUp(n, now, opts);
  }
  linkDown(n: string, now: number): boolean {
    return this.ls.linkDown(n, now);
  }
  receive(from: string, msg: unknown, now: number): { accepted: boolean } {
    let any = false;
    for (const a of msg as unknown[]) any = this.ls.receive(from, a, now).accepted || any;
    return { accepted: any };
  }
  tick(now: number): void {
    this.ls.tick(now);
  }
  out(now: number): { to: string; msg: unknown; entries: number }[] {
    return this.ls.poll(now).messages.map((m) => ({ to: m.to, msg: m.announcements, entries: m.announcements.length }));
  }
  bestRoute(d: string): ClusterRoute | undefined {
    return this.ls.bestRoute(d);
  }
  routesTo(d: string, avoid?: ReadonlySet<string>): ClusterRoute[] {
    return this.ls.routesTo(d, avoid);
  }
}

/** Settings of a {@link FederationSim}. Times in simulated ms. */
export interface FederationSimOptions {
  /** Cluster ids. */
  ids: readonly string[];
  /** Links up at the start. */
  edges: readonly (readonly [string, string])[];
  /** Default `path-vector`. */
  mode?: SimMode;
  /**
   * Extra options per cluster, over the sim's defaults (`epoch: 1`, `damping: false`, and for
   * link-state `minOriginationIntervalMs: 0`).
   */
  options?: (id: string) => Partial<RouteTableOptions & ClusterLinkStateOptions>;
  /** Latency of every link when `latency` is not given. Default 10. */
  roundMs?: number;
  /** One-way latency of link a–b (an integer >= 0, the same both ways). Default `roundMs`. */
  latency?: (a: string, b: string) => number;
  /** Link cost of a–b (an integer >= 0). Default 1. */
  cost?: (a: string, b: string) => number;
  /** Every cluster ticks (and polls) this often. Default 1000. */
  tickIntervalMs?: number;
}

/** Totals of one {@link FederationSim.runUntilQuiet} or {@link FederationSim.advance}. */
export interface SimRunResult {
  /** Generations of messages: the longest chain of messages each caused by the one before. */
  rounds: number;
  /** Control messages sent (one per neighbour per poll at most). */
  messages: number;
  /** Routes, withdrawals or announcements in them. */
  entries: number;
  /** Simulated time from the start of the run to the last delivery (0 when none). */
  ms: number;
  /** True when nothing was left in flight. */
  quiet: boolean;
}

interface InFlight {
  at: number;
  order: number;
  from: string;
  to: string;
  msg: unknown;
  entries: number;
  depth: number;
}

/** A binary min-heap of messages by (arrival time, send order): links stay FIFO. */
class MessageQueue {
  private readonly items: InFlight[] = [];
  get size(): number {
    return this.items.length;
  }
  peek(): InFlight | undefined {
    return this.items[0];
  }
  private less(i: number, j: number): boolean {
    const a = this.items[i] as InFlight;
    const b = this.items[j] as InFlight;
    return a.at !== b.at ? a.at < b.at : a.order < b.order;
  }
  private swap(i: number, j: number): void {
    [this.items[i], this.items[j]] = [this.items[j] as InFlight, this.items[i] as InFlight];
  }
  push(m: InFlight): void {
    this.items.push(m);
    for (let i = this.items.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): InFlight | undefined {
    const top = this.items[0];
    const last = this.items.pop();
    if (this.items.length > 0 && last !== undefined) {
      this.items[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.items.length && this.less(l, m)) m = l;
        if (r < this.items.length && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

const pairKey = (a: string, b: string): string => JSON.stringify(a < b ? [a, b] : [b, a]);

function nonNegInt(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v < 0) throw MpregError.invalid(`${name} must be an integer >= 0, got ${v}`, name);
  return v;
}

/**
 * A federation in one process, deterministic (no timers, no randomness of its own). Build it,
 * `runUntilQuiet()`, check the routes ({@link FederationSim.check}, or against
 * `bruteForceBestRoutes`), change links, run again.
 */
export class FederationSim {
  /** The simulated clusters' ids. */
  readonly ids: readonly string[];
  /** The routing mode every cluster runs. */
  readonly mode: SimMode;
  private readonly speakers = new Map<string, SimSpeaker>();
  /** Links up, by pair key, in the order they came up. */
  private readonly up = new Map<string, readonly [string, string]>();
  private readonly queue = new MessageQueue();
  /** Clusters to poll at the current instant (they received something or saw a link change). */
  private readonly touched = new Set<string>();
  /** Per cluster, the deepest message received since its last poll. */
  private readonly depthIn = new Map<string, number>();
  private readonly latency: (a: string, b: string) => number;
  private readonly cost: (a: string, b: string) => number;
  private readonly tickIntervalMs: number;
  private nextTickAt: number;
  private order = 0;
  private runDepth = 0;
  private lastDeliveryAt = 0;
  /** Simulated time now. */
  now = 0;
  /** Totals since construction. */
  messages = 0;
  entries = 0;
  /** Messages lost because their link went down while they were in flight. */
  dropped = 0;

  /** @throws {MpregError} 1002 for an unknown cluster in `edges` or a bad setting. */
  constructor(opts: FederationSimOptions) {
    this.ids = opts.ids.slice();
    this.mode = opts.mode ?? "path-vector";
    const roundMs = nonNegInt(opts.roundMs ?? 10, "roundMs");
    this.latency = opts.latency ?? (() => roundMs);
    this.cost = opts.cost ?? (() => 1);
    this.tickIntervalMs = nonNegInt(opts.tickIntervalMs ?? 1000, "tickIntervalMs");
    if (this.tickIntervalMs === 0) throw MpregError.invalid("tickIntervalMs must be > 0", "tickIntervalMs");
    this.nextTickAt = this.tickIntervalMs;
    for (const id of this.ids) {
      const extra = opts.options?.(id) ?? {};
      const base = { localCluster: id, epoch: 1, damping: false as const, ...extra };
      this.speakers.set(
        id,
        this.mode === "link-state"
          ? new LinkStateSpeaker(new ClusterLinkState({ minOriginationIntervalMs: 0, ...base }))
          : new PathVectorSpeaker(new RouteTable(base)),
      );
    }
    for (const [a, b] of opts.edges) this.link(a, b);
  }

  /**
   * A simulation of `graph`: its clusters, its links up, their costs. `latency` and the rest as
   * in {@link FederationSimOptions}.
   */
  static fromGraph(graph: ClusterGraph, opts: Omit<FederationSimOptions, "ids" | "edges" | "cost"> = {}): FederationSim {
    const costs = new Map(graph.links.map((l) => [pairKey(l.a, l.b), l.cost]));
    return new FederationSim({
      ...opts,
      ids: graph.clusters,
      edges: graph.links.map((l) => [l.a, l.b] as const),
      cost: (a, b) => costs.get(pairKey(a, b)) ?? 1,
    });
  }

  /** The speaker of cluster `id`. */
  speaker(id: string): SimSpeaker {
    const s = this.speakers.get(id);
    if (s === undefined) throw MpregError.invalid(`no cluster ${id} in the simulation`, "id");
    return s;
  }

  /** The route table of cluster `id` (path-vector mode only). */
  table(id: string): RouteTable {
    const s = this.speaker(id);
    if (!(s instanceof PathVectorSpeaker)) throw MpregError.invalid("table() needs path-vector mode", "mode");
    return s.table;
  }

  /** The link-state database of cluster `id` (link-state mode only). */
  linkState(id: string): ClusterLinkState {
    const s = this.speaker(id);
    if (!(s instanceof LinkStateSpeaker)) throw MpregError.invalid("linkState() needs link-state mode", "mode");
    return s.ls;
  }

  /** True when the link a–b is up. */
  hasLink(a: string, b: string): boolean {
    return this.up.has(pairKey(a, b));
  }

  /** The links up now, in the order they came up. */
  links(): [string, string][] {
    return [...this.up.values()].map(([a, b]) => [a, b]);
  }

  /** The topology now: every cluster and the links up with their costs. */
  graph(): ClusterGraph {
    return { clusters: this.ids, links: this.links().map(([a, b]) => ({ a, b, cost: this.cost(a, b) })) };
  }

  /** Brings a link up on both ends (they send at the next run). */
  link(a: string, b: string): void {
    const c = nonNegInt(this.cost(a, b), "cost");
    const sa = this.speaker(a);
    const sb = this.speaker(b);
    this.up.set(pairKey(a, b), [a, b]);
    sa.linkUp(b, this.now, { cost: c });
    sb.linkUp(a, this.now, { cost: c });
    this.touched.add(a).add(b);
  }

  /** Takes a link down on both ends; messages in flight on it are lost. */
  unlink(a: string, b: string): void {
    this.up.delete(pairKey(a, b));
    this.speaker(a).linkDown(b, this.now);
    this.speaker(b).linkDown(a, this.now);
    this.touched.add(a).add(b);
  }

  /** Polls cluster `id` and puts what it sends in flight, one generation deeper than what it received. */
  private send(id: string): void {
    const out = this.speaker(id).out(this.now);
    const depth = (this.depthIn.get(id) ?? 0) + 1;
    this.depthIn.delete(id);
    for (const o of out) {
      const at = this.now + nonNegInt(this.latency(id, o.to), "latency");
      this.queue.push({ at, order: this.order++, from: id, ...o, depth });
      this.messages++;
      this.entries += o.entries;
      if (depth > this.runDepth) this.runDepth = depth;
    }
  }

  /** Polls whoever is due at the current instant (all of them after a tick). */
  private pollDue(): void {
    if (this.now >= this.nextTickAt) {
      while (this.nextTickAt <= this.now) this.nextTickAt += this.tickIntervalMs;
      for (const id of this.ids) this.speaker(id).tick(this.now);
      for (const id of this.ids) this.send(id);
    } else {
      for (const id of this.ids) if (this.touched.has(id)) this.send(id);
    }
    this.touched.clear();
  }

  /** Delivers every message due at the earliest pending instant (no later than `until`), then polls. */
  private nextInstant(until: number): boolean {
    const head = this.queue.peek();
    const at = Math.min(head?.at ?? Infinity, this.nextTickAt);
    if (at > until) return false;
    this.now = Math.max(this.now, at);
    while (this.queue.size > 0 && (this.queue.peek() as InFlight).at <= this.now) {
      const m = this.queue.pop() as InFlight;
      if (!this.hasLink(m.from, m.to)) {
        this.dropped++;
        continue;
      }
      this.lastDeliveryAt = this.now;
      this.speaker(m.to).receive(m.from, m.msg, this.now);
      this.touched.add(m.to);
      if (m.depth > (this.depthIn.get(m.to) ?? 0)) this.depthIn.set(m.to, m.depth);
    }
    this.pollDue();
    return true;
  }

  private begin(): { start: number; m0: number; e0: number } {
    this.runDepth = 0;
    this.lastDeliveryAt = this.now;
    return { start: this.now, m0: this.messages, e0: this.entries };
  }

  private result(r: { start: number; m0: number; e0: number }): SimRunResult {
    return {
      rounds: this.runDepth,
      messages: this.messages - r.m0,
      entries: this.entries - r.e0,
      ms: this.lastDeliveryAt - r.start,
      quiet: this.queue.size === 0,
    };
  }

  /**
   * Runs until no message is in flight (or `maxInstants` delivery instants passed): what the
   * federation does in response to the link changes since the last run. Ticks that fall due
   * meanwhile happen; time does not jump ahead to the next tick once it is quiet.
   */
  runUntilQuiet(maxInstants = 100_000): SimRunResult {
    const r = this.begin();
    this.pollDue();
    for (let i = 0; i < maxInstants && this.queue.size > 0; i++) this.nextInstant(Infinity);
    return this.result(r);
  }

  /** Advances simulated time by `ms`, delivering and ticking as it goes (e.g. to let damping decay). */
  advance(ms: number): SimRunResult {
    const r = this.begin();
    const end = this.now + nonNegInt(ms, "ms");
    this.pollDue();
    while (this.nextInstant(end));
    this.now = end;
    return this.result(r);
  }

  /**
   * Checks every cluster's best routes against the links up now: a route to every reachable
   * cluster and to no other, well formed (starts here, ends there, next hop is `path[1]`),
   * loop-free, over live links only, with the shortest distance as metric. Returns the
   * violations, empty when all is well. (Policies that deny or add metric make this fail by
   * design: check those against your own model.)
   */
  check(): string[] {
    const bad: string[] = [];
    const graph = this.graph();
    for (const s of this.ids) {
      const dist = shortestDistances(graph, s);
      for (const d of this.ids) {
        if (d === s) continue;
        const r = this.speaker(s).bestRoute(d);
        const want = dist.get(d);
        if (want === undefined) {
          if (r !== undefined) bad.push(`${s}→${d}: route ${r.path.join(">")} to an unreachable cluster`);
          continue;
        }
        if (r === undefined) {
          bad.push(`${s}→${d}: no route (distance ${want})`);
          continue;
        }
        if (r.path[0] !== s || r.path[r.path.length - 1] !== d || r.nextHop !== r.path[1]) bad.push(`${s}→${d}: malformed ${r.path.join(">")}`);
        if (new Set(r.path).size !== r.path.length) bad.push(`${s}→${d}: loop ${r.path.join(">")}`);
        for (let i = 0; i + 1 < r.path.length; i++) {
          if (!this.hasLink(r.path[i] as string, r.path[i + 1] as string)) bad.push(`${s}→${d}: dead link in ${r.path.join(">")}`);
        }
        if (r.metric !== want) bad.push(`${s}→${d}: metric ${r.metric}, shortest ${want}`);
      }
    }
    return bad;
  }
}
