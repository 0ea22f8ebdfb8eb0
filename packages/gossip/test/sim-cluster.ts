import { SeededRandom, SimClock, SimNetwork, uniformDelay, type LinkConfig } from "@mpreg/testkit";
import { GossipNode, type GossipConfig, type GossipEvent, type GossipMessage } from "../src/index.js";

/** Options of a simulated gossip cluster. */
export interface SimClusterOptions {
  n: number;
  seed: number;
  link?: Partial<LinkConfig>;
  config?: Partial<GossipConfig>;
  /** How often each node is ticked (virtual ms). */
  tickMs?: number;
  sizeOf?: (m: GossipMessage) => number;
  onEvent?: (node: string, e: GossipEvent, now: number) => void;
  /** Applied to every delivered message (e.g. a MessagePack encode/decode round trip). */
  wire?: (m: GossipMessage) => unknown;
}

/**
 * n GossipNodes on a SimNetwork, driven by a SimClock: each node is ticked every `tickMs`
 * (not while paused or crashed) and its output is sent right after every input.
 */
export class SimCluster {
  readonly clock = new SimClock();
  readonly random: SeededRandom;
  readonly net: SimNetwork<GossipMessage>;
  readonly nodes = new Map<string, GossipNode>();
  readonly ids: string[] = [];
  private readonly opts: SimClusterOptions;
  private readonly generation = new Map<string, number>();

  constructor(opts: SimClusterOptions) {
    this.opts = opts;
    this.random = new SeededRandom(opts.seed);
    this.net = new SimNetwork<GossipMessage>({
      clock: this.clock,
      random: this.random.fork(),
      link: { delay: uniformDelay(1, 10), ...opts.link },
      ...(opts.sizeOf ? { sizeOf: opts.sizeOf } : {}),
    });
    for (let i = 0; i < opts.n; i++) {
      const id = `n${i}`;
      this.ids.push(id);
      this.net.addNode(id, this.handler(id));
      this.start(id);
    }
  }

  private handler(id: string) {
    return (from: string, msg: GossipMessage) => {
      const node = this.nodes.get(id);
      if (!node) return;
      node.handleMessage(from, this.opts.wire ? this.opts.wire(msg) : msg, this.clock.now());
      this.flush(id);
    };
  }

  private start(id: string): void {
    const gen = (this.generation.get(id) ?? 0) + 1;
    this.generation.set(id, gen);
    const node = new GossipNode({ id, meta: { url: `sim://${id}` }, config: this.opts.config, random: this.random.fork(), now: this.clock.now() });
    this.nodes.set(id, node);
    const tickMs = this.opts.tickMs ?? 50;
    const loop = (): void => {
      if (this.generation.get(id) !== gen || !this.net.isUp(id)) return;
      if (!this.net.isPaused(id)) {
        node.tick(this.clock.now());
        this.flush(id);
      }
      this.clock.setTimeout(loop, tickMs);
    };
    this.clock.setTimeout(loop, this.random.next() * tickMs);
  }

  /** Sends what a node produced and reports its events. */
  flush(id: string): void {
    const node = this.nodes.get(id);
    if (!node) return;
    const out = node.drain();
    for (const m of out.messages) this.net.send(id, m.to, m.msg);
    if (this.opts.onEvent) for (const e of out.events) this.opts.onEvent(id, e, this.clock.now());
  }

  node(id: string): GossipNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Live node ids (not crashed). */
  upIds(): string[] {
    return this.ids.filter((id) => this.net.isUp(id));
  }

  /** Every node joins through `seed` (n0 by default), at staggered times within `spreadMs`. */
  joinAll(seed = "n0", spreadMs = 1000): void {
    for (const id of this.ids) {
      if (id === seed) continue;
      this.clock.setTimeout(() => {
        this.node(id).join([seed], this.clock.now());
        this.flush(id);
      }, this.random.next() * spreadMs);
    }
  }

  /** Runs until every live node sees every other live node alive (or `maxMs` passes). */
  runUntilMembershipConverged(maxMs: number): number | undefined {
    return this.clock.runUntilTrue(() => this.membershipConverged(), { maxMs, stepMs: 100 });
  }

  membershipConverged(): boolean {
    const up = this.upIds();
    for (const id of up) {
      const node = this.node(id);
      if (node.liveCount !== up.length) return false;
      for (const other of up) if (other !== id && node.member(other)?.status !== "alive") return false;
    }
    return true;
  }

  /** True when every live node holds `key` at `version` or newer. */
  allHave(key: string, version: number): boolean {
    for (const id of this.upIds()) {
      const it = this.node(id).item(key);
      if (!it || it.version < version) return false;
    }
    return true;
  }

  crash(id: string): void {
    this.net.crash(id);
    this.nodes.delete(id);
  }

  /** Restarts a crashed node with fresh state and joins it through `seed`. */
  restart(id: string, seed: string): void {
    this.net.restart(id, this.handler(id));
    this.start(id);
    this.node(id).join([seed], this.clock.now());
    this.flush(id);
  }
}
