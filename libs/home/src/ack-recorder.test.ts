import { describe, expect, it } from 'vitest';
import { AckRecorder } from './ack-recorder.js';

describe('AckRecorder', () => {
  it('writes one vector at a time per peer, merging what arrives meanwhile, and loses nothing', async () => {
    const writes: Array<[string, string, Record<string, number>]> = [];
    const gates: Array<() => void> = [];
    const work: Promise<unknown>[] = [];
    const recorder = new AckRecorder(
      async (account, peer, vv) => {
        writes.push([account, peer, vv]);
        await new Promise<void>((resolve) => gates.push(resolve));
      },
      (w) => work.push(w),
    );
    recorder.record('acct', 'p1', { a: 1 });
    recorder.record('acct', 'p1', { a: 3, b: 1 });
    recorder.record('acct', 'p1', { a: 2, b: 4 });
    recorder.record('acct', 'p2', { a: 7 });
    expect(writes).toEqual([
      ['acct', 'p1', { a: 1 }],
      ['acct', 'p2', { a: 7 }],
    ]);
    gates.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(writes[2]).toEqual(['acct', 'p1', { a: 3, b: 4 }]);
    while (gates.length > 0) {
      gates.shift()!();
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(work);
    expect(writes).toHaveLength(3);
    // Idle again: the next vector is written at once.
    recorder.record('acct', 'p1', { c: 1 });
    expect(writes[3]).toEqual(['acct', 'p1', { c: 1 }]);
    gates.shift()!();
    await Promise.all(work);
  });

  it('keeps going after a failed write (the failure goes to the tracker)', async () => {
    let calls = 0;
    const work: Promise<unknown>[] = [];
    const recorder = new AckRecorder(
      async () => {
        calls += 1;
        if (calls === 1) throw new Error('database gone');
      },
      (w) => work.push(w.catch(() => undefined)),
    );
    recorder.record('acct', 'p', { a: 1 });
    await Promise.all(work);
    recorder.record('acct', 'p', { a: 2 });
    await Promise.all(work);
    expect(calls).toBe(2);
  });
});
