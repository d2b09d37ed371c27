import { randomBytes } from 'node:crypto';
import type { Queue } from '@polyhome/queue';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueRegistry } from '../queue/queue-registry.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.each(SERVER_BACKENDS)('GET /admin/v1/queues on $name', (backend) => {
  let server: TestServer;
  // A queue of this test's own, so jobs of other tests sharing the Redis cannot change its counts.
  const name = `test-queues-${randomBytes(4).toString('hex')}`;
  let queue: Queue<null>;
  let release: () => void = () => {};
  const admin = () => ({ Authorization: `Bearer ${ADMIN_TOKEN}` });
  const http = () => request(server.app.getHttpServer());

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    server.app.get(QueueRegistry).register(name);
    queue = server.resources.queue.queue<null>(name);
  });
  afterAll(async () => {
    release();
    await server?.close();
  });

  it('needs the admin token', async () => {
    expect((await http().get('/admin/v1/queues').expect(401)).body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('lists every known queue with its five counts, empty ones included', async () => {
    const res = await http().get('/admin/v1/queues').set(admin()).expect(200);
    expect(res.body.next_from).toBeUndefined();
    const names = (res.body.chunk as Array<{ name: string }>).map((q) => q.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['delivery', 'dht', name]));
    for (const entry of res.body.chunk as Array<Record<string, unknown>>) {
      expect(Object.keys(entry).sort()).toEqual(['active', 'completed', 'delayed', 'failed', 'name', 'waiting']);
    }
    expect(res.body.chunk.find((q: { name: string }) => q.name === name)).toEqual({
      name,
      waiting: 0,
      active: 0,
      delayed: 0,
      failed: 0,
      completed: 0,
    });
  });

  it('reports waiting, active, delayed, failed and completed jobs as the backend holds them', async () => {
    const blocked = new Promise<void>((resolve) => (release = resolve));
    await server.resources.queue.process<null>(
      name,
      async (job) => {
        if (job.name === 'fail') throw new Error('fails on purpose');
        if (job.name === 'block') await blocked;
      },
      { concurrency: 1 },
    );
    const failed = await queue.add('fail', null);
    await until(async () => (await queue.getState(failed)) === 'failed', 'the failing job');
    const kept = await queue.add('ok', null, { removeOnComplete: false });
    await until(async () => (await queue.getState(kept)) === 'completed', 'the kept job');
    const active = await queue.add('block', null);
    await until(async () => (await queue.getState(active)) === 'active', 'the blocking job');
    await queue.add('ok', null);
    await queue.add('ok', null);
    const delayed = await queue.add('ok', null, { delay: 60_000 });

    const res = await http().get('/admin/v1/queues').set(admin()).expect(200);
    expect(res.body.chunk.find((q: { name: string }) => q.name === name)).toEqual({
      name,
      waiting: 2,
      active: 1,
      delayed: 1,
      failed: 1,
      completed: 1,
    });

    release();
    await until(async () => (await queue.counts()).waiting === 0 && (await queue.counts()).active === 0, 'the rest');
    for (const id of [failed, kept, delayed]) await queue.remove(id);
  });

  it('pages with limit and next_from, in name order, without repeats', async () => {
    const all = (await http().get('/admin/v1/queues').set(admin()).expect(200)).body.chunk.map(
      (q: { name: string }) => q.name,
    );
    const seen: string[] = [];
    let from: string | undefined;
    do {
      const res = await http()
        .get('/admin/v1/queues')
        .query({ limit: 1, ...(from === undefined ? {} : { from }) })
        .set(admin())
        .expect(200);
      expect(res.body.chunk).toHaveLength(1);
      seen.push(res.body.chunk[0].name);
      from = res.body.next_from;
    } while (from !== undefined);
    expect(seen).toEqual(all);
  });

  it.each([
    ['an unknown query field', { offset: '1' }, /offset should not exist/],
    ['limit 0', { limit: '0' }, /limit must not be less than 1/],
    ['limit 501', { limit: '501' }, /limit must not be greater than 500/],
    ['a cursor that is not ours', { from: 'AAAA' }, /from is not a next_from/],
  ])('refuses %s with 400 M_INVALID_PARAM', async (_what, query, message) => {
    const res = await http().get('/admin/v1/queues').query(query).set(admin()).expect(400);
    expect(res.body).toEqual({ errcode: 'M_INVALID_PARAM', error: expect.stringMatching(message) });
  });
});
