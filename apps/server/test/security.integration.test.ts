/**
 * Access control on a running node: token scopes keep administrative built-ins from `client`
 * tokens (the Raft group keeps working), and client tokens and a cluster secret compose (peers
 * authenticate by the secret; a token-less connection may only open a peer link).
 */
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const nodes: NodeProcess[] = [];
const clients: MpregClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(nodes.splice(0).map((n) => n.kill()));
});

async function start(args: string[]): Promise<NodeProcess> {
  const n = await startNode({ bin: CLI, args: ["start", "--port", "0", ...args] });
  nodes.push(n);
  return n;
}

describe("token scopes", () => {
  it("answers 1006 to a client token calling raft membership changes, and the KV keeps working", async () => {
    const n = await start(["--name", "n1", "--auth-tokens", "adm:admin,app:client", "--raft-group", "kv", "--raft-members", "n1", "--raft-tick-ms", "20"]);
    const app = await MpregClient.connect(n.url, { token: "app" });
    const adm = await MpregClient.connect(n.url, { token: "adm" });
    clients.push(app, adm);
    await waitFor(async () => ((await app.call("mpreg.raft.status")) as { role?: string; state?: string }) !== undefined, { timeoutMs: 10_000, description: "status" });
    await waitFor(async () => (await app.call("mpreg.kv.put", ["k", 1]).then(() => true, () => false)), { timeoutMs: 10_000, description: "a leader" });
    await expect(app.call("mpreg.raft.add_member", ["ghost"])).rejects.toMatchObject({ code: 1006 });
    await expect(app.call("mpreg.raft.transfer_leader", ["ghost"])).rejects.toMatchObject({ code: 1006 });
    // Inside a multi-command request too: nothing runs.
    await expect(app.request([{ name: "a", fun: "echo", args: [1] }, { name: "b", fun: "mpreg.raft.remove_member", args: ["n1"] }])).rejects.toMatchObject({ code: 1006 });
    await app.call("mpreg.kv.put", ["k", 2], { timeout_ms: 5000 });
    expect(await app.call("mpreg.kv.get", ["k"])).toMatchObject({ found: true, value: 2 });
    const status = (await adm.call("mpreg.raft.status")) as { conf: { voters: string[] } };
    expect(status.conf.voters).toEqual(["n1"]);
  });

  it("refuses an unknown scope at start with a clear message", async () => {
    await expect(start(["--auth-tokens", "x:root"])).rejects.toMatchObject({ details: { stderr: expect.stringMatching(/unknown scope "root"/) } });
  });
});

describe("client tokens and a cluster secret together", () => {
  it("forms a cluster; a token-less connection may only open a peer link", async () => {
    const common = ["--auth-tokens", "t1", "--cluster-secret", "s3", "--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
    const a = await start(["--name", "A", ...common]);
    const b = await start(["--name", "B", "--peers", a.url, ...common]);
    const client = await MpregClient.connect(b.url, { token: "t1" });
    clients.push(client);
    await waitFor(async () => ((await client.call("cluster_map")) as { nodes: unknown[] }).nodes.length === 2, { timeoutMs: 15_000, description: "A and B see each other" });
    // No token and no peer header: 401 at the upgrade.
    await expect(MpregClient.connect(a.url, { reconnect: false })).rejects.toMatchObject({ code: 1006 });
    // No token but the peer header: accepted, yet a client frame closes it with 4401.
    const ws = new WebSocket(a.url, { headers: { "x-mpreg-peer": "1" } });
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    ws.send(JSON.stringify({ role: "rpc", u: "x", cmds: [{ name: "a", fun: "echo", args: [1] }] }));
    expect(await closed).toBe(4401);
  });
});
