/**
 * Push subscriptions to a queue that lives on another node. A subscription belongs to the
 * connection that opened it, and the queue's owner cannot push to a connection of another node;
 * so the node the client is connected to runs the subscription itself: it long-polls the
 * (forwarded) `receive` for as many messages as the prefetch allows and pushes each as a
 * `queue-delivery` frame. An ack or nack through this node frees the slot at once.
 */
import { ErrorCode, MpregError, createLogger, newId, type BuiltinContext, type ServiceBuiltin } from "@mpreg/envelope";
import type { ReceivedMessage } from "./types.js";
import { DEFAULT_LIMITS } from "./limits.js";
import { parseQueueName, parseSubscribeOptions } from "./validate.js";

const log = createLogger("mpreg.queue.relay");

/** Options of {@link relaySubscriptions}. */
export interface RelayOptions {
  /** True when the queue lives on this node (then the subscription is the queue's own). */
  isLocal: (name: string) => boolean;
  /** Most relayed subscriptions on this node; past it `subscribe` is 1007. Default 10 000. */
  maxRelays?: number;
  /**
   * How long a delivered message holds a prefetch slot without an ack or nack through this node
   * (the owner returns it to the queue after its visibility timeout). Default 30 000 ms.
   */
  slotHoldMs?: number;
  /** Wait after a failed receive (owner unreachable, ...) before the next. Default 1000 ms. */
  retryMs?: number;
}

/** The queue built-ins with relayed subscriptions, and what the node must report to them. */
export interface RelayedBuiltins {
  readonly builtins: ServiceBuiltin[];
  /** A connection closed: its relayed subscriptions end. */
  closeOwner(owner: string): void;
  /** Ends every relayed subscription. */
  close(): void;
  /** Relayed subscriptions open now. */
  size(): number;
}

interface Relay {
  readonly id: string;
  readonly name: string;
  readonly owner: string;
  readonly prefetch: number;
  readonly push: (frame: object) => void;
  /** Receipts delivered and not yet settled through this node, with when they were delivered. */
  readonly held: Map<string, number>;
  readonly abort: AbortController;
  stopped: boolean;
  wake?: (() => void) | undefined;
}

/**
 * Wraps the queue built-ins (already forwarded to owners, e.g. by `forwardToOwner`) so that
 * `mpreg.queue.subscribe` to a queue of another node is relayed by this node (see the module
 * comment); `ack`/`nack` free relayed slots, `unsubscribe` and `closeOwner` end relays.
 */
