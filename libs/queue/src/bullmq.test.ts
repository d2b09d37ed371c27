import { afterEach, describe, expect, it } from 'vitest';
import { createBullmqQueue, createQueueBackend, type BullmqQueueInit, type QueueBackend } from './index.js';
import { queueComplianceSuite } from './testing/compliance.js';
import { countKeys, deleteKeys, requireRedis, TEST_REDIS_URL, uniquePrefix } from './testing/redis.js';
import { deferred, sleep, waitFor } from './testing/wait.js';

// Checked once per file; every test awaits it, so an absent Redis fails each test with
// the fix in the message instead of skipping anything.
let reachable: Promise<void> | undefined;
const redisReady = (): Promise<void> => (reachable ??= requireRedis(TEST_REDIS_URL));

queueComplianceSuite('bullmq', async () => {
  await redisReady();
  const prefix = uniquePrefix('compliance');
  const backend = createBullmqQueue({ redisUrl: TEST_REDIS_URL, prefix });
  return {
    backend,
    teardown: async () => {
      await backend.close({ timeout: 2_000 });
      await deleteKeys(TEST_REDIS_URL, prefix);
    },
  };
});

describe('queue: bullmq only', () => {
  const prefixes: string[] = [];
  const backends: QueueBackend[] = [];

  /** A backend on `prefix`, closed and cleaned up after the test even if it fails. */
  const open = (prefix: string, init: Partial<BullmqQueueInit> = {}): QueueBackend => {
    const backend = createBullmqQueue({ redisUrl: TEST_REDIS_URL, prefix, ...init });
    backends.push(backend);
    if (!prefixes.includes(prefix)) {
      prefixes.push(prefix);
    }
    return backend;
  };

  afterEach(async () => {
    await Promise.all(backends.splice(0).map((backend) => backend.close({ timeout: 1_000 })));
    for (const prefix of prefixes.splice(0)) {
      await deleteKeys(TEST_REDIS_URL, prefix);
      expect(await countKeys(TEST_REDIS_URL, prefix)).toBe(0);
    }
  });

  it('is what createQueueBackend picks with a Redis URL', async () => {
    await redisReady();
    const prefix = uniquePrefix('pick');
    prefixes.push(prefix);
    const backend = createQueueBackend({ redisUrl: TEST_REDIS_URL, prefix });
    backends.push(backend);
    expect(backend.kind).toBe('bullmq');
    expect(await backend.health()).toMatchObject({ ok: true, backend: 'bullmq' });
  });

  it('reports unhealthy, without throwing, when Redis cannot be reached', async () => {
    // Port 1 on loopback: nothing listens there.
    const backend = createBullmqQueue({ redisUrl: 'redis://127.0.0.1:1', prefix: 'unreachable', healthTimeout: 300 });
    const health = await backend.health();
    expect(health.ok).toBe(false);
    expect(health.error).toBeTruthy();
    await backend.close({ timeout: 100 });
  });

  it('loses no job when a worker closes with jobs waiting and a new backend takes over', async () => {
    await redisReady();
    const prefix = uniquePrefix('restart');
    const ids = ['j-1', 'j-2', 'j-3', 'j-4', 'j-5', 'j-6'];
    const first = open(prefix);
    const firstStarted = new Set<string>();
    const firstFinished = new Set<string>();
    const started = deferred();
    await first.process<{ n: number }>('deliver', async (job) => {
      firstStarted.add(job.id);
      started.resolve();
      await sleep(150);
      firstFinished.add(job.id);
    });
    await first
      .queue<{ n: number }>('deliver')
      .addBulk(ids.map((id, n) => ({ name: 'send', data: { n }, options: { jobId: id } })));
    await started.promise;
    await first.close({ timeout: 5_000 });
    // Graceful close finished every job it had started.
    expect([...firstFinished].sort()).toEqual([...firstStarted].sort());
    expect(firstFinished.size).toBeLessThan(ids.length);

    const second = open(prefix);
    const secondDone = new Set<string>();
    await second.process<{ n: number }>('deliver', async (job) => {
      secondDone.add(job.id);
    });
    await waitFor(() => ids.every((id) => firstFinished.has(id) || secondDone.has(id)), 'every job to complete');
    expect(await second.queue('deliver').counts()).toEqual({
      waiting: 0,
      delayed: 0,
      active: 0,
      completed: 0,
      failed: 0,
    });
  });

  it('runs again a job abandoned mid-run when close timed out, once its lock lapses', async () => {
    await redisReady();
    const prefix = uniquePrefix('abandon');
    // Short locks so the stalled check recovers the abandoned job within the test.
    const init = { lockDuration: 600, stalledInterval: 300 };
    const first = open(prefix, init);
    const started = deferred();
    let aborted = false;
    await first.process('deliver', async (job) => {
      started.resolve();
      await new Promise<void>((resolve) => {
        job.signal.addEventListener('abort', () => {
          aborted = true;
          resolve();
        });
      });
      // Throwing here must not count as a failed attempt: the job was abandoned, not failed.
      throw new Error('aborted by close');
    });
    const queue = first.queue('deliver');
    await queue.add('send', { n: 0 }, { jobId: 'stuck', attempts: 1 });
    await queue.add('send', { n: 1 }, { jobId: 'queued' });
    await started.promise;
    await first.close({ timeout: 100 });
    expect(aborted).toBe(true);

    const second = open(prefix, init);
    const seen = new Map<string, number>();
    await second.process('deliver', async (job) => {
      seen.set(job.id, job.attemptsMade);
    });
    await waitFor(() => seen.has('stuck') && seen.has('queued'), 'both jobs on the new backend', 15_000);
    expect(seen.get('stuck')).toBe(0);
    await waitFor(
      async () => (await second.queue('deliver').counts()).active === 0,
      'the recovered job to be recorded',
    );
    expect(await second.queue('deliver').counts()).toMatchObject({ failed: 0, waiting: 0, delayed: 0 });
  });

  it('keeps repeatable schedules in Redis across a restart', async () => {
    await redisReady();
    const prefix = uniquePrefix('repeat');
    const first = open(prefix);
    await first.queue('dht').upsertRepeatable('reprovide', { every: 100 }, { name: 'reprovide', data: {} });
    await first.close();

    const second = open(prefix);
    let runs = 0;
    await second.process('dht', async () => {
      runs += 1;
    });
    await waitFor(() => runs >= 2, 'iterations on the new backend');
    expect(await second.queue('dht').removeRepeatable('reprovide')).toBe(true);
  });
});
