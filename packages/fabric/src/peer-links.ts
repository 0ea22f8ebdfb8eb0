import type { Connection } from "@mpreg/transport";

/**
 * The open peer links of a node, by the node id each one was authenticated as. Two links to one
 * node exist when both sides dialed at once; any open one carries traffic.
 */
export class PeerLinks {
  private readonly byNode = new Map<string, Set<Connection>>();

  /** Adds a link; true when it is the first one to that node. */
  add(nodeId: string, conn: Connection): boolean {
    let set = this.byNode.get(nodeId);
    const first = set === undefined;
    if (!set) this.byNode.set(nodeId, (set = new Set()));
    set.add(conn);
    return first;
  }

  /** Removes a link; true when it was the last one to that node. */
  remove(nodeId: string, conn: Connection): boolean {
    const set = this.byNode.get(nodeId);
    if (!set || !set.delete(conn)) return false;
    if (set.size > 0) return false;
    this.byNode.delete(nodeId);
    return true;
  }

  /** An open link to `nodeId`, if any. */
  get(nodeId: string): Connection | undefined {
    const set = this.byNode.get(nodeId);
    if (!set) return undefined;
    for (const c of set) if (c.open) return c;
    return undefined;
  }

  has(nodeId: string): boolean {
    return this.byNode.has(nodeId);
  }

  /** Node ids with at least one open link. */
  openNodes(): string[] {
    return [...this.byNode.keys()].filter((id) => this.get(id) !== undefined);
  }

  /** Every link to `nodeId` (open or closing). */
  linksTo(nodeId: string): readonly Connection[] {
    return [...(this.byNode.get(nodeId) ?? [])];
  }

  /** Every link. */
  all(): Connection[] {
    const out: Connection[] = [];
    for (const set of this.byNode.values()) out.push(...set);
    return out;
  }

  get size(): number {
    return this.byNode.size;
  }

  clear(): void {
    this.byNode.clear();
  }
}
