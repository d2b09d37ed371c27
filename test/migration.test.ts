// Moving a hosted account from provider A to provider B (POST /admin/v1/accounts/{userId}/migrate and the user's
// POST /_polyhome/v1/migration), with three real server processes over libp2p and a client home:
//   A: the old provider (embedded PGlite + in-process queue), hosting the accounts with their keys;
//   B: the new provider (PostgreSQL + BullMQ), enrollment by token;
//   C: bob's provider (PGlite), so every account has a room with another account's user in it;
//   alice's laptop: a `polyhome` node that A added as a client home of alice's account.
// A refused enrollment leaves the account as it was. Then one account per durable point of the migration: A kills
// itself with SIGKILL at that point (POLYHOME_TEST_MIGRATION_KILL), starts again, and the migration goes on
// to the end. Every time: B holds the key (it signs a new document), A is revoked and has erased the key, the
// user logs in on B with the same password and sees the room's whole history, and messages flow both ways with
// bob. The laptop follows the account to B.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { makeHome } from '@polyhome/sync/testing';
import { createClient, EventType, MsgType, type MatrixClient } from 'matrix-js-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from './support/cli-node.js';
import { eventually, serverProcess, type Hosted } from './support/e2ee.js';
import { hostedClient, messages } from './support/rooms.js';
import type { Answer, ServerProcess } from './support/server-process.js';

const POINTS = ['enrolled', 'caught_up', 'signed', 'handed_over', 'finished'] as const;
const MESSAGES = 5;
const JOB_MS = 180_000;

const path_ = (userId: string): string => `/admin/v1/accounts/${encodeURIComponent(userId)}`;
const password = (localpart: string): string => `${localpart} password 1`;

/** A matrix-js-sdk client of `userId` logged in with its password on `server` (throws on a refusal). */
async function passwordClient(server: ServerProcess, userId: string, localpart: string): Promise<MatrixClient> {
  const baseUrl = `http://127.0.0.1:${server.port}`;
  const login = await createClient({ baseUrl }).loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: userId },
    password: password(localpart),
  });
  return createClient({ baseUrl, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id });
}

async function send(client: MatrixClient, roomId: string, body: string): Promise<void> {
  await client.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body });
}

