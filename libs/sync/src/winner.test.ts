import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { roomKeyKey } from './room-keys.js';
import type { Op } from './types.js';
import { nextWinner, winnerOf } from './winner.js';

const KEY = roomKeyKey('1-0a1b2c3d', '!r:x', 's');

/** An unsigned stand-in for an op: the winner rule reads only kind, order and body. */
function op(
  kind: 'put' | 'delete',
  lamport: number,
  origin: string,
  rank: [boolean, number, number] = [false, 0, 0],
): Op {
  const [isVerified, firstMessageIndex, forwardedCount] = rank;
  return {
    op: kind === 'put' ? 'room_keys.key.put' : 'room_keys.key.delete',
    key: KEY,
    lamport,
    origin,
    seq: lamport,
    body:
      kind === 'put'
        ? { is_verified: isVerified, first_message_index: firstMessageIndex, forwarded_count: forwardedCount }
        : {},
  } as unknown as Op;
}

/** The winner as a home reaches it taking the ops one at a time (recomputing from those held when told to). */
function folded(ops: Op[]): Op | undefined {
  let winner: Op | undefined;
  ops.forEach((next, i) => {
    winner = nextWinner(winner, next) ?? winnerOf(ops.slice(0, i + 1));
  });
  return winner;
}

describe('winner of a key ranked by value (key backup)', () => {
  it('keeps the better session key, not the later one', () => {
    const worseLater = op('put', 5, 'b', [false, 5, 0]);
    const better = op('put', 3, 'a', [false, 2, 0]);
    expect(folded([better, worseLater])).toBe(better);
    expect(folded([worseLater, better])).toBe(better);
    const verified = op('put', 1, 'c', [true, 9, 9]);
    expect(folded([better, worseLater, verified])).toBe(verified);
    // Alike: the later op wins.
    const alike = op('put', 6, 'a', [false, 2, 0]);
    expect(folded([alike, better])).toBe(alike);
  });

  it('a tombstone hides the puts before it; puts after it compete by value', () => {
    const good = op('put', 2, 'a', [true, 0, 0]);
    const deletion = op('delete', 3, 'b');
    const worseAfter = op('put', 4, 'a', [false, 7, 1]);
    for (const order of [
      [good, deletion, worseAfter],
      [worseAfter, deletion, good],
      [deletion, worseAfter, good],
      [worseAfter, good, deletion],
    ]) {
      expect(folded(order)).toBe(worseAfter);
    }
    expect(folded([worseAfter, good, deletion].slice(1))).toBe(deletion);
  });

  it('converges on the same winner in every order', () => {
    const arbitraryOp = fc.record({
      kind: fc.constantFrom<'put' | 'delete'>('put', 'put', 'delete'),
      lamport: fc.integer({ min: 1, max: 8 }),
      origin: fc.constantFrom('a', 'b', 'c'),
      rank: fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 })),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(arbitraryOp, { minLength: 1, maxLength: 8, selector: (o) => `${o.lamport} ${o.origin}` }),
        fc.infiniteStream(fc.nat()),
        (specs, picks) => {
          const ops = specs.map((s) => op(s.kind, s.lamport, s.origin, s.rank));
          const expected = winnerOf(ops);
          const shuffled = [...ops];
          const it = picks[Symbol.iterator]();
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = it.next().value! % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          expect(folded(shuffled)).toBe(expected);
          expect(winnerOf(shuffled)).toBe(expected);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('other kinds keep the last write', () => {
    const device = (lamport: number) => ({ ...op('put', lamport, 'a'), op: 'device.put', key: 'D' }) as Op;
    expect(folded([device(3), device(1), device(2)])?.lamport).toBe(3);
  });
});
