/**
 * A round-based, seeded simulation of federated clusters in one process, for the tests and the
 * benchmark. Each round: every message sent in the previous round is delivered (if its link is
 * still up), then every cluster ticks and polls; what it sends is delivered next round. Time
 * advances `roundMs` per round. One speaker per cluster: a path-vector RouteTable or a
 * link-state ClusterLinkState.
 */
import { SeededRandom } from "@mpreg/testkit";
import { ClusterLinkState, type ClusterLinkStateOptions } from "../src/cluster-link-state.js";
import type { ClusterRoute } from "../src/cluster-route.js";
import { RouteTable, type RouteTableOptions } from "../src/route-table.js";

export type SimMode = "path-vector" | "link-state";

/** What the simulation needs of a speaker. */
export interface SimSpeaker {
  linkUp(n: string, now: number, opts?: { cost?: number }): void;
  linkDown(n: string, now: number): boolean;
  receive(from: string, msg: unknown, now: number): { accepted: boolean };
  tick(now: number): void;
  /** Messages to send: each with how many routes or announcements it carries. */
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

export interface FederationSimOptions {
  ids: string[];
  edges: [string, string][];
  mode?: SimMode;
  /** Extra speaker options per cluster. */
  options?: (id: string) => Partial<RouteTableOptions & ClusterLinkStateOptions>;
  roundMs?: number;
  /** Link cost per edge (default 1). */
  cost?: (a: string, b: string) => number;
}

/** Totals of a run. */
export interface RunResult {
  rounds: number;
  messages: number;
  entries: number;
  quiet: boolean;
}

const edgeKey = (a: string, b: string): string => (a < b ? `${a}|${b}` : `${b}|${a}`);

/** Cluster ids `c000`, `c001`, … (sortable). */
export function clusterIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `c${String(i).padStart(3, "0")}`);
}

/**
 * A random connected graph: a random spanning tree (each node joins a random earlier one),
 * plus random extra edges until the average degree reaches `avgDegree`.
 */
export function randomConnectedGraph(ids: string[], random: SeededRandom, avgDegree = 3): [string, string][] {
  const order = random.shuffle(ids);
  const edges = new Set<string>();
  const out: [string, string][] = [];
  const add = (a: string, b: string): void => {
    if (a === b || edges.has(edgeKey(a, b))) return;
    edges.add(edgeKey(a, b));
    out.push([a, b]);
  };
  for (let i = 1; i < order.length; i++) add(order[i] as string, order[random.int(i)] as string);
  const target = Math.floor((avgDegree * ids.length) / 2);
  for (let tries = 0; out.length < target && tries < target * 20; tries++) add(random.pick(ids), random.pick(ids));
  return out;
}

export class FederationSim {
  readonly ids: string[];
  readonly speakers = new Map<string, SimSpeaker>();
  readonly edges = new Set<string>();
  now = 0;
  roundMs: number;
  private inflight: { from: string; to: string; msg: unknown; entries: number }[] = [];
  private readonly cost: (a: string, b: string) => number;
  /** Totals since construction. */
  messages = 0;
  entries = 0;
  rounds = 0;
  dropped = 0;

  constructor(opts: FederationSimOptions) {
    this.ids = opts.ids.slice();
    this.roundMs = opts.roundMs ?? 10;
    this.cost = opts.cost ?? (() => 1);
    for (const id of this.ids) {
      const extra = opts.options?.(id) ?? {};
      const base = { localCluster: id, epoch: 1, damping: false as const, ...extra };
      this.speakers.set(
        id,
        opts.mode === "link-state"
          ? new LinkStateSpeaker(new ClusterLinkState({ minOriginationIntervalMs: 0, ...base }))
          : new PathVectorSpeaker(new RouteTable(base)),
      );
    }
    for (const [a, b] of opts.edges) this.link(a, b);
  }

