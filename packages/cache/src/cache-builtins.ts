import { MpregError, type ServiceBuiltin } from "@mpreg/envelope";
import type { CacheService } from "./cache-service.js";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The options object at `args[i]` (absent: `{}`); 1002 when it is not an object. */
function options(args: readonly unknown[], i: number): Record<string, unknown> {
  const o = args[i];
  if (o === undefined || o === null) return {};
  if (!isObject(o)) throw MpregError.invalid(`argument ${i + 1} must be an options object`, `args[${i}]`);
  return o;
}

function str(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw MpregError.invalid(`${name} must be a string`, name);
  return v;
}

function keyArg(args: readonly unknown[]): string {
  const k = args[0];
  if (typeof k !== "string") throw MpregError.invalid("key must be a string (the first argument)", "key");
  return k;
}

/**
 * The cache's built-in functions (PROTOCOL section 6), for the node to register:
 * - `mpreg.cache.get [key, {namespace?}]` → `{hit, value?}`
 * - `mpreg.cache.put [key, value, {namespace?, ttl_ms?, dependencies?, cost?}]` → `{ok: true}`
 * - `mpreg.cache.delete [key, {namespace?}]` → `{deleted}`
 * - `mpreg.cache.invalidate [{namespace?, pattern?, dependency?}]` → `{invalidated: n}`
 * - `mpreg.cache.stats [{namespace?}]` → `{hits, misses, evictions, entries, bytes}`
 * Bad arguments, an unknown namespace or a value over the namespace's limit fail with 1002
 * whose `path` names the field; unknown option fields are ignored (as everywhere on the wire).
 */
export function cacheBuiltins(service: CacheService): ServiceBuiltin[] {
  return [
    {
      name: "mpreg.cache.get",
      description: "Read a cached value: [key, {namespace?}] -> {hit, value?}",
      async run(args) {
        const o = options(args, 1);
        const r = await service.get(keyArg(args), { namespace: str(o.namespace, "namespace") });
        return r.hit ? { hit: true, value: r.value } : { hit: false };
      },
    },
    {
      name: "mpreg.cache.put",
      description: "Cache a value: [key, value, {namespace?, ttl_ms?, dependencies?, cost?}] -> {ok}",
      async run(args) {
        const key = keyArg(args);
        if (args.length < 2 || args[1] === undefined) throw MpregError.invalid("value is missing (the second argument)", "value");
        const o = options(args, 2);
        await service.put(key, args[1], {
          namespace: str(o.namespace, "namespace"),
          ttl_ms: o.ttl_ms as number | undefined,
          dependencies: o.dependencies as string[] | undefined,
          cost: o.cost as number | undefined,
        });
        return { ok: true };
      },
    },
    {
      name: "mpreg.cache.delete",
      description: "Remove a cached key: [key, {namespace?}] -> {deleted}",
      async run(args) {
        const o = options(args, 1);
        return { deleted: await service.delete(keyArg(args), { namespace: str(o.namespace, "namespace") }) };
      },
    },
    {
      name: "mpreg.cache.invalidate",
      description: "Invalidate by pattern or dependency (cascading): [{namespace?, pattern?, dependency?}] -> {invalidated}",
      async run(args) {
        const o = options(args, 0);
        const invalidated = await service.invalidate({
          namespace: str(o.namespace, "namespace"),
          pattern: str(o.pattern, "pattern"),
          dependency: str(o.dependency, "dependency"),
        });
        return { invalidated };
      },
    },
    {
      name: "mpreg.cache.stats",
      description: "Cache statistics of a namespace: [{namespace?}] -> {hits, misses, evictions, entries, bytes}",
      run(args) {
        const o = options(args, 0);
        const s = service.stats({ namespace: str(o.namespace, "namespace") });
        return { hits: s.hits, misses: s.misses, evictions: s.evictions, entries: s.entries, bytes: s.bytes };
      },
    },
  ];
}