describe('moving an account from provider A to provider B', () => {
  let a: Hosted;
  let b: Hosted;
  let c: Hosted;
  let bob: MatrixClient;
  let laptop: CliNode | undefined;
  let laptopDir: string | undefined;

  const A = (): ServerProcess => a.server;
  const B = (): ServerProcess => b.server;

  /** An enrollment token of B (its policy asks for one). */
  const tokenOfB = async (): Promise<string> => {
    const made = await B().admin('POST', '/admin/v1/enrollment-tokens', { uses: 1 });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    return String(made.body['token']);
  };

  /** A job on A, until it is done or failed. */
  const jobEnd = async (id: string): Promise<Answer> => {
    let job: Answer | undefined;
    await waitFor(
      async () => {
        job = await A()
          .admin('GET', `/admin/v1/jobs/${id}`)
          .catch(() => undefined);
        return job?.body['state'] === 'done' || job?.body['state'] === 'failed';
      },
      `migration job ${id} to end`,
      JOB_MS,
      500,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: last ${JSON.stringify(job?.body)}\nA:\n${A().tail(30)}\nB:\n${B().tail(20)}`);
    });
    return job!;
  };

  /** An account on A, in a room with bob (on C) holding MESSAGES messages of each. */
  const accountWithRoom = async (
    localpart: string,
  ): Promise<{ userId: string; roomId: string; alice: MatrixClient }> => {
    const alice = await hostedClient(A(), localpart);
    const userId = alice.getUserId()!;
    const { room_id: roomId } = await alice.createRoom({ name: localpart, preset: 'private_chat' as never });
    await eventually(
      () => alice.invite(roomId, bob.getUserId()!),
      `the invite of bob into ${localpart}'s room`,
      90_000,
    );
    await eventually(() => bob.joinRoom(roomId), `bob to join ${localpart}'s room`, 60_000);
    for (let i = 0; i < MESSAGES; i++) {
      await send(alice, roomId, `${localpart} ${i}`);
      await send(bob, roomId, `bob to ${localpart} ${i}`);
    }
    return { userId, roomId, alice };
  };

  /** Everything a finished migration must show, on A, B, and between the user on B and bob on C. */
  const movedWhole = async (
    localpart: string,
    userId: string,
    roomId: string,
    seqBefore: number,
    deviceOnA: string,
  ): Promise<void> => {
    // B holds the account with its key, in a document that revokes A.
    const onB = await B().admin('GET', path_(userId));
    expect(onB.status, JSON.stringify(onB.body)).toBe(200);
    expect(onB.body['custody']).toBe('hosted');
    const document = onB.body['document'] as { seq: number; homes: Array<{ peer_id: string }>; revoked?: object };
    expect(document.seq).toBe(seqBefore + 2);
    expect(document.homes.map((h) => h.peer_id)).toContain(B().peerId);
    expect(document.homes.map((h) => h.peer_id)).not.toContain(A().peerId);
    expect(Object.keys(document.revoked ?? {})).toContain(A().peerId);
    // A erased the key and serves the account no more.
    const onA = await A().admin('GET', path_(userId));
    expect(onA.body['custody']).toBe('self');
    expect(onA.body['status']).toBe('migrated');
    const loginOnA = await A().request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: password(localpart),
    });
    expect(loginOnA.status).toBe(403);
    // The device logged in on A ended with it (B deleted it, for every home); a new login on B is the user's.
    const deviceIds = async (server: ServerProcess): Promise<string[]> => {
      const devices = await server.admin('GET', `${path_(userId)}/devices?limit=500`);
      expect(devices.status, JSON.stringify(devices.body)).toBe(200);
      return (devices.body['chunk'] as Array<{ device_id: string }>).map((d) => d.device_id);
    };
    await waitFor(
      async () => !(await deviceIds(B())).includes(deviceOnA),
      `the device ${deviceOnA} logged in on A to end`,
      30_000,
    );
    // The same password on B; the room's whole history; messages both ways with bob.
    const aliceOnB = await passwordClient(B(), userId, localpart);
    const expected = Array.from({ length: MESSAGES }, (_, i) => [
      `${localpart} ${i}`,
      `bob to ${localpart} ${i}`,
    ]).flat();
    // Every message, in the room's order as bob's server C shows it (alice's and bob's sends of one round may be
    // concurrent in the room's graph: the order between them is the room's, not the order they were sent in).
    let seen: string[][] = [];
    await waitFor(
      async () => {
        seen = await Promise.all([messages(aliceOnB, roomId).catch(() => []), messages(bob, roomId)]);
        return (
          [...seen[0]!].sort().join('\n') === [...expected].sort().join('\n') && seen[0]!.join() === seen[1]!.join()
        );
      },
      `${localpart}'s room history on B`,
      60_000,
      1_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}: on B ${JSON.stringify(seen[0])}, on C ${JSON.stringify(seen[1])}`);
    });
    await send(bob, roomId, `bob after ${localpart} moved`);
    await send(aliceOnB, roomId, `${localpart} from B`);
    await waitFor(
      async () => {
        const [seenByAlice, seenByBob] = await Promise.all([messages(aliceOnB, roomId), messages(bob, roomId)]);
        return (
          seenByAlice.includes(`bob after ${localpart} moved`) &&
          seenByBob.includes(`${localpart} from B`) &&
          seenByAlice.join('\n') === seenByBob.join('\n')
        );
      },
      `messages between ${localpart} on B and bob on C`,
      60_000,
      1_000,
    );
    // B holds the key: it signs the account's next document (a client home added by PeerId).
    const added = await B().admin('POST', `${path_(userId)}/homes`, {
      multiaddr: `/ip4/127.0.0.1/tcp/9/p2p/${makeHome(`proof-${localpart}`).peerId}`,
      role: 'client',
      name: 'proof of key',
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect((added.body as { seq?: number }).seq).toBe(seqBefore + 3);
    aliceOnB.stopClient();
  };

  beforeAll(async () => {
    a = await serverProcess('mig-a', false, { POLYHOME_TEST_MIGRATION_KILL: '1' });
    b = await serverProcess('mig-b', true, { P2P_BOOTSTRAP: a.server.addr, ENROLLMENT_POLICY: 'token' });
    c = await serverProcess('mig-c', false, { P2P_BOOTSTRAP: a.server.addr });
    bob = await hostedClient(c.server, 'bob');
  }, 300_000);

  afterAll(async () => {
    bob?.stopClient();
    await laptop?.stop('SIGKILL');
    await Promise.allSettled([a?.dispose(), b?.dispose(), c?.dispose()]);
    if (laptopDir !== undefined) await rm(laptopDir, { recursive: true, force: true });
  }, 120_000);

  it('a refused enrollment (wrong token) ends the job failed and leaves the account whole on A', async () => {
    const { userId, roomId, alice } = await accountWithRoom('refused');
    const before = await A().admin('GET', path_(userId));
    const started = await A().admin('POST', `${path_(userId)}/migrate`, {
      to: B().addr,
      token: 'phe_not-a-token',
      reason: 'test: a wrong token',
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect((started.body['params'] as Record<string, unknown>)['token']).toBe('(given)');
    const ended = await jobEnd(String(started.body['job_id']));
    expect(ended.body['state']).toBe('failed');
    expect(String(ended.body['error'])).toMatch(/refused the enrollment.*stays whole on this server/s);
    const after = await A().admin('GET', path_(userId));
    expect(after.body['doc_seq']).toBe(before.body['doc_seq']);
    expect(after.body['custody']).toBe('hosted');
    expect(after.body['status']).toBe('active');
    await send(alice, roomId, 'still here');
    expect((await B().admin('GET', path_(userId))).status).toBe(404);
    // Bad requests change nothing either.
    const bad = await A().admin('POST', `${path_(userId)}/migrate`, { to: A().addr, reason: 'test: to itself' });
    expect(bad.status).toBe(400);
    expect(String(bad.body['error'])).toMatch(/is this server/);
    const unknown = await A().admin('POST', `${path_(userId)}/migrate`, { to: B().addr, reason: 'x', extra: 1 });
    expect(unknown.status).toBe(400);
    const wrongPassword = await A().request('POST', '/_polyhome/v1/migration', {
      user_id: userId,
      password: 'not it',
      to: B().addr,
    });
    expect(wrongPassword.status).toBe(403);
    alice.stopClient();
  }, 300_000);

  it('the user moves with their password; the laptop (a client home) follows the account to B', async () => {
    const { userId, roomId, alice } = await accountWithRoom('alice');
    laptopDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-mig-laptop-'));
    laptop = new CliNode('laptop', laptopDir);
    const joined = await laptop.json<{ peer_id: string; pairing_code: string }>('init', '--join');
    await laptop.start();
    const added = await A().admin('POST', `${path_(userId)}/homes`, {
      multiaddr: laptop.addr,
      role: 'client',
      name: 'laptop',
      pairing_code: joined.pairing_code,
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    await waitFor(
      async () =>
        (await laptop!.json<{ accounts: Array<{ user_id: string }> }>('status')).accounts[0]?.user_id === userId,
      'the laptop to hold alice',
      120_000,
    );
    const seqBefore = Number((await A().admin('GET', path_(userId))).body['doc_seq']);
    const onA = await A().admin('GET', `${path_(userId)}/devices?limit=500`);
    expect(JSON.stringify(onA.body['chunk'])).toContain(`"${alice.getDeviceId()!}"`);
    const started = await A().request('POST', '/_polyhome/v1/migration', {
      user_id: userId,
      password: password('alice'),
      to: B().addr,
      token: await tokenOfB(),
      name: 'new provider',
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const id = String(started.body['job_id']);
    const ended = await jobEnd(id);
    expect(ended.body['state'], JSON.stringify(ended.body)).toBe('done');
    // The user sees the same on the user's route; never the document nor the token.
    const mine = await A().request('GET', `/_polyhome/v1/migration/${id}`);
    expect(mine.body['state']).toBe('done');
    expect((mine.body['progress'] as Record<string, unknown>)['departure_seq']).toBe(seqBefore + 2);
    expect(JSON.stringify(mine.body)).not.toMatch(/phe_/);
    await movedWhole('alice', userId, roomId, seqBefore, alice.getDeviceId()!);
    // The laptop takes the new document from B and stays a home of the account there.
    await waitFor(
      async () =>
        (await laptop!.json<{ accounts: Array<{ doc_seq: number }> }>('status')).accounts[0]!.doc_seq >= seqBefore + 2,
      'the laptop to hold the document that moved the account',
      120_000,
    );
    // Both providers' audit logs say what happened.
    const auditA = await A().admin('GET', `/admin/v1/audit?target=${encodeURIComponent(userId)}`);
    expect(JSON.stringify(auditA.body)).toMatch(/account\.migrated"/);
    const auditB = await B().admin('GET', `/admin/v1/audit?target=${encodeURIComponent(userId)}`);
    expect(JSON.stringify(auditB.body)).toMatch(/account\.migrated_in/);
    alice.stopClient();
  }, 600_000);

  for (const point of POINTS) {
    it(`A killed with SIGKILL at "${point}": after its restart the migration ends, nothing lost`, async () => {
      const localpart = `moved-${point.replace('_', '-')}`;
      const { userId, roomId, alice } = await accountWithRoom(localpart);
      const seqBefore = Number((await A().admin('GET', path_(userId))).body['doc_seq']);
      // A kills itself at the point the new home's name asks for (POLYHOME_TEST_MIGRATION_KILL), once.
      const started = await A().admin('POST', `${path_(userId)}/migrate`, {
        to: B().addr,
        token: await tokenOfB(),
        name: `kill-at-${point}`,
        reason: `test: killed at ${point}`,
      });
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      await waitFor(() => !A().running, `A to kill itself at ${point}`, JOB_MS, 200);
      await A().start();
      const ended = await jobEnd(String(started.body['job_id']));
      expect(ended.body['state'], JSON.stringify(ended.body)).toBe('done');
      await movedWhole(localpart, userId, roomId, seqBefore, alice.getDeviceId()!);
      alice.stopClient();
    }, 600_000);
  }

  it('after a restart, A keeps the accounts that left (evidence) but takes part in their sync no more', async () => {
    await A().kill('SIGKILL');
    await A().start();
    const node = await A().admin('GET', '/admin/v1/node');
    // "refused" stayed; alice and one account per kill point moved.
    expect([node.body['accounts_hosted'], node.body['accounts_synced']]).toEqual([2 + POINTS.length, 1]);
  }, 180_000);
});
