/**
 * Key rotation originated by a node (docs/federation.md, "Rotation"), with real processes: two
 * clusters A–B that require signed route updates, each trusting the other's key by
 * configuration. `mpreg federation rotate-key` (the `federation_rotate_key` built-in) on a1 writes a new seed to its signingKeyFile,
 * announces the new key signed by the old one and switches; B keeps accepting A's routes, also
 * after the overlap has expired the old key and after a1 restarts (signing with the key read
 * from the file, the only one B still trusts for A).
 */
import { MpregClient } from "@mpreg/client";
import { generateRouteKey } from "@mpreg/router";
import { waitFor, type NodeProcess } from "@mpreg/testkit";
import { spawnSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, TestNodes, answers } from "./node-harness.js";

const t = new TestNodes();
const dir = t.tempDir("mpreg-fedkeys-");
const start = (name: string, cluster: string, funcs: string, extra: string[]) => t.startMember(name, cluster, funcs, extra);
const connect = (n: NodeProcess) => t.connect(n);

interface KeyStatus {
  keys: { signing_key_id: string | null; trusted: { cluster_id: string; keys: { key_id: string; source: string; expires_at?: number }[] }[] };
  updates_refused: Record<string, number>;
}

/** Polls until B runs `where` in cluster A. */
const bReachesA = (b: MpregClient, description: string) => answers(b, "where", [], description, { target_cluster: "A", accept: (v) => v === "A/a1" });

const keysOf = async (c: MpregClient, cluster: string) =>
  ((await c.call("federation_status")) as KeyStatus).keys.trusted.find((t) => t.cluster_id === cluster)?.keys ?? [];

afterAll(() => t.close());

describe("federation key rotation originated by a node (A–B, signatures required)", () => {
  const kA = generateRouteKey();
  const kB = generateRouteKey();
  const keyFile = join(dir, "a.key");
  const aConfig = join(dir, "a.json");
  let b: MpregClient;
  let bUrl: string;
  let a1Node: NodeProcess;

  beforeAll(async () => {
    writeFileSync(keyFile, `${kA.seed}\n`, { mode: 0o600 });
    // Relative to the config file.
    writeFileSync(aConfig, JSON.stringify({ federation: { keys: { signingKeyFile: "a.key", trusted: [{ clusterId: "B", publicKey: kB.publicKey }] }, requireSignatures: true } }));
    const bConfig = join(dir, "b.json");
    writeFileSync(bConfig, JSON.stringify({ federation: { keys: { signingKey: kB.seed, trusted: [{ clusterId: "A", publicKey: kA.publicKey }] }, requireSignatures: true } }));
    const bn = await start("b1", "B", "b_only", ["--federation-mode", "explicit", "--federation-allow", "A", "--config", bConfig]);
    bUrl = bn.url;
    a1Node = await start("a1", "A", "where", ["--federation-mode", "explicit", "--federation-links", `B=${bUrl}`, "--config", aConfig]);
    b = await connect(bn);
    await bReachesA(b, "B accepts A's signed routes");
  }, 60_000);

  it("B accepts routes signed with the new key, after the overlap and after a1 restarts", async () => {
    const a1 = await connect(a1Node);
    expect(((await a1.call("federation_status")) as KeyStatus).keys.signing_key_id).toBe(kA.keyId);
    // The command an operator runs: `mpreg federation rotate-key` against the running node.
    const cli = spawnSync(process.execPath, [CLI, "federation", "rotate-key", "--overlap-ms", "1000", "--json", "--url", a1Node.url], { encoding: "utf8", timeout: 20_000 });
    expect(cli.stderr).toBe("");
    expect(cli.status).toBe(0);
    const r = JSON.parse(cli.stdout) as { key_id: string; public_key: string; key_file: string };
    expect(r.key_id).not.toBe(kA.keyId);
    expect(r.key_file).toBe(keyFile);
    // The new seed replaced the old one in the file, readable by the owner only.
    const seed = readFileSync(keyFile, "utf8").trim();
    expect(seed).not.toBe(kA.seed);
    expect(statSync(keyFile).mode & 0o077).toBe(0);
    expect(((await a1.call("federation_status")) as KeyStatus).keys.signing_key_id).toBe(r.key_id);
    // B trusts the new key by the announcement; the old one expires after the overlap.
    await waitFor(async () => (await keysOf(b, "A")).some((k) => k.key_id === r.key_id && k.source === "announcement"), { timeoutMs: 10_000, description: "B trusts A's new key" });
    await waitFor(async () => (await keysOf(b, "A")).map((k) => k.key_id).join() === r.key_id, { timeoutMs: 10_000, description: "A's old key expired at B" });
    await bReachesA(b, "B still reaches A");
    const refusedBefore = ((await b.call("federation_status")) as KeyStatus).updates_refused;
    // a1 restarts: it reads the new key from the file; B trusts nothing else of A's now.
    await a1Node.kill();
    await start("a1", "A", "where", ["--federation-mode", "explicit", "--federation-links", `B=${bUrl}`, "--config", aConfig]);
    await bReachesA(b, "B accepts the restarted a1's routes, signed with the new key");
    const refusedAfter = ((await b.call("federation_status")) as KeyStatus).updates_refused;
    expect(refusedAfter.bad_signature).toBe(refusedBefore.bad_signature);
    expect(refusedAfter.unsigned).toBe(refusedBefore.unsigned);
  });

  it("refuses to rotate without a signingKeyFile, and a bad overlap_ms (1002)", async () => {
    await expect(b.call("federation_rotate_key")).rejects.toMatchObject({ code: 1002 });
    await expect(b.call("federation_rotate_key", [{ overlap_ms: -1 }])).rejects.toMatchObject({ code: 1002 });
  });
});
