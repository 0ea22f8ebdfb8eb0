/**
 * Seeded simulation of relaying over a bounded peer-link graph: GossipNodes that may only talk
 * to their few direct neighbours, plus the node's LinkOverlay (link announcements → next-hop
 * routes) and the same relay rule as the cluster (wrap in a UnifiedMessage, `forwardStep` at
 * every hop, deliver at `target_node`). Virtual time on SimClock/SimNetwork.
 */
import { createUnifiedMessage, forwardStep, type UnifiedMessage } from "@mpreg/envelope";
import { GossipNode, redirectable, type GossipMessage } from "@mpreg/gossip";
import { LINKS_KEY_PREFIX, LinkOverlay } from "@mpreg/router";
import { SeededRandom, SimClock, SimNetwork, uniformDelay } from "@mpreg/testkit";
import { describe, expect, it } from "vitest";

type Wire = { kind: "gossip"; msg: GossipMessage } | { kind: "fabric"; msg: UnifiedMessage };

const TICK_MS = 50;

class SimRelayCluster {
  readonly clock = new SimClock();
  readonly random: SeededRandom;
  readonly net: SimNetwork<Wire>;
  readonly ids: string[] = [];
  readonly links = new Map<string, Set<string>>();
  readonly gossip = new Map<string, GossipNode>();
  readonly overlays = new Map<string, LinkOverlay>();
  readonly deaths: { at: string; who: string; t: number }[] = [];
  stats = { relayed: 0, droppedLoop: 0, droppedHops: 0, droppedNoRoute: 0 };
  private seq = 0;

  constructor(n: number, degree: number, seed: number, loss: number) {
    this.random = new SeededRandom(seed);
    this.net = new SimNetwork<Wire>({ clock: this.clock, random: this.random.fork(), link: { delay: uniformDelay(1, 10), lossProbability: loss } });
    for (let i = 0; i < n; i++) this.ids.push(`n${i}`);
    for (const id of this.ids) this.links.set(id, new Set());
    // A ring keeps the graph connected (also after one crash); random chords up to `degree`.
    const link = (a: string, b: string) => {
      this.links.get(a)!.add(b);
      this.links.get(b)!.add(a);
    };
    for (let i = 0; i < n; i++) link(this.ids[i]!, this.ids[(i + 1) % n]!);
    for (const a of this.ids) {
      for (let tries = 0; tries < 20 && this.links.get(a)!.size < degree; tries++) {
        const b = this.random.pick(this.ids);
        if (b !== a && this.links.get(b)!.size < degree) link(a, b);
      }
    }
    for (const id of this.ids) this.startNode(id);
  }

  private startNode(id: string): void {
    const node = new GossipNode({ id, meta: {}, config: {}, random: this.random.fork(), now: this.clock.now() });
    this.gossip.set(id, node);
    const overlay = new LinkOverlay({
      selfId: id,
      ownLinks: () => this.links.get(id)!,
      isLive: (m) => {
        const st = node.member(m)?.status;
        return st !== undefined && st !== "dead" && st !== "left";
      },
    });
    this.overlays.set(id, overlay);
    this.net.addNode(id, (from, w) => this.receive(id, from, w));
    const loop = (): void => {
      if (!this.net.isUp(id)) return;
      node.tick(this.clock.now());
      if (overlay.announcementDue) node.publish(overlay.announcement(this.clock.now(), node.item(LINKS_KEY_PREFIX + id)?.version));
      this.flush(id);
      this.clock.setTimeout(loop, TICK_MS);
    };
    this.clock.setTimeout(loop, this.random.next() * TICK_MS);
  }

  joinAll(): void {
    for (const id of this.ids) {
      this.gossip.get(id)!.join([...this.links.get(id)!], this.clock.now());
      this.flush(id);
    }
  }

  /** Like the cluster: straight to a linked member, else wrapped and sent to the next hop. */
  private flush(id: string): void {
    const node = this.gossip.get(id)!;
    const overlay = this.overlays.get(id)!;
    const out = node.drain();
    for (const { to, msg } of out.messages) {
      if (this.links.get(id)!.has(to)) {
        this.net.send(id, to, { kind: "gossip", msg });
        continue;
      }
      if (!overlay.route(to)) {
        // No route yet (announcements still spreading): a push or a sync goes to a neighbour.
        const nb = redirectable(msg) ? overlay.redirect(this.random.next()) : undefined;
        if (nb !== undefined) this.net.send(id, nb, { kind: "gossip", msg });
        continue;
      }
      const um = createUnifiedMessage({
        topic: "mpreg.gossip.relay",
        message_type: "control",
        payload: msg,
        headers: { source_node: id, source_cluster: "sim", target_node: to, trace_id: `t${this.seq}` },
        message_id: `m${this.seq++}`,
        timestamp: this.clock.now(),
      });
      this.sendFabric(id, to, um);
    }
    for (const e of out.events) {
      if (e.type === "item-updated") overlay.onItem(e.key, e.data);
      else if (e.type === "member-up" || e.type === "member-updated") overlay.memberUp(e.id, node.item(LINKS_KEY_PREFIX + e.id));
      else if (e.type === "member-dead" || e.type === "member-left") {
        overlay.memberGone(e.id);
        this.deaths.push({ at: id, who: e.id, t: this.clock.now() });
      }
    }
  }

