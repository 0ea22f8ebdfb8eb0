import { join } from "node:path";
import { MpregError, createLogger, type UnifiedMessage } from "@mpreg/envelope";
import type { ServicePort } from "@mpreg/fabric";
import { openBackend, type StorageBackend } from "@mpreg/persistence";
import { RaftKV, onLeader, onMember, validateMessage, type Message } from "@mpreg/raft";
import type { Dispatcher, FunctionRegistry } from "@mpreg/rpc";

const log = createLogger("raft");

export interface RaftGroupOptions {
  group: string;
  /** Node ids of the first voters (this node among them), used when the storage is fresh. */
  members: readonly string[];
  /** Join a running group: start as no member and wait to be added by its leader. */
  join?: boolean | undefined;
  nodeId: string;
  clusterId: string;
  /** Durable storage under `<dataDir>/raft-<group>` (file backend); memory without. */
  dataDir?: string | undefined;
  /** fsync policy of that file storage. Default `batch`. */
  fsync?: "batch" | "always" | undefined;
  tickMs: number;
  /** The node's fabric: carries the group's messages (topic `mpreg.raft.<group>`). */
  port: ServicePort;
  /** Carries a call to the leader when this node is a follower. */
  dispatcher: Dispatcher;
}

/** Membership changes and leader transfer need the admin scope (docs/security.md). */
const ADMIN = true;
const NOT_ADMIN = false;

/** How long a call waits for an election to produce a leader before failing with 1005. */
const LEADER_WAIT_MS = 10_000;

/**
 * One Raft group served by this node: the replicated KV of @mpreg/raft, its messages carried as
 * `fabric-message` frames (topic `mpreg.raft.<group>`), and the built-ins `mpreg.kv.get`,
 * `put`, `delete`, `cas` and `mpreg.raft.status`. A call on a follower is forwarded to the
 * leader; during an election it waits for one (up to 10 s or the request deadline).
 */
export class RaftGroup {
  readonly topic: string;

  private constructor(
    private readonly opts: RaftGroupOptions,
    readonly kv: RaftKV,
    private readonly storage: StorageBackend,
  ) {
    this.topic = `mpreg.raft.${opts.group}`;
  }

  static async open(opts: RaftGroupOptions): Promise<RaftGroup> {
    if (opts.join !== true && !opts.members.includes(opts.nodeId)) {
      throw MpregError.invalid(
        `raft group ${opts.group}: this node (${opts.nodeId}) is not among its members (use raftJoin to join a running group)`,
        "raftMembers",
      );
    }
    const storage = await openBackend(
      opts.dataDir === undefined
        ? { backend: "memory" }
        : { backend: "file", dir: join(opts.dataDir, `raft-${opts.group}`), fsync: opts.fsync ?? "batch" },
    );
    const topic = `mpreg.raft.${opts.group}`;
    const kv = await RaftKV.open({
      id: opts.nodeId,
      storage,
      namespace: `raft/${opts.group}`,
      // A joining node has no membership of its own: it never campaigns, and learns the group's
      // membership from the leader's log (or snapshot) once the leader adds it.
      ...(opts.join === true ? {} : { bootstrap: { voters: [...opts.members], learners: [] } }),
      tickMs: opts.tickMs,
      send: (to: string, msg: Message) => {
        const um = opts.port.message({ topic, message_type: "control", payload: msg });
        // No link, or too large for a peer frame: the message is lost, which Raft tolerates (it
        // retries on its own); the store's size limit keeps snapshots under the frame limit.
        try {
          opts.port.send(to, um);
        } catch (e) {
          log.warn(`raft message ${msg.type} to ${to} not sent: ${(e as Error).message}`);
        }
      },
    });
    const group = new RaftGroup(opts, kv, storage);
    group.detach = opts.port.handle(topic, (msg) => group.handle(msg));
    return group;
  }

  private detach: () => void = () => undefined;

  /** Feeds a Raft message from a peer. */
  private handle(msg: UnifiedMessage): void {
    let m: Message;
    try {
      m = validateMessage(msg.payload);
    } catch (e) {
      log.warn(`dropped malformed raft message from ${msg.headers.source_node}: ${(e as Error).message}`);
      return;
    }
    this.kv.node.step(m);
  }

