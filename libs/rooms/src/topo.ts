/**
 * Kahn's topological sort that picks, among the ready vertices, the smallest under a total order: the
 * "lexicographically smallest topological ordering" state resolution v2 asks for (server-server API, room
 * versions, "Reverse topological power ordering"). Ready vertices wait in a binary heap, so a sort of n
 * vertices and e edges costs O((n + e) log n).
 */

/** A total order on vertices: negative when `a` comes first. Must never return 0 for distinct vertices. */
export type Compare<T> = (a: T, b: T) => number;

/** Thrown when the graph given to `lexicographicTopologicalSort` has a cycle (auth events never do). */
export class CycleError extends Error {
  constructor(remaining: number) {
    super(
      `The graph has a cycle through ${remaining} vertices; auth events must form a DAG (check the events' auth_events).`,
    );
    this.name = 'CycleError';
  }
}

/**
 * The vertices of `parentsOf` ordered so that every vertex comes after its parents, choosing the smallest
 * ready vertex under `compare` at each step. Parents not among the keys of `parentsOf` are ignored.
 */
export function lexicographicTopologicalSort<T>(parentsOf: ReadonlyMap<T, Iterable<T>>, compare: Compare<T>): T[] {
  const waiting = new Map<T, number>();
  const children = new Map<T, T[]>();
  for (const [vertex, parents] of parentsOf) {
    let count = 0;
    for (const parent of new Set(parents)) {
      if (!parentsOf.has(parent)) continue;
      count++;
      const list = children.get(parent);
      if (list === undefined) children.set(parent, [vertex]);
      else list.push(vertex);
    }
    waiting.set(vertex, count);
  }
  const ready = new MinHeap<T>(compare);
  for (const [vertex, count] of waiting) if (count === 0) ready.push(vertex);
  const sorted: T[] = [];
  while (ready.size > 0) {
    const vertex = ready.pop();
    sorted.push(vertex);
    for (const child of children.get(vertex) ?? []) {
      const left = (waiting.get(child) ?? 0) - 1;
      waiting.set(child, left);
      if (left === 0) ready.push(child);
    }
  }
  if (sorted.length !== parentsOf.size) throw new CycleError(parentsOf.size - sorted.length);
  return sorted;
}

/** A binary min-heap under `compare`. */
class MinHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly compare: Compare<T>) {}

  get size(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    let at = this.items.length - 1;
    while (at > 0) {
      const up = (at - 1) >> 1;
      if (this.less(up, at)) break;
      this.swap(at, up);
      at = up;
    }
  }

  /** The smallest item, removed. Only called when `size > 0`. */
  pop(): T {
    const items = this.items;
    const top = items[0] as T;
    const last = items.pop() as T;
    if (items.length > 0) {
      items[0] = last;
      let at = 0;
      for (;;) {
        const left = 2 * at + 1;
        const right = left + 1;
        let least = at;
        if (left < items.length && this.less(left, least)) least = left;
        if (right < items.length && this.less(right, least)) least = right;
        if (least === at) break;
        this.swap(at, least);
        at = least;
      }
    }
    return top;
  }

  private less(i: number, j: number): boolean {
    return this.compare(this.items[i] as T, this.items[j] as T) < 0;
  }

  private swap(i: number, j: number): void {
    const item = this.items[i] as T;
    this.items[i] = this.items[j] as T;
    this.items[j] = item;
  }
}

/** Code-unit order of two strings (event ids are ASCII, so this is the spec's lexicographic order). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
