/**
 * The `mpreg.queue.*` built-in functions of PROTOCOL section 5, as a table the node registers
 * (`ServiceBuiltin` from `@mpreg/envelope`). Every argument is checked by the queue service;
 * this table only checks the argument count and binds connection-scoped calls to `ctx.owner`.
 */

import { MpregError, type BuiltinContext, type ServiceBuiltin } from "@mpreg/envelope";
import type { QueueService } from "./queue-service.js";
import type { NackOptions, QueueOptions, ReceiveOptions, SendOptions, SubscribeOptions } from "./types.js";

/** The prefix of every queue built-in. */
export const QUEUE_BUILTIN_PREFIX = "mpreg.queue.";

function arity(fn: string, args: readonly unknown[], max: number): void {
  if (!Array.isArray(args)) throw MpregError.invalid(`${fn} takes an argument list`, "args");
  if (args.length > max) throw MpregError.invalid(`${fn} takes at most ${max} argument${max === 1 ? "" : "s"}`, `args[${max}]`);
}

/** The queue built-ins bound to `service`; `delete` and `purge` are marked `admin`. */
export function queueBuiltins(service: QueueService): ServiceBuiltin[] {
  const def = (
    short: string,
    max: number,
    description: string,
    run: (a: readonly unknown[], ctx: BuiltinContext) => unknown,
    admin = false,
  ): ServiceBuiltin => {
    const name = QUEUE_BUILTIN_PREFIX + short;
    return {
      name,
      description,
      ...(admin ? { admin: true } : {}),
      run(args, ctx) {
        arity(name, args, max);
        return run(args, ctx);
      },
    };
  };
  // The service validates every value; the casts only hand the unchecked wire values over.
  const s = (v: unknown) => v as string;
  return [
    def("create", 2, "create a queue: [name, {type, visibility_timeout_ms, max_receives, dead_letter_queue, delay_ms, dedup_window_ms, max_messages, durable}]", (a) =>
      service.create(s(a[0]), a[1] as Partial<QueueOptions> | undefined),
    ),
    def("send", 3, "send a message: [name, body, {delay_ms, priority, group_id, dedup_id, delivery, quorum}] -> {message_id, duplicate}", (a, ctx) =>
      service.send(s(a[0]), a[1], a[2] as SendOptions | undefined, ctx.signal),
    ),
    def("receive", 2, "receive messages: [name, {max, wait_ms, visibility_timeout_ms}] -> [{message_id, receipt, body, receive_count, sent_at}]", (a, ctx) =>
      service.receive(s(a[0]), a[1] as ReceiveOptions | undefined, ctx.owner, ctx.signal),
    ),
    def("ack", 2, "ack a delivery: [name, receipt]", (a) => service.ack(s(a[0]), s(a[1]))),
    def("nack", 3, "return a delivery: [name, receipt, {delay_ms}]", (a) => service.nack(s(a[0]), s(a[1]), a[2] as NackOptions | undefined)),
    def("extend", 3, "set a lease to end ms from now: [name, receipt, ms]", (a) => service.extend(s(a[0]), s(a[1]), a[2] as number)),
    def("subscribe", 2, "push deliveries to this connection: [name, {prefetch}] -> {subscription_id}", (a, ctx) =>
      service.subscribe(s(a[0]), a[1] as SubscribeOptions | undefined, ctx.owner, (frame) => ctx.push(frame)),
    ),
    def("unsubscribe", 1, "end a subscription of this connection: [subscription_id]", (a, ctx) => service.unsubscribe(s(a[0]), ctx.owner)),
    def("stats", 1, "counts of a queue: [name] -> {visible, in_flight, delayed, dead_lettered, sent, acked}", (a) => service.stats(s(a[0]))),
    def("list", 0, "every queue with its counts: []", () => service.list()),
    def("delete", 1, "delete a queue and its messages: [name]", (a) => service.delete(s(a[0])), true),
    def("purge", 1, "remove every message of a queue: [name]", (a) => service.purge(s(a[0])), true),
  ];
}
