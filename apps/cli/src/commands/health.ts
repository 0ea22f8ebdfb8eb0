/**
 * `mpreg health`: a summary of `cluster_map` (this cluster's nodes; other clusters' are left
 * out); exit 0 when every node is alive, else 1.
 */
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import type { ClusterMapNode } from "../topology-view.js";

export const healthCommand: Command = {
  name: "health",
  summary: "is the cluster healthy? exit 0 when every node is alive (and --expect met), else 1",
  usage: "mpreg health [--expect N]",
  flags: { expect: { kind: "int", help: "also fail when fewer than N nodes are alive", value: "N" } },
  async run(ctx) {
    const expect = ctx.args.flags.expect as number | undefined;
    if (ctx.args.positionals.length > 0) throw new UsageError("health takes no arguments");
    const client = await ctx.client();
    const map = (await client.call("cluster_map")) as { cluster_id: string; nodes: ClusterMapNode[] };
    // Other clusters' nodes (federation, status `remote`) are not this cluster's health.
    map.nodes = map.nodes.filter((n) => n.cluster_id === map.cluster_id);
    const alive = map.nodes.filter((n) => n.status === "alive");
    const unwell = map.nodes.filter((n) => n.status !== "alive");
    const problems = unwell.map((n) => `${n.node_id} is ${n.status}`);
    if (expect !== undefined && alive.length < expect) problems.push(`${alive.length} nodes alive, expected at least ${expect}`);
    const healthy = problems.length === 0;
    const summary = {
      healthy,
      cluster_id: map.cluster_id,
      nodes: map.nodes.length,
      alive: alive.length,
      problems,
      statuses: Object.fromEntries(map.nodes.map((n) => [n.node_id, n.status])),
    };
    ctx.print(summary, () =>
      healthy
        ? `ok: cluster ${map.cluster_id}, ${alive.length} node${alive.length === 1 ? "" : "s"} alive`
        : `unhealthy: cluster ${map.cluster_id}, ${alive.length} of ${map.nodes.length} alive\n${problems.map((p) => `  - ${p}`).join("\n")}`,
    );
    return healthy ? 0 : 1;
  },
};
