import { SeededRandom } from "@mpreg/testkit";
import { GossipNode, type GossipConfig, type GossipEvent, type Outgoing } from "../src/index.js";

/** A message in flight, with its sender: return true to drop it. */
export type Drop = (o: Outgoing & { from: string }) => boolean;

/**
 * Delivers every pending message at once (zero latency) until nothing is left. Messages to ids
 * that are not in `nodes` vanish.
 */
export function pump(nodes: Map<string, GossipNode>, now: number, drop: Drop = () => false, events?: Map<string, GossipEvent[]>): void {
  for (let guard = 0; guard < 10_000; guard++) {
    let moved = false;
    for (const [id, node] of nodes) {
      const out = node.drain();
      if (events) events.set(id, [...(events.get(id) ?? []), ...out.events]);
      for (const m of out.messages) {
        moved = true;
        const dst = nodes.get(m.to);
        if (!dst || drop({ ...m, from: id })) continue;
        dst.handleMessage(id, m.msg, now);
      }
    }
    if (!moved) return;
  }
  throw new Error("pump did not quiesce");
}

/** GossipNodes that joined through the first id and know each other (meta `{id}`). */
export function cluster(ids: string[], config: Partial<GossipConfig> = {}, seed = 3): Map<string, GossipNode> {
  const r = new SeededRandom(seed);
  const nodes = new Map(ids.map((id) => [id, new GossipNode({ id, random: r.fork(), now: 0, config, meta: { id } })]));
  for (const id of ids.slice(1)) nodes.get(id)!.join([ids[0]!], 0);
  pump(nodes, 0);
  // Make sure everyone knows everyone (second round through the seed).
  for (const id of ids.slice(1)) nodes.get(id)!.syncWith(ids[0]!, 0);
  pump(nodes, 0);
  return nodes;
}
