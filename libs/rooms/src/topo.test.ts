import { describe, expect, it } from 'vitest';
import { CycleError, compareStrings, lexicographicTopologicalSort } from './topo.js';

describe('lexicographicTopologicalSort', () => {
  it('puts parents first and picks the smallest ready vertex', () => {
    // d has parents b and c, which have parent a; e has no parents. Ready at first: a and e.
    const graph = new Map([
      ['d', ['b', 'c']],
      ['c', ['a']],
      ['b', ['a']],
      ['a', []],
      ['e', []],
    ]);
    expect(lexicographicTopologicalSort(graph, compareStrings)).toEqual(['a', 'b', 'c', 'd', 'e']);
    // Reversed order: e is ready from the start and comes first; c comes before b as soon as both are ready.
    expect(lexicographicTopologicalSort(graph, (x, y) => compareStrings(y, x))).toEqual(['e', 'a', 'c', 'b', 'd']);
  });

  it('ignores parents outside the graph and duplicate parents', () => {
    const graph = new Map([
      ['b', ['a', 'a', 'outside']],
      ['a', ['outside']],
    ]);
    expect(lexicographicTopologicalSort(graph, compareStrings)).toEqual(['a', 'b']);
  });

  it('sorts many vertices like a plain sort when there are no edges', () => {
    const ids = Array.from({ length: 200 }, (_, i) => `v${(i * 7919) % 200}`);
    const graph = new Map(ids.map((id) => [id, [] as string[]]));
    expect(lexicographicTopologicalSort(graph, compareStrings)).toEqual([...ids].sort());
  });

  it('refuses a cycle', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['a']],
      ['c', []],
    ]);
    expect(() => lexicographicTopologicalSort(graph, compareStrings)).toThrow(CycleError);
  });
});
