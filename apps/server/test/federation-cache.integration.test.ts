/**
 * Cache namespaces replicated across clusters (`federate: true`, docs/cache.md "Across
 * clusters"), with real node processes in a line A–B–C (no A–C link; B is the transit and holds
 * no namespace): a write in A is read in C through B, also on a node of C without a federation
 * link; an invalidation in C reaches A; a namespace that is only `replicated` stays in its
 * cluster; one that C's export policy denies (topic `mpreg.cache.secrets`) crosses neither way.
 */
import { MpregClient } from "@mpreg/client";
import { waitFor, type NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FEDERATION_GOSSIP, TestNodes } from "./node-harness.js";

const t = new TestNodes();
const dir = t.tempDir("mpreg-fedcache-");
const start = (name: string, cluster: string, extra: string[]) => t.start(["--name", name, "--cluster-id", cluster, ...FEDERATION_GOSSIP, ...extra]);
const connect = (n: NodeProcess) => t.connect(n);
const configFile = (name: string, body: unknown) => t.writeFile(dir, `${name}.json`, body);

/** Every holder: `prices` and `secrets` federate, `team` replicates inside its cluster only. */
const CACHE = {
  namespaces: {
    prices: { scope: "replicated", federate: true },
    secrets: { scope: "replicated", federate: true },
    team: { scope: "replicated" },
  },
  replication: { anti_entropy_ms: 500 },
};

type Got = { hit: boolean; value?: unknown };
const get = (c: MpregClient, key: string, namespace: string) => c.call("mpreg.cache.get", [key, { namespace }]) as Promise<Got>;
const put = (c: MpregClient, key: string, value: unknown, namespace: string) => c.call("mpreg.cache.put", [key, value, { namespace }]);

/** Polls until `key` reads `value` (or, with `undefined`, is a miss). */
async function reads(c: MpregClient, key: string, namespace: string, value: unknown, description: string): Promise<void> {
  await waitFor(
    async () => {
      const g = await get(c, key, namespace);
      return value === undefined ? !g.hit : g.hit && JSON.stringify(g.value) === JSON.stringify(value);
    },
    { timeoutMs: 20_000, description },
  );
}

afterAll(() => t.close());

describe("cache namespaces across clusters A–B–C", () => {
  let a1: MpregClient;
  let c1: MpregClient;
  let c2: MpregClient;

  beforeAll(async () => {
    const b = await start("b1", "B", ["--federation-mode", "explicit", "--federation-allow", "A,C"]);
    const link = ["--federation-mode", "explicit", "--federation-links", `B=${b.url}`];
    const aConfig = configFile("a", { cache: CACHE });
    // C offers B everything but its `secrets` namespace.
    const cConfig = configFile("c", { cache: CACHE, federation: { export: [{ neighbour: "*", topics: { deny: ["mpreg.cache.secrets"] } }] } });
    const [a1n, c1n] = await Promise.all([start("a1", "A", [...link, "--config", aConfig]), start("c1", "C", [...link, "--config", cConfig])]);
    // c2 has no federation link: C's entries and A's writes reach it through c1.
    const c2n = await start("c2", "C", ["--federation-mode", "explicit", "--peers", c1n.url, "--config", cConfig]);
    [a1, c1, c2] = [await connect(a1n), await connect(c1n), await connect(c2n)];
    // Wait until A sees C's holders of `prices` (the federation has converged).
    await waitFor(
      async () => {
        const s = (await a1.call("federation_status")) as { foreign_entries: number; routes: { destination: string }[] };
        return s.routes.some((r) => r.destination === "C") && s.foreign_entries >= 2;
      },
      { timeoutMs: 20_000, description: "A holds routes and entries of C" },
    );
  }, 60_000);

  it("a put in A is readable in C through B (both C nodes); a put in C reaches A", async () => {
    await put(a1, "eur.usd", 1.08, "prices");
    await reads(c1, "eur.usd", "prices", 1.08, "C's gateway reads A's write");
    await reads(c2, "eur.usd", "prices", 1.08, "C's second node reads A's write");
    await put(c2, "gbp.usd", 1.27, "prices");
    await reads(a1, "gbp.usd", "prices", 1.27, "A reads C's write");
  });

  it("an invalidation in C reaches A", async () => {
    await put(a1, "chf.usd", 1.13, "prices");
    await reads(c2, "chf.usd", "prices", 1.13, "C reads the entry");
    expect(await c2.call("mpreg.cache.invalidate", [{ namespace: "prices", pattern: "chf.#" }])).toEqual({ invalidated: 1 });
    await reads(a1, "chf.usd", "prices", undefined, "the invalidation reaches A");
  });

  it("a namespace that only replicates stays in its cluster; a denied namespace crosses neither way", async () => {
    await put(c1, "t", "c-team", "team");
    await reads(c2, "t", "team", "c-team", "team replicates inside C");
    await put(a1, "s", "a-secret", "secrets");
    await put(c1, "s2", "c-secret", "secrets");
    await reads(c2, "s2", "secrets", "c-secret", "secrets replicates inside C");
    // A later federated write that crosses shows that the earlier ones had time to cross too.
    await put(a1, "marker", 1, "prices");
    await put(c1, "marker2", 2, "prices");
    await reads(c2, "marker", "prices", 1, "the marker from A reaches C");
    await reads(a1, "marker2", "prices", 2, "the marker from C reaches A");
    expect(await get(a1, "t", "team")).toEqual({ hit: false });
    expect(await get(c1, "s", "secrets")).toEqual({ hit: false });
    expect(await get(c2, "s", "secrets")).toEqual({ hit: false });
    expect(await get(a1, "s2", "secrets")).toEqual({ hit: false });
  });
});
