import { type CatalogChange, type TopicEntry, entryKey } from "@mpreg/catalog";
import { createLogger, isMpregError } from "@mpreg/envelope";
import { TopicTrie, validateTopic } from "@mpreg/router";

const log = createLogger("pubsub");

/** Counters of a {@link RemoteInterestIndex}. */
export interface RemoteInterestStats {
  /** Other nodes with at least one indexed entry. */
  readonly nodes: number;
  /** Distinct (node, pattern) pairs indexed. */
  readonly patterns: number;
  /** Catalog `topic` entries held. */
  readonly entries: number;
  /** Patterns not indexed: malformed, or the index was full (`maxPatterns`). */
  readonly refused: number;
}

interface Held {
  readonly node: string;
  readonly patterns: readonly string[];
}

/**
 * Which other nodes want a topic: the catalog's `topic` entries of other nodes in one topic
 * trie keyed by node id, kept up to date incrementally from catalog changes. One (node,
 * pattern) pair is indexed once however many entries carry it (a reference count), so a
 * publish goes once to each interested node. Entries of this node itself are ignored.
 */
const NO_TARGETS: readonly string[] = Object.freeze([]);

export class RemoteInterestIndex {
  private readonly trie: TopicTrie<string>;
  private readonly entries = new Map<string, Held>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly refs = new Map<string, number>();
  private refusedCount = 0;

  /**
   * @param selfNodeId this node (its own entries are skipped)
   * @param maxPatterns most (node, pattern) pairs indexed; beyond it a pattern is refused and counted
   */
  constructor(
    private readonly selfNodeId: string,
    private readonly maxPatterns: number,
  ) {
    this.trie = new TopicTrie<string>({ maxEntries: maxPatterns });
  }

  /** Bumped on every change of the trie: the memo of `targets` is valid for one version. */
  private version = 0;
  private memoSegments: readonly string[] | undefined;
  private memoVersion = -1;
  private memoTargets: readonly string[] = NO_TARGETS;

  /** Applies one catalog change (any kind; only `topic` entries of other nodes matter). */
  applyChange(change: CatalogChange): void {
    if (change.entry.kind !== "topic") return;
    if (change.type === "removed") this.drop(change.key);
    else this.put(change.key, change.entry);
  }

  /** Replaces the whole index with `entries` (e.g. `catalog.topics()` after a snapshot). */
  reset(entries: Iterable<TopicEntry>): void {
    for (const key of [...this.entries.keys()]) this.drop(key);
    for (const e of entries) this.put(entryKey(e), e);
  }

  /** Forgets every entry of `nodeId` (the node left; its catalog entries went with it). */
  removeNode(nodeId: string): void {
    const keys = this.byNode.get(nodeId);
    if (keys === undefined) return;
    for (const k of [...keys]) this.drop(k);
  }

  /** The other nodes with a pattern matching the (valid, split) topic: each once. */
  targets(segments: readonly string[]): readonly string[] {
    if (this.trie.size === 0) return NO_TARGETS;
    // A stream of publishes on one topic shares its segments array (message-check.ts): the
    // answer is the same until the index changes.
    if (segments === this.memoSegments && this.version === this.memoVersion) return this.memoTargets;
    const targets = Object.freeze([...this.trie.matchSegments(segments)]);
    this.memoSegments = segments;
    this.memoVersion = this.version;
    this.memoTargets = targets;
    return targets;
  }

  /** `targets` for a topic string (1002 when malformed). */
  targetsForTopic(topic: string): string[] {
    return [...this.targets(validateTopic(topic))];
  }

  stats(): RemoteInterestStats {
    return { nodes: this.byNode.size, patterns: this.refs.size, entries: this.entries.size, refused: this.refusedCount };
  }

  private put(key: string, e: TopicEntry): void {
    if (e.node_id === this.selfNodeId) return;
    // An update may change the patterns: add the new ones before dropping the old, so a
    // pattern present in both never leaves the trie.
    const old = this.entries.get(key);
    const held: Held = { node: e.node_id, patterns: [...new Set(e.patterns)] };
    this.entries.set(key, held);
    let keys = this.byNode.get(held.node);
    if (keys === undefined) this.byNode.set(held.node, (keys = new Set()));
    keys.add(key);
    for (const p of held.patterns) this.ref(held.node, p);
    if (old !== undefined) {
      for (const p of old.patterns) this.unref(old.node, p);
      if (old.node !== held.node) this.byNode.get(old.node)?.delete(key);
    }
  }

  private drop(key: string): void {
    const held = this.entries.get(key);
    if (held === undefined) return;
    this.entries.delete(key);
    const keys = this.byNode.get(held.node);
    if (keys !== undefined) {
      keys.delete(key);
      if (keys.size === 0) this.byNode.delete(held.node);
    }
    for (const p of held.patterns) this.unref(held.node, p);
  }

  private ref(node: string, pattern: string): void {
    const k = `${node}\u0000${pattern}`;
    const c = this.refs.get(k) ?? 0;
    if (c === 0 && this.refs.size >= this.maxPatterns) {
      // Full: neither counted nor indexed (the reference counts stay bounded too).
      this.refusedCount++;
      log.warn(`remote topic pattern ${JSON.stringify(pattern)} of ${node} not indexed: ${this.maxPatterns} patterns held`);
      return;
    }
    this.refs.set(k, c + 1);
    if (c > 0) return;
    this.version++;
    try {
      this.trie.add(pattern, node);
    } catch (e) {
      if (!isMpregError(e)) throw e;
      // A malformed pattern from a peer: it gets no traffic, and takes no room.
      this.refs.delete(k);
      this.refusedCount++;
      log.warn(`remote topic pattern ${JSON.stringify(pattern)} of ${node} not indexed: ${e.message}`);
    }
  }

  private unref(node: string, pattern: string): void {
    const k = `${node}\u0000${pattern}`;
    const c = this.refs.get(k);
    if (c === undefined) return;
    if (c > 1) {
      this.refs.set(k, c - 1);
      return;
    }
    this.refs.delete(k);
    this.version++;
    try {
      this.trie.remove(pattern, node);
    } catch (e) {
      // Only a malformed pattern (never indexed) can fail here.
      if (!isMpregError(e)) throw e;
    }
  }
}
