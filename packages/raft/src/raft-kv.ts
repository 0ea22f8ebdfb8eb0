import { MpregError } from "@mpreg/envelope";
import { KvStateMachine, encodeKvCommand, type KvLimits, type KvResult, type KvValue } from "./kv.js";
import { RaftNode, type RaftNodeOptions } from "./node.js";

/**
 * A replicated key-value store: a RaftNode running a KvStateMachine, with the client-facing
 * calls. On a follower every call rejects with UNREACHABLE `{reason:"not_leader", leader}`;
 * the caller forwards to `leader` (see `RaftNode.propose` for the other errors).
 */
export class RaftKV {
  private constructor(
    readonly node: RaftNode,
    readonly state: KvStateMachine,
  ) {}

  static async open(opts: Omit<RaftNodeOptions, "stateMachine"> & { limits?: KvLimits }): Promise<RaftKV> {
    const state = new KvStateMachine(opts.limits);
    const node = await RaftNode.open({ ...opts, stateMachine: state });
    return new RaftKV(node, state);
  }

  /** Linearizable read on any member (ReadIndex through the leader; see `RaftNode.read`). */
  get(key: string): Promise<KvValue | undefined> {
    return this.node.read(() => this.state.get(key));
  }

  async put(key: string, value: string): Promise<{ version: number }> {
    const r = await this.run({ op: "put", key, value });
    return { version: (r as Extract<KvResult, { op: "put" }>).version };
  }

  async delete(key: string): Promise<{ deleted: boolean }> {
    const r = await this.run({ op: "delete", key });
    return { deleted: (r as Extract<KvResult, { op: "delete" }>).deleted };
  }

  /** Writes `value` only if the key's version is `version` (0: only if absent). */
  async cas(key: string, version: number, value: string): Promise<{ ok: boolean; version: number }> {
    const r = (await this.run({ op: "cas", key, version, value })) as Extract<KvResult, { op: "cas" }>;
    return { ok: r.ok, version: r.version };
  }

  private async run(cmd: Parameters<typeof encodeKvCommand>[0]): Promise<KvResult> {
    const r = (await this.node.propose(encodeKvCommand(cmd))) as KvResult;
    if (r.op === "error") throw MpregError.invalid(`raft kv: ${r.reason}`, "command");
    return r;
  }
}
