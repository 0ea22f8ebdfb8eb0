/** Two nodes; a four-step request whose steps feed each other, sent to the node without the functions. */
import type { Demo } from "../demo-kit.js";

const demo: Demo = {
  description: "two nodes, one four-step dependent request routed across them",
  async run(kit) {
    const a = await kit.startNode("node-a", ["--functions", kit.demoFunctions]);
    kit.say(`started node-a at ${a.url} with the demo functions (add, multiply, upper, profile, sleep)`);
    const b = await kit.startNode("node-b", ["--peers", a.url]);
    kit.say(`started node-b at ${b.url}, no functions of its own, peering with node-a`);
    const client = await kit.connect(b);
    await kit.waitFor("node-b to learn node-a's functions", async () => {
      const { items } = (await client.call("rpc_list", [{ query: "multiply" }])) as { items: unknown[] };
      return items.length > 0;
    });
    kit.say("node-b learned node-a's functions through gossip\n");
    const cmds = [
      { name: "person", fun: "profile", args: ["ada"] },
      { name: "doubled", fun: "multiply", args: ["person.score", 2] },
      { name: "total", fun: "add", args: ["doubled", 16] },
      { name: "line", fun: "echos", args: ["person.user", "scored", "total"] },
    ];
    kit.say("request sent to node-b:");
    for (const c of cmds) kit.say(`  ${c.name.padEnd(8)} = ${c.fun}(${c.args.map((x) => JSON.stringify(x)).join(", ")})`);
    const reply = await client.request(cmds, { return_all: true, include_execution_summary: true });
    kit.say("\nresults (each step started as soon as the ones it names were done):");
    for (const c of cmds) kit.say(`  ${c.name.padEnd(8)} → ${JSON.stringify(reply.r?.[c.name])}`);
    const s = reply.execution_summary!;
    kit.say(`\n${s.commands_executed} commands in ${s.total_levels} levels, ${s.remote_commands} run remotely on node-a, ${s.total_execution_time_ms.toFixed(1)} ms`);
    const line = reply.r?.line as unknown[];
    if (JSON.stringify(line) !== JSON.stringify(["ada", "scored", 100])) throw new Error(`unexpected result ${JSON.stringify(line)}`);
  },
};

export default demo;