  speaker(id: string): SimSpeaker {
    const s = this.speakers.get(id);
    if (s === undefined) throw new Error(`no cluster ${id}`);
    return s;
  }

  table(id: string): RouteTable {
    return (this.speaker(id) as PathVectorSpeaker).table;
  }

  hasLink(a: string, b: string): boolean {
    return this.edges.has(edgeKey(a, b));
  }

  /** Brings a link up on both ends. */
  link(a: string, b: string): void {
    this.edges.add(edgeKey(a, b));
    const c = this.cost(a, b);
    this.speaker(a).linkUp(b, this.now, { cost: c });
    this.speaker(b).linkUp(a, this.now, { cost: c });
  }

  /** Takes a link down on both ends; messages in flight on it are lost. */
  unlink(a: string, b: string): void {
    this.edges.delete(edgeKey(a, b));
    this.speaker(a).linkDown(b, this.now);
    this.speaker(b).linkDown(a, this.now);
  }

  /** One round; returns the messages sent in it. */
  step(): number {
    this.rounds++;
    this.now += this.roundMs;
    const batch = this.inflight;
    this.inflight = [];
    for (const m of batch) {
      if (!this.hasLink(m.from, m.to)) {
        this.dropped++;
        continue;
      }
      this.speaker(m.to).receive(m.from, m.msg, this.now);
    }
    let sent = 0;
    for (const id of this.ids) {
      const s = this.speaker(id);
      s.tick(this.now);
      for (const o of s.out(this.now)) {
        this.inflight.push({ from: id, ...o });
        sent++;
        this.messages++;
        this.entries += o.entries;
      }
    }
    return sent;
  }

  /** Rounds until nothing is in flight (or `maxRounds`); totals of this run only. */
  runUntilQuiet(maxRounds = 10_000): RunResult {
    const m0 = this.messages;
    const e0 = this.entries;
    let rounds = 0;
    do {
      this.step();
      rounds++;
    } while (this.inflight.length > 0 && rounds < maxRounds);
    return { rounds, messages: this.messages - m0, entries: this.entries - e0, quiet: this.inflight.length === 0 };
  }

  /** Advances time by `ms` in rounds of `stepMs` (default `roundMs`), delivering as it goes. */
  advance(ms: number, stepMs = this.roundMs): RunResult {
    const m0 = this.messages;
    const e0 = this.entries;
    const end = this.now + ms;
    const saved = this.roundMs;
    this.roundMs = stepMs;
    let rounds = 0;
    while (this.now < end) {
      this.step();
      rounds++;
    }
    this.roundMs = saved;
    return { rounds, messages: this.messages - m0, entries: this.entries - e0, quiet: this.inflight.length === 0 };
  }

  /** Shortest distances (sum of link costs) from `src` over the links up now. */
  distances(src: string): Map<string, number> {
    const adj = new Map<string, string[]>(this.ids.map((id) => [id, []]));
    for (const k of this.edges) {
      const [a, b] = k.split("|") as [string, string];
      adj.get(a)?.push(b);
      adj.get(b)?.push(a);
    }
    const dist = new Map<string, number>([[src, 0]]);
    const done = new Set<string>();
    for (;;) {
      let u: string | undefined;
      for (const [id, d] of dist) if (!done.has(id) && (u === undefined || d < (dist.get(u) as number))) u = id;
      if (u === undefined) break;
      done.add(u);
      for (const v of adj.get(u) ?? []) {
        const nd = (dist.get(u) as number) + this.cost(u, v);
        if (nd < (dist.get(v) ?? Infinity)) dist.set(v, nd);
      }
    }
    return dist;
  }

  /**
   * Checks every cluster's routes against the links up now: a route to every reachable
   * cluster and to no other, loop-free, over live links only, as short as the shortest path.
   * Returns the violations (empty when all is well).
   */
  check(): string[] {
    const bad: string[] = [];
    for (const s of this.ids) {
      const dist = this.distances(s);
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
