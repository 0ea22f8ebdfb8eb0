/**
 * A transit cluster with one gateway per neighbour, across real node processes
 * (docs/federation.md, "Transit clusters"): A–B–C where b1 links to A and b2 to C (b1 and b2
 * are one cluster). A learns C through B's two gateways and C learns A; an RPC from A for a
 * function only in C runs a1 → b1 → b2 → c1 → c2; B's export rule still applies to what it
 * re-advertises; when b2's link to C goes, A's route to C is withdrawn.
 */
import { MpregClient } from "@mpreg/client";
import { waitFor, type NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestNodes, routeTo } from "./node-harness.js";

const t = new TestNodes();
const dir = t.tempDir("mpreg-federation-transit-");
const start = (name: string, cluster: string, funcs: string, extra: string[] = []) => t.startMember(name, cluster, funcs, extra);
const connect = (n: NodeProcess) => t.connect(n);
const configFile = (name: string, federation: unknown) => t.writeFile(dir, `${name}.json`, { federation });

afterAll(() => t.close());

describe("a transit cluster B whose b1 links to A and whose b2 links to C", () => {
  let a1: MpregClient;
  let c2: MpregClient;
  let c1Node: NodeProcess;

  beforeAll(async () => {
    // Both gateways of B carry B's policy: nothing under admin. goes to A.
    const bConfig = configFile("b", { export: [{ neighbour: "A", functions: { deny: ["admin."] } }] });
    const b1n = await start("b1", "B", "", ["--federation-mode", "explicit", "--federation-allow", "A", "--config", bConfig]);
    const b2n = await start("b2", "B", "", ["--federation-mode", "explicit", "--federation-allow", "C", "--peers", b1n.url, "--config", bConfig]);
    const [a1n, c1n] = await Promise.all([
      start("a1", "A", "where", ["--federation-mode", "explicit", "--federation-links", `B=${b1n.url}`]),
      start("c1", "C", "", ["--federation-mode", "explicit", "--federation-links", `B=${b2n.url}`]),
    ]);
    c1Node = c1n;
    // c2 serves C's functions and has no federation link: it reaches other clusters through c1.
    const c2n = await start("c2", "C", "c_only,admin.reset", ["--federation-mode", "explicit", "--peers", c1n.url]);
    [a1, c2] = [await connect(a1n), await connect(c2n)];
  }, 60_000);

  it("A and C learn routes to each other through B's two gateways, and A's call for C's function is answered", async () => {
    await waitFor(async () => (await routeTo(a1, "C")) === "A>B>C", { timeoutMs: 20_000, description: "A learns [A, B, C]" });
    await waitFor(async () => (await routeTo(c2, "A")) === "C>B>A", { timeoutMs: 20_000, description: "C learns [C, B, A]" });
    let out: unknown;
    await waitFor(
      async () => {
        try {
          out = await a1.call("c_only", [], { timeout_ms: 2000 });
          return true;
        } catch {
          return false;
        }
      },
      { timeoutMs: 20_000, description: "A reaches C's function" },
    );
    expect(out).toBe("C/c2");
    // And back: C calls A's function through the same two gateways.
    await waitFor(
      async () => {
        try {
          return (await c2.call("where", [], { target_cluster: "A", timeout_ms: 2000 })) === "A/a1";
        } catch {
          return false;
        }
      },
      { timeoutMs: 20_000, description: "C reaches A's function" },
    );
  });

  it("B's export rule applies to what its gateway re-advertises", async () => {
    // C's entries do cross (c_only), only admin. is held back by B's export to A.
    const allowed = (await a1.call("catalog_query", [{ entry_type: "functions", name: "c_only" }])) as { items: unknown[] };
    expect(allowed.items).toEqual([expect.objectContaining({ name: "c_only", cluster_id: "C", node_id: "c2" })]);
    const fns = (await a1.call("catalog_query", [{ entry_type: "functions", name: "admin.reset" }])) as { items: unknown[] };
    expect(fns.items).toEqual([]);
    await expect(a1.call("admin.reset", [], { timeout_ms: 2000 })).rejects.toMatchObject({ code: 1001 });
  });

  it("withdraws A's route to C when b2's link to C goes", async () => {
    expect(await routeTo(a1, "C")).toBe("A>B>C");
    await c1Node.kill();
    await waitFor(async () => (await routeTo(a1, "C")) === "", { timeoutMs: 20_000, description: "A's route to C is withdrawn" });
    await expect(a1.call("c_only", [], { timeout_ms: 2000 })).rejects.toMatchObject({ code: 1001 });
  });
});
