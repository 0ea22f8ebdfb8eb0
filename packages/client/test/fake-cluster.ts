/**
 * A test peer for the client: a few in-process nodes (the real transport listener and the real
 * envelope codec) that speak the subset of the protocol the client tests need, sharing one
 * cluster state (pub/sub subscriptions, queues, cache, the KV store). It is deliberately small
 * and follows PROTOCOL.md; it is not a stand-in for the server packages.
 *
 * Functions: echo [x]; whoami -> node name; slow -> never answers; count [key] -> increments a
 * cluster-wide counter and answers its value; hold -> answers when the test calls `release()`;
 * cluster_map; mpreg.queue.*, mpreg.cache.*, mpreg.kv.* (section 5, 6, 10 subsets).
 */
import { ErrorCode, MpregError, decodeFrame, encodeFrame, type Encoding, type Frame, type RpcCommand } from "@mpreg/envelope";
import { WsConnection, createWsListener, type Connection, type WsListener } from "@mpreg/transport";

export interface FakeNode {
  name: string;
  url: string;
  listener: WsListener;
  conns: Set<Connection>;
  /** Every request frame received, in order. */
  frames: Frame[];
  /** Answer new rpc requests with 1005 `{reason: "shutdown"}` (a node that is stopping). */
  draining: boolean;
  alive: boolean;
}

interface Conn {
  node: FakeNode;
  conn: Connection;
  enc: Encoding;
  subs: Map<string, string[]>;
  queueSubs: Map<string, { queue: string; prefetch: number; unacked: number }>;
  watches: Map<string, { prefix: string; next: number }>;
}

interface QMsg {
  message_id: string;
  body: unknown;
  receive_count: number;
  sent_at: number;
  receipt?: string;
  leasedTo?: Conn;
}

interface KvEntry {
  value: unknown;
  version: number;
  mod_revision: number;
  lease?: string;
}

type KvEventItem = { type: "put" | "delete"; key: string; value?: unknown; mod_revision: number };

/** `*` one segment, `#` zero or more (PROTOCOL section 4). */
export function topicMatches(pattern: string, topic: string): boolean {
  const p = pattern.split(".");
  const t = topic.split(".");
  const go = (i: number, j: number): boolean => {
    if (i === p.length) return j === t.length;
    if (p[i] === "#") return go(i + 1, j) || (j < t.length && go(i, j + 1));
    if (j === t.length) return false;
    return (p[i] === "*" || p[i] === t[j]) && go(i + 1, j + 1);
  };
  return go(0, 0);
}

export class FakeCluster {
  readonly nodes: FakeNode[] = [];
  readonly counters = new Map<string, number>();
  /** Held `hold` requests, answered by `release()` (forgotten when their connection closes). */
  private held: Array<{ c: Conn; answer: () => void }> = [];
  private readonly conns = new Set<Conn>();
  private seq = 0;
  /** Retained pub/sub messages, for `backlog`. */
  readonly retained: Array<{ topic: string; payload: unknown; headers: Record<string, unknown>; message_id: string; publisher: string; timestamp: number }> = [];
  readonly queues = new Map<string, { msgs: QMsg[]; sent: number; acked: number }>();
  readonly cache = new Map<string, unknown>();
  readonly kv = new Map<string, KvEntry>();
  revision = 0;
  /** Revisions at or below this were compacted away (a watch from them is refused). */
  compacted = 0;
  readonly kvLog: KvEventItem[] = [];
  readonly leases = new Map<string, { ttl_ms: number; expires: number }>();
  private leaseTimer: ReturnType<typeof setInterval> | undefined;

  static async start(n: number): Promise<FakeCluster> {
    const c = new FakeCluster();
    for (let i = 0; i < n; i++) await c.addNode(`n${i + 1}`);
    c.leaseTimer = setInterval(() => c.expireLeases(), 10);
    return c;
  }

