/**
 * Configuration reload with real node processes (docs/federation.md, "Configuration reload"):
 * two clusters A–B; A's import policy denies B's `admin.` functions. Rewriting a1's config file
 * and sending SIGHUP makes the denied prefix reachable without a restart; the `config_reload`
 * built-in does the same and reports what changed but needs a restart; a broken file changes
 * nothing.
 */
import { MpregClient } from "@mpreg/client";
import { waitFor, type NodeProcess } from "@mpreg/testkit";
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestNodes } from "./node-harness.js";

const t = new TestNodes();
const aConfig = t.writeFile(t.tempDir("mpreg-fedreload-"), "a1.json", {});
const start = (name: string, cluster: string, funcs: string, extra: string[]) => t.startMember(name, cluster, funcs, extra);

const DENY_ADMIN = { import: [{ neighbour: "B", functions: { deny: ["admin."] } }] };

function writeConfig(body: unknown): void {
  writeFileSync(aConfig, typeof body === "string" ? body : JSON.stringify(body));
}

async function adminReset(c: MpregClient): Promise<number | undefined> {
  try {
    await c.call("admin.reset", [], { timeout_ms: 2000 });
    return undefined;
  } catch (e) {
    return (e as { code?: number }).code ?? -1;
  }
}

afterAll(() => t.close());

describe("configuration reload (A–B)", () => {
  let a1n: NodeProcess;
  let a1: MpregClient;

  beforeAll(async () => {
    const b = await start("b1", "B", "b_only,admin.reset", ["--federation-mode", "explicit", "--federation-allow", "A"]);
    writeConfig({ defaultTimeoutMs: 30_000, federation: DENY_ADMIN });
    a1n = await start("a1", "A", "", ["--federation-mode", "explicit", "--federation-links", `B=${b.url}`, "--config", aConfig]);
    a1 = await t.connect(a1n);
    await waitFor(
      async () => {
        try {
          return (await a1.call("b_only", [], { timeout_ms: 2000 })) === "B/b1";
        } catch {
          return false;
        }
      },
      { timeoutMs: 20_000, description: "A reaches B" },
    );
  }, 60_000);

  it("SIGHUP after rewriting the file makes a denied prefix reachable, and reports what needs a restart", async () => {
    expect(await adminReset(a1)).toBe(1001);
    writeConfig({ defaultTimeoutMs: 20_000, federation: {} });
    process.kill(a1n.pid, "SIGHUP");
    await waitFor(async () => (await adminReset(a1)) === undefined, { timeoutMs: 20_000, description: "admin.reset answers after SIGHUP" });
    expect(await a1.call("admin.reset")).toBe("reset");
    await waitFor(() => a1n.stderr().includes("not applied (needs a restart): defaultTimeoutMs"), { timeoutMs: 5000, description: "the report on stderr" });
    expect(a1n.stderr()).toContain("applied: federation.import");
    expect(a1n.exited()).toBeUndefined();
  });

  it("config_reload applies the file and returns the report; a broken file changes nothing", async () => {
    writeConfig({ defaultTimeoutMs: 20_000, federation: DENY_ADMIN });
    expect(await a1.call("config_reload")).toEqual({ applied: ["federation.import"], not_applied: ["defaultTimeoutMs"] });
    await waitFor(async () => (await adminReset(a1)) === 1001, { timeoutMs: 20_000, description: "admin. denied again" });
    // Invalid: a policy with a bad prefix list. Nothing changes; the node keeps running.
    writeConfig({ federation: { import: [{ neighbour: "B", functions: { deny: "admin." } }] } });
    await expect(a1.call("config_reload")).rejects.toMatchObject({ code: 1002 });
    process.kill(a1n.pid, "SIGHUP");
    await waitFor(() => a1n.stderr().includes("the running configuration is unchanged"), { timeoutMs: 5000, description: "SIGHUP with a broken file" });
    expect(await adminReset(a1)).toBe(1001);
    expect(await a1.call("b_only")).toBe("B/b1");
  });
});