  private sendFabric(id: string, to: string, msg: UnifiedMessage): void {
    const route = this.overlays.get(id)!.route(to);
    if (!route || msg.headers.routing_path.includes(route.next)) {
      this.stats.droppedNoRoute++;
      return;
    }
    this.net.send(id, route.next, { kind: "fabric", msg });
  }

  private receive(id: string, from: string, w: Wire): void {
    const node = this.gossip.get(id)!;
    if (w.kind === "gossip") node.handleMessage(from, w.msg, this.clock.now());
    else if (w.msg.headers.target_node !== id) {
      const step = forwardStep(w.msg, id, "sim");
      if (step.action === "drop") {
        if (step.reason === "loop") this.stats.droppedLoop++;
        else this.stats.droppedHops++;
      } else {
        this.stats.relayed++;
        this.sendFabric(id, w.msg.headers.target_node!, step.message);
      }
    } else node.handleMessage(w.msg.headers.source_node, w.msg.payload, this.clock.now());
    this.flush(id);
  }

  upIds(): string[] {
    return this.ids.filter((id) => this.net.isUp(id));
  }

  /** Every live node sees every other live node alive and has a route to it. */
  converged(): boolean {
    const up = this.upIds();
    for (const id of up) {
      const node = this.gossip.get(id)!;
      const routes = this.overlays.get(id)!.routes();
      for (const other of up) {
        if (other === id) continue;
        if (node.member(other)?.status !== "alive" || !routes.has(other)) return false;
      }
    }
    return true;
  }

  /** A node crashes: its neighbours see their links to it close. */
  crash(id: string): void {
    this.net.crash(id);
    for (const nb of this.links.get(id)!) {
      this.links.get(nb)!.delete(id);
      this.overlays.get(nb)!.linksChanged();
    }
    this.links.get(id)!.clear();
  }
}

describe("relaying over a bounded peer-link graph (seeded simulation)", () => {
  // MPREG_LONG=1 runs more seeds.
  for (const seed of process.env.MPREG_LONG === "1" ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] : [1, 2, 3, 4]) {
    it(`50 nodes of degree ≤ 4, 1% loss: membership and routes converge, 0 false deaths, a crash is detected by all (seed ${seed})`, () => {
      const c = new SimRelayCluster(50, 4, seed, 0.01);
      const maxDegree = Math.max(...c.ids.map((id) => c.links.get(id)!.size));
      expect(maxDegree).toBeLessThanOrEqual(4);
      c.joinAll();
      const t = c.clock.runUntilTrue(() => c.converged(), { maxMs: 60_000, stepMs: 100 });
      expect(t, "membership and routes converge").toBeDefined();
      const hops = c.ids.flatMap((id) => [...c.overlays.get(id)!.routes().values()].map((r) => r.hops));
      // Most pairs are not linked: without relaying they could not talk at all.
      expect(hops.filter((h) => h > 1).length).toBeGreaterThan(hops.length / 2);
      // Steady state: two simulated minutes at 1% loss, nobody declared dead.
      c.clock.advance(120_000);
      expect(c.deaths).toEqual([]);
      expect(c.converged()).toBe(true);
      console.log(`[relay sim] seed=${seed} n=50 degree≤4: converged at ${t} ms, longest route ${Math.max(...hops)} hops, relayed ${c.stats.relayed}, dropped loop/hops/no-route ${c.stats.droppedLoop}/${c.stats.droppedHops}/${c.stats.droppedNoRoute}`);
      // A crash: every live node declares it dead, nobody else dies, routes go around it.
      const victim = "n7";
      c.crash(victim);
      const bound = c.gossip.get("n0")!.suspicionTimeoutMs(0) + 10 * c.gossip.get("n0")!.config.probeIntervalMs;
      const td = c.clock.runUntilTrue(
        () => c.upIds().every((id) => ["dead", undefined].includes(c.gossip.get(id)!.member(victim)?.status)),
        { maxMs: bound, stepMs: 50 },
      );
      expect(td, "crash detected by all").toBeDefined();
      expect(c.deaths.filter((d) => d.who !== victim)).toEqual([]);
      expect(c.clock.runUntilTrue(() => c.converged(), { maxMs: 30_000, stepMs: 100 })).toBeDefined();
      for (const id of c.upIds()) expect(c.overlays.get(id)!.routes().has(victim)).toBe(false);
    });
  }
});
