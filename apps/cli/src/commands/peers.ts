/** `mpreg peers`: the other nodes the node knows (`list_peers`). */
import type { Command } from "../command.js";
import { table } from "../output.js";
import type { PeerEntry } from "../topology-view.js";

export const peersCommand: Command = {
  name: "peers",
  summary: "the other nodes this node knows, with status and route (list_peers)",
  usage: "mpreg peers [--cluster C]",
  flags: { cluster: { kind: "string", help: "only this cluster's nodes", value: "C" } },
  async run(ctx) {
    const cluster = ctx.args.flags.cluster as string | undefined;
    const client = await ctx.client();
    const peers = (await client.call("list_peers", [cluster === undefined ? {} : { cluster_id: cluster }])) as PeerEntry[];
    ctx.print(peers, () => {
      if (peers.length === 0) return "(no peers: this node is alone)";
      const rows = peers.map((p) => [
        p.node_id,
        p.cluster_id,
        p.status,
        p.next_hop === p.node_id ? "direct" : p.next_hop,
        p.hops,
        (p.urls ?? []).join(" "),
      ]);
      return table(["NODE", "CLUSTER", "STATUS", "NEXT HOP", "HOPS", "URLS"], rows);
    });
    return 0;
  },
};
