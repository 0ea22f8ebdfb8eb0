/**
 * Every package README's example runs as it is, from the package's directory (so it imports the
 * built package by its name, through its "exports", as a user would), and prints what its
 * comments say. docs/raft.md carries the same kind of example.
 */
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startNode, type NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readmeExample, runModule } from "./readme-example.js";

const root = fileURLToPath(new URL("../../", import.meta.url));

/** What each example must print (one line or fragment that only a working run prints). */
const EXPECT: Record<string, RegExp> = {
  envelope: /^true 2\nfalse 1002\ntimeout_ms must be positive$/m,
  transport: /^hello$/m,
  catalog: /^applied\nstale\n\[ 'resize@1\.4\.2 on a' \]\ntrue\n1 0$/m,
  router: /^\[ \[ 'user', 'orders' \], \[ 'report' \] \]\ntrue true\n\[ 'alerts', 'dashboard' \]\nc 1\.3\.0 cluster$/m,
  rpc: /^\{ text: 'Hello Ada, it is 14 °C' \}$/m,
  gossip: /^\[ 'a', 'b' \]\n100\n\[ 'a: member-up c', 'a: member-suspect c', 'a: member-dead c' \]$/m,
  fabric: /^pong from b\n\[ 'b' \]$/m,
  gateway: /^hello Ada\n1007\n1005$/m,
  pubsub: /^duplicate: true\n\{ published: 4, delivered: 5 \}$/m,
  queue: /acked: 1\n\}\n\{ to: 'bob@example\.org', subject: 'welcome' \} 2$/m,
  cache: /^\{ hit: true, value: 108 \}\nfalse\n\{ id: 42, loads: 1 \} \{ id: 42, loads: 1 \}\n\{ hits: 1, misses: 1, entries: 1 \}$/m,
  raft: /^count=2 greeting=\{"text":"hello"\}\n[abc]:(leader|follower)@3 [abc]:(leader|follower)@3 [abc]:(leader|follower)@3$/m,
  persistence: /^\[ 'user\/ada=Ada Lovelace', 'user\/alan=Alan Turing' \]\n\[ '1:created', '2:renamed' \]\nAlan Turing$/m,
  client: /^6\n\{ total: 60 \}\ngreetings\.en hello\n1001$/m,
  testkit: /^false\nok illegal$/m,
};

let node: NodeProcess;
beforeAll(async () => {
  node = await startNode({ bin: `${root}apps/server/dist/cli.js`, args: ["start", "--port", "0", "--functions", `${root}apps/server/dist/demo-functions.js`] });
});
afterAll(async () => {
  await node?.stop();
});

describe("package README examples", () => {
  const packages = readdirSync(`${root}packages`, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();

  it("every package has a README with a runnable example and an expectation here", () => {
    for (const p of packages) expect(() => readmeExample(`${root}packages/${p}/README.md`), p).not.toThrow();
    expect(Object.keys(EXPECT).sort()).toEqual(packages);
  });

  it.each(packages)("%s", async (p) => {
    const r = await runModule(readmeExample(`${root}packages/${p}/README.md`), `${root}packages/${p}`, { MPREG_URL: node.url });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(EXPECT[p]!);
  });

  it("docs/raft.md's example runs too", async () => {
    const r = await runModule(readmeExample(`${root}docs/raft.md`), `${root}packages/raft`);
    expect([r.code, r.stderr]).toEqual([0, ""]);
    expect(r.stdout).toMatch(EXPECT["raft"]!);
  });
});
