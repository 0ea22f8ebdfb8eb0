/**
 * Items bound for other nodes, collected per node during one event-loop turn and sent as one
 * batch at its end (on a microtask); a batch that reaches `maxItems` or `maxBytes` goes at once.
 * Both sides of a remote call use it: the dispatcher for calls, the handler for results.
 */
export class TurnBatcher<T> {
  private readonly boxes = new Map<string, { items: T[]; bytes: number }>();
  private scheduled = false;
  private readonly flushTask = (): void => this.flush();

  constructor(
    private readonly maxItems: number,
    private readonly maxBytes: number,
    private readonly send: (nodeId: string, items: T[]) => void,
  ) {}

  /** Queues `item` (about `bytes` encoded) for `nodeId`. */
  add(nodeId: string, item: T, bytes: number): void {
    let box = this.boxes.get(nodeId);
    if (box === undefined) {
      box = { items: [], bytes: 0 };
      this.boxes.set(nodeId, box);
    }
    box.items.push(item);
    box.bytes += bytes;
    if (box.items.length >= this.maxItems || box.bytes >= this.maxBytes) {
      this.boxes.delete(nodeId);
      this.send(nodeId, box.items);
    } else if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flushTask);
    }
  }

  /** Sends every queued batch now. */
  flush(): void {
    this.scheduled = false;
    if (this.boxes.size === 0) return;
    for (const [nodeId, box] of this.boxes) this.send(nodeId, box.items);
    this.boxes.clear();
  }

  /** Drops everything queued (shutdown). */
  clear(): void {
    this.boxes.clear();
  }
}