  async addNode(name: string): Promise<FakeNode> {
    const listener = createWsListener({ pingIntervalMs: 0 });
    const node: FakeNode = { name, url: "", listener, conns: new Set(), frames: [], draining: false, alive: true };
    listener.onConnection((conn) => {
      node.conns.add(conn);
      const c: Conn = { node, conn, enc: "msgpack", subs: new Map(), queueSubs: new Map(), watches: new Map() };
      this.conns.add(c);
      conn.onMessage((data, isBinary) => this.onFrame(c, data, isBinary));
      conn.onClose(() => {
        node.conns.delete(conn);
        this.conns.delete(c);
        this.held = this.held.filter((h) => h.c !== c);
        // Messages leased to a closed connection become visible again (PROTOCOL section 5).
        for (const q of this.queues.values()) for (const m of q.msgs) if (m.leasedTo === c) this.unlease(m);
        this.pumpQueues();
      });
    });
    node.url = (await listener.listen({ port: 0, host: "127.0.0.1" })).url;
    this.nodes.push(node);
    return node;
  }

  node(name: string): FakeNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  nodeByUrl(url: string | undefined): FakeNode | undefined {
    return this.nodes.find((n) => n.url === url);
  }

  /** Kills a node: its connections drop without a close frame, its port refuses. */
  async kill(node: FakeNode): Promise<void> {
    node.alive = false;
    for (const c of node.conns) {
      if (c instanceof WsConnection) c.terminate();
      else c.close(1011, "killed");
    }
    await node.listener.close();
  }

  /** Answers every held `hold` request. */
  release(): void {
    const h = this.held;
    this.held = [];
    for (const { answer } of h) answer();
  }

  get heldCount(): number {
    return this.held.length;
  }

  /** Subscriptions (pub/sub) per node name, for assertions. */
  /** When true, `pubsub-publish-batch` frames are recorded but never answered. */
  holdPublishBatches = false;

  /** Pushes `frame` on the connection holding subscription `id` (as a node would). */
  pushToSubscription(id: string, frame: object): void {
    for (const c of this.conns) if (c.subs.has(id)) this.push(c, frame);
  }

  subscriptionsOn(node: FakeNode): string[] {
    return [...this.conns].filter((c) => c.node === node).flatMap((c) => [...c.subs.keys()]);
  }

  watchesOn(node: FakeNode): number {
    return [...this.conns].filter((c) => c.node === node).reduce((n, c) => n + c.watches.size, 0);
  }

  /** Publishes as if from another client (delivery to every matching subscription). */
  publish(topic: string, payload: unknown, message_id = `m${++this.seq}`): string {
    const message = { topic, payload, headers: {}, message_id, publisher: "fake", timestamp: Date.now() };
    this.retained.push(message);
    for (const c of this.conns) {
      for (const [id, patterns] of c.subs) {
        if (patterns.some((p) => topicMatches(p, topic))) this.push(c, { role: "pubsub-notification", subscription_id: id, message });
      }
    }
    return message_id;
  }

  /** A KV write done by someone else. */
  kvPut(key: string, value: unknown): number {
    return this.kvWrite([{ type: "put", key, value }]);
  }

  async stop(): Promise<void> {
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    this.release();
    await Promise.all(this.nodes.filter((n) => n.alive).map((n) => n.listener.close()));
  }

  // -----------------------------------------------------------------------------------------

  private send(c: Conn, frame: object): void {
    if (c.conn.open) c.conn.send(encodeFrame(frame, c.enc));
  }

  private push(c: Conn, frame: object): void {
    this.send(c, frame);
  }

