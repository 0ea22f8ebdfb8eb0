import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startNode } from "./process-harness.js";
import { waitFor } from "./wait-for.js";

const dir = mkdtempSync(join(tmpdir(), "mpreg-testkit-"));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, body);
  return p;
}

describe("startNode (real child processes)", () => {
  it("waits for MPREG_URL and MPREG_MONITORING_URL, passes args and env, stops on SIGTERM", async () => {
    const bin = script(
      "ok.cjs",
      `console.error("booting " + process.argv.slice(2).join(" "));
       setTimeout(() => { console.log("MPREG_URL=ws://127.0.0.1:4242"); }, 50);
       setTimeout(() => { console.log("MPREG_MONITORING_URL=http://127.0.0.1:4243 " + process.env.FOO); }, 100);
       process.on("SIGTERM", () => { console.error("bye"); process.exit(0); });
       setInterval(() => {}, 1000);`,
    );
    const node = await startNode({ bin, env: { FOO: "bar" }, waitForMonitoring: true });
    expect(node.url).toBe("ws://127.0.0.1:4242");
    expect(node.monitoringUrl).toBe("http://127.0.0.1:4243 bar");
    expect(node.pid).toBeGreaterThan(0);
    await waitFor(() => node.stderr().includes("booting start --port 0"), { timeoutMs: 5000 });
    const exit = await node.stop();
    expect(exit.code).toBe(0);
    expect(node.stderr()).toContain("bye");
  });

  it("works with an inline `node -e` script", async () => {
    const node = await startNode({
      bin: "-e",
      args: ['console.log("MPREG_URL=ws://127.0.0.1:" + (40000 + 1)); setInterval(() => {}, 1000)'],
    });
    expect(node.url).toBe("ws://127.0.0.1:40001");
    expect(node.exited()).toBeUndefined();
    const exit = await node.stop();
    expect(exit.signal).toBe("SIGTERM");
    expect(node.exited()).toEqual(exit);
  });

  it("kill() ends a process that ignores SIGTERM", async () => {
    const bin = script(
      "stubborn.cjs",
      `process.on("SIGTERM", () => {}); console.log("MPREG_URL=ws://x:1"); setInterval(() => {}, 1000);`,
    );
    const node = await startNode({ bin });
    const exit = await node.kill();
    expect(exit.signal).toBe("SIGKILL");
  });

  it("rejects with stderr when the process exits before its URL, or times out", async () => {
    const bad = script("bad.cjs", `console.error("no config"); process.exit(3);`);
    await expect(startNode({ bin: bad })).rejects.toMatchObject({ code: 1003, details: { stderr: "no config\n" } });
    const silent = script("silent.cjs", `setInterval(() => {}, 1000);`);
    await expect(startNode({ bin: silent, readyTimeoutMs: 300 })).rejects.toMatchObject({ code: 1004 });
  });
});

describe("waitFor", () => {
  it("returns the first truthy value and times out with a description", async () => {
    let n = 0;
    expect(await waitFor(() => (++n >= 3 ? n : 0), { intervalMs: 1 })).toBe(3);
    await expect(waitFor(() => false, { timeoutMs: 50, intervalMs: 5, description: "never" })).rejects.toThrow(/never/);
  });
});
