// The admin API's forced resync (POST /admin/v1/accounts/{userId}/resync, GET /admin/v1/jobs/{id}) with real
// processes and real libp2p: a server process and a client home in this process (its own libp2p node). The
// client home stores ops without telling its open session, as if a push had been lost: the normal sync does
// not send them until something else happens (at most an anti-entropy round, about a minute later), so only
// the resync brings them to the server before the assertions. Then the refusals, and a home that is down.
// Once on the embedded server (PGlite + in-process queue), once on PostgreSQL + BullMQ.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeHome } from '@polyhome/identity';
import { freePort, waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import type { VersionVector } from '@polyhome/sync';
import { makeAccount, makeHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNode, serverHomeOf } from './support/client-node.js';
import { deleteRedisPrefix } from './support/convergence.js';
import { ADMIN_TOKEN, ServerProcess, type Answer } from './support/server-process.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const TEST_MS = 180_000;
const CONVERGE_MS = 60_000;
/** Ops the laptop stores without pushing them. */
const LOST_PUSH_OPS = 30;

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../apps/server/dist/cli/admin.js');

/** Runs polyhome-admin against a server; its exit code and output. */
async function admin(
  server: ServerProcess,
  args: string[],
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: {
      PATH: process.env['PATH'] ?? '',
      POLYHOME_ADMIN_URL: `http://127.0.0.1:${server.port}`,
      POLYHOME_ADMIN_TOKEN: ADMIN_TOKEN,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
}

/** `polyhome-admin accounts resync <userId> --home <peer> --reason <reason> --wait`. */
function resyncWait(server: ServerProcess, laptop: ClientNode, reason: string) {
  return admin(server, [
    'accounts',
    'resync',
    laptop.userId,
    '--home',
    laptop.home.peerId,
    '--reason',
    reason,
    '--wait',
  ]);
}

const BACKENDS = [
  { name: 'embedded (PGlite + in-process queue)', postgres: false },
  { name: 'PostgreSQL + BullMQ', postgres: true },
] as const;

describe.each(BACKENDS)('forced resync of an account with one of its homes, server on $name', ({ postgres }) => {
  let scratch: string;
  let server: ServerProcess;
  let laptop: ClientNode;
  let dropDb: (() => Promise<void>) | undefined;
  let prefix: string | undefined;

  const accountPath = (): string => `/admin/v1/accounts/${encodeURIComponent(laptop.userId)}`;
  const resync = (body: unknown): Promise<Answer> => server.admin('POST', `${accountPath()}/resync`, body);
  /** The server's version vector of the account (its own home entry's `acked` in the admin detail). */
  const serverVv = async (): Promise<VersionVector> => {
    const detail = await server.admin('GET', accountPath());
    const homes = detail.body['homes'] as Array<{ self: boolean; acked: VersionVector }>;
    return homes.find((h) => h.self)!.acked;
  };
  const resyncAudits = async (): Promise<Array<Record<string, unknown>>> => {
    const audit = await server.admin('GET', `/admin/v1/audit?target=${encodeURIComponent(laptop.userId)}`);
    return (audit.body['chunk'] as Array<Record<string, unknown>>).filter((e) => e['action'] === 'account.resync');
  };
  /** Polls a job until it has ended; its last answer. */
  const ended = async (jobId: string, within: number): Promise<Record<string, unknown>> => {
    let job: Record<string, unknown> = {};
    await waitFor(
      async () => {
        job = (await server.admin('GET', `/admin/v1/jobs/${jobId}`)).body;
        return job['state'] === 'done' || job['state'] === 'failed';
      },
      `job ${jobId} to end`,
      within,
      200,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\nlast answer: ${JSON.stringify(job)}\n${server.tail()}`);
    });
    return job;
  };
  const connected = (): boolean =>
    laptop.host.getConnections().some((c) => c.remotePeer.toString() === server.peerId && c.status === 'open');

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-resync-'));
    const env: Record<string, string> = {};
    if (postgres) {
      const db = await createTestPostgresDatabase();
      dropDb = db.drop;
      prefix = `polyhome-resync-${process.pid}-${Date.now()}`;
      Object.assign(env, { DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix });
    }
    server = await ServerProcess.create({ name: 'server', dataDir: path.join(scratch, 'server'), env });
    await server.start();
    laptop = await ClientNode.start({
      seed: `resync-${postgres ? 'pg' : 'lite'}-${process.pid}`,
      port: await freePort(),
    });
    await laptop.addHome(serverHomeOf(server, 'server'));
    expect((await laptop.enroll(server)).status).toBe(201);
    // The laptop's home entry names no address (a client home): it dials the server, which learns its address.
    await laptop.connect(server);
    await waitFor(connected, 'the server and the laptop to connect', CONVERGE_MS, 100);
    await laptop.write(20, 'BEFORE');
    await waitFor(
      async () => ((await serverVv())[laptop.home.peerId] ?? 0) === 20,
      'the server to hold the laptop’s first ops',
      CONVERGE_MS,
      200,
    );
  }, 120_000);

  afterAll(async () => {
    await laptop?.stop().catch(() => undefined);
    await server?.kill('SIGKILL');
    if (prefix !== undefined) await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
    await dropDb?.().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it(
    'takes in the ops a home holds and never pushed, and the job says how many',
    async () => {
      const lost = await laptop.write(LOST_PUSH_OPS, 'LOST', 50, false);
      const last = lost.at(-1)!.seq;
      // The divergence is real: the server lacks them, and its open session does not bring them by itself.
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect((await serverVv())[laptop.home.peerId]).toBe(20);

      const started = await resync({ home: laptop.home.peerId, reason: 'laptop devices missing here (ticket 7)' });
      expect(started.status).toBe(202);
      expect(started.body).toMatchObject({ kind: 'account.resync', target: laptop.userId });
      // The answer tells the job as it is then: the queue may have started it already.
      expect(started.body['state']).toMatch(/^(queued|running|done)$/);
      const jobId = String(started.body['job_id']);
      const job = await ended(jobId, CONVERGE_MS);
      expect(job['state'], JSON.stringify(job)).toBe('done');
      expect(job['error']).toBeNull();
      expect(job['progress']).toEqual({
        phase: 'converged',
        ops_received: LOST_PUSH_OPS,
        ops_sent: 0,
        missing_here: 0,
        missing_there: 0,
      });
      expect((await serverVv())[laptop.home.peerId]).toBe(last);
      expect((await server.admin('GET', `${accountPath()}/devices?limit=500`)).body['chunk']).toEqual(
        expect.arrayContaining([expect.objectContaining({ device_id: 'LOST_27' })]),
      );
      // Audited with its reason and the job.
      const audits = await resyncAudits();
      expect(audits).toHaveLength(1);
      expect(audits[0]).toMatchObject({
        reason: 'laptop devices missing here (ticket 7)',
        detail: { job_id: jobId, peer_id: laptop.home.peerId },
      });
      // A second resync of converged homes moves nothing, and says so: through polyhome-admin, --wait.
      const waited = await resyncWait(server, laptop, 'check after the repair');
      expect(waited.code, waited.err).toBe(0);
      expect(waited.out).toMatch(/state: done\nprogress: converged, 0 ops received, 0 sent, 0 missing here/);
      expect(waited.err).toMatch(/^(queued|running|done): /m);
      const jobLine = /job_id: (resync-[0-9a-f-]+)/.exec(waited.out);
      expect(jobLine, waited.out).not.toBeNull();
      const shown = await admin(server, ['jobs', 'show', jobLine![1]!, '--json']);
      expect(JSON.parse(shown.out)).toMatchObject({ state: 'done', progress: { ops_received: 0, ops_sent: 0 } });
    },
    TEST_MS,
  );

  it(
    'refuses bad input clearly and changes nothing',
    async () => {
      const audited = (await resyncAudits()).length;
      // A revoked home: a second client home added, then revoked, in documents the server takes in.
      const spare = makeHome(`resync-spare-${postgres ? 'pg' : 'lite'}`, 'client', 'spare');
      await laptop.addHome(spare.home);
      await laptop.adopt(removeHome(laptop.document, spare.peerId, 0, laptop.account.rootKey));
      await waitFor(
        async () => (await server.admin('GET', accountPath())).body['doc_seq'] === laptop.document.seq,
        'the server to take in the revocation',
        CONVERGE_MS,
        200,
      );
      const cases: Array<[string, string, unknown, number, RegExp]> = [
        ['no reason', accountPath(), { home: laptop.home.peerId }, 400, /reason must say why/],
        ['a blank reason', accountPath(), { home: laptop.home.peerId, reason: '  ' }, 400, /reason must say why/],
        ['no home', accountPath(), { reason: 'x' }, 400, /home/],
        ['an unknown field', accountPath(), { home: laptop.home.peerId, reason: 'x', force: true }, 400, /force/],
        [
          'an unknown account',
          `/admin/v1/accounts/${encodeURIComponent(`@nobody:${makeAccount({ seed: 'resync-nobody', localpart: 'nobody' }).serverName}`)}`,
          { home: laptop.home.peerId, reason: 'x' },
          404,
          /is not hosted here/,
        ],
        ['a malformed user ID', '/admin/v1/accounts/nobody', { home: laptop.home.peerId, reason: 'x' }, 400, /user ID/],
        [
          'a peer that is no home',
          accountPath(),
          { home: makeHome('resync-stranger').peerId, reason: 'x' },
          400,
          /is not a home of .*GET \/admin\/v1\/accounts/,
        ],
        ['a revoked home', accountPath(), { home: spare.peerId, reason: 'x' }, 400, /is a revoked home/],
        ['this server', accountPath(), { home: server.peerId, reason: 'x' }, 400, /is this server/],
      ];
      for (const [what, route, body, status, error] of cases) {
        const answer = await server.admin('POST', `${route}/resync`, body);
        expect(answer.status, what).toBe(status);
        expect(String(answer.body['error']), what).toMatch(error);
      }
      expect(await resyncAudits()).toHaveLength(audited);
      const unknown = await server.admin('GET', '/admin/v1/jobs/resync-00000000-0000-0000-0000-000000000000');
      expect(unknown.status).toBe(404);
      expect(unknown.body['errcode']).toBe('M_NOT_FOUND');
    },
    TEST_MS,
  );

  it(
    'ends as failed, naming the home and what to check, when the home is down',
    async () => {
      await laptop.stop();
      await waitFor(
        () =>
          server.admin('GET', accountPath()).then((d) => {
            const homes = d.body['homes'] as Array<{ self: boolean; connected: boolean }>;
            return homes.every((h) => h.self || !h.connected);
          }),
        'the server to see the laptop gone',
        CONVERGE_MS,
        200,
      );
      const at = Date.now();
      const started = await resync({ home: laptop.home.peerId, reason: 'laptop switched off?' });
      expect(started.status).toBe(202);
      const job = await ended(String(started.body['job_id']), 60_000);
      const took = Date.now() - at;
      expect(job['state']).toBe('failed');
      expect(String(job['error'])).toContain(laptop.home.peerId);
      expect(String(job['error'])).toMatch(/Could not reach home .* Check that the device running it is online/);
      process.stdout.write(`resync of a home that is down failed after ${took} ms\n`);
      // polyhome-admin --wait says so too, and exits 1.
      const waited = await resyncWait(server, laptop, 'again');
      expect(waited.code).toBe(1);
      expect(waited.err).toMatch(/polyhome-admin: The resync failed: Could not reach home/);
    },
    TEST_MS,
  );
});