  private onFrame(c: Conn, data: Uint8Array | string, isBinary: boolean): void {
    c.enc = isBinary ? "msgpack" : "json";
    const res = decodeFrame(data, c.enc);
    if (!res.ok) return this.send(c, { role: "rpc-response", u: res.u, r: null, error: res.error.toWire() });
    const f = res.frame;
    c.node.frames.push(f);
    const ack = (u: string, extra: object): void => this.send(c, { role: "pubsub-ack", u, success: true, ...extra });
    switch (f.role) {
      case "rpc":
        return this.onRpc(c, f.u, f.cmds);
      case "pubsub-subscribe": {
        const id = f.subscription.subscription_id ?? `s${++this.seq}`;
        c.subs.set(id, f.subscription.patterns);
        ack(f.u, { subscription_id: id });
        const max = f.subscription.backlog?.max ?? 0;
        if (max > 0) {
          const old = this.retained.filter((m) => f.subscription.patterns.some((p) => topicMatches(p, m.topic))).slice(-max);
          for (const message of old) this.push(c, { role: "pubsub-notification", subscription_id: id, message });
        }
        return;
      }
      case "pubsub-unsubscribe":
        if (!c.subs.delete(f.subscription_id)) {
          return this.send(c, { role: "pubsub-ack", u: f.u, success: false, error: MpregError.notFound("no such subscription").toWire() });
        }
        return ack(f.u, { subscription_id: f.subscription_id });
      case "pubsub-publish": {
        if (f.message.topic.includes("*") || f.message.topic.includes("#")) {
          return this.send(c, { role: "pubsub-ack", u: f.u, success: false, error: MpregError.invalid("a topic has no wildcards", "message.topic").toWire() });
        }
        const id = this.publish(f.message.topic, f.message.payload, f.message.message_id);
        return ack(f.u, { message_id: id });
      }
      case "pubsub-publish-batch": {
        if (this.holdPublishBatches) return;
        // All or nothing, as a node does.
        const bad = f.messages.findIndex((m) => m.topic.includes("*") || m.topic.includes("#"));
        if (bad >= 0) {
          return this.send(c, { role: "pubsub-ack", u: f.u, success: false, error: MpregError.invalid("a topic has no wildcards", `messages[${bad}].topic`).toWire() });
        }
        const ids = f.messages.map((m) => this.publish(m.topic, m.payload, m.message_id));
        return ack(f.u, { message_ids: ids });
      }
      default:
        return;
    }
  }

  private onRpc(c: Conn, u: string, cmds: RpcCommand[]): void {
    const reply = (r: unknown, error: MpregError | null = null): void =>
      this.send(c, { role: "rpc-response", u, r: error ? null : { [cmds[0]!.name]: r }, error: error ? error.toWire() : null });
    if (c.node.draining) {
      return reply(null, new MpregError(ErrorCode.UNREACHABLE, "node is shutting down", { reason: "shutdown", node_id: c.node.name }));
    }
    const cmd = cmds[0]!;
    const args = cmd.args ?? [];
    try {
      switch (cmd.fun) {
        case "echo":
          return reply(args[0]);
        case "whoami":
          return reply(c.node.name);
        case "slow":
          return;
        case "count": {
          const k = String(args[0]);
          const v = (this.counters.get(k) ?? 0) + 1;
          this.counters.set(k, v);
          return reply(v);
        }
        case "hold":
          this.held.push({ c, answer: () => reply(c.node.name) });
          return;
        case "cluster_map":
          return reply({
            cluster_id: "fake",
            generated_at: Date.now(),
            nodes: this.nodes.filter((n) => n.alive).map((n) => ({ node_id: n.name, cluster_id: "fake", region: "", urls: [n.url], resources: [], functions: [], load: 0, status: "alive" })),
          });
        default:
          if (cmd.fun.startsWith("mpreg.queue.")) return reply(this.queueOp(c, cmd.fun.slice(12), args));
          if (cmd.fun.startsWith("mpreg.cache.")) return reply(this.cacheOp(cmd.fun.slice(12), args));
          if (cmd.fun.startsWith("mpreg.kv.")) {
            const r = this.kvOp(c, cmd.fun.slice(9), args);
            reply(r.result);
            r.after?.();
            return;
          }
          throw MpregError.notFound("no such function", { fun: cmd.fun });
      }
    } catch (e) {
      reply(null, e as MpregError);
    }
  }

  // Queues ----------------------------------------------------------------------------------

