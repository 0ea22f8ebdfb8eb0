/** Three nodes; subscriptions with wildcards on two of them; messages published on the third. */
import type { Demo } from "../demo-kit.js";

const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];

const demo: Demo = {
  description: "three nodes, wildcard subscriptions on two, messages published on the third",
  async run(kit) {
    const hub = await kit.startNode("hub", FAST);
    const [east, west] = await Promise.all([kit.startNode("east", ["--peers", hub.url, ...FAST]), kit.startNode("west", ["--peers", hub.url, ...FAST])]);
    kit.say(`started hub at ${hub.url}; east and west peer with it`);
    const [pub, ce, cw] = [await kit.connect(hub), await kit.connect(east), await kit.connect(west)];
    await kit.waitFor("the three nodes to see each other", async () => ((await pub.call("cluster_map")) as { nodes: unknown[] }).nodes.length === 3);

    // `*` matches one segment, `#` zero or more.
    const subs = [
      { who: "east", pattern: "orders.*.created", sub: await ce.subscribe("orders.*.created") },
      { who: "west", pattern: "orders.#", sub: await cw.subscribe("orders.#") },
      { who: "west", pattern: "alerts.#", sub: await cw.subscribe("alerts.#") },
    ];
    for (const s of subs) kit.say(`  ${s.who.padEnd(5)} subscribes to ${s.pattern}`);
    const got = new Map<string, string[]>();
    for (const s of subs) {
      const key = `${s.who} ${s.pattern}`;
      got.set(key, []);
      void (async () => {
        for await (const m of s.sub) {
          got.get(key)!.push(m.topic);
          kit.say(`  → ${s.who.padEnd(5)} (${s.pattern}) got ${m.topic}: ${JSON.stringify(m.payload)}`);
        }
      })();
    }
    // The hub forwards a message only to nodes whose subscriptions match: it learns them from
    // the catalog, where each node advertises its patterns.
    await kit.waitFor("the subscriptions to reach the hub's catalog", async () => {
      const { items } = (await pub.call("catalog_query", [{ entry_type: "topics" }])) as { items: unknown[] };
      const text = JSON.stringify(items);
      return subs.every((s) => text.includes(JSON.stringify(s.pattern)));
    });
    kit.say("\npublishing on hub:");
    const messages: [string, unknown][] = [
      ["orders.eu.created", { id: 1, total: 30 }],
      ["orders.us.shipped", { id: 2 }],
      ["orders.eu.created.express", { id: 3 }],
      ["alerts.disk.full", { node: "db-1" }],
      ["metrics.cpu", 0.7],
    ];
    for (const [topic, payload] of messages) {
      kit.say(`  publish ${topic} ${JSON.stringify(payload)}`);
      await pub.publish(topic, payload);
    }
    const expected: Record<string, string[]> = {
      "east orders.*.created": ["orders.eu.created"],
      "west orders.#": ["orders.eu.created", "orders.us.shipped", "orders.eu.created.express"],
      "west alerts.#": ["alerts.disk.full"],
    };
    const total = Object.values(expected).reduce((n, l) => n + l.length, 0);
    await kit.waitFor(`${total} deliveries`, () => [...got.values()].reduce((n, l) => n + l.length, 0) >= total);
    // Give a stray delivery (there should be none) a moment to show up before checking.
    await new Promise((r) => setTimeout(r, 200));
    for (const [key, topics] of Object.entries(expected)) {
      if (JSON.stringify(got.get(key)) !== JSON.stringify(topics)) throw new Error(`${key} got ${JSON.stringify(got.get(key))}, expected ${JSON.stringify(topics)}`);
    }
    kit.say(`\nevery subscription got exactly its matching messages, in publish order; metrics.cpu matched nothing and went nowhere`);
    for (const s of subs) await s.sub.unsubscribe();
  },
};

export default demo;
