/** `mpreg kv get|put|delete KEY [VALUE]`: the replicated key-value store (`mpreg.kv.*`, PROTOCOL 10). */
import { UsageError, jsonArg } from "../args.js";
import type { Command } from "../command.js";
import { humanValue } from "../output.js";

export const kvCommand: Command = {
  name: "kv",
  summary: "get, put or delete a key in the node's Raft key-value store",
  usage: "mpreg kv get KEY\n       mpreg kv put KEY VALUE\n       mpreg kv delete KEY",
  details: [
    "VALUE is parsed as JSON when it can be, else stored as a string. The node must serve a Raft",
    "group (mpreg start --raft-group ...). `kv get` of a missing key prints nothing on stdout,",
    "says so on stderr and exits 1.",
  ].join("\n"),
  async run(ctx) {
    const [op, key, value, ...extra] = ctx.args.positionals;
    if (op === undefined || !["get", "put", "delete"].includes(op)) throw new UsageError("kv needs get, put or delete");
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
