/**
 * The cache over the wire (PROTOCOL section 6) across real node processes: a replicated
 * namespace carries puts and invalidations to every node, concurrent writes converge to one
 * value everywhere, and the default namespace's L2 keeps a value across a restart.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { afterEach, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
const nodes: NodeProcess[] = [];
const clients: MpregClient[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await Promise.all(nodes.splice(0).map((n) => n.kill()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "mpreg-cache-"));
  dirs.push(d);
  return d;
}

async function start(args: string[]): Promise<NodeProcess> {
  const n = await startNode({ bin: CLI, args: ["start", "--port", "0", "--cluster-id", "cc", ...FAST, ...args] });
  nodes.push(n);
  return n;
}

async function connect(n: NodeProcess): Promise<MpregClient> {
  const c = await MpregClient.connect(n.url, { reconnect: false });
  clients.push(c);
  return c;
}

const get = (c: MpregClient, key: string) => c.call("mpreg.cache.get", [key, { namespace: "shared" }]) as Promise<{ hit: boolean; value?: unknown }>;

describe("a replicated cache namespace on three nodes", () => {
  it("carries puts and invalidations everywhere, and converges concurrent writes", async () => {
    const config = join(tempDir(), "node.json");
    writeFileSync(config, JSON.stringify({ cache: { namespaces: { shared: { scope: "replicated" } } } }));
    const a = await start(["--name", "A", "--config", config]);
    const [b, c] = await Promise.all([start(["--name", "B", "--config", config, "--peers", a.url]), start(["--name", "C", "--config", config, "--peers", a.url])]);
    const [ca, cb, cc] = [await connect(a), await connect(b), await connect(c)];
    await waitFor(async () => ((await ca.call("cluster_map")) as { nodes: unknown[] }).nodes.length === 3, { timeoutMs: 15_000, description: "three nodes" });
    await ca.call("mpreg.cache.put", ["user.1", { name: "ada" }, { namespace: "shared" }]);
    for (const cl of [cb, cc]) await waitFor(async () => (await get(cl, "user.1")).hit, { timeoutMs: 10_000, description: "the put reaches every node" });
    expect(await get(cc, "user.1")).toEqual({ hit: true, value: { name: "ada" } });
    await cb.call("mpreg.cache.invalidate", [{ namespace: "shared", pattern: "user.#" }]);
    for (const cl of [ca, cc]) await waitFor(async () => !(await get(cl, "user.1")).hit, { timeoutMs: 10_000, description: "the invalidation reaches every node" });
    // Concurrent writes of one key on all three nodes: one value wins everywhere.
    await Promise.all([ca, cb, cc].map((cl, i) => cl.call("mpreg.cache.put", ["k", `v${i}`, { namespace: "shared" }])));
    await waitFor(
      async () => {
        const seen = await Promise.all([ca, cb, cc].map((cl) => get(cl, "k")));
        return seen.every((s) => s.hit) && new Set(seen.map((s) => s.value)).size === 1;
      },
      { timeoutMs: 15_000, description: "one value on every node" },
    );
    await expect(ca.call("mpreg.cache.get", ["k", { namespace: "nope" }])).rejects.toMatchObject({ code: 1002 });
  });

  it("keeps a value of the default namespace across a restart (L2 under --data-dir)", async () => {
    const dir = tempDir();
    const n1 = await start(["--name", "D", "--data-dir", dir]);
    const c1 = await connect(n1);
    await c1.call("mpreg.cache.put", ["answer", 42]);
    await c1.close();
    clients.pop();
    await nodes.pop()!.stop();
    const n2 = await start(["--name", "D", "--data-dir", dir]);
    const c2 = await connect(n2);
    expect(await c2.call("mpreg.cache.get", ["answer"])).toEqual({ hit: true, value: 42 });
  });
});
