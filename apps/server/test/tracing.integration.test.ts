/**
 * Tracing across hops: in a line A–B–C (one link per node), a call from A to a function only on
 * C, sent with a W3C `traceparent`, leaves the same trace id in the debug logs of all three
 * nodes (ingress, relay, callee). A request without one gets a fresh id, also seen on every hop.
 */
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";
import { RawClient } from "./raw-client.js";

const FUNCS = fileURLToPath(new URL("./fixtures/cluster-functions.mjs", import.meta.url));

function start(name: string, funcs: string, extra: string[] = []): Promise<NodeProcess> {
  return startNode({
    bin: CLI,
    args: ["start", "--port", "0", "--name", name, "--cluster-id", "tr", "--functions", FUNCS, "--max-peer-links", "1", ...extra],
    env: { MPREG_TEST_FUNCS: funcs, MPREG_DEBUG: "server,rpc,fabric" },
  });
}

describe("one trace id across three nodes", () => {
  const nodes: NodeProcess[] = [];
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.kill()));
  });

  it("a traceparent from the client is kept on the ingress, the relay and the callee", { timeout: 90_000 }, async () => {
    const b = await start("B", "");
    const [a, c] = await Promise.all([start("A", "", ["--peers", b.url]), start("C", "step1", ["--peers", b.url])]);
    nodes.push(a, b, c);
    const client = await MpregClient.connect(a.url);
    await waitFor(async () => ((await client.call("list_peers")) as { node_id: string; next_hop: string | null }[]).some((p) => p.node_id === "C" && p.next_hop === "B"), {
      timeoutMs: 20_000,
      description: "A routes to C through B",
    });
    await waitFor(async () => ((await client.call("rpc_list", [{ query: "step1" }])) as { items: unknown[] }).items.length === 1, {
      timeoutMs: 20_000,
      description: "A learns that C serves step1",
    });
    expect(await client.call("step1", [1])).toBe(2);
    await client.close();

    const raw = await RawClient.open(a.url, "json");
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const reply = (await raw.request({ role: "rpc", u: "t1", cmds: [{ name: "s", fun: "step1", args: [41] }], traceparent: `00-${traceId}-00f067aa0ba902b7-01` })) as { r: unknown };
    expect(reply.r).toEqual({ s: 42 });
    const logs = () => [a, b, c].map((n) => n.stdout() + n.stderr());
    await waitFor(() => logs().every((l) => l.includes(`trace=${traceId}`)), { timeoutMs: 5000, description: "the trace id in all three logs" });
    const [la, lb, lc] = logs();
    expect(la).toMatch(new RegExp(`rpc u=t1 step1 trace=${traceId}`));
    expect(lb).toMatch(new RegExp(`relay mpreg\\.rpc\\.call A -> C trace=${traceId}`));
    expect(lc).toMatch(new RegExp(`run step1 for A trace=${traceId}`));

    // Without a traceparent: a new id, the same on every hop.
    const again = (await raw.request({ role: "rpc", u: "t2", cmds: [{ name: "s", fun: "step1", args: [1] }] })) as { r: unknown };
    expect(again.r).toEqual({ s: 2 });
    await waitFor(() => /rpc u=t2 step1 trace=([0-9a-f]{32})/.test(logs()[0]!), { timeoutMs: 5000, description: "A logs t2" });
    const fresh = /rpc u=t2 step1 trace=([0-9a-f]{32})/.exec(logs()[0]!)![1]!;
    await waitFor(() => logs().every((l) => l.includes(`trace=${fresh}`)), { timeoutMs: 5000, description: "the new id in all three logs" });
    raw.close();
  });
});
