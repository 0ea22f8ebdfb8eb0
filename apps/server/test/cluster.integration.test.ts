/**
 * Several `mpreg start` processes forming one cluster: routing to the node that has the
 * function and the resources, chains across nodes, load sharing, failure detection, rejoin,
 * and peer authentication.
 */
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";
import { RawClient } from "./raw-client.js";

const FUNCS = fileURLToPath(new URL("./fixtures/cluster-functions.mjs", import.meta.url));
/** Fast failure detection for tests: probe every 100 ms (docs/cluster.md gives the bound). */
const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
/** Detection bound for FAST settings, with room for a loaded CI machine. */
const DETECTION_MS = 15_000;

function start(name: string, funcs: string, extra: string[] = []): Promise<NodeProcess> {
  return startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--name", name, "--cluster-id", "test", "--functions", FUNCS, ...FAST, ...extra],
    env: { MPREG_TEST_FUNCS: funcs },
  });
}

async function clusterNodes(client: MpregClient): Promise<string[]> {
  const map = (await client.call("cluster_map")) as { nodes: { node_id: string }[] };
  return map.nodes.map((n) => n.node_id).sort();
}

/** Waits until the client's node has one endpoint of `name` in its catalog. */
async function waitForFunction(client: MpregClient, name: string): Promise<void> {
  await waitFor(async () => {
    const r = (await client.call("catalog_query", [{ entry_type: "functions", name }])) as { items: unknown[] };
    return r.items.length === 1;
  }, { timeoutMs: 20_000, description: `${name} in the catalog` });
}

describe("a three-node cluster", () => {
  let n1: NodeProcess;
  let n2: NodeProcess;
  let n3: NodeProcess;
  let c1: MpregClient;

  beforeAll(async () => {
    n1 = await start("n1", "step1");
    [n2, n3] = await Promise.all([
      start("n2", "step2,work,render", ["--peers", n1.url, "--resources", "cpu"]),
      start("n3", "step3,work,render,third_only", ["--peers", n1.url, "--resources", "gpu"]),
    ]);
    c1 = await MpregClient.connect(n1.url);
    await waitFor(async () => (await clusterNodes(c1)).join() === "n1,n2,n3", { timeoutMs: 20_000, description: "n1 sees three nodes" });
    await waitForFunction(c1, "third_only");
  });

  afterAll(async () => {
    await c1?.close();
    await Promise.all([n1, n2, n3].map((n) => n?.stop()));
  });

  it("calls a function registered only on the third node through the first", async () => {
    expect(await c1.call("third_only")).toBe("n3");
  });

  it("chooses the provider by resources; an unmatched resource is 1001", async () => {
    expect(await c1.call("render", [], { locs: ["gpu"] })).toBe("n3");
    expect(await c1.call("render", [], { locs: ["cpu"] })).toBe("n2");
    await expect(c1.call("render", [], { locs: ["tpu"] })).rejects.toMatchObject({ code: 1001 });
  });

  it("runs a dependency chain whose steps live on three nodes", async () => {
    const reply = await c1.request(
      [
        { name: "a", fun: "step1", args: [5] },
        { name: "b", fun: "step2", args: ["a"] },
        { name: "c", fun: "step3", args: ["b"] },
      ],
      { include_execution_summary: true },
    );
    expect(reply.r).toEqual({ c: 9 });
    expect(reply.execution_summary?.remote_commands).toBe(2);
  });

  it("shares 200 calls between two equal providers", async () => {
    const results = await Promise.all(Array.from({ length: 200 }, () => c1.call("work")));
    const n2count = results.filter((r) => r === "n2").length;
    const n3count = results.filter((r) => r === "n3").length;
    expect(n2count + n3count).toBe(200);
    expect(n2count).toBeGreaterThanOrEqual(67);
    expect(n3count).toBeGreaterThanOrEqual(67);
  });

  it("answers list_peers and rpc_list for the whole cluster", async () => {
    const peers = (await c1.call("list_peers")) as { node_id: string; functions: string[] }[];
    expect(peers.map((p) => p.node_id).sort()).toEqual(["n2", "n3"]);
    expect(peers.find((p) => p.node_id === "n3")?.functions).toContain("third_only");
    const list = (await c1.call("rpc_list", [{ query: "step" }])) as { items: { name: string; node_id: string }[] };
    expect(list.items.map((i) => `${i.name}@${i.node_id}`).sort()).toEqual(["step1@n1", "step2@n2", "step3@n3"]);
  });

  it("drops a provider killed with SIGKILL from cluster_map, sends calls to the survivor, and lets it rejoin", async () => {
    await n3.kill();
    const killedAt = Date.now();
    await waitFor(async () => !(await clusterNodes(c1)).includes("n3"), { timeoutMs: DETECTION_MS, description: "n3 leaves cluster_map" });
    const detectedMs = Date.now() - killedAt;
    console.log(`SIGKILLed node left cluster_map after ${detectedMs} ms`);
    for (let i = 0; i < 20; i++) expect(await c1.call("work")).toBe("n2");
    await expect(c1.call("third_only")).rejects.toMatchObject({ code: 1001 });

    n3 = await start("n3", "step3,work,render,third_only", ["--peers", n1.url, "--resources", "gpu"]);
    await waitFor(async () => (await clusterNodes(c1)).includes("n3"), { timeoutMs: 20_000, description: "n3 rejoins" });
    await waitFor(async () => (await c1.call("third_only").catch(() => null)) === "n3", { timeoutMs: 20_000 });
  });
});

