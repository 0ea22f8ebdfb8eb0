/** `mpreg cache ...`: the `mpreg.cache.*` built-ins (PROTOCOL section 6). */
import { UsageError, jsonArg } from "../args.js";
import type { Command } from "../command.js";
import { humanValue, table } from "../output.js";

const OPS = ["get", "put", "delete", "invalidate", "stats"] as const;

export const cacheCommand: Command = {
  name: "cache",
  summary: "get, put, delete and invalidate cache entries, show statistics",
  usage: [
    "mpreg cache get KEY [--namespace NS]",
    "       mpreg cache put KEY VALUE [--namespace NS] [--ttl-ms MS] [--dependency KEY]...",
    "       mpreg cache delete KEY [--namespace NS]",
    "       mpreg cache invalidate [--namespace NS] [--pattern P] [--dependency KEY]",
    "       mpreg cache stats [--namespace NS]",
  ].join("\n"),
  details: "VALUE is parsed as JSON when it can be. `cache get` of a missing key says so on stderr and exits 1.",
  flags: {
    namespace: { kind: "string", help: "cache namespace", value: "NS" },
    "ttl-ms": { kind: "int", help: "time to live (put)", value: "MS" },
    dependency: { kind: "list", help: "a key this entry depends on (put; repeatable) / to invalidate by", value: "KEY" },
    pattern: { kind: "string", help: "key pattern to invalidate (* one segment, # any)", value: "P" },
  },
  async run(ctx) {
    const [op, key, value, ...extra] = ctx.args.positionals;
    const f = ctx.args.flags;
    if (op === undefined || !(OPS as readonly string[]).includes(op)) throw new UsageError(`cache needs one of ${OPS.join(", ")}`);
    if (extra.length > 0) throw new UsageError(`too many arguments for cache ${op}`);
    const ns = f.namespace === undefined ? {} : { namespace: f.namespace };
    const client = await ctx.client();
    const call = (fun: string, args: unknown[]) => client.call(`mpreg.cache.${fun}`, args, { timeout_ms: ctx.timeoutMs });
    const needKey = () => {
      if (key === undefined) throw new UsageError(`cache ${op} needs a KEY`);
      return key;
    };
    switch (op) {
      case "get": {
        const r = (await call("get", [needKey(), ns])) as { hit: boolean; value?: unknown };
        if (!r.hit && !ctx.json) {
          ctx.io.stderr.write(`${key}: not cached\n`);
          return 1;
        }
        ctx.print(r, () => humanValue(r.value));
        return r.hit ? 0 : 1;
      }
      case "put": {
        if (value === undefined) throw new UsageError("cache put needs a VALUE");
        const deps = f.dependency as string[] | undefined;
        const opts = { ...ns, ...(f["ttl-ms"] === undefined ? {} : { ttl_ms: f["ttl-ms"] }), ...(deps === undefined ? {} : { dependencies: deps }) };
        const r = await call("put", [needKey(), jsonArg(value), opts]);
        ctx.print(r, () => `cached ${key}`);
        return 0;
      }
      case "delete": {
        const r = (await call("delete", [needKey(), ns])) as { deleted: boolean };
        ctx.print(r, () => (r.deleted ? `deleted ${key}` : `${key} was not cached`));
        return 0;
      }
      case "invalidate": {
        if (key !== undefined) throw new UsageError("cache invalidate takes --pattern or --dependency, not a KEY");
        const dep = (f.dependency as string[] | undefined)?.[0];
        const r = (await call("invalidate", [{ ...ns, ...(f.pattern === undefined ? {} : { pattern: f.pattern }), ...(dep === undefined ? {} : { dependency: dep }) }])) as { invalidated: number };
        ctx.print(r, () => `invalidated ${r.invalidated} entr${r.invalidated === 1 ? "y" : "ies"}`);
        return 0;
      }
      default: {
        const r = (await call("stats", [ns])) as Record<string, unknown>;
        ctx.print(r, () => table(["COUNTER", "VALUE"], Object.entries(r)));
        return 0;
      }
    }
  },
};
