/** `mpreg pub TOPIC PAYLOAD`: publish one message (PROTOCOL section 4). */
import { UsageError, jsonArg } from "../args.js";
import type { Command } from "../command.js";
import { FrameSession } from "../frame-session.js";

/** Parses repeated `--header k=v` flags. */
export function headerFlags(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list ?? []) {
    const eq = h.indexOf("=");
    if (eq <= 0) throw new UsageError(`--header takes key=value, got "${h}"`);
    out[h.slice(0, eq)] = h.slice(eq + 1);
  }
  return out;
}

export const pubCommand: Command = {
  name: "pub",
  summary: "publish a message on a topic",
  usage: "mpreg pub TOPIC PAYLOAD [--header k=v]...",
  details: "PAYLOAD is parsed as JSON when it can be, else sent as a string. Prints the message id once\nthe node accepted the message for delivery.",
  flags: { header: { kind: "list", help: "a message header; repeatable", value: "K=V" } },
  async run(ctx) {
    const [topic, payload, ...extra] = ctx.args.positionals;
    if (topic === undefined || payload === undefined) throw new UsageError("pub needs a TOPIC and a PAYLOAD");
    if (extra.length > 0) throw new UsageError("pub takes one PAYLOAD (quote it)");
    const headers = headerFlags(ctx.args.flags.header as string[] | undefined);
    const session = await FrameSession.open(ctx.url, ctx.token);
    try {
      const ack = await session.request(
        { role: "pubsub-publish", message: { topic, payload: jsonArg(payload), ...(Object.keys(headers).length > 0 ? { headers } : {}) } },
        ctx.timeoutMs,
      );
      ctx.print({ message_id: ack.message_id ?? null }, () => `published ${topic}${ack.message_id ? ` (${String(ack.message_id)})` : ""}`);
      return 0;
    } finally {
      session.close();
    }
  },
};
