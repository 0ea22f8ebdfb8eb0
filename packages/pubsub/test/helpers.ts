import type { PubsubNotification, PubsubNotificationBatch, PubsubNotificationMessage } from "@mpreg/envelope";
import { TopicExchange, type ExchangeOptions, type NotificationSink } from "../src/index.js";

/** A sink that records what it gets; `open` false makes it refuse writes (a slow connection). */
export class RecordingSink implements NotificationSink {
  readonly frames: PubsubNotification[] = [];
  open = true;
  canWrite(): boolean {
    return this.open;
  }
  write(n: PubsubNotification): void {
    this.frames.push(n);
  }
  /** Topics received for one subscription, in order. */
  topics(subscriptionId: string): string[] {
    return this.frames.filter((f) => f.subscription_id === subscriptionId).map((f) => f.message.topic);
  }
  /** Message ids received for one subscription, in order. */
  ids(subscriptionId: string): string[] {
    return this.frames.filter((f) => f.subscription_id === subscriptionId).map((f) => f.message.message_id);
  }
}

/** A sink that also takes batches (as the node's gateway does); records every frame. */
export class BatchingSink implements NotificationSink {
  readonly frames: (PubsubNotification | PubsubNotificationBatch)[] = [];
  open = true;
  canWrite(): boolean {
    return this.open;
  }
  write(n: PubsubNotification): void {
    this.frames.push(n);
  }
  writeBatch(b: PubsubNotificationBatch): void {
    this.frames.push(b);
  }
  /** Every message received, in order, whatever frame carried it. */
  messages(): PubsubNotificationMessage[] {
    return this.frames.flatMap((f) => (f.role === "pubsub-notification" ? [f.message] : f.messages));
  }
}

/** A manual clock in ms. */
export class ManualClock {
  constructor(public t = 1_700_000_000_000) {}
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

let seq = 0;
/** Deterministic ids (m-1, m-2, ...) so tests do not depend on the wall clock. */
export function counterIds(prefix = "id"): () => string {
  return () => `${prefix}-${++seq}`;
}

/** An exchange on node `n1` with a manual clock and counter ids. */
export function makeExchange(options: Partial<ExchangeOptions> = {}): { ex: TopicExchange; clock: ManualClock } {
  const clock = new ManualClock();
  const ex = new TopicExchange({ nodeId: "n1", now: clock.now, newId: counterIds(), ...options });
  return { ex, clock };
}

/**
 * Reference matcher, independent of the router's trie: a regex over "." + topic
 * (`*` one segment, `#` zero or more).
 */
export function referenceMatch(pattern: string, topic: string): boolean {
  const body = pattern
    .split(".")
    .map((seg) => (seg === "*" ? "\\.[^.]+" : seg === "#" ? "(?:\\.[^.]+)*" : `\\.${seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`))
    .join("");
  return new RegExp(`^${body}$`).test(`.${topic}`);
}

/** Expects `fn` to throw an MpregError with `code` (and `path` in its details when given). */
export function codeOf(fn: () => unknown): { code: number; path?: unknown; message: string } {
  try {
    fn();
  } catch (e) {
    const err = e as { code: number; details: { path?: unknown }; message: string };
    return { code: err.code, path: err.details?.path, message: err.message };
  }
  throw new Error("expected a throw");
}
