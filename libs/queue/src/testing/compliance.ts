import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  InvalidJobDataError,
  InvalidJobIdError,
  InvalidJobOptionsError,
  InvalidQueueNameError,
  ProcessorAlreadyRegisteredError,
  QueueClosedError,
  type Job,
  type QueueBackend,
} from '../index.js';
import { deferred, sleep, waitFor } from './wait.js';

/** What a compliance setup hands the suite: a fresh backend, and how to dispose of it. */
export interface QueueComplianceContext {
  /** A backend no other test shares (BullMQ: its own key prefix). */
  backend: QueueBackend;
  /** Closes the backend if the test did not, and removes whatever it stored. */
  teardown: () => Promise<void>;
}

// Timer callbacks may fire a millisecond or two early relative to Date.now(); minimum
// spacings are asserted with this much slack and never with an upper bound.
const SLACK_MS = 5;

/** Job data used by most tests. */
interface Item {
  n: number;
}

/**
 * The semantics every QueueBackend must have, written once and run against each
 * implementation (js-libp2p's interface-compliance-tests pattern). `setup` runs before
 * every test, so each test has a backend of its own.
 */
export function queueComplianceSuite(name: string, setup: () => Promise<QueueComplianceContext>): void {
  describe(`queue compliance: ${name}`, () => {
    let context: QueueComplianceContext | undefined;
    const backend = (): QueueBackend => {
      if (context === undefined) {
        throw new Error('setup did not run');
      }
      return context.backend;
    };

    beforeEach(async () => {
      context = await setup();
    });

    afterEach(async () => {
      await context?.teardown();
      context = undefined;
    });

    it('reports its kind and health, and is unhealthy once closed', async () => {
      const health = await backend().health();
      expect(health).toMatchObject({ ok: true, backend: name });
      await backend().close();
      expect(await backend().health()).toMatchObject({ ok: false, backend: name });
    });

    describe('deduplication by job id', () => {
      it('adds one job for two adds with the same id while it waits', async () => {
        const queue = backend().queue<Item>('dedup');
        expect(await queue.add('send', { n: 1 }, { jobId: 'peer-a' })).toBe('peer-a');
        expect(await queue.add('send', { n: 2 }, { jobId: 'peer-a' })).toBe('peer-a');
        expect(await queue.counts()).toMatchObject({ waiting: 1 });
        expect(await queue.getState('peer-a')).toBe('waiting');

        const seen: Array<[string, number]> = [];
        await backend().process<Item>('dedup', async (job) => {
          seen.push([job.id, job.data.n]);
        });
        await waitFor(async () => (await queue.getState('peer-a')) === undefined, 'peer-a to complete');
        // The first add wins: the second did not replace the data.
        expect(seen).toEqual([['peer-a', 1]]);
      });

      it('ignores an add with the id of the job that is running', async () => {
        const queue = backend().queue<Item>('dedup');
        const release = deferred();
        let runs = 0;
        await backend().process<Item>('dedup', async () => {
          runs += 1;
          await release.promise;
        });
        await queue.add('send', { n: 1 }, { jobId: 'peer-b' });
        await waitFor(() => runs === 1, 'the handler to start');
        expect(await queue.getState('peer-b')).toBe('active');
        expect(await queue.add('send', { n: 2 }, { jobId: 'peer-b' })).toBe('peer-b');
        // A running job cannot be removed either.
        expect(await queue.remove('peer-b')).toBe(false);
        release.resolve();
        await waitFor(async () => (await queue.getState('peer-b')) === undefined, 'peer-b to complete');
        await sleep(100);
        expect(runs).toBe(1);
      });

      it('frees the id once the job completes (removeOnComplete is the default)', async () => {
        const queue = backend().queue<Item>('dedup');
        const seen: number[] = [];
        await backend().process<Item>('dedup', async (job) => {
          seen.push(job.data.n);
        });
        await queue.add('send', { n: 1 }, { jobId: 'peer-c' });
        await waitFor(async () => seen.length === 1 && (await queue.getState('peer-c')) === undefined, 'first run');
        await queue.add('send', { n: 2 }, { jobId: 'peer-c' });
        await waitFor(() => seen.length === 2, 'the re-triggered job to run');
        expect(seen).toEqual([1, 2]);
        expect(await queue.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 0, failed: 0 });
      });

      it('keeps a completed job, and its id taken, with removeOnComplete false until it is removed', async () => {
        const queue = backend().queue<Item>('dedup');
        const seen: number[] = [];
        await backend().process<Item>('dedup', async (job) => {
          seen.push(job.data.n);
        });
        await queue.add('send', { n: 1 }, { jobId: 'peer-d', removeOnComplete: false });
        await waitFor(async () => (await queue.getState('peer-d')) === 'completed', 'peer-d to complete');
        await queue.add('send', { n: 2 }, { jobId: 'peer-d', removeOnComplete: false });
        await sleep(100);
        expect(seen).toEqual([1]);
        expect(await queue.counts()).toMatchObject({ completed: 1, waiting: 0 });

        expect(await queue.remove('peer-d')).toBe(true);
        expect(await queue.getState('peer-d')).toBeUndefined();
        expect(await queue.remove('peer-d')).toBe(false);
        await queue.add('send', { n: 3 }, { jobId: 'peer-d' });
        await waitFor(() => seen.length === 2, 'the job added after remove to run');
        expect(seen).toEqual([1, 3]);
      });

      it('generates distinct ids for jobs added without one', async () => {
        const queue = backend().queue<Item>('dedup');
        const a = await queue.add('send', { n: 1 });
        const b = await queue.add('send', { n: 1 });
        expect(a).not.toBe(b);
        expect(await queue.counts()).toMatchObject({ waiting: 2 });
      });
    });

    describe('retries', () => {
      it('calls the handler again after a failure, waiting out an exponential backoff', async () => {
        const queue = backend().queue<Item>('retry');
        const calls: Array<{ attemptsMade: number; attempts: number; at: number }> = [];
        await backend().process<Item>('retry', async (job) => {
          calls.push({ attemptsMade: job.attemptsMade, attempts: job.attempts, at: Date.now() });
          if (job.attemptsMade < 3) {
            throw new Error(`attempt ${job.attemptsMade} fails`);
          }
        });
        await queue.add('send', { n: 1 }, { jobId: 'flaky', attempts: 4, backoff: { type: 'exponential', delay: 40 } });
        await waitFor(async () => calls.length === 4 && (await queue.getState('flaky')) === undefined, 'four attempts');

        expect(calls.map((c) => c.attemptsMade)).toEqual([0, 1, 2, 3]);
        expect(calls.every((c) => c.attempts === 4)).toBe(true);
        const at = calls.map((c) => c.at);
        const gaps = at.slice(1).map((t, i) => t - (at[i] ?? t));
        // Exponential: 40, 80, 160 ms at least, in that order.
        expect(gaps[0]).toBeGreaterThanOrEqual(40 - SLACK_MS);
        expect(gaps[1]).toBeGreaterThanOrEqual(80 - SLACK_MS);
        expect(gaps[2]).toBeGreaterThanOrEqual(160 - SLACK_MS);
        expect(await queue.counts()).toMatchObject({ failed: 0, delayed: 0, waiting: 0 });
      });

      it('waits the same delay before each retry with a fixed backoff', async () => {
        const queue = backend().queue<Item>('retry');
        const at: number[] = [];
        await backend().process<Item>('retry', async () => {
          at.push(Date.now());
          throw new Error('always fails');
        });
        await queue.add('send', { n: 1 }, { jobId: 'fixed', attempts: 3, backoff: { type: 'fixed', delay: 60 } });
        await waitFor(async () => (await queue.getState('fixed')) === 'failed', 'the job to fail');
        expect(at).toHaveLength(3);
        expect((at[1] ?? 0) - (at[0] ?? 0)).toBeGreaterThanOrEqual(60 - SLACK_MS);
        expect((at[2] ?? 0) - (at[1] ?? 0)).toBeGreaterThanOrEqual(60 - SLACK_MS);
      });

      it('keeps a job that exhausts its attempts as failed, its id taken until removed', async () => {
        const queue = backend().queue<Item>('retry');
        const attempts: number[] = [];
        await backend().process<Item>('retry', async (job) => {
          attempts.push(job.attemptsMade);
          if (job.data.n === 1) {
            throw new Error('peer unreachable');
          }
        });
        await queue.add('send', { n: 1 }, { jobId: 'doomed', attempts: 2 });
        await waitFor(async () => (await queue.getState('doomed')) === 'failed', 'the job to fail');
        expect(attempts).toEqual([0, 1]);
        expect(await queue.counts()).toEqual({ waiting: 0, delayed: 0, active: 0, completed: 0, failed: 1 });

        // A failed job still holds its id: re-triggering needs remove() (or removeOnFail).
        await queue.add('send', { n: 2 }, { jobId: 'doomed' });
        await sleep(100);
        expect(attempts).toEqual([0, 1]);
        expect(await queue.remove('doomed')).toBe(true);
        await queue.add('send', { n: 2 }, { jobId: 'doomed' });
        await waitFor(async () => attempts.length === 3 && (await queue.getState('doomed')) === undefined, 'rerun');
        expect(await queue.counts()).toMatchObject({ failed: 0 });
      });

      it('drops a job that exhausts its attempts with removeOnFail, freeing its id', async () => {
        const queue = backend().queue<Item>('retry');
        let runs = 0;
        await backend().process<Item>('retry', async () => {
          runs += 1;
          throw new Error('fails');
        });
        await queue.add('send', { n: 1 }, { jobId: 'dropped', removeOnFail: true });
        await waitFor(() => runs === 1, 'the attempt');
        await waitFor(async () => (await queue.getState('dropped')) === undefined, 'the job to be dropped');
        expect(await queue.counts()).toMatchObject({ failed: 0 });
      });
    });

    it('never runs more handlers at once than the concurrency, and reaches it', async () => {
      const queue = backend().queue<Item>('busy');
      await queue.addBulk(Array.from({ length: 9 }, (_, n) => ({ name: 'send', data: { n } })));
      let running = 0;
      let maxRunning = 0;
      let done = 0;
      await backend().process<Item>(
        'busy',
        async () => {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          await sleep(60);
          running -= 1;
          done += 1;
        },
        { concurrency: 3 },
      );
      await waitFor(() => done === 9, 'nine jobs');
      expect(maxRunning).toBe(3);
    });

    it('does not run a delayed job before its delay', async () => {
      const queue = backend().queue<Item>('later');
      const ranAt = new Map<string, number>();
      await backend().process<Item>('later', async (job) => {
        ranAt.set(job.id, Date.now());
      });
      const addedAt = Date.now();
      await queue.add('send', { n: 1 }, { jobId: 'late', delay: 250 });
      expect(await queue.getState('late')).toBe('delayed');
      expect(await queue.counts()).toMatchObject({ delayed: 1 });
      await queue.add('send', { n: 2 }, { jobId: 'soon' });
      await waitFor(() => ranAt.has('late') && ranAt.has('soon'), 'both jobs');
      expect(ranAt.get('late') ?? 0).toBeGreaterThanOrEqual(addedAt + 250 - SLACK_MS);
      expect(ranAt.get('soon') ?? Infinity).toBeLessThan(ranAt.get('late') ?? 0);
    });

    it('keeps named queues apart', async () => {
      const alpha = backend().queue<Item>('alpha');
      const beta = backend().queue<Item>('beta');
      expect(backend().queue('alpha')).toBe(alpha);
      const seenAlpha: string[] = [];
      await backend().process<Item>('alpha', async (job) => {
        seenAlpha.push(`${job.queue}/${job.id}`);
      });
      await alpha.add('send', { n: 1 }, { jobId: 'same-id' });
      await beta.add('send', { n: 2 }, { jobId: 'same-id' });
      await waitFor(() => seenAlpha.length === 1, 'the alpha job');
      await sleep(100);
      expect(seenAlpha).toEqual(['alpha/same-id']);
      expect(await beta.counts()).toMatchObject({ waiting: 1 });
      expect(await beta.getState('same-id')).toBe('waiting');

      const seenBeta: Array<[string, number]> = [];
      await backend().process<Item>('beta', async (job) => {
        seenBeta.push([job.queue, job.data.n]);
      });
      await waitFor(() => seenBeta.length === 1, 'the beta job');
      expect(seenBeta).toEqual([['beta', 2]]);
    });

    it('adds in bulk, in order, deduplicating by id', async () => {
      const queue = backend().queue<Item>('bulk');
      const ids = await queue.addBulk([
        { name: 'first', data: { n: 1 }, options: { jobId: 'bulk-a' } },
        { name: 'second', data: { n: 2 }, options: { jobId: 'bulk-b' } },
        { name: 'again', data: { n: 3 }, options: { jobId: 'bulk-a' } },
        { name: 'third', data: { n: 4 } },
      ]);
      expect(ids.slice(0, 3)).toEqual(['bulk-a', 'bulk-b', 'bulk-a']);
      expect(ids[3]).toMatch(/^\d+$/);
      const seen: string[] = [];
      await backend().process<Item>('bulk', async (job) => {
        seen.push(`${job.name}:${job.data.n}`);
      });
      await waitFor(() => seen.length === 3, 'three jobs');
      await sleep(100);
      expect(seen).toEqual(['first:1', 'second:2', 'third:4']);
    });

    it('hands the handler a JSON copy of the data', async () => {
      const queue = backend().queue<Record<string, unknown>>('json');
      const received: unknown[] = [];
      await backend().process<Record<string, unknown>>('json', async (job: Job<Record<string, unknown>>) => {
        received.push(job.data);
      });
      const when = new Date(1_764_000_000_000);
      const data = { when, nested: { list: [1, 'two', null] }, gone: undefined };
      await queue.add('send', data);
      await waitFor(() => received.length === 1, 'the job');
      expect(received[0]).toEqual({ when: when.toISOString(), nested: { list: [1, 'two', null] } });
      expect(received[0]).not.toHaveProperty('gone');
    });

    it('refuses invalid input with the same errors', async () => {
      const queue = backend().queue<unknown>('strict');
      expect(() => backend().queue('no:colons')).toThrow(InvalidQueueNameError);
      expect(() => backend().queue('')).toThrow(InvalidQueueNameError);
      await expect(queue.add('send', {}, { jobId: '42' })).rejects.toThrow(InvalidJobIdError);
      await expect(queue.add('send', {}, { jobId: 'a:b' })).rejects.toThrow(InvalidJobIdError);
      await expect(queue.add('send', {}, { attempts: 0 })).rejects.toThrow(InvalidJobOptionsError);
      await expect(queue.add('send', {}, { delay: -1 })).rejects.toThrow(InvalidJobOptionsError);
      await expect(queue.add('send', undefined)).rejects.toThrow(InvalidJobDataError);
      await expect(queue.add('send', { big: 1n })).rejects.toThrow(InvalidJobDataError);
      await expect(queue.add('', {})).rejects.toThrow(InvalidJobDataError);
      await expect(queue.upsertRepeatable('tick', { every: 0 }, { name: 'tick', data: {} })).rejects.toThrow(
        InvalidJobOptionsError,
      );
      await expect(backend().process('strict', async () => undefined, { concurrency: 0 })).rejects.toThrow(
        InvalidJobOptionsError,
      );
      await backend().process('strict', async () => undefined);
      await expect(backend().process('strict', async () => undefined)).rejects.toThrow(ProcessorAlreadyRegisteredError);
      // An invalid job in a bulk add stops the whole batch.
      await expect(
        queue.addBulk([
          { name: 'ok', data: {}, options: { jobId: 'fine', delay: 60_000 } },
          { name: 'bad', data: {}, options: { jobId: '7' } },
        ]),
      ).rejects.toThrow(InvalidJobIdError);
      expect(await queue.getState('fine')).toBeUndefined();
    });

    it('runs a repeatable job about every interval until it is removed', async () => {
      const queue = backend().queue<Item>('ticks');
      let runs = 0;
      await backend().process<Item>('ticks', async (job) => {
        expect(job.name).toBe('reprovide');
        runs += 1;
      });
      const upsertedAt = Date.now();
      await queue.upsertRepeatable('reprovide', { every: 100 }, { name: 'reprovide', data: { n: 1 } });
      await sleep(1_000);
      // The first iteration runs at once, later ones on 100 ms slots (BullMQ aligns them to
      // multiples of the interval, and a late one may run just before the next): so count
      // over a window rather than time single gaps. No burst, and no stall.
      const window = Date.now() - upsertedAt;
      expect(runs).toBeGreaterThanOrEqual(3);
      expect(runs).toBeLessThanOrEqual(Math.ceil(window / 100) + 2);
      expect(await queue.removeRepeatable('reprovide')).toBe(true);
      expect(await queue.removeRepeatable('reprovide')).toBe(false);
      // An iteration already started when the schedule went may still finish.
      await sleep(250);
      const settled = runs;
      await sleep(350);
      expect(runs).toBe(settled);
      expect(await queue.counts()).toMatchObject({ waiting: 0, delayed: 0, active: 0, failed: 0 });
    });

    describe('close', () => {
      it('waits for a running handler to finish, then refuses new work', async () => {
        const queue = backend().queue<Item>('drain');
        const started = deferred();
        let finished = false;
        await backend().process<Item>('drain', async () => {
          started.resolve();
          await sleep(200);
          finished = true;
        });
        await queue.add('send', { n: 1 });
        await started.promise;
        await backend().close({ timeout: 5_000 });
        expect(finished).toBe(true);
        await expect(queue.add('send', { n: 2 })).rejects.toThrow(QueueClosedError);
        await expect(backend().process('other', async () => undefined)).rejects.toThrow(QueueClosedError);
        await expect(queue.counts()).rejects.toThrow(QueueClosedError);
        // Idempotent.
        await backend().close();
      });

      it('stops waiting after its timeout and aborts the signal of the handler', async () => {
        const queue = backend().queue<Item>('drain');
        const started = deferred();
        let aborted = false;
        await backend().process<Item>('drain', async (job) => {
          started.resolve();
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 20_000);
            job.signal.addEventListener('abort', () => {
              aborted = true;
              clearTimeout(timer);
              resolve();
            });
          });
        });
        await queue.add('send', { n: 1 });
        await started.promise;
        const closeStarted = Date.now();
        await backend().close({ timeout: 150 });
        expect(Date.now() - closeStarted).toBeLessThan(5_000);
        expect(aborted).toBe(true);
      });
    });
  });
}