  private q(name: unknown): { msgs: QMsg[]; sent: number; acked: number } {
    const q = this.queues.get(String(name));
    if (q === undefined) throw MpregError.notFound("unknown queue", { reason: "unknown queue" });
    return q;
  }

  private unlease(m: QMsg): void {
    if (m.leasedTo !== undefined) {
      for (const s of m.leasedTo.queueSubs.values()) if (s.unacked > 0) s.unacked--;
    }
    delete m.receipt;
    delete m.leasedTo;
  }

  private queueOp(c: Conn, op: string, args: unknown[]): unknown {
    switch (op) {
      case "create": {
        const created = !this.queues.has(String(args[0]));
        if (created) this.queues.set(String(args[0]), { msgs: [], sent: 0, acked: 0 });
        return { name: args[0], created };
      }
      case "send": {
        const q = this.q(args[0]);
        const m: QMsg = { message_id: `q${++this.seq}`, body: args[1], receive_count: 0, sent_at: Date.now() };
        q.msgs.push(m);
        q.sent++;
        queueMicrotask(() => this.pumpQueues());
        return { message_id: m.message_id, duplicate: false };
      }
      case "receive": {
        const q = this.q(args[0]);
        const max = (args[1] as { max?: number } | undefined)?.max ?? 1;
        return q.msgs.filter((m) => m.receipt === undefined).slice(0, max).map((m) => this.lease(m, c));
      }
      case "ack":
      case "nack":
      case "extend": {
        const q = this.q(args[0]);
        const i = q.msgs.findIndex((m) => m.receipt !== undefined && m.receipt === args[1]);
        if (i < 0) throw MpregError.notFound("stale receipt", { reason: "stale receipt" });
        const m = q.msgs[i]!;
        if (op === "ack") {
          this.unlease(m);
          q.msgs.splice(i, 1);
          q.acked++;
        } else if (op === "nack") {
          this.unlease(m);
        }
        queueMicrotask(() => this.pumpQueues());
        return { ok: true };
      }
      case "subscribe": {
        this.q(args[0]);
        const id = `qs${++this.seq}`;
        c.queueSubs.set(id, { queue: String(args[0]), prefetch: (args[1] as { prefetch?: number } | undefined)?.prefetch ?? 10, unacked: 0 });
        // Deliveries go out right after the reply (PROTOCOL: "messages then arrive").
        queueMicrotask(() => this.pumpQueues());
        return { subscription_id: id };
      }
      case "unsubscribe":
        return { ok: c.queueSubs.delete(String(args[0])) };
      case "stats": {
        const q = this.q(args[0]);
        const inFlight = q.msgs.filter((m) => m.receipt !== undefined).length;
        return { visible: q.msgs.length - inFlight, in_flight: inFlight, delayed: 0, dead_lettered: 0, sent: q.sent, acked: q.acked };
      }
      case "purge": {
        const q = this.q(args[0]);
        const n = q.msgs.length;
        q.msgs = [];
        return { purged: n };
      }
      case "delete":
        return { deleted: this.queues.delete(String(args[0])) };
      default:
        throw MpregError.notFound("no such function", { fun: `mpreg.queue.${op}` });
    }
  }

  private lease(m: QMsg, c: Conn): object {
    m.receive_count++;
    m.receipt = `r${++this.seq}`;
    m.leasedTo = c;
    return { message_id: m.message_id, receipt: m.receipt, body: m.body, receive_count: m.receive_count, sent_at: m.sent_at };
  }

  private pumpQueues(): void {
    for (const c of this.conns) {
      for (const [id, s] of c.queueSubs) {
        const q = this.queues.get(s.queue);
        if (q === undefined) continue;
        for (const m of q.msgs) {
          if (s.unacked >= s.prefetch) break;
          if (m.receipt !== undefined) continue;
          const message = this.lease(m, c);
          s.unacked++;
          this.push(c, { role: "queue-delivery", subscription_id: id, message });
        }
      }
    }
  }

