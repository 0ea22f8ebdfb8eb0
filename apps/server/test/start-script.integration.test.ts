/**
 * `pnpm start` (scripts/start.mjs): the node it runs stops on SIGTERM, whether the signal goes to
 * the script itself or to `pnpm` (which does not pass it on: the script notices its parent is gone).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { waitFor } from "@mpreg/testkit";
import { afterEach, describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const started: ChildProcess[] = [];

afterEach(() => {
  for (const c of started.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** Starts `cmd args` in the repository root (build skipped: the test runs after it) and waits for MPREG_URL. */
async function start(cmd: string, args: string[]): Promise<{ child: ChildProcess; url: URL; out: () => string; exited: Promise<number | null> }> {
  const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, MPREG_SKIP_BUILD: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  started.push(child);
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const line = await waitFor(() => /^MPREG_URL=(\S+)$/m.exec(out)?.[1], { timeoutMs: 20_000, description: `MPREG_URL from ${cmd} ${args.join(" ")}` });
  return { child, url: new URL(line), out: () => out, exited };
}

function portOpen(url: URL): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(Number(url.port), url.hostname);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

describe("pnpm start", () => {
  it("SIGTERM to the start script stops the node gracefully; the script exits 0", async () => {
    const s = await start(process.execPath, ["scripts/start.mjs", "--port", "0"]);
    expect(await portOpen(s.url)).toBe(true);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    expect(s.out()).toMatch(/SIGTERM received, shutting down/);
    expect(await portOpen(s.url)).toBe(false);
  });

  it("SIGTERM to pnpm stops the node too", async () => {
    const s = await start("pnpm", ["start", "--port", "0"]);
    s.child.kill("SIGTERM");
    await s.exited;
    await waitFor(async () => !(await portOpen(s.url)), { timeoutMs: 10_000, description: "the node's port to close after pnpm got SIGTERM" });
  });
});