describe("the peer frame limit", () => {
  let a: NodeProcess;
  let b: NodeProcess;
  let c: MpregClient;
  beforeAll(async () => {
    const limit = ["--max-frame-bytes", String(64 * 1024)];
    a = await start("fl-a", "big", limit);
    b = await start("fl-b", "big_remote,size", [...limit, "--peers", a.url]);
    c = await MpregClient.connect(a.url);
    await waitForFunction(c, "size");
  });
  afterAll(async () => {
    await c?.close();
    await Promise.all([a, b].map((n) => n?.stop()));
  });

  it("refuses a call or a result too large for a peer frame with 1002, and keeps the link", async () => {
    expect(await c.call("size", ["y".repeat(30_000)])).toBe(30_000);
    // A result past the limit is answered as an error instead of closing the link with 1009.
    await expect(c.call("big_remote", [100_000])).rejects.toMatchObject({ code: 1002, details: { reason: "message_too_large" } });
    // A call whose substituted arguments are past the limit is refused before it is sent.
    await expect(
      c.request([
        { name: "a", fun: "big", args: [100_000] },
        { name: "s", fun: "size", args: ["a"] },
      ]),
    ).rejects.toMatchObject({ code: 1002, details: { reason: "message_too_large" } });
    // The link is still up: no reconnect was needed.
    expect(await c.call("size", ["ok"])).toBe(2);
    const peers = (await c.call("list_peers")) as { node_id: string; status: string }[];
    expect(peers.find((p) => p.node_id === "fl-b")?.status).toBe("alive");
  });
});

describe("peer authentication", () => {
  let a: NodeProcess;
  afterAll(async () => {
    await a?.stop();
  });
  beforeAll(async () => {
    a = await start("auth-a", "step1", ["--cluster-secret", "right-secret"]);
  });

  it("closes a peer-hello with a wrong or missing mac with 4401", async () => {
    for (const mac of ["00".repeat(32), undefined]) {
      const raw = await RawClient.open(a.url, "msgpack");
      raw.send({ role: "peer-hello", node_id: "intruder", cluster_id: "test", region: "x", urls: [], protocol_version: 1, nonce: "abc", ...(mac ? { mac } : {}) });
      await waitFor(() => raw.closed !== undefined);
      expect(raw.closed?.code).toBe(4401);
    }
  });

  it("admits a node with the right secret and never one with a wrong secret", async () => {
    const wrong = await start("auth-wrong", "step2", ["--cluster-secret", "wrong-secret", "--peers", a.url]);
    const right = await start("auth-right", "step3", ["--cluster-secret", "right-secret", "--peers", a.url]);
    try {
      const c = await MpregClient.connect(a.url);
      await waitFor(async () => (await clusterNodes(c)).includes("auth-right"), { timeoutMs: 20_000 });
      // The wrong node dialed and was refused (it says so), yet never joined.
      await waitFor(() => wrong.stderr().includes("refused our handshake"), { timeoutMs: 20_000 });
      expect(await clusterNodes(c)).not.toContain("auth-wrong");
      await expect(c.call("step2", [1])).rejects.toMatchObject({ code: 1001 });
      // The node's record and its functions are separate catalog entries: wait for the function.
      await waitForFunction(c, "step3");
      expect(await c.call("step3", [10])).toBe(7);
      await c.close();
    } finally {
      await Promise.all([wrong.stop(), right.stop()]);
    }
  });
});