  // Cache -----------------------------------------------------------------------------------

  private cacheOp(op: string, args: unknown[]): unknown {
    const ns = (o: unknown): string => String((o as { namespace?: string } | undefined)?.namespace ?? "default");
    switch (op) {
      case "get": {
        const k = `${ns(args[1])}/${String(args[0])}`;
        return this.cache.has(k) ? { hit: true, value: this.cache.get(k) } : { hit: false };
      }
      case "put":
        this.cache.set(`${ns(args[2])}/${String(args[0])}`, args[1]);
        return { ok: true };
      case "delete":
        return { deleted: this.cache.delete(`${ns(args[1])}/${String(args[0])}`) };
      case "invalidate": {
        const n = this.cache.size;
        this.cache.clear();
        return { invalidated: n };
      }
      case "stats":
        return { hits: 0, misses: 0, evictions: 0, entries: this.cache.size, bytes: 0 };
      default:
        throw MpregError.notFound("no such function", { fun: `mpreg.cache.${op}` });
    }
  }

  // KV --------------------------------------------------------------------------------------

  /** Applies writes at one new revision and pushes them to the watches. */
  private kvWrite(ops: Array<{ type: "put" | "delete"; key: string; value?: unknown; lease?: string }>): number {
    const rev = ++this.revision;
    const events: KvEventItem[] = [];
    for (const op of ops) {
      if (op.type === "put") {
        const old = this.kv.get(op.key);
        const e: KvEntry = { value: op.value, version: (old?.version ?? 0) + 1, mod_revision: rev };
        if (op.lease !== undefined) e.lease = op.lease;
        this.kv.set(op.key, e);
        events.push({ type: "put", key: op.key, value: op.value, mod_revision: rev });
      } else if (this.kv.delete(op.key)) {
        events.push({ type: "delete", key: op.key, mod_revision: rev });
      }
    }
    this.kvLog.push(...events);
    queueMicrotask(() => this.pumpWatches());
    return rev;
  }

  private pumpWatches(): void {
    for (const c of this.conns) {
      for (const [id, w] of c.watches) {
        const events = this.kvLog.filter((e) => e.mod_revision >= w.next && e.key.startsWith(w.prefix));
        w.next = this.revision + 1;
        if (events.length > 0) this.push(c, { role: "kv-event", watch_id: id, events });
      }
    }
  }

  private expireLeases(): void {
    const now = Date.now();
    for (const [id, l] of this.leases) if (l.expires <= now) this.revokeLease(id);
  }

  private revokeLease(id: string): boolean {
    if (!this.leases.delete(id)) return false;
    const keys = [...this.kv].filter(([, e]) => e.lease === id).map(([k]) => k);
    if (keys.length > 0) this.kvWrite(keys.map((key) => ({ type: "delete" as const, key })));
    return true;
  }

  private kvGet(key: string): object {
    const e = this.kv.get(key);
    return e === undefined ? { found: false } : { found: true, value: e.value, version: e.version, mod_revision: e.mod_revision };
  }

