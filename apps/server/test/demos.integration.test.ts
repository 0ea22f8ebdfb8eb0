/** Each `pnpm demo NAME` runs to completion (exit 0) and tells its story. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const RUNNER = fileURLToPath(new URL("../../cli/dist/demo.js", import.meta.url));

/** Runs a demo as `pnpm demo` does (after the build); kills it past the deadline. */
function demo(name: string, timeoutMs = 45_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUNNER, name], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("demos", () => {
  it("lists the demos", async () => {
    const r = await demo("--list");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ {2}rpc-chain /m);
    expect(r.stdout).toMatch(/^ {2}raft-kv /m);
    for (const name of ["pubsub", "queue", "cache", "federation"]) expect(r.stdout).toMatch(new RegExp(`^ {2}${name} `, "m"));
  });

  it("rpc-chain: a four-step dependent request across two nodes", async () => {
    const r = await demo("rpc-chain");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/line {5}→ \["ada","scored",100\]/);
    expect(r.stdout).toMatch(/4 commands in 4 levels, 3 run remotely on node-a/);
    expect(r.stdout).toMatch(/demo rpc-chain completed/);
  });

  it("raft-kv: writes survive the leader's SIGKILL", async () => {
    const r = await demo("raft-kv");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/killing the leader kv-\d with SIGKILL\nnew leader: kv-\d/);
    expect(r.stdout).toMatch(/get colour from kv-\d → "blue"/);
    expect(r.stdout).toMatch(/get after from kv-\d → "the failover"/);
  });

  it("pubsub: wildcard subscriptions on two nodes get exactly their messages", async () => {
    const r = await demo("pubsub");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/→ east {2}\(orders\.\*\.created\) got orders\.eu\.created/);
    expect(r.stdout).toMatch(/→ west {2}\(orders\.#\) got orders\.eu\.created\.express/);
    expect(r.stdout).not.toMatch(/got metrics\.cpu/);
    expect(r.stdout).toMatch(/demo pubsub completed/);
  });

  it("queue: two workers, a retried message dead-lettered after two receives", async () => {
    const r = await demo("queue");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/jobs\.dlq holds "poison" \(reason max_receives, after 2 receives\)/);
    expect(r.stdout).toMatch(/"dead_lettered":1,"sent":5,"acked":4/);
  });

  it("cache: replicated puts, dependency invalidation and TTL on three nodes", async () => {
    const r = await demo("cache");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/cache-c reads page\.profile\.42 → "<h1>Ada<\/h1>" \(replicated\)/);
    expect(r.stdout).toMatch(/invalidates dependency user\.42 → 2 entries/);
    expect(r.stdout).toMatch(/cache-c reads page\.profile\.42 → miss/);
    expect(r.stdout).toMatch(/gone on cache-a too/);
  });

  it("federation: three clusters in a line, RPC and pub/sub from A reach C through B", async () => {
    const r = await demo("federation");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/A's route to C: A → B → C/);
    expect(r.stdout).toMatch(/gets 5 through B/);
    expect(r.stdout).toMatch(/C received, in order: one, two, three/);
  });

  it("an unknown demo names the known ones and exits 2", async () => {
    const r = await demo("nope");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no demo "nope"; there are: cache, federation, pubsub, queue, raft-kv, rpc-chain/);
  });
});
