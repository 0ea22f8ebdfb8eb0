/** Three nodes sharing a replicated cache namespace: puts, dependency invalidation and TTL everywhere. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Demo } from "../demo-kit.js";

const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];

const demo: Demo = {
  description: "three nodes, one replicated cache namespace: puts, dependency invalidation, TTL",
  async run(kit) {
    const dir = mkdtempSync(join(tmpdir(), "mpreg-demo-cache-"));
    try {
      // The namespace `shared` is replicated; `default` (not configured) stays local to each node.
      const config = join(dir, "node.yaml");
      writeFileSync(config, "cache:\n  namespaces:\n    shared:\n      scope: replicated\n      policy: lru\n");
      kit.say(`config ${config}:\n  cache: { namespaces: { shared: { scope: replicated, policy: lru } } }`);
      const a = await kit.startNode("cache-a", ["--config", config, ...FAST]);
      const [b, c] = await Promise.all([kit.startNode("cache-b", ["--config", config, "--peers", a.url, ...FAST]), kit.startNode("cache-c", ["--config", config, "--peers", a.url, ...FAST])]);
      kit.say(`started cache-a, cache-b and cache-c (${a.url}, ${b.url}, ${c.url})\n`);
      const [ca, cb, cc] = [await kit.connect(a), await kit.connect(b), await kit.connect(c)];
      await kit.waitFor("three nodes", async () => ((await ca.call("cluster_map")) as { nodes: unknown[] }).nodes.length === 3);
      const shared = { namespace: "shared" };

      await ca.cache.put("user.42", { name: "Ada", plan: "pro" }, shared);
      await ca.cache.put("page.profile.42", "<h1>Ada</h1>", { ...shared, dependencies: ["user.42"] });
      await ca.cache.put("local-note", "only on a");
      kit.say('cache-a puts user.42, page.profile.42 (depends on user.42) in "shared", and local-note in "default"');
      const seen = await kit.waitFor("the puts to reach cache-c", async () => {
        const r = await cc.cache.get("page.profile.42", shared);
        return r.hit ? r : undefined;
      });
      // Replication is asynchronous: cache-b counts only the entries it already holds, so wait for both there too.
      await kit.waitFor("the puts to reach cache-b", async () => (await cb.cache.get("user.42", shared)).hit && (await cb.cache.get("page.profile.42", shared)).hit);
      kit.say(`cache-c reads page.profile.42 → ${JSON.stringify(seen.value)} (replicated)`);
      const note = await cc.cache.get("local-note");
      kit.say(`cache-c reads local-note → ${note.hit ? "hit" : "miss"} (the default namespace is local)`);

      const inv = await cb.cache.invalidate({ ...shared, dependency: "user.42" });
      kit.say(`\ncache-b invalidates dependency user.42 → ${inv.invalidated} entries (the user and the page built from it)`);
      for (const [name, client] of [["cache-a", ca], ["cache-c", cc]] as const) {
        await kit.waitFor(`the invalidation to reach ${name}`, async () => !(await client.cache.get("page.profile.42", shared)).hit);
        kit.say(`${name} reads page.profile.42 → miss`);
      }

      await cc.cache.put("session.7", "token-abc", { ...shared, ttl_ms: 2000 });
      await kit.waitFor("session.7 on cache-a", async () => (await ca.cache.get("session.7", shared)).hit);
      kit.say("\ncache-c puts session.7 with ttl 2 s; cache-a has it");
      await kit.waitFor("session.7 to expire on cache-a", async () => !(await ca.cache.get("session.7", shared)).hit, 5_000);
      kit.say("two seconds later it is gone on cache-a too");

      const stats = await ca.cache.stats(shared);
      kit.say(`\nstats of "shared" on cache-a: hits ${stats.hits}, misses ${stats.misses}, entries ${stats.entries}`);
      if (note.hit || inv.invalidated !== 2) throw new Error(`unexpected outcome: local-note ${JSON.stringify(note)}, invalidated ${inv.invalidated}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};

export default demo;
