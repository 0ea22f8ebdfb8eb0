/** `mpreg topology`: clusters → nodes (status, urls, route) → functions. */
import type { Command } from "../command.js";
import { renderTopology, topologyView, type ClusterMapNode, type PeerEntry } from "../topology-view.js";

export const topologyCommand: Command = {
  name: "topology",
  summary: "a tree of clusters, nodes (status, urls, route from this node) and their functions",
  usage: "mpreg topology",
  details: "Built from the cluster_map and list_peers built-ins of the node at --url. --json prints the\nsame shape as the monitoring API's /topology.",
  async run(ctx) {
    const client = await ctx.client();
    const [map, peers] = await Promise.all([client.call("cluster_map"), client.call("list_peers", [{}])]);
    const view = topologyView(map as { generated_at?: number; nodes: ClusterMapNode[] }, peers as PeerEntry[]);
    ctx.print(view, () => renderTopology(view));
    return 0;
  },
};
