/**
 * Issue 16's findings against a running node (real processes, real sockets): reply
 * amplification, non-reading sockets, and a damaged Raft log repaired with `--repair-wal`.
 * The package-level halves live next to the code (gossip forged-claims, fabric handshake
 * replay, transport outbound budget, persistence repair).
 */
import { readdirSync, readFileSync, statSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import WebSocket from "ws";
import { encode } from "@msgpack/msgpack";
import { afterEach, describe, expect, it } from "vitest";
import { CLI, TEST_FUNCTIONS } from "./node-harness.js";
import { parsePrometheus, sampleValue } from "./prometheus-text.js";

const nodes: NodeProcess[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function metricsOf(node: NodeProcess) {
  return parsePrometheus(await (await fetch(`${node.monitoringUrl}/metrics`)).text()).samples;
}

describe("reply amplification", () => {
  it("answers [a = 1 MiB, b = kw(a × 1000)] with 1007 fan_out_too_large while another client keeps being served", async () => {
    const node = await startNode({ bin: CLI, args: ["start", "--port", "0", "--functions", TEST_FUNCTIONS, "--monitoring-port", "0"], waitForMonitoring: true });
    nodes.push(node);
    const attacker = await MpregClient.connect(node.url, { reconnect: false });
    const bystander = await MpregClient.connect(node.url, { reconnect: false });
    try {
      // The bystander calls in a loop for the whole attack; its slowest call is recorded.
      let slowest = 0;
      let done = false;
      const loop = (async () => {
        while (!done) {
          const t = performance.now();
          expect(await bystander.call("add", [1, 2])).toBe(3);
          slowest = Math.max(slowest, performance.now() - t);
        }
      })();
      const started = performance.now();
      const err = await attacker
        .request([
          { name: "a", fun: "concat", args: ["x".repeat(1024 * 1024)] },
          { name: "b", fun: "kw", args: Array.from({ length: 1000 }, () => "a") },
        ])
        .then(
          () => undefined,
          (e: unknown) => e as { code: number; details: Record<string, unknown> },
        );
      const took = performance.now() - started;
      done = true;
      await loop;
      expect(err?.code).toBe(1007);
      expect(err?.details.reason).toBe("fan_out_too_large");
      // Before the limit this froze the node for ~12 s; the bound is loose on purpose (shared CI).
      expect(took).toBeLessThan(3000);
      expect(slowest).toBeLessThan(3000);
    } finally {
      await attacker.close();
      await bystander.close();
    }
  });
});

describe("memory under non-reading sockets", () => {
  it("16 sockets that never read keep the node under its outbound budget: the largest are cut off (1008) and counted", async () => {
    const budget = 64 * 1024 * 1024;
    const node = await startNode({
      bin: CLI,
      args: ["start", "--port", "0", "--functions", TEST_FUNCTIONS, "--monitoring-port", "0", "--max-total-buffered-bytes", String(budget)],
      waitForMonitoring: true,
    });
    nodes.push(node);
    const rssBefore = sampleValue(await metricsOf(node), "mpreg_process_resident_memory_bytes") ?? 0;
    const seed = "y".repeat(64 * 1024);
    const sockets: WebSocket[] = [];
    const closed: number[] = [];
    for (let i = 0; i < 16; i++) {
      const ws = new WebSocket(node.url);
      await new Promise<void>((resolve, reject) => {
        ws.once("open", () => resolve());
        ws.once("error", reject);
      });
      ws.on("close", (code) => closed.push(code));
      ws.on("error", () => undefined);
      // Never read: the kernel buffers fill, then the node's outbound buffer grows.
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      sockets.push(ws);
    }
    // Each request is 64 KiB in and 2 MiB out (references multiply it, within the fan-out
    // limit); each socket asks for 20 (40 MiB each, 640 MiB in all, ten times the budget).
    const request = (u: string) =>
      encode({
        role: "rpc",
        u,
        cmds: [
          { name: "a", fun: "concat", args: [seed] },
          { name: "b", fun: "concat", args: Array.from({ length: 8 }, () => "a") },
          { name: "c", fun: "concat", args: Array.from({ length: 4 }, () => "b") },
        ],
      });
    for (let round = 0; round < 20; round++) {
      for (const [i, ws] of sockets.entries()) {
        if (ws.readyState === WebSocket.OPEN) ws.send(request(`r${i}-${round}`));
      }
    }
    await waitFor(async () => (sampleValue(await metricsOf(node), "mpreg_outbound_cut_offs") ?? 0) > 0, { timeoutMs: 30_000, description: "a slow reader cut off" });
    const text = await metricsOf(node);
    const rss = sampleValue(text, "mpreg_process_resident_memory_bytes") ?? Infinity;
    expect(sampleValue(text, "mpreg_outbound_used_bytes") ?? Infinity).toBeLessThanOrEqual(budget);
    // The unbounded node held 1.1 GB here; bounded, it stays near its baseline plus the budget.
    expect(rss - rssBefore).toBeLessThan(budget + 200 * 1024 * 1024);
    // The node still serves a well-behaved client.
    const client = await MpregClient.connect(node.url, { reconnect: false });
    expect(await client.call("add", [2, 2])).toBe(4);
    await client.close();
    for (const ws of sockets) ws.terminate();
  });
});

describe("--repair-wal", () => {
  it("a flipped byte in the middle of the Raft log stops the node with a message naming --repair-wal; with the flag it starts and keeps the entries before the damage", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mpreg-repair-"));
    const args = ["start", "--port", "0", "--name", "solo", "--functions", TEST_FUNCTIONS, "--data-dir", dir, "--raft-group", "kv", "--raft-members", "solo", "--raft-tick-ms", "10"];
    const first = await startNode({ bin: CLI, args });
    const client = await MpregClient.connect(first.url, { reconnect: false });
    await waitFor(async () => {
      try {
        await client.call("mpreg.kv.put", ["k0", 0]);
        return true;
      } catch {
        return false;
      }
    }, { description: "the group elects itself" });
    for (let i = 1; i < 200; i++) await client.call("mpreg.kv.put", [`k${i}`, i]);
    await client.close();
    await first.stop();

    // The largest file under the group's directory is its log; damage a byte a third of the way in.
    const files: string[] = [];
    const walk = (d: string) => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(join(dir, "raft-kv"));
    const log = files.sort((x, y) => statSync(y).size - statSync(x).size)[0]!;
    const bytes = readFileSync(log);
    const at = Math.floor(bytes.length / 3);
    bytes[at] = bytes[at]! ^ 0xff;
    writeFileSync(log, bytes);

    const refused = await startNode({ bin: CLI, args }).then(
      (n) => n,
      (e: unknown) => e as Error,
    );
    if (!(refused instanceof Error)) {
      nodes.push(refused);
      throw new Error("the node started on a damaged log without --repair-wal");
    }
    expect(`${refused.message} ${JSON.stringify((refused as { details?: unknown }).details ?? {})}`).toMatch(/--repair-wal/);

    const repaired = await startNode({ bin: CLI, args: [...args, "--repair-wal"] });
    nodes.push(repaired);
    const after = await MpregClient.connect(repaired.url, { reconnect: false });
    try {
      await waitFor(async () => {
        try {
          await after.call("mpreg.kv.put", ["after", 1]);
          return true;
        } catch {
          return false;
        }
      }, { description: "the repaired group elects itself" });
      expect(await after.call("mpreg.kv.get", ["k0"])).toMatchObject({ found: true, value: 0 });
    } finally {
      await after.close();
    }
  });
});
