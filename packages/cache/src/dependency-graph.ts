import { MpregError } from "@mpreg/envelope";
import { checkKey } from "./memory-cache.js";

/** Most dependencies one entry may name. */
export const MAX_DEPENDENCIES = 64;

/** Checks a `dependencies` argument: an array of at most MAX_DEPENDENCIES keys (deduplicated). */
export function checkDependencies(v: unknown, path = "dependencies"): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw MpregError.invalid("dependencies must be an array of keys", path);
  if (v.length > MAX_DEPENDENCIES) throw MpregError.invalid(`more than ${MAX_DEPENDENCIES} dependencies`, path);
  return [...new Set(v.map((k, i) => checkKey(k, `${path}[${i}]`)))];
}

/**
 * Who depends on whom: each held key's dependencies and, reversed, each key's dependents.
 * A key may depend on a key that is not held (an external fact such as `table.users`):
 * invalidating that key still reaches its dependents. Memory is bounded by the entries held
 * (at most MAX_DEPENDENCIES edges each): an entry's edges go when the entry goes.
 */
export class DependencyGraph {
  private readonly depsOf = new Map<string, readonly string[]>();
  private readonly dependents = new Map<string, Set<string>>();

  /** Sets `key`'s dependencies (replacing earlier ones); an empty list removes them. */
  set(key: string, deps: readonly string[]): void {
    this.remove(key);
    if (deps.length === 0) return;
    this.depsOf.set(key, deps);
    for (const d of deps) {
      let s = this.dependents.get(d);
      if (s === undefined) this.dependents.set(d, (s = new Set()));
      s.add(key);
    }
  }

  /** Forgets `key`'s own dependencies (keys that depend on it keep their edges). */
  remove(key: string): void {
    const deps = this.depsOf.get(key);
    if (deps === undefined) return;
    this.depsOf.delete(key);
    for (const d of deps) {
      const s = this.dependents.get(d);
      if (s === undefined) continue;
      s.delete(key);
      if (s.size === 0) this.dependents.delete(d);
    }
  }

  /** The dependencies recorded for `key`. */
  dependenciesOf(key: string): readonly string[] {
    return this.depsOf.get(key) ?? [];
  }

  /** Keys that name `key` as a dependency directly. */
  dependentsOf(key: string): ReadonlySet<string> {
    return this.dependents.get(key) ?? new Set();
  }

  /**
   * The roots and everything that depends on them, transitively. Breadth first with a visited
   * set, so a cycle ends the walk instead of looping. O(nodes + edges reached).
   */
  closure(roots: Iterable<string>): Set<string> {
    const seen = new Set<string>(roots);
    const queue = [...seen];
    for (let i = 0; i < queue.length; i++) {
      const s = this.dependents.get(queue[i] as string);
      if (s === undefined) continue;
      for (const k of s) {
        if (!seen.has(k)) {
          seen.add(k);
          queue.push(k);
        }
      }
    }
    return seen;
  }

  /** Number of keys with dependencies. */
  get size(): number {
    return this.depsOf.size;
  }

  clear(): void {
    this.depsOf.clear();
    this.dependents.clear();
  }
}
