/**
 * Multi-hop relaying over the peer-link overlay: four `mpreg start` processes limited to one
 * dialed link each form a line A–B–C–D; calls, gossip and the catalog reach across it, and a
 * killed end node leaves cleanly.
 */
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const FUNCS = fileURLToPath(new URL("./fixtures/cluster-functions.mjs", import.meta.url));
// Probes every 200 ms with 100 ms for an ack: fast detection, with room for acks that cross
// three relays on a loaded CI machine.
const FAST = ["--gossip-probe-interval-ms", "200", "--gossip-probe-timeout-ms", "100"];

function start(name: string, funcs: string, extra: string[] = []): Promise<NodeProcess> {
  return startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--name", name, "--cluster-id", "relay", "--functions", FUNCS, "--max-peer-links", "1", ...FAST, ...extra],
    env: { MPREG_TEST_FUNCS: funcs },
  });
}

interface Peer {
  node_id: string;
  status: string;
  next_hop: string | null;
  hops: number | null;
}

async function peers(c: MpregClient): Promise<Peer[]> {
  return ((await c.call("list_peers")) as Peer[]).sort((a, b) => a.node_id.localeCompare(b.node_id));
}

async function clusterNodes(c: MpregClient): Promise<string[]> {
  const map = (await c.call("cluster_map")) as { nodes: { node_id: string }[] };
  return map.nodes.map((n) => n.node_id).sort();
}

/** "id:next_hop/hops" of every peer, the shape of the route table as a node sees it. */
async function routeView(c: MpregClient): Promise<string> {
  return (await peers(c)).map((p) => `${p.node_id}:${p.next_hop}/${p.hops}`).join(" ");
}

describe("a four-node line A–B–C–D with one dialed link per node", () => {
  let a: NodeProcess;
  let b: NodeProcess;
  let c: NodeProcess;
  let d: NodeProcess;
  const clients: MpregClient[] = [];

  beforeAll(async () => {
    // B first (the middle), then A and C seeding B, then D seeding C: each dialer's one link is
    // its seed, and the listeners accept inbound links, so the graph is the line A–B–C–D.
    b = await start("B", "step2");
    [a, c] = await Promise.all([start("A", "step1", ["--peers", b.url]), start("C", "step3", ["--peers", b.url])]);
    d = await start("D", "third_only", ["--peers", c.url]);
    for (const n of [a, b, c, d]) clients.push(await MpregClient.connect(n.url));
    await waitFor(async () => (await clusterNodes(clients[0]!)).join() === "A,B,C,D", { timeoutMs: 30_000, description: "A sees four nodes" });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(clients.map((x) => x.close()));
    await Promise.all([a, b, c, d].map((n) => n?.stop()));
  });

  it("routes over the line: every node reaches the others through its neighbours", async () => {
    const [ca, cb, cc, cd] = clients as [MpregClient, MpregClient, MpregClient, MpregClient];
    const want: [MpregClient, string][] = [
      [ca, "B:B/1 C:B/2 D:B/3"],
      [cb, "A:A/1 C:C/1 D:C/2"],
      [cc, "A:B/2 B:B/1 D:D/1"],
      [cd, "A:C/3 B:C/2 C:C/1"],
    ];
    for (const [client, view] of want) {
      await waitFor(async () => (await routeView(client)) === view, { timeoutMs: 20_000, description: `route view ${view}` });
    }
    for (const client of clients) expect((await clusterNodes(client)).join()).toBe("A,B,C,D");
  });

  it("calls a function registered only on D through A (three hops each way)", async () => {
    const ca = clients[0]!;
    await waitFor(async () => {
      const r = (await ca.call("catalog_query", [{ entry_type: "functions", name: "third_only" }])) as { items: unknown[] };
      return r.items.length === 1;
    }, { timeoutMs: 20_000 });
    expect(await ca.call("third_only")).toBe("D");
    // A chain whose steps live on A, B and C, with the result back on A.
    const reply = await ca.request([
      { name: "x", fun: "step1", args: [5] },
      { name: "y", fun: "step2", args: ["x"] },
      { name: "z", fun: "step3", args: ["y"] },
    ]);
    expect(reply.r).toEqual({ z: 9 });
    // And the other way: D calls A's function.
    expect(await clients[3]!.call("step1", [1])).toBe(2);
  });

  it("declares nobody dead in steady state (gossip probes reach unlinked members by relay)", async () => {
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      for (const client of clients) {
        const bad = (await peers(client)).filter((p) => p.status === "dead" || p.status === "left");
        expect(bad).toEqual([]);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it("drops a SIGKILLed D from A's cluster_map; calls to it then fail with 1001 instead of hanging", async () => {
    const ca = clients[3]!;
    clients.pop();
    await ca.close();
    await d.kill();
    await waitFor(async () => (await clusterNodes(clients[0]!)).join() === "A,B,C", { timeoutMs: 20_000, description: "D leaves A's map" });
    await expect(clients[0]!.call("third_only", [], { timeout_ms: 10_000 })).rejects.toMatchObject({ code: 1001 });
    // The rest of the line still works.
    expect(await clients[0]!.call("step3", [10])).toBe(7);
  });
});
