/**
 * Other clusters' catalog entries as this node may use them (what the routes to those clusters
 * let through), kept apart from the node's own cluster catalog: gossip never carries them, and
 * the set is replaced whole whenever routes or exports change. Queries go to a private
 * {@link Catalog}, so services search foreign entries exactly as they search their own.
 */
import { Catalog, canonicalJson, entryKey, type CatalogChange, type CatalogEntry } from "@mpreg/catalog";
import { createLogger } from "@mpreg/envelope";

const log = createLogger("fabric");

/** Foreign entries never expire by TTL: the route they came with decides how long they live. */
const FOREVER_MS = 2 ** 40;

/** Counters of a {@link ForeignCatalog}. */
export interface ForeignCatalogStats {
  /** Entries held now. */
  entries: number;
  /** Entries not held because `maxEntries` were held (counted per replace). */
  refused: number;
}

/**
 * The foreign entries of one node. `replace` diffs the new set against the held one and
 * returns the changes (added, updated, removed) for the services' catalog listeners.
 */
export class ForeignCatalog {
  /** Query it like the cluster catalog (`queryFunctions`, `queues`, `topics`). */
  readonly catalog: Catalog;
  private readonly held = new Map<string, { json: string; entry: CatalogEntry }>();
  private readonly nodes = new Map<string, string>();
  /** This catalog is the only writer, so one counter orders every delta it applies. */
  private version = 0;
  private refused = 0;

  /**
   * @param nodeId this node (its catalog's owner; an entry naming it is never held)
   * @param clusterId this node's cluster
   * @param maxEntries most foreign entries held; beyond it new ones are left out and counted
   */
  constructor(
    nodeId: string,
    clusterId: string,
    private readonly maxEntries: number,
  ) {
    this.catalog = new Catalog({ nodeId, clusterId, maxEntries, maxTtlMs: FOREVER_MS });
  }

  /** The cluster of a foreign node that owns an entry here. */
  clusterOf(nodeId: string): string | undefined {
    return this.nodes.get(nodeId);
  }

  get size(): number {
    return this.held.size;
  }

  stats(): ForeignCatalogStats {
    return { entries: this.held.size, refused: this.refused };
  }

  /** Makes `entries` the whole set; returns what changed. */
  replace(entries: Iterable<CatalogEntry>, now: number): CatalogChange[] {
    const want = new Map<string, { json: string; entry: CatalogEntry }>();
    for (const entry of entries) {
      if (want.size >= this.maxEntries) {
        this.refused++;
        continue;
      }
      want.set(entryKey(entry), { json: canonicalJson(entry), entry });
    }
    const changes: CatalogChange[] = [];
    for (const [key, h] of this.held) {
      if (want.has(key)) continue;
      const r = this.catalog.applyDelta({ kind: "remove", key, owner: h.entry.node_id, version: ++this.version, ttl_ms: 1 }, now);
      this.held.delete(key);
      if (r.change) changes.push(r.change);
    }
    for (const [key, w] of want) {
      if (this.held.get(key)?.json === w.json) continue;
      const r = this.catalog.applyDelta({ kind: "upsert", key, owner: w.entry.node_id, version: ++this.version, ttl_ms: FOREVER_MS, entry: w.entry }, now);
      if (r.status !== "applied") {
        log.debug(`foreign entry ${key} not held: ${r.status}`);
        continue;
      }
      this.held.set(key, w);
      if (r.change) changes.push(r.change);
    }
    this.nodes.clear();
    for (const h of this.held.values()) this.nodes.set(h.entry.node_id, h.entry.cluster_id);
    return changes;
  }
}
