// KeyedQueue: tasks of one key run one at a time in queue order, a failure does not stop the next, and keys
// are independent.
import { describe, expect, it } from 'vitest';
import { KeyedQueue } from './keyed-queue.js';

/** A promise resolved from outside. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('KeyedQueue', () => {
  it('runs the tasks of one key in order, one at a time, past a failure', async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const gate = deferred();
    const first = queue.run('room', async () => {
      log.push('first:start');
      await gate.promise;
      log.push('first:end');
      return 1;
    });
    const second = queue.run('room', () => {
      log.push('second');
      return Promise.reject(new Error('refused'));
    });
    const third = queue.run('room', () => {
      log.push('third');
      return Promise.resolve(3);
    });
    // Another key is not held up by the gate.
    expect(await queue.run('other', () => Promise.resolve('free'))).toBe('free');
    expect(log).toEqual(['first:start']);
    gate.resolve();
    expect(await first).toBe(1);
    await expect(second).rejects.toThrow('refused');
    expect(await third).toBe(3);
    expect(log).toEqual(['first:start', 'first:end', 'second', 'third']);
  });
});
