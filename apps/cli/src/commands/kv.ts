/**
 * `mpreg kv get|put|delete|range|watch|lock`: the replicated key-value store (`mpreg.kv.*`,
 * PROTOCOL 10) and the lock built on its leases.
 */
import { UsageError, jsonArg } from "../args.js";
import type { Command, CommandContext } from "../command.js";
import { humanValue } from "../output.js";

export const kvCommand: Command = {
  name: "kv",
  summary: "get, put, delete, range over, watch or lock keys in the node's Raft key-value store",
  usage: [
    "mpreg kv get KEY",
    "       mpreg kv put KEY VALUE",
    "       mpreg kv delete KEY",
    "       mpreg kv range START [END] [--limit N]",
    "       mpreg kv watch PREFIX [--start-revision R] [--count N]",
    "       mpreg kv lock NAME [--ttl-ms MS] [--hold-ms MS]",
  ].join("\n"),
  details: [
    "VALUE is parsed as JSON when it can be, else stored as a string. The node must serve a Raft",
    "group (mpreg start --raft-group ...). `kv get` of a missing key prints nothing on stdout,",
    "says so on stderr and exits 1. `range` lists keys in [START, END) (END absent: START alone",
    "as a prefix), one `KEY VALUE` line each. `watch` prints each change as one JSON line, from",
    "--start-revision when given, until Ctrl-C or --count events. `lock` waits for the lock,",
    "prints `locked NAME`, holds it for --hold-ms (default: until Ctrl-C), then releases it;",
    "if this process dies, the lock passes on after --ttl-ms.",
  ].join("\n"),
  flags: {
    limit: { kind: "int", help: "range: at most this many keys", value: "N" },
    "start-revision": { kind: "int", help: "watch: replay changes from this revision", value: "R" },
    count: { kind: "int", help: "watch: exit 0 after this many events", value: "N" },
    "ttl-ms": { kind: "int", help: "lock: lease TTL (default 10000)", value: "MS" },
    "hold-ms": { kind: "int", help: "lock: release after this long (default: until Ctrl-C)", value: "MS" },
  },
  async run(ctx) {
    const [op, key, value, ...extra] = ctx.args.positionals;
    if (op === "range" || op === "watch" || op === "lock") return more(ctx, op, key, value, extra);
    if (op === undefined || !["get", "put", "delete"].includes(op)) throw new UsageError("kv needs get, put, delete, range, watch or lock");
    if (key === undefined) throw new UsageError(`kv ${op} needs a KEY`);
    const wantValue = op === "put";
    if (wantValue && value === undefined) throw new UsageError("kv put needs a VALUE");
    if ((!wantValue && value !== undefined) || extra.length > 0) throw new UsageError(`too many arguments for kv ${op}`);
    const client = await ctx.client();
    if (op === "get") {
      const r = (await client.call("mpreg.kv.get", [key])) as { found: boolean; value?: unknown };
      if (!r.found && !ctx.json) {
        ctx.io.stderr.write(`${key}: not found\n`);
        return 1;
      }
      ctx.print(r, () => humanValue(r.value));
      return r.found ? 0 : 1;
    }
    if (op === "put") {
      const r = (await client.call("mpreg.kv.put", [key, jsonArg(value!)])) as { version: number; revision?: number };
      ctx.print(r, () => `ok: ${key} version ${r.version}${r.revision === undefined ? "" : `, revision ${r.revision}`}`);
      return 0;
    }
    const r = (await client.call("mpreg.kv.delete", [key])) as { deleted: boolean | number; revision?: number };
    ctx.print(r, () => (r.deleted ? `deleted ${key}${r.revision === undefined ? "" : ` (revision ${r.revision})`}` : `${key} was not there`));
    return 0;
  },
};

/** The kv sub-commands that stream or hold: range, watch, lock. */
async function more(ctx: CommandContext, op: "range" | "watch" | "lock", arg: string | undefined, second: string | undefined, extra: string[]): Promise<number> {
  if (arg === undefined) throw new UsageError(`kv ${op} needs ${op === "range" ? "a START" : op === "watch" ? "a PREFIX" : "a NAME"}`);
  if (extra.length > 0 || (op !== "range" && second !== undefined)) throw new UsageError(`too many arguments for kv ${op}`);
  const f = ctx.args.flags;
  const client = await ctx.client();
  if (op === "range") {
    const limit = f.limit as number | undefined;
    // END absent: START is a prefix (etcdctl get --prefix): the range ends where the prefix does.
    const end = second ?? prefixEnd(arg);
    const r = await client.kv.range(arg, end, limit === undefined ? {} : { limit });
    ctx.print(r, () => r.items.map((kv) => `${kv.key} ${humanValue(kv.value)}`).join("\n"));
    return 0;
  }
  if (op === "watch") {
    const count = f.count as number | undefined;
    const start = f["start-revision"] as number | undefined;
    const watch = await client.kv.watch(arg, start === undefined ? {} : { start_revision: start });
    const stop = () => void watch.cancel();
    ctx.io.signal?.addEventListener("abort", stop, { once: true });
    let seen = 0;
    try {
      if (count === 0) return 0;
      for await (const event of watch) {
        ctx.io.stdout.write(`${JSON.stringify(event)}\n`);
        if (count !== undefined && ++seen >= count) break;
      }
      return 0;
    } finally {
      ctx.io.signal?.removeEventListener("abort", stop);
      await watch.cancel();
    }
  }
  const ttl = f["ttl-ms"] as number | undefined;
  const hold = f["hold-ms"] as number | undefined;
  const lock = await client.kv.lock(arg, ttl === undefined ? {} : { ttl_ms: ttl });
  ctx.print({ locked: arg, key: lock.key }, () => `locked ${arg}`);
  await new Promise<void>((resolve) => {
    const timer = hold === undefined ? undefined : setTimeout(resolve, hold);
    lock.signal.addEventListener("abort", () => resolve(), { once: true });
    ctx.io.signal?.addEventListener("abort", () => resolve(), { once: true });
    void timer;
  });
  const lost = lock.signal.aborted;
  await lock.unlock().catch(() => undefined);
  if (lost) {
    ctx.io.stderr.write(`lock ${arg} was lost (its lease expired)\n`);
    return 1;
  }
  if (!ctx.json) ctx.io.stderr.write(`released ${arg}\n`);
  return 0;
}

/** The first key after every key that starts with `prefix` (UTF-8 byte order), or "" for none. */
function prefixEnd(prefix: string): string | undefined {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i]!++;
      return end.toString("utf8");
    }
  }
  return undefined;
}
