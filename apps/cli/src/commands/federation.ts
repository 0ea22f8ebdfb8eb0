/**
 * `mpreg federation ...`: the node's federation (docs/federation.md): `status`
 * (`federation_status`), `rotate-key` (`federation_rotate_key`, administrative) and `reload`
 * (`config_reload`, administrative: the same as sending the node SIGHUP).
 */
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { humanValue } from "../output.js";

const OPS = ["status", "rotate-key", "reload"] as const;

export const federationCommand: Command = {
  name: "federation",
  summary: "federation status, rotate the cluster's signing key, reload the configuration",
  usage: ["mpreg federation status", "       mpreg federation rotate-key [--overlap-ms MS]", "       mpreg federation reload"].join("\n"),
  details: [
    "rotate-key: the node generates a new Ed25519 key, writes its seed to its",
    "federation.keys.signingKeyFile (mode 0600), announces it signed by the current key and signs",
    "with it from then on; neighbours keep trusting the old key for --overlap-ms (default 60000).",
    "reload: re-reads the node's configuration and applies federation policies and trusted keys;",
    "prints what changed but needs a restart. Both need the admin scope.",
  ].join("\n"),
  flags: { "overlap-ms": { kind: "int", help: "how long neighbours still accept the old key (rotate-key)", value: "MS" } },
  async run(ctx) {
    const [op, ...extra] = ctx.args.positionals;
    if (op === undefined || !(OPS as readonly string[]).includes(op)) throw new UsageError(`federation needs one of ${OPS.join(", ")}`);
    if (extra.length > 0) throw new UsageError(`too many arguments for federation ${op}`);
    const client = await ctx.client();
    const call = (fun: string, args: unknown[] = []) => client.call(fun, args, { timeout_ms: ctx.timeoutMs });
    switch (op) {
      case "status": {
        const r = await call("federation_status");
        ctx.print(r, () => humanValue(r));
        return 0;
      }
      case "rotate-key": {
        const overlap = ctx.args.flags["overlap-ms"];
        const r = (await call("federation_rotate_key", [overlap === undefined ? {} : { overlap_ms: overlap }])) as { key_id: string; public_key: string; key_file: string; overlap_ms: number };
        ctx.print(r, () => `new signing key ${r.key_id} (public key ${r.public_key}), seed written to ${r.key_file}; the old key stays valid for ${r.overlap_ms} ms`);
        return 0;
      }
      default: {
        const r = (await call("config_reload")) as { applied: string[]; not_applied: string[] };
        ctx.print(r, () => `applied: ${r.applied.join(", ") || "nothing"}\nnot applied (needs a restart): ${r.not_applied.join(", ") || "nothing"}`);
        return 0;
      }
    }
  },
};