export function relaySubscriptions(builtins: readonly ServiceBuiltin[], opts: RelayOptions): RelayedBuiltins {
  const byName = new Map(builtins.map((b) => [b.name, b]));
  const need = (name: string): ServiceBuiltin => {
    const b = byName.get(name);
    if (b === undefined) throw new Error(`relaySubscriptions needs ${name}`);
    return b;
  };
  const receive = need("mpreg.queue.receive");
  const nack = need("mpreg.queue.nack");
  const stats = need("mpreg.queue.stats");
  const maxRelays = opts.maxRelays ?? 10_000;
  const slotHoldMs = opts.slotHoldMs ?? 30_000;
  const retryMs = opts.retryMs ?? 1000;
  const relays = new Map<string, Relay>();
  const byReceipt = new Map<string, Relay>();
  const byOwner = new Map<string, Set<Relay>>();

  const internalCtx = (r: Relay): BuiltinContext => ({ owner: r.owner, push: () => undefined, signal: r.abort.signal, request_id: r.id });
  /** Hands a delivery back to the queue (visible again at once), as the owner does for a closed subscriber. */
  const giveBack = (r: Relay, receipt: string): void => {
    const ctx: BuiltinContext = { owner: r.owner, push: () => undefined, signal: new AbortController().signal, request_id: r.id };
    void Promise.resolve()
      .then(() => nack.run([r.name, receipt], ctx))
      .catch(() => undefined); // already settled or expired: nothing to give back
  };

  const stop = (r: Relay): void => {
    if (r.stopped) return;
    r.stopped = true;
    r.abort.abort();
    r.wake?.();
    relays.delete(r.id);
    // Unsettled deliveries go back to the queue, as a local subscription's do when it ends.
    for (const receipt of r.held.keys()) {
      byReceipt.delete(receipt);
      giveBack(r, receipt);
    }
    r.held.clear();
    const set = byOwner.get(r.owner);
    set?.delete(r);
    if (set?.size === 0) byOwner.delete(r.owner);
  };

  /** Waits until a slot may be free again, or `ms`. */
  const sleep = (r: Relay, ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done(): void {
        clearTimeout(t);
        r.wake = undefined;
        resolve();
      }
      r.wake = done;
    });

  const pump = async (r: Relay): Promise<void> => {
    while (!r.stopped) {
      const now = Date.now();
      let oldest = Infinity;
      for (const [receipt, at] of r.held) {
        if (now - at >= slotHoldMs) {
          r.held.delete(receipt);
          byReceipt.delete(receipt);
        } else oldest = Math.min(oldest, at);
      }
      const free = r.prefetch - r.held.size;
      if (free <= 0) {
        await sleep(r, oldest + slotHoldMs - now);
        continue;
      }
      let msgs: ReceivedMessage[];
      try {
        msgs = (await receive.run([r.name, { max: Math.min(free, 100), wait_ms: 20_000 }], internalCtx(r))) as ReceivedMessage[];
      } catch (e) {
        if (r.stopped) break;
        log.debug(`relayed subscription ${r.id} to ${r.name}: receive failed (${(e as Error).message}); retrying`);
        await sleep(r, retryMs);
        continue;
      }
      for (const m of msgs) {
        if (r.stopped) {
          // Ended while the receive was answered: hand the message back at once.
          giveBack(r, m.receipt);
          continue;
        }
        r.held.set(m.receipt, Date.now());
        byReceipt.set(m.receipt, r);
        try {
          r.push({ role: "queue-delivery", subscription_id: r.id, message: m });
        } catch (e) {
          log.debug(`relayed subscription ${r.id}: push failed (${(e as Error).message}); ending it`);
          stop(r);
        }
      }
    }
  };

  /** An ack or nack of a relayed delivery frees its slot (whatever the owner answered). */
  const settles = (b: ServiceBuiltin): ServiceBuiltin => ({
    ...b,
    run: async (args, ctx) => {
      try {
        return await b.run(args, ctx);
      } finally {
        const receipt = args[1];
        const r = typeof receipt === "string" ? byReceipt.get(receipt) : undefined;
        if (r !== undefined && r.owner === ctx.owner) {
          byReceipt.delete(receipt as string);
          r.held.delete(receipt as string);
          r.wake?.();
        }
      }
    },
  });

  const wrapped = builtins.map((b): ServiceBuiltin => {
    switch (b.name) {
      case "mpreg.queue.ack":
      case "mpreg.queue.nack":
        return settles(b);
      case "mpreg.queue.unsubscribe":
        return {
          ...b,
          run: (args, ctx) => {
            const r = typeof args[0] === "string" ? relays.get(args[0]) : undefined;
            if (r === undefined || r.owner !== ctx.owner) return b.run(args, ctx);
            stop(r);
            return { ok: true };
          },
        };
      case "mpreg.queue.subscribe":
        return {
          ...b,
          run: async (args, ctx) => {
            const name = args[0];
            if (typeof name !== "string" || opts.isLocal(name)) return b.run(args, ctx);
            parseQueueName(name, "args.0");
            const { prefetch } = parseSubscribeOptions(args[1], DEFAULT_LIMITS);
            if (relays.size >= maxRelays) throw new MpregError(ErrorCode.OVERLOADED, `too many relayed queue subscriptions on this node (${maxRelays})`, { reason: "relay_limit", limit: maxRelays });
            // The queue must exist (1001 otherwise) and its owner answer (1005 otherwise).
            await stats.run([name], ctx);
            const r: Relay = { id: `relay-${newId()}`, name, owner: ctx.owner, prefetch, push: (f) => ctx.push(f), held: new Map(), abort: new AbortController(), stopped: false };
            relays.set(r.id, r);
            let set = byOwner.get(r.owner);
            if (set === undefined) byOwner.set(r.owner, (set = new Set()));
            set.add(r);
            // Deliveries start after the answer has gone out (as for a local subscription).
            setImmediate(() => void pump(r));
            return { subscription_id: r.id };
          },
        };
      default:
        return b;
    }
  });

  return {
    builtins: wrapped,
    closeOwner: (owner) => {
      for (const r of [...(byOwner.get(owner) ?? [])]) stop(r);
    },
    close: () => {
      for (const r of [...relays.values()]) stop(r);
    },
    size: () => relays.size,
  };
}

