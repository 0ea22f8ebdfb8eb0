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

  it("an unknown demo names the known ones and exits 2", async () => {
    const r = await demo("nope");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no demo "nope"; there are: raft-kv, rpc-chain/);
  });
});
