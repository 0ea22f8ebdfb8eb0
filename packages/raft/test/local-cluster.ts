import type { StorageBackend } from "@mpreg/persistence";
import { MemoryBackend, MemoryVolume } from "@mpreg/persistence";
import { RaftKV } from "../src/raft-kv.js";
import type { RaftKVOptions } from "../src/raft-kv.js";
import type { Message, NodeId } from "../src/types.js";
import { rng } from "./core-net.js";

/**
 * An in-process cluster of RaftKV nodes over memory volumes. Messages are queued and delivered
 * by `settle()` (or asynchronously when `autoDeliver` is set, for benchmarks); ticks are manual
 * unless `tickMs` is given. Nodes can be crashed (object dropped, volume kept) and reopened.
 */
export class LocalCluster {
  readonly ids: NodeId[];
  readonly volumes = new Map<NodeId, MemoryVolume>();
  readonly nodes = new Map<NodeId, RaftKV | undefined>();
  readonly queue: Message[] = [];
  readonly cut = new Set<string>();
  sent: Message[] = [];
  /** Snapshot chunks sent, per receiver, and the largest chunk seen (`sent` keeps only recent messages). */
  readonly snapChunks = new Map<NodeId, number>();
  maxSnapChunkBytes = 0;
  private gen = 0;

  constructor(
    n: number,
    private readonly extra: Partial<Omit<RaftKVOptions, "id" | "storage" | "send">> & {
      storage?: (id: NodeId) => Promise<StorageBackend>;
      autoDeliver?: boolean;
    } = {},
  ) {
    this.ids = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  }

  async start(): Promise<this> {
    for (const id of this.ids) await this.open(id);
    return this;
  }

  async open(id: NodeId): Promise<RaftKV> {
    let storage: StorageBackend;
    if (this.extra.storage) storage = await this.extra.storage(id);
    else {
      let v = this.volumes.get(id);
      if (!v) {
        v = new MemoryVolume();
        this.volumes.set(id, v);
      }
      v.inUse = false;
      storage = new MemoryBackend({ volume: v });
    }
    const kv = await RaftKV.open({
      random: rng(1000 + this.ids.indexOf(id) * 17 + this.gen++),
      ...this.extra,
      id,
      storage,
      bootstrap: { voters: this.ids, learners: [] },
      send: (to, msg) => this.deliverLater(to, msg),
    });
    this.nodes.set(id, kv);
    return kv;
  }

  private deliverLater(_to: NodeId, msg: Message): void {
    this.sent.push(msg);
    if (msg.type === "snap") {
      this.snapChunks.set(msg.to, (this.snapChunks.get(msg.to) ?? 0) + 1);
      this.maxSnapChunkBytes = Math.max(this.maxSnapChunkBytes, msg.snapshot?.data.length ?? 0);
    }
    if (this.sent.length > 10_000) this.sent = this.sent.slice(-5_000);
    if (this.extra.autoDeliver) {
      setImmediate(() => this.deliver(msg));
      return;
    }
    this.queue.push(structuredClone(msg));
  }

  private deliver(msg: Message): void {
    if (this.cut.has(msg.from) || this.cut.has(msg.to)) return;
    this.nodes.get(msg.to)?.node.step(msg);
  }

  /** Delivers queued messages until none is left, awaiting every node's processing. */
  async settle(maxRounds = 10_000): Promise<void> {
    for (let i = 0; i < maxRounds; i++) {
      await this.idle();
      if (this.queue.length === 0) return;
      const batch = this.queue.splice(0);
      for (const m of batch) this.deliver(m);
    }
    throw new Error("cluster did not settle");
  }

  async idle(): Promise<void> {
    for (const kv of this.nodes.values()) if (kv) await kv.node.idle();
  }

  /** Ticks every live node `times` times, settling after each. */
  async tick(times = 1): Promise<void> {
    for (let t = 0; t < times; t++) {
      for (const kv of this.nodes.values()) kv?.node.tick();
      await this.settle();
    }
  }

  /** Ticks until some live node leads; returns it. */
  async waitLeader(maxTicks = 500): Promise<RaftKV> {
    for (let t = 0; t < maxTicks; t++) {
      const l = this.leader();
      if (l) return l;
      await this.tick();
    }
    throw new Error("no leader elected");
  }

  leader(): RaftKV | undefined {
    const ls = [...this.nodes.values()].filter((kv) => kv?.node.role === "leader");
    return ls.length === 1 ? ls[0] : undefined;
  }

  /** Drops a node object (a crash); its volume survives. */
  crash(id: NodeId): void {
    this.nodes.set(id, undefined);
  }

  isolate(id: NodeId): void {
    this.cut.add(id);
  }

  heal(): void {
    this.cut.clear();
  }
}
