/**
 * The topology as one JSON shape, built from the `cluster_map` and `list_peers` built-ins: the
 * CLI's `topology` command draws it, the node's `/topology` endpoint serves it.
 */

/** A node of `cluster_map` (PROTOCOL section 3). */
export interface ClusterMapNode {
  node_id: string;
  cluster_id: string;
  region?: string;
  urls?: string[];
  functions?: string[];
  load?: number;
  status?: string;
}

/** A node of `list_peers`, with the route that reaches it. */
export interface PeerEntry extends ClusterMapNode {
  last_seen?: number;
  next_hop?: string | null;
  hops?: number | null;
}

/** One node in the view. */
export interface TopologyNode {
  node_id: string;
  region: string;
  status: string;
  urls: string[];
  functions: string[];
  load: number | null;
  /** The node that answered (the viewer). */
  self: boolean;
  /** First hop from the viewer towards it; itself for a direct link; null: no route known. */
  next_hop: string | null;
  hops: number | null;
}

/** `/topology` and `mpreg topology --json`. */
export interface TopologyView {
  generated_at: number;
  /** The node the view is seen from, when it can be told. */
  node_id: string | null;
  clusters: { cluster_id: string; nodes: TopologyNode[] }[];
  /** Routes from the viewer: to each other node, through `next_hop`, in `hops` hops. */
  links: { from: string; to: string; next_hop: string | null; hops: number | null }[];
}

/**
 * Merges the two built-ins' answers. The viewer is the node that `cluster_map` lists and
 * `list_peers` does not (list_peers shows other nodes only); `self` names it when known.
 */
export function topologyView(map: { generated_at?: number; nodes: ClusterMapNode[] }, peers: PeerEntry[], self?: string): TopologyView {
  const peerIds = new Set(peers.map((p) => p.node_id));
  const viewer = self ?? map.nodes.find((n) => !peerIds.has(n.node_id))?.node_id ?? null;
  const byId = new Map<string, { cluster_id: string; node: TopologyNode }>();
  const put = (n: ClusterMapNode, route: PeerEntry | undefined) => {
    const prev = byId.get(n.node_id)?.node;
    byId.set(n.node_id, {
      cluster_id: n.cluster_id,
      node: {
        node_id: n.node_id,
        region: n.region ?? prev?.region ?? "",
        status: route?.status ?? n.status ?? prev?.status ?? "unknown",
        urls: [...(n.urls ?? prev?.urls ?? [])],
        functions: [...(n.functions ?? prev?.functions ?? [])].sort(),
        load: n.load ?? prev?.load ?? null,
        self: n.node_id === viewer,
        next_hop: route?.next_hop ?? null,
        hops: route?.hops ?? null,
      },
    });
  };
  for (const n of map.nodes) put(n, peers.find((p) => p.node_id === n.node_id));
  // Peers the map leaves out (e.g. dead ones) still belong in the picture.
  for (const p of peers) if (!byId.has(p.node_id)) put(p, p);
  const clusters = new Map<string, TopologyNode[]>();
  for (const { cluster_id, node } of byId.values()) clusters.set(cluster_id, [...(clusters.get(cluster_id) ?? []), node]);
  return {
    generated_at: map.generated_at ?? Date.now(),
    node_id: viewer,
    clusters: [...clusters]
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([cluster_id, nodes]) => ({ cluster_id, nodes: nodes.sort((a, b) => (a.node_id < b.node_id ? -1 : 1)) })),
    links:
      viewer === null
        ? []
        : peers
            .map((p) => ({ from: viewer, to: p.node_id, next_hop: p.next_hop ?? null, hops: p.hops ?? null }))
            .sort((a, b) => (a.to < b.to ? -1 : 1)),
  };
}

/** Functions every node serves: shown as a count, so a node's own functions stand out. */
export function isBuiltinFunction(name: string): boolean {
  return name.startsWith("mpreg.") || ["echo", "echos", "list_peers", "cluster_map", "catalog_query", "rpc_list", "federation_status", "federation_rotate_key", "config_reload"].includes(name);
}

/** The view as a tree a person reads: clusters → nodes (status, urls, route) → functions. */
export function renderTopology(view: TopologyView): string {
  const lines: string[] = [];
  for (const c of view.clusters) {
    const alive = c.nodes.filter((n) => n.status === "alive").length;
    lines.push(`cluster ${c.cluster_id}  (${c.nodes.length} node${c.nodes.length === 1 ? "" : "s"}, ${alive} alive)`);
    c.nodes.forEach((n, i) => {
      const last = i === c.nodes.length - 1;
      const route = n.self
        ? "← this node"
        : n.next_hop === null
          ? "no route"
          : n.next_hop === n.node_id
            ? "direct link"
            : `via ${n.next_hop}${n.hops === null ? "" : ` (${n.hops} hops)`}`;
      lines.push(`${last ? "└──" : "├──"} ${n.node_id}  ${n.status}  ${n.urls.join(" ") || "(no url)"}  ${route}`);
      const own = n.functions.filter((f) => !isBuiltinFunction(f));
      const builtins = n.functions.length - own.length;
      const fns = own.length > 0 ? own.join(", ") : "(none of its own)";
      lines.push(`${last ? "    " : "│   "}  functions: ${fns}${builtins > 0 ? `  (+${builtins} built-in)` : ""}`);
    });
  }
  return lines.join("\n");
}
