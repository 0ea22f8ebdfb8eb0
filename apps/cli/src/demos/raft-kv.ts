/** Three Raft members: writes, a leader killed with SIGKILL, a new leader, nothing acknowledged lost. */
import type { MpregClient } from "@mpreg/client";
import type { Demo, DemoNode } from "../demo-kit.js";

interface RaftStatus {
  leader: string | null;
  term: number;
}

const demo: Demo = {
  description: "three-member Raft key-value store; the leader is killed and the store goes on",
  async run(kit) {
    const names = ["kv-1", "kv-2", "kv-3"];
    const raft = ["--raft-group", "kv", "--raft-members", names.join(","), "--raft-tick-ms", "20", "--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50"];
    const first = await kit.startNode(names[0]!, raft);
    const rest = await Promise.all(names.slice(1).map((n) => kit.startNode(n, [...raft, "--peers", first.url])));
    const nodes = new Map<string, DemoNode>([first, ...rest].map((n) => [n.name, n]));
    const clients = new Map<string, MpregClient>();
    for (const n of nodes.values()) clients.set(n.name, await kit.connect(n));
    kit.say(`started ${names.join(", ")} (Raft group "kv")`);

    const agreedLeader = (among: string[]) =>
      kit.waitFor(`a leader among ${among.join(", ")}`, async () => {
        const all = (await Promise.all(among.map((n) => clients.get(n)!.call("mpreg.raft.status")))) as RaftStatus[];
        const leader = all[0]?.leader;
        return leader && among.includes(leader) && all.every((s) => s.leader === leader) ? { leader, term: all[0]!.term } : null;
      });

    const { leader, term } = await agreedLeader(names);
    kit.say(`elected: ${leader} leads term ${term}`);
    const follower = names.find((n) => n !== leader)!;
    const viaFollower = clients.get(follower)!;
    for (const [k, v] of [["colour", "blue"], ["answer", 42]] as const) {
      const r = (await viaFollower.call("mpreg.kv.put", [k, v])) as { version: number };
      kit.say(`put ${k}=${JSON.stringify(v)} through follower ${follower} (forwarded to the leader) → version ${r.version}`);
    }

    kit.say(`\nkilling the leader ${leader} with SIGKILL`);
    await nodes.get(leader)!.kill();
    clients.delete(leader);
    const survivors = names.filter((n) => n !== leader);
    const after = await agreedLeader(survivors);
    kit.say(`new leader: ${after.leader} (term ${after.term})`);

    const c = clients.get(survivors[0]!)!;
    await c.call("mpreg.kv.put", ["after", "the failover"]);
    kit.say(`put after="the failover" through ${survivors[0]}`);
    for (const k of ["colour", "answer", "after"]) {
      const got = (await clients.get(survivors[1]!)!.call("mpreg.kv.get", [k])) as { found: boolean; value?: unknown };
      kit.say(`get ${k} from ${survivors[1]} → ${got.found ? JSON.stringify(got.value) : "(missing!)"}`);
      if (!got.found) throw new Error(`${k} was lost`);
    }
    kit.say("\nevery acknowledged write survived the leader's crash");
  },
};

export default demo;