  /** Registers the group's built-in functions. */
  registerBuiltins<Ctx>(registry: FunctionRegistry<Ctx>): void {
    const kv = this.kv;
    const key = (v: unknown) => {
      if (typeof v !== "string" || v.length === 0) throw MpregError.invalid("key must be a non-empty string", "args.0");
      return v;
    };
    // Values are any JSON value, stored as JSON text.
    const encode = (v: unknown) => JSON.stringify(v === undefined ? null : v);
    const version = (v: unknown) => {
      if (!Number.isInteger(v) || (v as number) < 0) throw MpregError.invalid("version must be a non-negative integer", "args.1");
      return v as number;
    };
    // Reads are served by every member: ReadIndex through the leader, then this node's copy.
    registry.register(
      "mpreg.kv.get",
      ({ args, signal }) =>
        onMember(kv.node, {
          run: async () => {
            const got = await kv.get(key(args[0]));
            return got === undefined ? { found: false } : { found: true, value: JSON.parse(got.value), version: got.version };
          },
          signal,
          waitMs: LEADER_WAIT_MS,
        }),
      { description: `mpreg.kv.get on raft group ${this.opts.group} (linearizable, served by any member)` },
    );
    this.builtin(registry, "mpreg.kv.put", NOT_ADMIN, ([k, v]) => kv.put(key(k), encode(v)));
    this.builtin(registry, "mpreg.kv.delete", NOT_ADMIN, ([k]) => kv.delete(key(k)));
    this.builtin(registry, "mpreg.kv.cas", NOT_ADMIN, ([k, ver, v]) => kv.cas(key(k), version(ver), encode(v)));
    const nodeId = (v: unknown) => {
      if (typeof v !== "string" || v.length === 0) throw MpregError.invalid("node_id must be a non-empty string", "args.0");
      return v;
    };
    const conf = () => ({ group: this.opts.group, conf: kv.node.status().conf });
    // Membership changes go through the leader one at a time (docs/raft.md); each resolves
    // once the change is committed and applied there.
    this.builtin(registry, "mpreg.raft.add_member", ADMIN, async ([id, o]) => {
      const learner = typeof o === "object" && o !== null && (o as { learner?: unknown }).learner === true;
      await kv.node.proposeConfChange({ type: learner ? "addLearner" : "addVoter", node: nodeId(id) });
      return conf();
    });
    this.builtin(registry, "mpreg.raft.remove_member", ADMIN, async ([id]) => {
      await kv.node.proposeConfChange({ type: "remove", node: nodeId(id) });
      return conf();
    });
    this.builtin(registry, "mpreg.raft.transfer_leader", ADMIN, async ([id]) => {
      await kv.node.transferLeader(nodeId(id));
      return { group: this.opts.group, leader: kv.node.leaderId };
    });
    registry.register("mpreg.raft.status", () => ({ group: this.opts.group, ...kv.node.status() }), {
      description: `Raft status of group ${this.opts.group} on this node`,
    });
  }

  async stop(): Promise<void> {
    this.detach();
    await this.kv.node.stop();
    await this.storage.close();
  }

  /** Registers a function that runs on the leader (here, or forwarded there; see `onLeader`). */
  private builtin<Ctx>(registry: FunctionRegistry<Ctx>, fun: string, admin: boolean, run: (args: readonly unknown[]) => Promise<unknown>): void {
    registry.register(
      fun,
      ({ args, signal, request_id }) =>
        onLeader(this.kv.node, {
          local: () => run(args),
          forward: (leader) =>
            this.opts.dispatcher.dispatch({
              command: { name: fun, fun, args: [...args] },
              node_id: leader,
              cluster_id: this.opts.clusterId,
              request_id,
              signal,
              deadline: Date.now() + LEADER_WAIT_MS,
            }),
          signal,
          waitMs: LEADER_WAIT_MS,
        }),
      { description: `${fun} on raft group ${this.opts.group} (linearizable; forwarded to the leader)`, admin },
    );
  }
}
