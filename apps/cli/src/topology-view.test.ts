import { describe, expect, it } from "vitest";
import { renderTopology, topologyView } from "./topology-view.js";

const map = {
  cluster_id: "east",
  generated_at: 5,
  nodes: [
    { node_id: "b", cluster_id: "east", urls: ["ws://b"], functions: ["echo", "add"], load: 0, status: "alive" },
    { node_id: "a", cluster_id: "east", urls: ["ws://a"], functions: ["echo", "mpreg.kv.get", "upper"], load: 2, status: "alive" },
    { node_id: "x", cluster_id: "west", urls: ["ws://x"], functions: ["far"], load: 0, status: "alive" },
  ],
};
const peers = [
  { node_id: "b", cluster_id: "east", urls: ["ws://b"], functions: ["echo", "add"], status: "alive", next_hop: "b", hops: 1 },
  { node_id: "x", cluster_id: "west", urls: ["ws://x"], functions: ["far"], status: "suspect", next_hop: "b", hops: 2 },
  { node_id: "gone", cluster_id: "east", urls: [], functions: [], status: "dead", next_hop: null, hops: null },
];

describe("topologyView", () => {
  it("groups nodes by cluster, marks the viewer, and keeps each route", () => {
    const v = topologyView(map, peers);
    expect(v.node_id).toBe("a");
    expect(v.generated_at).toBe(5);
    expect(v.clusters.map((c) => [c.cluster_id, c.nodes.map((n) => n.node_id)])).toEqual([
      ["east", ["a", "b", "gone"]],
      ["west", ["x"]],
    ]);
    const a = v.clusters[0]!.nodes[0]!;
    expect(a).toMatchObject({ self: true, next_hop: null, load: 2, functions: ["echo", "mpreg.kv.get", "upper"] });
    expect(v.clusters[1]!.nodes[0]).toMatchObject({ status: "suspect", next_hop: "b", hops: 2 });
    expect(v.links).toEqual([
      { from: "a", to: "b", next_hop: "b", hops: 1 },
      { from: "a", to: "gone", next_hop: null, hops: null },
      { from: "a", to: "x", next_hop: "b", hops: 2 },
    ]);
  });

  it("draws a tree: cluster, nodes with status, urls and route, their own functions", () => {
    const text = renderTopology(topologyView(map, peers));
    expect(text).toBe(
      [
        "cluster east  (3 nodes, 2 alive)",
        "├── a  alive  ws://a  ← this node",
        "│     functions: upper  (+2 built-in)",
        "├── b  alive  ws://b  direct link",
        "│     functions: add  (+1 built-in)",
        "└── gone  dead  (no url)  no route",
        "      functions: (none of its own)",
        "cluster west  (1 node, 0 alive)",
        "└── x  suspect  ws://x  via b (2 hops)",
        "      functions: far",
      ].join("\n"),
    );
  });

  it("a lone node is its own viewer with no links", () => {
    const v = topologyView({ nodes: [map.nodes[1]!] }, []);
    expect(v.node_id).toBe("a");
    expect(v.links).toEqual([]);
  });
});