  private kvOp(c: Conn, op: string, args: unknown[]): { result: unknown; after?: () => void } {
    const key = String(args[0]);
    switch (op) {
      case "get":
        return { result: this.kvGet(key) };
      case "put": {
        const lease = (args[2] as { lease?: string } | undefined)?.lease;
        if (lease !== undefined && !this.leases.has(String(lease))) throw MpregError.notFound("unknown lease", { reason: "unknown lease" });
        const revision = this.kvWrite([{ type: "put", key, value: args[1], ...(lease !== undefined ? { lease: String(lease) } : {}) }]);
        return { result: { version: this.kv.get(key)!.version, revision } };
      }
      case "delete": {
        const deleted = this.kv.has(key);
        const revision = deleted ? this.kvWrite([{ type: "delete", key }]) : this.revision;
        return { result: { deleted, revision } };
      }
      case "cas": {
        const cur = this.kv.get(key)?.version ?? 0;
        if (cur !== args[1]) return { result: { ok: false, version: cur } };
        this.kvWrite([{ type: "put", key, value: args[2] }]);
        return { result: { ok: true, version: cur + 1 } };
      }
      case "range": {
        const end = args[1] === undefined || args[1] === null ? undefined : String(args[1]);
        const limit = (args[2] as { limit?: number } | undefined)?.limit ?? Infinity;
        // JS string order equals UTF-8 byte order for the ASCII keys these tests use.
        const keys = [...this.kv.keys()].filter((k) => k >= key && (end === undefined || k < end)).sort();
        const items = keys.slice(0, limit).map((k) => ({ key: k, ...(({ lease: _l, ...e }) => e)(this.kv.get(k)!) }));
        return { result: { items, more: keys.length > limit, revision: this.revision } };
      }
      case "txn": {
        const t = args[0] as { compare: Array<{ key: string; target: string; op: string; value: unknown }>; success: unknown[]; failure: unknown[] };
        const ok = t.compare.every((cmp) => {
          const e = this.kv.get(cmp.key);
          const v = cmp.target === "version" ? (e?.version ?? 0) : cmp.target === "mod_revision" ? (e?.mod_revision ?? 0) : e?.value;
          switch (cmp.op) {
            case "==":
              return v === cmp.value;
            case "!=":
              return v !== cmp.value;
            case "<":
              return (v as number) < (cmp.value as number);
            default:
              return (v as number) > (cmp.value as number);
          }
        });
        const branch = (ok ? t.success : t.failure) as Array<{ put?: [string, unknown, { lease?: string }?]; delete?: string; get?: string }>;
        const writes: Array<{ type: "put" | "delete"; key: string; value?: unknown; lease?: string }> = [];
        const results: unknown[] = [];
        for (const o of branch) {
          if (o.get !== undefined) results.push(this.kvGet(o.get));
          else if (o.put !== undefined) {
            const lease = o.put[2]?.lease;
            if (lease !== undefined && !this.leases.has(String(lease))) throw MpregError.notFound("unknown lease", { reason: "unknown lease" });
            writes.push({ type: "put", key: o.put[0], value: o.put[1], ...(lease !== undefined ? { lease: String(lease) } : {}) });
            results.push({});
          } else if (o.delete !== undefined) {
            writes.push({ type: "delete", key: o.delete });
            results.push({});
          }
        }
        const revision = writes.length > 0 ? this.kvWrite(writes) : this.revision;
        return { result: { succeeded: ok, results, revision } };
      }
      case "watch": {
        const start = (args[1] as { start_revision?: number } | undefined)?.start_revision;
        if (start !== undefined && start <= this.compacted) {
          throw new MpregError(ErrorCode.INVALID_REQUEST, "revision compacted", { reason: "compacted", compact_revision: this.compacted });
        }
        const id = `w${++this.seq}`;
        c.watches.set(id, { prefix: key, next: start ?? this.revision + 1 });
        // Events (history first) follow the reply.
        return { result: { watch_id: id, revision: this.revision }, after: () => this.pumpWatches() };
      }
      case "unwatch":
        return { result: { ok: c.watches.delete(key) } };
      case "lease.grant": {
        const ttl = (args[0] as { ttl_ms: number }).ttl_ms;
        const id = `L${++this.seq}`;
        this.leases.set(id, { ttl_ms: ttl, expires: Date.now() + ttl });
        return { result: { lease_id: id, ttl_ms: ttl } };
      }
      case "lease.keepalive": {
        const l = this.leases.get(key);
        if (l === undefined) throw MpregError.notFound("unknown lease", { reason: "unknown lease" });
        l.expires = Date.now() + l.ttl_ms;
        return { result: { ttl_ms: l.ttl_ms } };
      }
      case "lease.revoke":
        return { result: { revoked: this.revokeLease(key) } };
      default:
        throw MpregError.notFound("no such function", { fun: `mpreg.kv.${op}` });
    }
  }
}
