/**
 * A relayed call whose path breaks fails fast: in a line A–B–C (one dialed link per node), a
 * call from A to a function on C is in flight when B is SIGKILLed. A learns at once that C is
 * unreachable (its only link went down and no other route leads to C) and fails the call with
 * 1005, instead of waiting for the request's 30 s timeout.
 */
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const FUNCS = fileURLToPath(new URL("./fixtures/cluster-functions.mjs", import.meta.url));

function start(name: string, funcs: string, extra: string[] = []): Promise<NodeProcess> {
  return startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--name", name, "--cluster-id", "ff", "--functions", FUNCS, "--max-peer-links", "1", ...extra],
    env: { MPREG_TEST_FUNCS: funcs },
  });
}

describe("a relayed call whose path breaks", () => {
  const nodes: NodeProcess[] = [];
  let client: MpregClient | undefined;

  afterAll(async () => {
    await client?.close();
    await Promise.all(nodes.map((n) => n.kill()));
  });

  it("fails with 1005 within seconds when the middle node of the line is killed", async () => {
    const b = await start("B", "");
    const [a, c] = await Promise.all([start("A", "", ["--peers", b.url]), start("C", "hang", ["--peers", b.url])]);
    nodes.push(a, b, c);
    client = await MpregClient.connect(a.url);
    await waitFor(async () => ((await client!.call("rpc_list", [{ query: "hang" }])) as { items: unknown[] }).items.length === 1, {
      timeoutMs: 20_000,
      description: "A learns that C serves hang",
    });
    await waitFor(
      async () => ((await client!.call("list_peers")) as { node_id: string; next_hop: string | null }[]).some((p) => p.node_id === "C" && p.next_hop === "B"),
      { timeoutMs: 20_000, description: "A routes to C through B" },
    );
    const call = client.call("hang", [], { timeout_ms: 30_000 });
    const outcome = call.then(
      () => ({ ok: true as const }),
      (e: { code?: number; details?: { reason?: string } }) => ({ ok: false as const, code: e.code, reason: e.details?.reason }),
    );
    // Let the call reach C through B before breaking the path.
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    await b.kill();
    const result = await outcome;
    const elapsed = Date.now() - t0;
    expect(result).toMatchObject({ ok: false, code: 1005 });
    expect(elapsed).toBeLessThan(5000);
    console.log(`relayed call failed ${elapsed} ms after the middle node was killed (reason: ${String((result as { reason?: string }).reason)})`);
  });
});
