/** Two nodes; a queue owned by one, used from the other: competing workers, a retry, a dead letter. */
import type { ReceivedMessage } from "@mpreg/client";
import type { Demo } from "../demo-kit.js";

interface DeadLetter {
  body: unknown;
  receipt: string;
  dead_letter?: { reason: string; receive_count: number; source_queue: string };
}

const FAST = ["--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];

const demo: Demo = {
  description: "a queue on one node used from another: two workers, a retry, a dead letter",
  async run(kit) {
    const owner = await kit.startNode("owner", FAST);
    const front = await kit.startNode("front", ["--peers", owner.url, ...FAST]);
    kit.say(`started owner at ${owner.url} and front at ${front.url} (peering with owner)`);
    const [co, cf] = [await kit.connect(owner), await kit.connect(front)];
    await kit.waitFor("the two nodes to see each other", async () => ((await cf.call("cluster_map")) as { nodes: unknown[] }).nodes.length === 2);

    // The queue lives on `owner`; clients of `front` reach it through the catalog.
    await co.queue("jobs").create({ visibility_timeout_ms: 5000, max_receives: 2, dead_letter_queue: "jobs.dlq" });
    kit.say('owner creates queue "jobs" (visibility 5 s, at most 2 receives, then jobs.dlq)');
    await kit.waitFor("front to learn that owner has jobs", async () => ((await cf.call("catalog_query", [{ entry_type: "queues", name: "jobs" }])) as { items: unknown[] }).items.length === 1);

    const jobs = cf.queue("jobs");
    const names = ["resize a.png", "resize b.png", "poison", "resize c.png", "resize d.png"];
    for (const body of names) await jobs.send(body);
    kit.say(`front sends ${names.length} jobs: ${names.map((n) => JSON.stringify(n)).join(", ")}\n`);

    // Two workers on front pull from the same queue: each message goes to one of them.
    const done: string[] = [];
    let poisonFailures = 0;
    const work = async (worker: string, m: ReceivedMessage) => {
      if (m.body === "poison") {
        poisonFailures++;
        kit.say(`  ${worker}: "poison" failed (receive ${m.receive_count}), nack: it goes back to the queue`);
        await m.nack();
        return;
      }
      done.push(String(m.body));
      kit.say(`  ${worker}: did ${JSON.stringify(m.body)}, ack`);
      await m.ack();
    };
    const worker = async (name: string) => {
      while (done.length < names.length - 1 || poisonFailures < 2) {
        const batch = await jobs.receive({ max: 1, wait_ms: 200 });
        for (const m of batch) await work(name, m);
      }
    };
    await Promise.all([worker("worker-1"), worker("worker-2")]);

    // After its second failed receive, "poison" moved to the dead-letter queue.
    // (`dead_letter` is read from the raw reply: ReceivedMessage does not carry it.)
    const dead = await kit.waitFor("poison in jobs.dlq", async () => {
      const got = (await cf.call("mpreg.queue.receive", ["jobs.dlq", { max: 1 }])) as DeadLetter[];
      return got[0];
    });
    kit.say(`\njobs.dlq holds ${JSON.stringify(dead.body)} (reason ${dead.dead_letter?.reason}, after ${dead.dead_letter?.receive_count} receives)`);
    await cf.queue("jobs.dlq").ack(dead.receipt);
    const stats = await co.queue("jobs").stats();
    kit.say(`stats of jobs on owner: ${JSON.stringify(stats)}`);
    if (done.length !== 4 || dead.body !== "poison" || stats.acked !== 4 || stats.dead_lettered !== 1) {
      throw new Error(`unexpected outcome: done ${JSON.stringify(done)}, stats ${JSON.stringify(stats)}`);
    }
    kit.say("\nfour jobs done exactly once, the poison message set aside for a person to look at");
  },
};

export default demo;
