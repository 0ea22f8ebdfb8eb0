import { MpregError } from "@mpreg/envelope";

/** Most loads in flight per namespace; past it `getOrCompute` fails with 1007. */
export const MAX_IN_FLIGHT_LOADS = 10_000;

interface Flight {
  promise: Promise<unknown>;
  /** The dependencies the result will be stored with. */
  deps: readonly string[];
  /** Set when the key changed while loading: the result is returned but not cached. */
  stale: boolean;
}

/**
 * Runs one loader per key at a time: concurrent callers for a key share the first caller's
 * promise. A flight marked stale (the key was written, deleted or invalidated meanwhile) still
 * answers its callers, but its result must not be stored (it may predate the change).
 */
export class SingleFlight {
  private readonly flights = new Map<string, Flight>();

  get size(): number {
    return this.flights.size;
  }

  /**
   * Joins the flight for `key` or starts one with `load`; `store(value)` runs when the load
   * succeeded and the flight is not stale.
   */
  run<T>(key: string, deps: readonly string[], load: () => Promise<T>, store: (value: T) => Promise<void>): Promise<T> {
    const f = this.flights.get(key);
    if (f !== undefined) return f.promise as Promise<T>;
    if (this.flights.size >= MAX_IN_FLIGHT_LOADS) {
      return Promise.reject(MpregError.overloaded(`${MAX_IN_FLIGHT_LOADS} cache loads in flight`, 100));
    }
    const flight: Flight = { promise: Promise.resolve(), deps, stale: false };
    // In the map before `load` runs: a loader that throws synchronously still ends in `finally`.
    this.flights.set(key, flight);
    flight.promise = (async () => {
      try {
        const v = await load();
        if (!flight.stale) await store(v);
        return v;
      } finally {
        if (this.flights.get(key) === flight) this.flights.delete(key);
      }
    })();
    return flight.promise as Promise<T>;
  }

  /**
   * An invalidation removed `keys` (and matched `pattern`): flights for those keys, for keys
   * matching the pattern, or whose result depends on one of those keys, turn stale.
   */
  markStaleWhere(keys: ReadonlySet<string>, matches: ((key: string) => boolean) | undefined): void {
    for (const [k, f] of this.flights) {
      if (keys.has(k) || matches?.(k) === true || f.deps.some((d) => keys.has(d))) f.stale = true;
    }
  }

  /** The key changed: a load in flight must not store its (possibly older) result. */
  markStale(key: string): void {
    const f = this.flights.get(key);
    if (f !== undefined) f.stale = true;
  }
}
