import { type Catalog, type CatalogDelta, ENTRY_LIMITS, type LocalEntryInput, entryKey } from "@mpreg/catalog";
import { isMpregError, type MpregError } from "@mpreg/envelope";

/**
 * What this node advertises in the catalog changed: patterns that now have a first local
 * subscriber (`added`) and patterns whose last local subscriber went (`removed`). Net since the
 * previous `take`: a pattern added then removed again appears in neither list.
 */
export interface InterestChange {
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/** The change when nothing changed (readonly lists: shared). */
const NO_CHANGE: InterestChange = Object.freeze({ added: Object.freeze([]), removed: Object.freeze([]) });

/** The longest pattern a node can subscribe to: it is also the catalog entry's id. */
export const MAX_ADVERTISED_PATTERN_LENGTH = ENTRY_LIMITS.maxString;

/**
 * The node's subscription patterns, aggregated: a count of local subscriptions per distinct
 * pattern. The catalog holds one `topic` entry per distinct pattern (not per subscriber), so a
 * thousand subscribers to `orders.#` cost one entry; the entry appears with the first
 * subscriber and goes with the last.
 */
export class LocalInterest {
  private readonly counts = new Map<string, number>();
  private pendingAdd = new Set<string>();
  private pendingRemove = new Set<string>();

  /** Distinct patterns with at least one local subscription. */
  get distinct(): number {
    return this.counts.size;
  }

  has(pattern: string): boolean {
    return this.counts.has(pattern);
  }

  /** One more local subscription uses `pattern`. */
  add(pattern: string): void {
    const c = this.counts.get(pattern) ?? 0;
    this.counts.set(pattern, c + 1);
    if (c > 0) return;
    if (!this.pendingRemove.delete(pattern)) this.pendingAdd.add(pattern);
  }

  /** One local subscription fewer uses `pattern`. */
  remove(pattern: string): void {
    const c = this.counts.get(pattern);
    if (c === undefined) return;
    if (c > 1) {
      this.counts.set(pattern, c - 1);
      return;
    }
    this.counts.delete(pattern);
    if (!this.pendingAdd.delete(pattern)) this.pendingRemove.add(pattern);
  }

  /** The net change since the last call (then forgotten). */
  take(): InterestChange {
    // Called after every request (publishes included): nothing to allocate when nothing changed.
    if (this.pendingAdd.size === 0 && this.pendingRemove.size === 0) return NO_CHANGE;
    const change = { added: [...this.pendingAdd].sort(), removed: [...this.pendingRemove].sort() };
    this.pendingAdd = new Set();
    this.pendingRemove = new Set();
    return change;
  }

  /** Every distinct pattern advertised now, sorted. */
  patterns(): string[] {
    return [...this.counts.keys()].sort();
  }
}

/**
 * The catalog entry advertising one distinct pattern of this node: a `topic` entry whose
 * `subscription_id` is the pattern itself, so the entry's key is derived from the pattern and
 * registering it twice replaces it.
 */
export function topicEntryFor(pattern: string): LocalEntryInput {
  return { kind: "topic", subscription_id: pattern, patterns: [pattern] };
}

/** The catalog key of the entry advertising `pattern` on node `nodeId`. */
export function topicEntryKey(nodeId: string, pattern: string): string {
  return entryKey({ kind: "topic", node_id: nodeId, cluster_id: "-", subscription_id: pattern, patterns: [pattern] });
}

/** What {@link applyInterestChange} did. */
export interface AppliedInterest {
  /** Deltas to gossip, in order. */
  readonly deltas: CatalogDelta[];
  /** Patterns the catalog refused (e.g. 1007: it already holds `maxLocalEntries` local entries). */
  readonly refused: ReadonlyArray<{ readonly pattern: string; readonly error: MpregError }>;
}

/**
 * Registers and unregisters this node's `topic` entries in `catalog` for `change` (from
 * `TopicExchange.takeInterestChanges()`), returning the deltas to gossip. A pattern the
 * catalog refuses is reported, not thrown, so one full catalog does not lose the others.
 */
export function applyInterestChange(catalog: Catalog, change: InterestChange, now: number, ttlMs?: number): AppliedInterest {
  const deltas: CatalogDelta[] = [];
  const refused: Array<{ pattern: string; error: MpregError }> = [];
  for (const p of change.removed) {
    const d = catalog.unregisterLocal(topicEntryKey(catalog.nodeId, p), now);
    if (d !== null) deltas.push(d);
  }
  for (const p of change.added) {
    try {
      deltas.push(ttlMs === undefined ? catalog.registerLocal(topicEntryFor(p), now) : catalog.registerLocal(topicEntryFor(p), now, ttlMs));
    } catch (e) {
      if (!isMpregError(e)) throw e;
      refused.push({ pattern: p, error: e });
    }
  }
  return { deltas, refused };
}
