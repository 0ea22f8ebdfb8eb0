import { join } from "node:path";
import { MpregError, createLogger, encodeFrame, type UnifiedMessage } from "@mpreg/envelope";
import type { ServicePort } from "@mpreg/fabric";
import { openBackend, type StorageBackend } from "@mpreg/persistence";
import { RaftKV, kvBuiltins, validateMessage, type Message } from "@mpreg/raft";
import type { Dispatcher, FunctionRegistry } from "@mpreg/rpc";
import type { Session } from "./node.js";

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
  /** Cut a log damaged in the middle instead of refusing to start (`--repair-wal`). */
  repair?: boolean | undefined;
  tickMs: number;
  /** The node's fabric: carries the group's messages (topic `mpreg.raft.<group>`). */
  port: ServicePort;
  /** Carries a call to the leader when this node is a follower. */
  dispatcher: Dispatcher;
}

/** How long a call waits for an election to produce a leader before failing with 1005. */
const LEADER_WAIT_MS = 10_000;

/**
 * One Raft group served by this node: the replicated KV of @mpreg/raft, its messages carried as
 * `fabric-message` frames (topic `mpreg.raft.<group>`), and its built-ins (`kvBuiltins`:
 * `mpreg.kv.*`, `mpreg.raft.*`, PROTOCOL section 10). A call on a follower is forwarded to the
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
        : { backend: "file", dir: join(opts.dataDir, `raft-${opts.group}`), fsync: opts.fsync ?? "batch", repair: opts.repair === true },
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
        // retries on its own). Snapshots travel in chunks of 1 MiB, appends in at most 4 MiB.
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

  /**
   * Registers the group's built-ins (`kvBuiltins` of @mpreg/raft): the calling connection is
   * the owner of its watches, which end when it closes; calls on a follower are forwarded to
   * the leader with the dispatcher.
   */
  registerBuiltins(registry: FunctionRegistry<Session>): void {
    const kv = this.kv;
    const hooked = new WeakSet<Session>();
    const builtins = kvBuiltins({
      kv,
      group: this.opts.group,
      leaderWaitMs: LEADER_WAIT_MS,
      forwardToLeader: (leader, fun, args, ctx) =>
        this.opts.dispatcher.dispatch({
          command: { name: fun, fun, args: [...args] },
          node_id: leader,
          cluster_id: this.opts.clusterId,
          request_id: ctx.request_id,
          signal: ctx.signal,
          deadline: Date.now() + LEADER_WAIT_MS,
        }),
    });
    for (const b of builtins) {
      registry.register(
        b.name,
        ({ args, signal, request_id, ctx: session }) => {
          if (session === undefined) {
            // A call forwarded from another node: no connection to push to.
            if (b.name === "mpreg.kv.watch") throw MpregError.invalid("mpreg.kv.watch needs a client connection to this member");
            return b.run(args, { owner: `call:${request_id}`, push: () => undefined, signal, request_id });
          }
          if (!hooked.has(session)) {
            hooked.add(session);
            session.cancel.signal.addEventListener("abort", () => kv.closeOwner(session.conn.id), { once: true });
          }
          const push = (frame: object) => {
            if (session.conn.open) session.conn.send(encodeFrame(frame, session.pushEncoding));
          };
          return b.run(args, { owner: session.conn.id, push, signal, request_id });
        },
        { description: b.description, admin: b.admin === true },
      );
    }
  }

  async stop(): Promise<void> {
    this.detach();
    await this.kv.stop();
    await this.storage.close();
  }
}
