/**
 * Federation across real node processes (docs/federation.md): three clusters in a line
 * A–B–C (no A–C link), a diamond A–B–D / A–C–D, and strict nodes. Cross-cluster RPC through a
 * transit cluster, `target_cluster`, policies, pub/sub exactly once and in order, a queue owned
 * in another cluster, re-convergence after a transit dies, and strict mode's 1001.
 */
import { MpregClient, type Subscription } from "@mpreg/client";
import { waitFor, type NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestNodes, answers, routeTo } from "./node-harness.js";

const t = new TestNodes();
const dir = t.tempDir("mpreg-federation-");
const start = (name: string, cluster: string, funcs: string, extra: string[] = []) => t.startMember(name, cluster, funcs, extra);
const connect = (n: NodeProcess) => t.connect(n);
const configFile = (name: string, federation: unknown) => t.writeFile(dir, `${name}.json`, { federation });

function collect(sub: Subscription): unknown[] {
  const got: unknown[] = [];
  void (async () => {
    for await (const m of sub) got.push(m.payload);
  })();
  return got;
}

afterAll(() => t.close());

describe("three clusters in a line A–B–C (no A–C link)", () => {
  let a2: MpregClient;
  let b1: MpregClient;
  let c2: MpregClient;
  let bNode: NodeProcess;
  let a1Node: NodeProcess;

  beforeAll(async () => {
    // B is the transit: it dials nobody and lets A and C link to it.
    bNode = await start("b1", "B", "where,b_only,admin.reset", ["--federation-mode", "explicit", "--federation-allow", "A,C", "--monitoring-port", "0"]);
    const link = ["--federation-mode", "explicit", "--federation-links", `B=${bNode.url}`];
    // A's import policy keeps C's (and anyone's) admin functions out of A.
    const aConfig = configFile("a1", { import: [{ neighbour: "B", functions: { deny: ["admin."] } }] });
    const [a1n, c1n] = await Promise.all([start("a1", "A", "where", [...link, "--config", aConfig]), start("c1", "C", "", link)]);
    a1Node = a1n;
    // a2 and c2 have no federation link: they reach other clusters through a1 and c1.
    const [a2n, c2n] = await Promise.all([
      start("a2", "A", "", ["--federation-mode", "explicit", "--peers", a1n.url]),
      start("c2", "C", "where,c_only,api.echo,admin.reset", ["--federation-mode", "explicit", "--peers", c1n.url]),
    ]);
    [a2, b1, c2] = [await connect(a2n), await connect(bNode), await connect(c2n)];
    await answers(a2, "c_only", [], "A reaches C's function");
  }, 60_000);

  it("answers an RPC from A for a function only in C through B, also inside a multi-command request", async () => {
    expect(await a2.call("c_only")).toBe("C/c2");
    expect(await routeTo(a2, "C")).toBe("A>B>C");
    // Discovery shows what A may call in other clusters, with their cluster ids.
    const listed = (await a2.call("rpc_list", [{ query: "c_only" }])) as { items: { name: string; cluster_id: string; node_id: string }[] };
    expect(listed.items).toEqual([expect.objectContaining({ name: "c_only", cluster_id: "C", node_id: "c2" })]);
    const reply = await a2.request([
      { name: "x", fun: "c_only" },
      { name: "y", fun: "echo", args: [{ ran: "x" }] },
    ]);
    expect(reply.r).toEqual({ y: { ran: "C/c2" } });
  });

  it("shows other clusters' entries and nodes in catalog_query, cluster_map and list_peers, marked with their cluster", async () => {
    type Item = { name?: string; node_id: string; cluster_id: string };
    const fns = (await a2.call("catalog_query", [{ entry_type: "functions", name: "c_only" }])) as { items: Item[] };
    expect(fns.items).toEqual([expect.objectContaining({ name: "c_only", node_id: "c2", cluster_id: "C" })]);
    // What A's import denies is not shown either.
    expect(((await a2.call("catalog_query", [{ entry_type: "functions", name: "admin.reset" }])) as { items: Item[] }).items).toEqual([]);
    const map = (await a2.call("cluster_map")) as { cluster_id: string; nodes: (Item & { status: string; functions: string[] })[] };
    expect(map.cluster_id).toBe("A");
    expect(map.nodes.find((n) => n.node_id === "a1")).toMatchObject({ cluster_id: "A", status: "alive" });
    const c2n = map.nodes.find((n) => n.node_id === "c2");
    expect(c2n).toMatchObject({ cluster_id: "C", status: "remote" });
    expect(c2n!.functions).toContain("c_only");
    expect(c2n!.functions).not.toContain("admin.reset");
    const peers = (await a2.call("list_peers", [{ cluster_id: "C" }])) as (Item & { status: string; next_hop: string | null; cluster_path: string[] })[];
    // c1 is listed too (its built-ins are functions A may call); c2 through a1, A's gateway.
    expect(peers.map((p) => p.node_id).sort()).toEqual(["c1", "c2"]);
    expect(peers.find((p) => p.node_id === "c2")).toMatchObject({ cluster_id: "C", status: "remote", next_hop: "a1", cluster_path: ["A", "B", "C"] });
  });

  it("pins the cluster with target_cluster; an unknown cluster is 1001", async () => {
    expect(await a2.call("where")).toBe("A/a1");
    expect(await a2.call("where", [], { target_cluster: "C" })).toBe("C/c2");
    expect(await a2.call("where", [], { target_cluster: "B" })).toBe("B/b1");
    expect(await c2.call("where", [], { target_cluster: "A" })).toBe("A/a1");
    await expect(a2.call("where", [], { target_cluster: "Z" })).rejects.toMatchObject({ code: 1001 });
  });

  it("keeps a denied prefix unreachable from the denied cluster, and reachable elsewhere", async () => {
    expect(await a2.call("api.echo", ["hi"])).toBe("hi");
    await expect(a2.call("admin.reset", [], { target_cluster: "C" })).rejects.toMatchObject({ code: 1001 });
    // A's own import denies B's admin.reset as well; B itself and C are not affected.
    await expect(a2.call("admin.reset")).rejects.toMatchObject({ code: 1001 });
    expect(await b1.call("admin.reset", [], { target_cluster: "C" })).toBe("reset");
  });

  it("delivers a publish in A to a subscriber in C exactly once and in order", async () => {
    const sub = await c2.subscribe(["alerts.#"]);
    const got = collect(sub);
    // Interest crosses two clusters: publish probes until one arrives.
    await waitFor(
      async () => {
        await a2.publish("alerts.probe", "probe");
        return got.length > 0;
      },
      { timeoutMs: 20_000, intervalMs: 100, description: "C's subscription is known in A" },
    );
    const N = 200;
    for (let i = 0; i < N; i++) await a2.publish(`alerts.n${i % 7}`, i);
    await waitFor(() => got.filter((x) => typeof x === "number").length >= N, { timeoutMs: 15_000, description: `${N} messages in C` });
    await new Promise((r) => setTimeout(r, 200)); // duplicates, if any, would arrive now
    expect(got.filter((x) => typeof x === "number")).toEqual(Array.from({ length: N }, (_, i) => i));
    await sub.unsubscribe();
  });

  it("uses a queue owned in C from A (send, receive, ack)", async () => {
    expect(await c2.call("mpreg.queue.create", ["jobs"])).toMatchObject({ name: "jobs" });
    await answers(a2, "mpreg.queue.send", ["jobs", { n: 1 }], "A can send to C's queue");
    const msgs = (await a2.call("mpreg.queue.receive", ["jobs", { max: 10 }])) as { receipt: string; body: unknown }[];
    expect(msgs.map((m) => m.body)).toEqual([{ n: 1 }]);
    expect(await a2.call("mpreg.queue.ack", ["jobs", msgs[0]!.receipt])).toEqual({ ok: true });
    expect(await c2.call("mpreg.queue.stats", ["jobs"])).toMatchObject({ sent: 1, acked: 1, visible: 0 });
    // A subscription from A to C's queue is relayed by A's node.
    await c2.call("mpreg.queue.send", ["jobs", { n: 2 }]);
    const sub = await a2.queue("jobs").subscribe({ prefetch: 1 });
    const first = await sub[Symbol.asyncIterator]().next();
    expect(first.value?.body).toEqual({ n: 2 });
    await first.value!.ack();
    await sub.unsubscribe();
    await waitFor(async () => ((await c2.call("mpreg.queue.stats", ["jobs"])) as { acked: number }).acked === 2, { timeoutMs: 5000, description: "the relayed ack reaches C" });
    // The queue lives in C only: A did not make one of its own.
    expect(((await a2.call("mpreg.queue.list")) as unknown[]).length).toBe(0);
  });

  it("a node's hop budget (--max-hops) bounds how far its calls go: too small is 1005 hop_budget_exhausted", async () => {
    const a3n = await start("a3", "A", "", ["--federation-mode", "explicit", "--peers", a1Node.url, "--max-hops", "1"]);
    const a3 = await connect(a3n);
    // One node hop (a3 → a1) fits; C is four node hops away (a3 → a1 → b1 → c1 → c2).
    expect(await answers(a3, "where", [], "a3 reaches a1")).toBe("A/a1");
    await waitFor(async () => (await routeTo(a3, "C")) === "A>B>C", { timeoutMs: 20_000, description: "a3 knows the route to C" });
    const err = await a3.call("c_only", [], { timeout_ms: 10_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 1005 });
    expect(JSON.stringify((err as { details?: unknown }).details)).toContain("hop_budget_exhausted");
  });

  it("strict mode: another cluster's node is refused at the handshake and its functions are 1001", async () => {
    const s = await start("s1", "S", "s_only", ["--peers", bNode.url]);
    const cs = await connect(s);
    const refused = async () => {
      const text = await (await fetch(`${bNode.monitoringUrl}/metrics`)).text();
      return Number(/^mpreg_peer_handshakes_refused_total (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    await waitFor(async () => (await refused()) >= 1, { timeoutMs: 10_000, description: "B refuses the strict node's cluster" });
    await expect(cs.call("b_only")).rejects.toMatchObject({ code: 1001 });
    await expect(cs.call("where", [], { target_cluster: "B" })).rejects.toMatchObject({ code: 1001 });
    expect(await cs.call("federation_status")).toMatchObject({ mode: "strict" });
  });
});

describe("a diamond A–B–D, A–C–D", () => {
  it("keeps answering after B is killed (re-converges through C)", async () => {
    const d = await start("d1", "D", "d_only", ["--federation-mode", "explicit", "--federation-allow", "B,C"]);
    const [b, c] = await Promise.all([
      start("db1", "B", "", ["--federation-mode", "explicit", "--federation-links", `D=${d.url}`, "--federation-allow", "A"]),
      start("dc1", "C", "", ["--federation-mode", "explicit", "--federation-links", `D=${d.url}`, "--federation-allow", "A"]),
    ]);
    const a = await start("da1", "A", "", ["--federation-mode", "explicit", "--federation-links", `B=${b.url},C=${c.url}`]);
    const ca = await connect(a);
    expect(await answers(ca, "d_only")).toBe("D/d1");
    // Equal routes: the smaller next-hop cluster id wins.
    await waitFor(async () => (await routeTo(ca, "D")) === "A>B>D", { timeoutMs: 10_000, description: "A routes to D through B" });
    await b.kill();
    await waitFor(async () => (await routeTo(ca, "D")) === "A>C>D", { timeoutMs: 10_000, description: "A routes to D through C" });
    expect(await answers(ca, "d_only", [], "D answers through C")).toBe("D/d1");
    for (let i = 0; i < 20; i++) expect(await ca.call("d_only")).toBe("D/d1");
  }, 60_000);
});
