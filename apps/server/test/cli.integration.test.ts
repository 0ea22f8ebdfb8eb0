/** The `mpreg` command as a process: output lines, monitoring, shutdown, bad configuration. */
import { spawnSync } from "node:child_process";
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor } from "@mpreg/testkit";
import { describe, expect, it } from "vitest";
import { CLI, TEST_FUNCTIONS, startTestNode } from "./node-harness.js";
import { RawClient } from "./raw-client.js";

describe("mpreg start", () => {
  it("prints MPREG_URL and MPREG_MONITORING_URL; the monitoring API answers", async () => {
    const node = await startNode({
      bin: CLI,
      args: ["start", "--port", "0", "--monitoring-port", "0", "--name", "mon", "--functions", TEST_FUNCTIONS],
      waitForMonitoring: true,
    });
    try {
      expect(node.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      expect(node.monitoringUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await (await fetch(`${node.monitoringUrl}/health`)).json();
      expect(health).toMatchObject({ status: "ok", node_id: "mon" });
      const client = await MpregClient.connect(node.url);
      expect(await client.call("echo", ["x"])).toBe("x");
      const metrics = await (await fetch(`${node.monitoringUrl}/metrics`)).text();
      expect(metrics).toMatch(/mpreg_rpc_requests_total [1-9]/);
      expect(metrics).toMatch(/mpreg_relay_dropped_total\{reason="no_route"\} 0/);
      const topology = await (await fetch(`${node.monitoringUrl}/topology`)).json();
      expect(topology.clusters.flatMap((c: { nodes: { node_id: string }[] }) => c.nodes.map((n) => n.node_id))).toEqual(["mon"]);
      expect((await fetch(`${node.monitoringUrl}/nope`)).status).toBe(404);
      await client.close();
    } finally {
      await node.stop();
    }
  });

  it("takes options from the environment", async () => {
    const node = await startNode({ bin: CLI, args: ["start"], env: { MPREG_PORT: "0", MPREG_NAME: "from-env", MPREG_CLUSTER_ID: "env-c" } });
    try {
      const client = await MpregClient.connect(node.url);
      const map = (await client.call("cluster_map")) as { cluster_id: string; nodes: { node_id: string }[] };
      expect(map.cluster_id).toBe("env-c");
      expect(map.nodes[0]?.node_id).toBe("from-env");
      await client.close();
    } finally {
      await node.stop();
    }
  });

  it("on SIGTERM lets in-flight requests finish, then exits 0", async () => {
    const node = await startTestNode();
    const c = await RawClient.open(node.url, "msgpack");
    c.send({ role: "rpc", u: "slow", cmds: [{ name: "s", fun: "sleep", args: [300, "done"] }] });
    await waitFor(async () => {
      // Frames of one connection are read in order: once a later request is answered, the
      // slow one has started.
      const r = await c.request({ role: "rpc", u: `probe-${Date.now()}`, cmds: [{ name: "e", fun: "echo", args: [1] }] });
      return r.r !== null;
    });
    const exit = node.stop("SIGTERM");
    expect((await c.reply("slow")).r).toEqual({ s: "done" });
    expect(await exit).toEqual({ code: 0, signal: null });
  });

  it("on SIGINT fails requests that outlive the grace period and exits 0", async () => {
    const node = await startTestNode(["--shutdown-grace-ms", "200"]);
    const c = await RawClient.open(node.url, "json");
    c.send({ role: "rpc", u: "hung", cmds: [{ name: "h", fun: "hang" }] });
    await waitFor(async () => (await c.request({ role: "rpc", u: `p${Date.now()}`, cmds: [{ name: "x", fun: "echo", args: [1] }] })).r);
    const exit = node.stop("SIGINT");
    const reply = await c.reply("hung");
    expect(reply.error.code).toBe(1005);
    expect(reply.error.details.reason).toBe("shutdown");
    expect(await exit).toEqual({ code: 0, signal: null });
  });

  it("exits 2 with a clear message on bad configuration, 1 on a bad function module", () => {
    const bad = spawnSync(process.execPath, [CLI, "start", "--port", "banana"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--port: expected an integer/);
    const unknown = spawnSync(process.execPath, [CLI, "frobnicate"], { encoding: "utf8" });
    expect(unknown.status).toBe(2);
    const mod = spawnSync(process.execPath, [CLI, "start", "--port", "0", "--functions", "/no/such/module.js"], { encoding: "utf8" });
    expect(mod.status).toBe(1);
    expect(mod.stderr).toMatch(/cannot load function module/);
  });

  it("refuses a client without a token when tokens are configured", async () => {
    const node = await startTestNode(["--auth-tokens", "s3cret"]);
    try {
      await expect(RawClient.open(node.url, "json")).rejects.toThrow(/401/);
      const ok = await RawClient.open(node.url, "json", { authorization: "Bearer s3cret" });
      expect((await ok.request({ role: "rpc", u: "1", cmds: [{ name: "e", fun: "echo", args: [1] }] })).r).toEqual({ e: 1 });
      ok.close();
      const q = await RawClient.open(`${node.url}/?token=s3cret`, "json");
      q.close();
    } finally {
      await node.stop();
    }
  });
});
