// ResyncJobs on the in-process queue with a job store in memory: checks before anything is recorded, the job's
// life (queued, running, done or failed with a message), and what a restart leaves. The resync itself is the
// port's (SyncService.resync, run for real with libp2p in test/admin-resync.test.ts).
import { removeHome, type AccountDocument } from '@polyhome/identity';
import { HomeUnreachableError, ResyncTimeoutError, type ResyncOptions, type ResyncProgress } from '@polyhome/p2p';
import { createInProcessQueue, type QueueBackend } from '@polyhome/queue';
import { makeAccount } from '@polyhome/sync/testing';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ADMIN_JOBS_QUEUE,
  ResyncJobs,
  ResyncRefusal,
  type JobChange,
  type JobRecord,
  type JobStore,
} from './resync-jobs.js';

type Stored = JobRecord & { target: string; progress: Record<string, unknown> } & JobChange;

class MemoryJobs implements JobStore {
  readonly rows = new Map<string, Stored>();
  async createJob(job: JobRecord & { target: string; progress: Record<string, unknown> }): Promise<void> {
    this.rows.set(job.id, structuredClone(job));
  }
  async updateJob(id: string, change: JobChange): Promise<boolean> {
    const row = this.rows.get(id);
    if (row === undefined) return false;
    Object.assign(row, change);
    return true;
  }
  async job(id: string): Promise<Stored | undefined> {
    return this.rows.get(id);
  }
  async unfinishedJobs(): Promise<Array<{ id: string }>> {
    return [...this.rows.values()].filter((r) => r.state === 'queued' || r.state === 'running');
  }
}

const account = makeAccount({ seed: 'resync-jobs', homes: 3 });
const [self, laptop, phone] = account.homes.map((h) => h.peerId) as [string, string, string];
const revokedDocument: AccountDocument = removeHome(account.document, phone, 0, account.rootKey);
const DONE: ResyncProgress = { phase: 'converged', opsReceived: 3, opsSent: 1, missingHere: 0, missingThere: 0 };

describe('forced resync jobs', () => {
  let backend: QueueBackend | undefined;
  afterEach(async () => backend?.close());

  function setUp(resync: (account: string, peer: string, options: ResyncOptions) => Promise<ResyncProgress>) {
    backend = createInProcessQueue();
    const jobs = new MemoryJobs();
    const calls: string[] = [];
    const resyncJobs = new ResyncJobs({
      jobs,
      queue: backend.queue(ADMIN_JOBS_QUEUE),
      document: async (name) => (name === account.serverName ? revokedDocument : undefined),
      localPeer: self,
      resync: async (name, peer, options) => {
        calls.push(peer);
        return resync(name, peer, options);
      },
      timeoutMs: 2_000,
    });
    return { jobs, calls, resyncJobs, backend };
  }
  const start = (r: ResyncJobs, peerId: string) =>
    r.start({ userId: account.userId, account: account.serverName, peerId, reason: 'test' });

  it('refuses an unknown account, this home, a stranger and a revoked home, recording nothing', async () => {
    const { jobs, resyncJobs } = setUp(async () => DONE);
    await expect(
      resyncJobs.start({ userId: '@x:y', account: 'b'.repeat(64), peerId: laptop, reason: 'r' }),
    ).rejects.toMatchObject({ kind: 'not_found' });
    await expect(start(resyncJobs, self)).rejects.toThrow(/is this server/);
    await expect(start(resyncJobs, makeAccount({ seed: 'other', homes: 1 }).homes[0]!.peerId)).rejects.toThrow(
      /is not a home of/,
    );
    await expect(start(resyncJobs, phone)).rejects.toThrow(/is a revoked home/);
    await expect(start(resyncJobs, phone)).rejects.toBeInstanceOf(ResyncRefusal);
    expect(jobs.rows.size).toBe(0);
  });

  it('runs a queued job through the queue and records what it did', async () => {
    const { jobs, calls, resyncJobs, backend } = setUp(async (_a, _p, options) => {
      options.onProgress?.({ ...DONE, phase: 'exchanging', missingHere: 3 });
      return DONE;
    });
    await backend.process<{ id: string }>(ADMIN_JOBS_QUEUE, (job) => resyncJobs.run(job.data.id, job.signal));
    const id = await start(resyncJobs, laptop);
    expect(id).toMatch(/^resync-[0-9a-f-]{36}$/);
    await expect.poll(() => jobs.rows.get(id)?.state).toBe('done');
    expect(jobs.rows.get(id)).toMatchObject({
      params: { peer_id: laptop, reason: 'test', home_role: 'client' },
      progress: { phase: 'converged', ops_received: 3, ops_sent: 1, missing_here: 0 },
    });
    expect(calls).toEqual([laptop]);
    // Run again (a queue delivering twice): an ended job is left as it is.
    await resyncJobs.run(id);
    expect(calls).toEqual([laptop]);
  });

  it('fails with the home and what to check: unreachable, or not converged in time', async () => {
    const unreachable = setUp(async () => {
      throw new HomeUnreachableError(laptop, 'connection refused');
    });
    const id = await start(unreachable.resyncJobs, laptop);
    await unreachable.resyncJobs.run(id);
    expect(unreachable.jobs.rows.get(id)?.state).toBe('failed');
    expect(unreachable.jobs.rows.get(id)?.error).toMatch(
      new RegExp(`Could not reach home ".*" \\(${laptop}, a client home\\): connection refused\\. Check that`),
    );
    await unreachable.backend.close();

    const slow = setUp(
      async (_a, _p, options) =>
        new Promise((_resolve, reject) =>
          options.signal?.addEventListener('abort', () => reject(new ResyncTimeoutError('3 ops missing here'))),
        ),
    );
    const slowId = await start(slow.resyncJobs, laptop);
    const at = Date.now();
    await slow.resyncJobs.run(slowId);
    expect(Date.now() - at).toBeLessThan(5_000);
    expect(slow.jobs.rows.get(slowId)?.error).toMatch(/did not end within 2 s: 3 ops missing here/);
  });

  it('ends as failed the jobs a restart lost, and a job found running when the queue runs it again', async () => {
    const { jobs, calls, resyncJobs } = setUp(async () => DONE);
    // Queued, then the process stopped: the in-process queue kept nothing.
    const lost = await start(resyncJobs, laptop);
    await backend!.queue(ADMIN_JOBS_QUEUE).remove(lost);
    const running = await start(resyncJobs, laptop);
    await jobs.updateJob(running, { state: 'running' });
    await resyncJobs.run(running);
    expect(jobs.rows.get(running)).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(/Start the resync again/),
    });
    expect(await resyncJobs.recover()).toBe(1);
    expect(jobs.rows.get(lost)).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(/stopped before it ended/),
    });
    expect(calls).toEqual([]);
  });
});
