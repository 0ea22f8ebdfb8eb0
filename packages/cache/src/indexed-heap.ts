/**
 * A binary min-heap that records each item's position in the item itself, so an item can be
 * re-prioritised or removed in O(log n) without a search.
 */
export class IndexedHeap<T> {
  private readonly items: T[] = [];

  constructor(
    /** True when `a` must leave before `b`. */
    private readonly less: (a: T, b: T) => boolean,
    private readonly getIndex: (t: T) => number,
    private readonly setIndex: (t: T, i: number) => void,
  ) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(t: T): void {
    this.items.push(t);
    this.setIndex(t, this.items.length - 1);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  /** True when `t` is in the heap. */
  has(t: T): boolean {
    const i = this.getIndex(t);
    return i >= 0 && this.items[i] === t;
  }

  remove(t: T): void {
    const i = this.getIndex(t);
    if (i < 0 || this.items[i] !== t) return;
    const last = this.items.pop() as T;
    this.setIndex(t, -1);
    if (last !== t) {
      this.items[i] = last;
      this.setIndex(last, i);
      this.update(last);
    }
  }

  /** Restores the heap order after `t`'s priority changed. */
  update(t: T): void {
    const i = this.getIndex(t);
    if (i < 0) return;
    if (!this.up(i)) this.down(i);
  }

  clear(): void {
    for (const t of this.items) this.setIndex(t, -1);
    this.items.length = 0;
  }

  private up(i: number): boolean {
    const items = this.items;
    const t = items[i] as T;
    let moved = false;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p] as T;
      if (!this.less(t, parent)) break;
      items[i] = parent;
      this.setIndex(parent, i);
      i = p;
      moved = true;
    }
    items[i] = t;
    this.setIndex(t, i);
    return moved;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const t = items[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      if (r < n && this.less(items[r] as T, items[l] as T)) c = r;
      const child = items[c] as T;
      if (!this.less(child, t)) break;
      items[i] = child;
      this.setIndex(child, i);
      i = c;
    }
    items[i] = t;
    this.setIndex(t, i);
  }
}
