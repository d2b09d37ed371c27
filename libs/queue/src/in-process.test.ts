import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, createInProcessQueue, createQueueBackend } from './index.js';
import { queueComplianceSuite } from './testing/compliance.js';
import { deferred, sleep, waitFor } from './testing/wait.js';

queueComplianceSuite('in-process', async () => {
  const backend = createInProcessQueue();
  return { backend, teardown: () => backend.close({ timeout: 1_000 }) };
});

describe('queue: in-process only', () => {
  it('is what createQueueBackend picks without a Redis URL', async () => {
    for (const backend of [createQueueBackend(), createQueueBackend({ redisUrl: '' })]) {
      expect(backend.kind).toBe('in-process');
      await backend.close();
    }
  });

  it('runs the jobs already waiting before close resolves: memory is its only store', async () => {
    const backend = createInProcessQueue();
    const queue = backend.queue<{ n: number }>('drain');
    const done: number[] = [];
    const started = deferred();
    await backend.process<{ n: number }>('drain', async (job) => {
      started.resolve();
      await sleep(30);
      done.push(job.data.n);
    });
    await queue.addBulk([1, 2, 3, 4].map((n) => ({ name: 'send', data: { n } })));
    await started.promise;
    await backend.close({ timeout: 5_000 });
    expect(done).toEqual([1, 2, 3, 4]);
  });

  it('drops delayed jobs at close and leaves no timer behind', async () => {
    const backend = createInProcessQueue();
    const queue = backend.queue('later');
    let runs = 0;
    await backend.process('later', async () => {
      runs += 1;
    });
    await queue.add('send', {}, { delay: 60_000 });
    await queue.upsertRepeatable('tick', { every: 60_000 }, { name: 'tick', data: {} });
    await waitFor(() => runs === 1, 'the first iteration');
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await backend.close();
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    // The delayed job and the next iteration each held a timer.
    expect(before - after).toBeGreaterThanOrEqual(2);
  });

  it('keeps running other jobs when a handler throws synchronously', async () => {
    const backend = createInProcessQueue();
    const queue = backend.queue<{ n: number }>('sync');
    const seen: number[] = [];
    await backend.process<{ n: number }>('sync', (job) => {
      if (job.data.n === 1) {
        throw new Error('thrown before any await');
      }
      seen.push(job.data.n);
      return Promise.resolve();
    });
    await queue.add('send', { n: 1 }, { jobId: 'sync-throw' });
    await queue.add('send', { n: 2 });
    await waitFor(() => seen.length === 1, 'the second job');
    expect(await queue.getState('sync-throw')).toBe('failed');
    await backend.close();
  });
});

describe('backoffDelay', () => {
  it('matches BullMQ: fixed is constant, exponential doubles from the base delay', () => {
    expect(backoffDelay(undefined, 3)).toBe(0);
    expect([1, 2, 3, 4].map((n) => backoffDelay({ type: 'exponential', delay: 100 }, n))).toEqual([100, 200, 400, 800]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 20 }), (delay, attemptsMade) => {
        expect(backoffDelay({ type: 'fixed', delay }, attemptsMade)).toBe(delay);
        const exponential = backoffDelay({ type: 'exponential', delay }, attemptsMade);
        expect(backoffDelay({ type: 'exponential', delay }, attemptsMade + 1)).toBe(2 * exponential);
      }),
    );
  });
});
