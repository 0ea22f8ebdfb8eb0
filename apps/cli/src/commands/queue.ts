/** `mpreg queue ...`: the `mpreg.queue.*` built-ins (PROTOCOL section 5). */
import { UsageError, jsonArg } from "../args.js";
import type { Command } from "../command.js";
import { humanValue, table } from "../output.js";

/** Options of `create`, `send` and `receive`, from flags, in the wire's snake_case. */
function pick(flags: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const n of names) if (flags[n] !== undefined) out[n.replace(/-/g, "_")] = flags[n];
  return out;
}

const OPS = ["create", "send", "receive", "ack", "nack", "stats", "list", "delete", "purge"] as const;

export const queueCommand: Command = {
  name: "queue",
  summary: "create queues, send, receive and acknowledge messages, show stats",
  usage: [
    "mpreg queue create NAME [--type standard|fifo|priority] [--visibility-timeout-ms MS] [--max-receives N] [--dead-letter-queue Q] [--delay-ms MS]",
    "       mpreg queue send NAME BODY [--delay-ms MS] [--priority N] [--group-id G] [--dedup-id D]",
    "       mpreg queue receive NAME [--max N] [--wait-ms MS] [--ack]",
    "       mpreg queue ack|nack NAME RECEIPT",
    "       mpreg queue stats|delete|purge NAME",
    "       mpreg queue list",
  ].join("\n"),
  details: "BODY is parsed as JSON when it can be. `receive --ack` acknowledges what it printed.",
  flags: {
    type: { kind: "string", help: "queue type (create)", value: "T" },
    "visibility-timeout-ms": { kind: "int", help: "how long a received message stays invisible", value: "MS" },
    "max-receives": { kind: "int", help: "receives before dead-lettering (create)" },
    "dead-letter-queue": { kind: "string", help: "dead-letter queue name (create)", value: "Q" },
    "delay-ms": { kind: "int", help: "delivery delay (create: default, send: this message)", value: "MS" },
    priority: { kind: "int", help: "message priority (send, priority queues)" },
    "group-id": { kind: "string", help: "FIFO group (send)", value: "G" },
    "dedup-id": { kind: "string", help: "deduplication id (send)", value: "D" },
    max: { kind: "int", help: "most messages to receive (1..100)" },
    "wait-ms": { kind: "int", help: "long-poll up to this long (receive)", value: "MS" },
    ack: { kind: "bool", help: "acknowledge received messages after printing them" },
  },
  async run(ctx) {
    const [op, name, arg, ...extra] = ctx.args.positionals;
    const f = ctx.args.flags;
    if (op === undefined || !(OPS as readonly string[]).includes(op)) throw new UsageError(`queue needs one of ${OPS.join(", ")}`);
    if (op !== "list" && name === undefined) throw new UsageError(`queue ${op} needs a queue NAME`);
    if (extra.length > 0) throw new UsageError(`too many arguments for queue ${op}`);
    const client = await ctx.client();
    const call = (fun: string, args: unknown[]) => client.call(`mpreg.queue.${fun}`, args, { timeout_ms: ctx.timeoutMs });
    switch (op) {
      case "create": {
        const r = (await call("create", [name, pick(f, ["type", "visibility-timeout-ms", "max-receives", "dead-letter-queue", "delay-ms"])])) as { created: boolean };
        ctx.print(r, () => (r.created ? `created queue ${name}` : `queue ${name} already exists`));
        return 0;
      }
      case "send": {
        if (arg === undefined) throw new UsageError("queue send needs a BODY");
        const r = (await call("send", [name, jsonArg(arg), pick(f, ["delay-ms", "priority", "group-id", "dedup-id"])])) as { message_id: string; duplicate: boolean };
        ctx.print(r, () => `sent ${r.message_id}${r.duplicate ? " (duplicate: not enqueued again)" : ""}`);
        return 0;
      }
      case "receive": {
        const msgs = (await call("receive", [name, pick(f, ["max", "wait-ms", "visibility-timeout-ms"])])) as { receipt: string; message_id: string; body: unknown; receive_count: number }[];
        if (f.ack === true) for (const m of msgs) await call("ack", [name, m.receipt]);
        ctx.print(msgs, () =>
          msgs.length === 0 ? "(no message)" : msgs.map((m) => `${m.message_id}  receives=${m.receive_count}  receipt=${m.receipt}\n${humanValue(m.body)}`).join("\n"),
        );
        return 0;
      }
      case "ack":
      case "nack": {
        if (arg === undefined) throw new UsageError(`queue ${op} needs a RECEIPT`);
        const r = await call(op, [name, arg]);
        ctx.print(r, () => `${op === "ack" ? "acknowledged" : "returned"} ${arg}`);
        return 0;
      }
      case "list": {
        const r = await call("list", []);
        ctx.print(r, () => humanValue(r));
        return 0;
      }
      default: {
        // stats, delete, purge
        const r = (await call(op, [name])) as Record<string, unknown>;
        ctx.print(r, () => (op === "stats" ? table(["COUNTER", "VALUE"], Object.entries(r)) : `${op}: ${humanValue(r)}`));
        return 0;
      }
    }
  },
};
