/** Test support: a service on a simulated clock, and backends that count or hold their writes. */

import { SimClock } from "@mpreg/testkit";
import { MemoryBackend, MemoryVolume, type BatchOp, type KVStore, type StorageBackend } from "@mpreg/persistence";
import { QueueService, type QueueServiceOptions, type Timers } from "../src/index.js";

/** Timers on a SimClock that also count how many are armed (the service must keep at most one). */
export function simTimers(clock: SimClock): Timers & { armed: () => number } {
  const live = new Set<number>();
  return {
    setTimeout(fn, ms) {
      const id = clock.setTimeout(() => {
        live.delete(id);
        fn();
      }, ms);
      live.add(id);
      return id;
    },
    clearTimeout(h) {
      live.delete(h as number);
      clock.clearTimeout(h as number);
    },
    armed: () => live.size,
  };
}

/** A service on a SimClock starting at `startMs`, with counter ids. */
export async function simService(clock: SimClock, opts: Partial<QueueServiceOptions> = {}) {
  const timers = simTimers(clock);
  let n = 0;
  const service = await QueueService.open({ now: () => clock.now(), timers, newId: () => `id${String(++n).padStart(6, "0")}`, ...opts });
  return { service, timers };
}

/** Wraps a backend: counts kv batches, and can hold them until released (to see what waits for durability). */
export class GatedBackend implements StorageBackend {
  readonly kind = "memory" as const;
  batches = 0;
  batchOps: number[] = [];
  held: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  gate = false;
  failNext: unknown = undefined;

  constructor(readonly inner: StorageBackend) {}

  kv(ns: string): KVStore {
    const kv = this.inner.kv(ns);
    return {
      get: (k) => kv.get(k),
      put: (k, v) => kv.put(k, v),
      del: (k) => kv.del(k),
      range: (o) => kv.range(o),
      batch: async (ops: readonly BatchOp[]) => {
        this.batches++;
        this.batchOps.push(ops.length);
        if (this.failNext !== undefined) {
          const e = this.failNext;
          this.failNext = undefined;
          throw e;
        }
        if (this.gate) await new Promise<void>((resolve, reject) => this.held.push({ resolve, reject }));
        await kv.batch(ops);
      },
    };
  }
  log(ns: string) {
    return this.inner.log(ns);
  }
  snapshots(ns: string) {
    return this.inner.snapshots(ns);
  }
  flush() {
    return this.inner.flush();
  }
  close() {
    return this.inner.close();
  }

  /** Lets every held batch through. */
  release(): void {
    this.gate = false;
    for (const h of this.held.splice(0)) h.resolve();
  }
}

/** A memory volume that can be reopened, as a restart would. */
export function reopenable() {
  const volume = new MemoryVolume();
  let current: MemoryBackend | undefined;
  return {
    volume,
    async open(): Promise<MemoryBackend> {
      if (current) await current.close();
      current = new MemoryBackend({ volume });
      return current;
    },
  };
}

/** Lets pending microtasks and immediates run. */
export const turn = () => new Promise<void>((r) => setImmediate(r));
