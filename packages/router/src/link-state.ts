/**
 * Link state of a peer-link overlay: each node announces the peers it has links to, and every
 * node derives a next-hop route table from those announcements and its own links. Nodes keep
 * links to a bounded number of peers; messages for the others travel along these routes.
 */
import { DEFAULT_MAX_HOPS, createLogger } from "@mpreg/envelope";
import { computeNextHops, type NextHop } from "./next-hop.js";

const log = createLogger("overlay");

/** Gossip item key prefix of link announcements: `links/<node id>` → sorted linked peer ids. */
export const LINKS_KEY_PREFIX = "links/";
/**
 * Most peer ids one link announcement carries (and is accepted with). Outbound links are
 * bounded by `maxLinks`, inbound ones are not: past this, the lowest ids are announced and the
 * other links are only used as direct links, not for relaying by others.
 */
export const MAX_ANNOUNCED_LINKS = 1024;
/**
 * Longest relay path (in links) a route may have: the originator's send plus one per relay
 * that `forwardStep` allows with the default hop budget.
 */
export const ROUTE_MAX_HOPS = DEFAULT_MAX_HOPS + 1;

/**
 * A link announcement as a versioned item (the shape gossip disseminates; higher version wins):
 * `key` is `links/<node id>`, `data` the node's sorted linked peer ids.
 */
export interface LinkAnnouncement {
  key: string;
  version: number;
  data: unknown;
}

/** Settings of a {@link LinkOverlay}. */
export interface LinkOverlayOptions {
  selfId: string;
  /** Ids this node has an open link to now: the truth for its own edges. */
  ownLinks: () => Iterable<string>;
  /** Whether a member is live (known, neither dead nor left): only live members route. */
  isLive: (id: string) => boolean;
  /** Longest route kept (links); default {@link ROUTE_MAX_HOPS}. */
  maxHops?: number;
  /**
   * Most links this node opens itself (others may still dial it): below it every live member
   * is dialed (a full mesh for small clusters); at it, the rest is reached through routes.
   * Default unbounded.
   */
  maxLinks?: number;
}

/**
 * The peer-link overlay as this node knows it: its own links, the link sets other members
 * announce over gossip, and the next-hop route table derived from both. Sans-I/O: the owner
 * feeds it gossip items and membership changes, tells it when its links change, publishes the
 * announcement it hands out, and sends messages along {@link route}.
 *
 * Bounded: one adjacency entry per live member (entries go when a member is declared dead or
 * leaves), each of at most MAX_ANNOUNCED_LINKS ids.
 */
export class LinkOverlay {
  private readonly adjacency = new Map<string, readonly string[]>();
  private cache: Map<string, NextHop> | undefined;
  private dirty = true;
  private version = 0;

  constructor(private readonly opts: LinkOverlayOptions) {}

  /** Number of members whose link announcement is held. */
  get knownAnnouncements(): number {
    return this.adjacency.size;
  }

  /** Own links opened or closed: routes are stale and a new announcement is due. */
  linksChanged(): void {
    this.dirty = true;
    this.cache = undefined;
  }

  /** Something the routes derive from changed (e.g. a link's open state): recompute them. */
  invalidate(): void {
    this.cache = undefined;
  }

  /** True when a new announcement is due. */
  get announcementDue(): boolean {
    return this.dirty;
  }

  /**
   * The `links/<self>` item to publish now: sorted open link ids, version above both the last
   * one made and `heldVersion` (what gossip holds for the key, e.g. from before a restart), and
   * at least the wall clock so it keeps increasing across restarts.
   */
  announcement(now: number, heldVersion = 0): LinkAnnouncement {
    this.dirty = false;
    const peers = [...new Set(this.opts.ownLinks())].filter((id) => id !== this.opts.selfId).sort().slice(0, MAX_ANNOUNCED_LINKS);
    this.version = Math.max(Math.floor(now), this.version + 1, heldVersion + 1);
    return { key: LINKS_KEY_PREFIX + this.opts.selfId, version: this.version, data: peers };
  }

  /**
   * A gossip item was updated. Returns false when it is not a link announcement (the owner
   * handles it otherwise). Our own key from elsewhere (a previous run) makes a new
   * announcement due; a malformed one is ignored; one of a member not live now is ignored
   * (see {@link memberUp}).
   */
  onItem(key: string, data: unknown): boolean {
    if (!key.startsWith(LINKS_KEY_PREFIX)) return false;
    const owner = key.slice(LINKS_KEY_PREFIX.length);
    if (owner === this.opts.selfId) {
      this.dirty = true;
      return true;
    }
    if (!Array.isArray(data) || data.length > MAX_ANNOUNCED_LINKS || !data.every((x) => typeof x === "string")) {
      log.debug(`ignored malformed link announcement of ${owner}`);
      return true;
    }
    // Dead members' stale announcements must not make them routable again.
    if (!this.opts.isLive(owner)) return true;
    this.adjacency.set(owner, data as string[]);
    this.cache = undefined;
    return true;
  }

  /** A member became live (again): use its announcement if gossip already holds it. */
  memberUp(id: string, held: LinkAnnouncement | undefined): void {
    if (held?.key === LINKS_KEY_PREFIX + id) this.onItem(held.key, held.data);
  }

  /** A member was declared dead or left: its announcement no longer routes. */
  memberGone(id: string): void {
    if (this.adjacency.delete(id)) this.cache = undefined;
  }

  /**
   * Whether this node should open a link to member `id` now: a live member other than itself,
   * not linked yet, while this node has fewer than `maxLinks` links.
   */
  shouldDial(id: string): boolean {
    if (id === this.opts.selfId || !this.opts.isLive(id)) return false;
    let count = 0;
    for (const l of this.opts.ownLinks()) {
      if (l === id) return false;
      count++;
    }
    return count < (this.opts.maxLinks ?? Infinity);
  }

  /** The route to `id` (`next` is `id` itself when linked), or undefined when there is none. */
  route(id: string): NextHop | undefined {
    return this.routes().get(id);
  }

  /**
   * A linked neighbour to take a message meant for a member without a route (only for
   * messages any member can act on, such as gossip pushes), or undefined when there is no
   * link. `pick` in [0, 1) chooses among the links (the caller's randomness).
   */
  redirect(pick: number): string | undefined {
    const own = [...new Set(this.opts.ownLinks())].sort();
    return own[Math.min(own.length - 1, Math.floor(pick * own.length))];
  }

  /** Next hop and distance of every node reachable over the link graph. */
  routes(): ReadonlyMap<string, NextHop> {
    if (this.cache !== undefined) return this.cache;
    const graph = new Map(this.adjacency);
    // Own links are the truth, whatever our announcement says on other nodes.
    graph.set(this.opts.selfId, [...this.opts.ownLinks()]);
    this.cache = computeNextHops(this.opts.selfId, graph, { maxHops: this.opts.maxHops ?? ROUTE_MAX_HOPS });
    return this.cache;
  }
}
