/**
 * Three node processes form the Raft group `kv`: writes through any node, a leader killed with
 * SIGKILL, a new leader, acknowledged writes kept, and the restarted node catching up; then a
 * fourth node joins (learner, voter, leader) and a member is removed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MpregClient } from "@mpreg/client";
import { startNode, waitFor, type NodeProcess } from "@mpreg/testkit";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CLI } from "./node-harness.js";

const NAMES = ["r1", "r2", "r3"] as const;
const dirs = new Map<string, string>();
const nodes = new Map<string, NodeProcess>();
const clients = new Map<string, MpregClient>();
let seed = "";

interface Status {
  id: string;
  role: string;
  leader: string | null;
  term: number;
  commit: number;
  applied: number;
  conf: { voters: string[]; learners: string[] };
}

async function start(name: string, peers: string[], extra: string[] = []): Promise<void> {
  const node = await startNode({
    bin: CLI,
    args: [
      "start", "--port", "0", "--name", name, "--cluster-id", "raft-test",
      "--raft-group", "kv", "--raft-members", NAMES.join(","), "--raft-tick-ms", "20",
      "--data-dir", dirs.get(name)!,
      "--gossip-probe-interval-ms", "100", "--gossip-probe-timeout-ms", "50",
      ...(peers.length > 0 ? ["--peers", peers.join(",")] : []),
      ...extra,
    ],
  });
  nodes.set(name, node);
  clients.set(name, await MpregClient.connect(node.url, { reconnect: false }));
}

async function status(name: string): Promise<Status> {
  return (await clients.get(name)!.call("mpreg.raft.status")) as Status;
}

/** The leader every given node agrees on. */
async function agreedLeader(names: readonly string[]): Promise<string> {
  return waitFor(
    async () => {
      const all = await Promise.all(names.map(status));
      const leader = all[0]?.leader;
      return leader && all.every((s) => s.leader === leader) && names.includes(leader) ? leader : null;
    },
    { timeoutMs: 30_000, description: `one leader among ${names.join(",")}` },
  );
}

beforeAll(async () => {
  dirs.set("r4", mkdtempSync(join(tmpdir(), "mpreg-raft-r4-")));
  for (const n of NAMES) dirs.set(n, mkdtempSync(join(tmpdir(), `mpreg-raft-${n}-`)));
  await start("r1", []);
  seed = nodes.get("r1")!.url;
  await Promise.all([start("r2", [seed]), start("r3", [seed])]);
});

afterAll(async () => {
  for (const c of clients.values()) await c.close().catch(() => undefined);
  await Promise.all([...nodes.values()].map((n) => n.stop()));
  for (const d of dirs.values()) rmSync(d, { recursive: true, force: true });
});

it("elects one leader, serves writes from any node, survives a SIGKILLed leader, and catches up a restarted node", async () => {
  const leader = await agreedLeader(NAMES);
  const follower = NAMES.find((n) => n !== leader)!;

  // A write on a follower is forwarded to the leader; reads are linearizable from anywhere.
  const put = (await clients.get(follower)!.call("mpreg.kv.put", ["greeting", { hello: "world" }])) as { version: number };
  expect(put.version).toBeGreaterThan(0);
  for (const n of NAMES) {
    expect(await clients.get(n)!.call("mpreg.kv.get", ["greeting"])).toMatchObject({ found: true, value: { hello: "world" }, version: put.version });
  }
  const acknowledged: number[] = [];
  for (let i = 0; i < 20; i++) {
    await clients.get(NAMES[i % 3]!)!.call("mpreg.kv.put", [`k${i}`, i]);
    acknowledged.push(i);
  }
  const cas = (await clients.get(leader)!.call("mpreg.kv.cas", ["greeting", put.version, "swapped"])) as { ok: boolean };
  expect(cas.ok).toBe(true);
  const stale = (await clients.get(follower)!.call("mpreg.kv.cas", ["greeting", put.version, "again"])) as { ok: boolean };
  expect(stale.ok).toBe(false);

  // Kill the leader; the two others elect a new one and keep every acknowledged write.
  await clients.get(leader)!.close();
  await nodes.get(leader)!.kill();
  const survivors = NAMES.filter((n) => n !== leader);
  const newLeader = await agreedLeader(survivors);
  expect(newLeader).not.toBe(leader);
  for (const i of acknowledged) {
    expect(await clients.get(survivors[0]!)!.call("mpreg.kv.get", [`k${i}`])).toMatchObject({ found: true, value: i });
  }
  await clients.get(survivors[1]!)!.call("mpreg.kv.put", ["after", "crash"]);

  // The killed node restarts from its data directory and catches up.
  await start(leader, [nodes.get(survivors[0]!)!.url]);
  const target = (await status(newLeader)).commit;
  await waitFor(async () => (await status(leader)).applied >= target, { timeoutMs: 30_000, description: "restarted node catches up" });
  expect(await clients.get(leader)!.call("mpreg.kv.get", ["after"])).toMatchObject({ found: true, value: "crash" });
  expect(await clients.get(leader)!.call("mpreg.kv.get", ["greeting"])).toMatchObject({ found: true, value: "swapped" });
});

it("adds a joining node as a learner, promotes it, hands it the leadership, and removes a member", { timeout: 120_000 }, async () => {
  // Seeds: the members' current URLs (a restarted member listens on a new port).
  await start("r4", NAMES.map((n) => nodes.get(n)!.url), ["--raft-join", "true"]);
  const joiner = await status("r4");
  expect(joiner.conf).toEqual({ voters: [], learners: [] });
  expect(joiner.role).not.toBe("leader");

  // Through any member: the call is forwarded to the leader.
  const added = (await clients.get("r1")!.call("mpreg.raft.add_member", ["r4", { learner: true }])) as { conf: Status["conf"] };
  expect(added.conf.learners).toEqual(["r4"]);
  const leader = await agreedLeader(NAMES);
  const target = (await status(leader)).commit;
  await waitFor(async () => (await status("r4")).applied >= target, { timeoutMs: 30_000, description: "learner catches up" });
  expect((await status("r4")).conf.learners).toEqual(["r4"]);

  const promoted = (await clients.get("r2")!.call("mpreg.raft.add_member", ["r4"])) as { conf: Status["conf"] };
  expect([...promoted.conf.voters].sort()).toEqual(["r1", "r2", "r3", "r4"]);
  // A second add of a voter is refused clearly.
  await expect(clients.get("r3")!.call("mpreg.raft.add_member", ["r4"])).rejects.toMatchObject({ code: 1002 });

  // The new voter holds the whole log: it can take over as leader.
  await clients.get("r1")!.call("mpreg.raft.transfer_leader", ["r4"]);
  await waitFor(async () => (await agreedLeader(["r1", "r2", "r3", "r4"])) === "r4", { timeoutMs: 30_000, description: "r4 leads" });
  expect(await clients.get("r4")!.call("mpreg.kv.get", ["greeting"])).toMatchObject({ found: true, value: "swapped" });

  const removed = (await clients.get("r4")!.call("mpreg.raft.remove_member", ["r3"])) as { conf: Status["conf"] };
  expect([...removed.conf.voters].sort()).toEqual(["r1", "r2", "r4"]);
  await clients.get("r2")!.call("mpreg.kv.put", ["after-remove", 1]);
  expect(await clients.get("r1")!.call("mpreg.kv.get", ["after-remove"])).toMatchObject({ found: true, value: 1 });
});
