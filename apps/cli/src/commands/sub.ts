/** `mpreg sub PATTERN...`: print messages as they arrive, one JSON object per line. */
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { FrameSession } from "../frame-session.js";

export const subCommand: Command = {
  name: "sub",
  summary: "subscribe to topic patterns and print each message as one JSON line",
  usage: "mpreg sub PATTERN... [--count N] [--backlog-seconds S] [--backlog-max N]",
  details: [
    "Patterns are dot-separated; * matches one segment, # zero or more (orders.*.created, logs.#).",
    "Each line is {topic, payload, headers, message_id, publisher, timestamp}. Runs until Ctrl-C,",
    "or until --count messages arrived; exits 1 if the node closes the connection.",
  ].join("\n"),
  flags: {
    count: { kind: "int", help: "exit 0 after this many messages", value: "N" },
    "backlog-seconds": { kind: "int", help: "first deliver retained messages younger than this", value: "S" },
    "backlog-max": { kind: "int", help: "at most this many retained messages", value: "N" },
  },
  async run(ctx) {
    const patterns = ctx.args.positionals;
    if (patterns.length === 0) throw new UsageError("sub needs at least one PATTERN");
    const count = ctx.args.flags.count as number | undefined;
    const seconds = ctx.args.flags["backlog-seconds"] as number | undefined;
    const max = ctx.args.flags["backlog-max"] as number | undefined;
    const backlog = seconds === undefined && max === undefined ? undefined : { ...(seconds === undefined ? {} : { seconds }), ...(max === undefined ? {} : { max }) };
    const session = await FrameSession.open(ctx.url, ctx.token);
    let received = 0;
    const done = new Promise<number>((resolve) => {
      session.onPush((frame) => {
        if (frame.role !== "pubsub-notification") return;
        ctx.io.stdout.write(`${JSON.stringify(frame.message)}\n`);
        if (count !== undefined && ++received >= count) resolve(0);
      });
      session.onClose((reason) => {
        ctx.io.stderr.write(`mpreg sub: connection closed${reason ? ` (${reason})` : ""}\n`);
        resolve(1);
      });
      ctx.io.signal?.addEventListener("abort", () => resolve(0), { once: true });
    });
    try {
      const ack = await session.request(
        { role: "pubsub-subscribe", subscription: { patterns, ...(backlog === undefined ? {} : { backlog }) } },
        ctx.timeoutMs,
      );
      if (!ctx.json) ctx.io.stderr.write(`subscribed to ${patterns.join(", ")} (${String(ack.subscription_id)}); Ctrl-C to stop\n`);
      if (count === 0) return 0;
      return await done;
    } finally {
      session.onClose(() => {}); // our own close is not news
      session.close();
    }
  },
};
