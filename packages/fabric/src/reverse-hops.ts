/**
 * The link a node's messages last arrived on, for nodes this node has no route to yet.
 *
 * Link-state routes reach a node some time after its first messages do: a call relayed A→B→C
 * can reach C before C's overlay knows how to reach A. C answers along the way the call came
 * (through B) instead of dropping the result. Used only when there is neither a link nor a
 * route, so a stale entry costs nothing: its link is gone or a route has taken over.
 */
export class ReverseHops {
  private readonly via = new Map<string, string>();

  /** @param capacity most sources remembered; the least recently seen is forgotten first */
  constructor(private readonly capacity = 4096) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
  }

  /** Notes that a message from `source` arrived on the link to `link`. */
  note(source: string, link: string): void {
    const m = this.via;
    m.delete(source);
    m.set(source, link);
    if (m.size > this.capacity) m.delete(m.keys().next().value as string);
  }

  /** The link `source`'s messages last arrived on, if remembered. */
  get(source: string): string | undefined {
    return this.via.get(source);
  }

  /** Forgets the sources reached through `link` (the link closed). */
  dropLink(link: string): void {
    for (const [s, l] of this.via) if (l === link) this.via.delete(s);
  }

  get size(): number {
    return this.via.size;
  }
}
