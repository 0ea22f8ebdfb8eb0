import { RaftCore, type RaftConfig } from "../src/raft.js";
import type { ConfState, Entry, Message, NodeId, ReadState, Snapshot } from "../src/types.js";

/** A tiny deterministic PRNG (mulberry32) for tests. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A node of the in-memory scenario network: the core plus what it "persisted" and applied. */
export interface NetNode {
  core: RaftCore;
  applied: Entry[];
  snapshots: Snapshot[];
  reads: ReadState[];
}

/**
 * etcd-style scenario network: messages are delivered synchronously until the network is
 * quiet; links can be cut and nodes isolated. Ready is processed at once (persist = advance).
 */
export class CoreNet {
  readonly nodes = new Map<NodeId, NetNode>();
  private readonly cut = new Set<string>();
  private readonly ignored = new Set<Message["type"]>();
  readonly log: Message[] = [];

  constructor(
    ids: NodeId[],
    opts: Partial<Omit<RaftConfig, "id" | "random">> & { seed?: number; learners?: NodeId[] } = {},
  ) {
    const conf: ConfState = { voters: ids.slice(), learners: opts.learners ?? [] };
    let k = 0;
    for (const id of [...ids, ...conf.learners]) {
      this.add(id, { ...opts, random: rng((opts.seed ?? 1) * 1000 + k++) }, conf);
    }
  }

  add(id: NodeId, cfg: Partial<RaftConfig>, bootstrap: ConfState | undefined): NetNode {
    const core = new RaftCore({ random: rng(7), ...cfg, id }, bootstrap ? { bootstrap } : {});
    const n: NetNode = { core, applied: [], snapshots: [], reads: [] };
    this.nodes.set(id, n);
    return n;
  }

  get(id: NodeId): RaftCore {
    return this.nodes.get(id)!.core;
  }

  /** Processes every node's Ready and returns the messages they emitted. */
  collect(): Message[] {
    const out: Message[] = [];
    for (const n of this.nodes.values()) {
      while (n.core.hasReady()) {
        const rd = n.core.ready();
        if (rd.snapshot) n.snapshots.push(rd.snapshot);
        n.applied.push(...rd.committedEntries);
        n.reads.push(...rd.readStates);
        out.push(...rd.messages);
        n.core.advance(rd);
      }
    }
    return out;
  }

  /** Delivers messages (and everything they cause) until the network is quiet. */
  deliver(first: Message[] = []): void {
    let queue = [...first, ...this.collect()];
    let guard = 0;
    while (queue.length > 0) {
      if (++guard > 100_000) throw new Error("network did not quiesce");
      const m = queue.shift()!;
      if (this.cut.has(`${m.from}>${m.to}`) || this.ignored.has(m.type)) continue;
      const n = this.nodes.get(m.to);
      if (!n) continue;
      this.log.push(m);
      n.core.step(m);
      queue = queue.concat(this.collect());
    }
  }

  /** Ticks every listed node `times` times, delivering after each round. */
  tick(times: number, ids: NodeId[] = [...this.nodes.keys()]): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) this.nodes.get(id)?.core.tick();
      this.deliver();
    }
  }

  campaign(id: NodeId): void {
    this.get(id).campaign();
    this.deliver();
  }

  propose(id: NodeId, data: string): { index: number; term: number } {
    const r = this.get(id).propose(new TextEncoder().encode(data));
    this.deliver();
    return r;
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  ignore(t: Message["type"]): void {
    this.ignored.add(t);
  }

  recover(): void {
    this.cut.clear();
    this.ignored.clear();
  }

  leaders(): NodeId[] {
    return [...this.nodes.entries()].filter(([, n]) => n.core.role === "leader").map(([id]) => id);
  }

  /** Application data of the entries a node applied (no-ops and conf entries skipped). */
  appliedData(id: NodeId): string[] {
    return this.nodes
      .get(id)!
      .applied.filter((e) => e.type === "normal" && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
