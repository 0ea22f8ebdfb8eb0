/**
 * Three clusters in a line, A – B – C (no A–C link): a call from A to a function only C has is
 * answered through B, `target_cluster` pins the cluster, and a publish in A reaches C.
 */
import type { Demo } from "../demo-kit.js";

const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
const fed = (cluster: string, extra: string[] = []) => ["--cluster-id", cluster, "--federation-mode", "explicit", ...FAST, ...extra];

const demo: Demo = {
  description: "three clusters in a line A–B–C: RPC and pub/sub from A reach C through B",
  async run(kit) {
    const b = await kit.startNode("b1", fed("B", ["--federation-allow", "A,C"]));
    const [a, c] = await Promise.all([
      kit.startNode("a1", fed("A", ["--federation-links", `B=${b.url}`])),
      kit.startNode("c1", fed("C", ["--federation-links", `B=${b.url}`, "--functions", kit.demoFunctions])),
    ]);
    kit.say(`cluster B (b1) in the middle; cluster A (a1) and cluster C (c1, serves add/multiply/upper) link only to B`);
    const [ca, cc] = [await kit.connect(a), await kit.connect(c)];

    await kit.waitFor("A to learn a route to C", async () => {
      const s = (await ca.call("federation_status")) as { routes?: { destination: string; path: string[] }[] };
      const route = s.routes?.find((r) => r.destination === "C");
      if (route) kit.say(`A's route to C: ${route.path.join(" → ")}`);
      return route;
    }, 30_000);
    const sum = await kit.waitFor("add to answer from A", async () => (await ca.call("add", [2, 3]).catch(() => undefined)) as number | undefined, 30_000);
    kit.say(`A calls add(2, 3) — only cluster C has it — and gets ${sum} through B`);
    const upper = await ca.request([{ name: "u", fun: "upper", args: ["federated"], target_cluster: "C" }]);
    kit.say(`upper("federated") pinned to cluster C: ${JSON.stringify(upper.r)}`);
    if (sum !== 5) throw new Error(`add(2, 3) answered ${sum}`);

    const sub = await cc.subscribe("news.#");
    const got: string[] = [];
    void (async () => {
      for await (const m of sub) {
        got.push(String(m.payload));
        kit.say(`  → a subscriber in C got ${m.topic}: ${JSON.stringify(m.payload)}`);
      }
    })();
    // The subscription reaches A through the catalogs B passes on; probe until one arrives.
    await kit.waitFor("a publish in A to reach C", async () => {
      await ca.publish("news.probe", "probe");
      return got.length > 0;
    }, 30_000);
    for (const text of ["one", "two", "three"]) await ca.publish("news.world", text);
    await kit.waitFor("three messages in C", () => got.filter((g) => g !== "probe").length >= 3);
    const ordered = got.filter((g) => g !== "probe");
    kit.say(`C received, in order: ${ordered.join(", ")}`);
    if (ordered.join(",") !== "one,two,three") throw new Error(`out of order or duplicated: ${ordered.join(",")}`);
  },
};

export default demo;
