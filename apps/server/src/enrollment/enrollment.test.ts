import { signJson, type AccountDocument } from '@polyhome/identity';
import { withTransientHost } from '@polyhome/home';
import { ENROLL_MAX_FRAME_BYTES, enrollOverLibp2p, EnrollmentRefusedError } from '@polyhome/p2p';
import { rawEnrollExchange } from '@polyhome/p2p/testing';
import { deviceBody } from '@polyhome/sync/testing';
import { table } from '@polyhome/storage/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountsService } from '../accounts/accounts.service.js';
import {
  accountAdding,
  loopbackAddr,
  serverHome,
  startClientHome,
  waitFor,
  type ClientHome,
} from '../testing/client-home.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';
import { SecretKey } from '@polyhome/identity';

const ADMIN_TOKEN = 'enrollment-test-admin-token';
const ENV = { ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0' };

/** Admin and public HTTP helpers against one server. */
function clients(get: () => TestServer) {
  const http = () => request(get().app.getHttpServer());
  return {
    http,
    admin: {
      get: (url: string) => http().get(url).set('Authorization', `Bearer ${ADMIN_TOKEN}`),
      post: (url: string, body: object = {}) =>
        http().post(url).set('Authorization', `Bearer ${ADMIN_TOKEN}`).send(body),
      delete: (url: string) => http().delete(url).set('Authorization', `Bearer ${ADMIN_TOKEN}`),
    },
  };
}

async function accountRows(server: TestServer): Promise<number> {
  return server.resources.repositories.accounts.count();
}

async function usesLeft(server: TestServer, id: string): Promise<number> {
  const [row] = await table(server.resources.storage, 'enrollment_token').rows({ id });
  if (row === undefined) throw new Error(`no enrollment token ${id}`);
  return row['usesLeft'] as number;
}

describe.each(SERVER_BACKENDS)('enrollment with ENROLLMENT_POLICY=token on $name', (backend) => {
  let server: TestServer;
  const { http, admin } = clients(() => server);
  const newToken = async (body: object = {}) =>
    (await admin.post('/admin/v1/enrollment-tokens', body).expect(201)).body as { token: string; id: string };

  beforeAll(async () => {
    server = await startTestServer(backend, { ...ENV, ENROLLMENT_POLICY: 'token' });
  });
  afterAll(async () => {
    await server?.close();
  });

  describe('admin routes for tokens', () => {
    it('makes a token shown once, lists it without the token, deletes it', async () => {
      const before = Date.now();
      const made = await admin.post('/admin/v1/enrollment-tokens', { uses: 3, expires_in: 3600 }).expect(201);
      expect(made.body).toEqual({
        token: expect.stringMatching(/^phe_[A-Za-z0-9_-]{43}$/),
        id: expect.stringMatching(/^[0-9a-f]{16}$/),
        uses: 3,
        expires_at: expect.any(String),
      });
      const expiresAt = Date.parse(made.body.expires_at);
      expect(expiresAt).toBeGreaterThanOrEqual(before + 3600_000 - 1000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 3600_000 + 1000);
      const listed = await admin.get('/admin/v1/enrollment-tokens').expect(200);
      const entry = listed.body.chunk.find((t: { id: string }) => t.id === made.body.id);
      expect(entry).toEqual({
        id: made.body.id,
        uses_left: 3,
        expires_at: made.body.expires_at,
        created_at: expect.any(String),
      });
      expect(JSON.stringify(listed.body)).not.toContain(made.body.token);
      // Only the hash is stored.
      const rows = await table(server.resources.storage, 'enrollment_token').rows();
      expect(JSON.stringify(rows)).not.toContain(made.body.token);
      await admin.delete(`/admin/v1/enrollment-tokens/${made.body.id}`).expect(200);
      const after = await admin.get('/admin/v1/enrollment-tokens').expect(200);
      expect(after.body.chunk.some((t: { id: string }) => t.id === made.body.id)).toBe(false);
      const again = await admin.delete(`/admin/v1/enrollment-tokens/${made.body.id}`).expect(404);
      expect(again.body.errcode).toBe('M_NOT_FOUND');
    });

    it('defaults to one use for a day', async () => {
      const made = await admin.post('/admin/v1/enrollment-tokens').expect(201);
      expect(made.body.uses).toBe(1);
      expect(Math.abs(Date.parse(made.body.expires_at) - Date.now() - 86_400_000)).toBeLessThan(5000);
    });

    it('pages the list', async () => {
      await Promise.all([newToken(), newToken(), newToken()]);
      const first = await admin.get('/admin/v1/enrollment-tokens?limit=2').expect(200);
      expect(first.body.chunk).toHaveLength(2);
      expect(first.body.next_from).toEqual(expect.any(String));
      const second = await admin.get(`/admin/v1/enrollment-tokens?limit=2&from=${first.body.next_from}`).expect(200);
      expect(second.body.chunk[0].id > first.body.chunk[1].id).toBe(true);
    });

    it('refuses out-of-range and unknown fields with 400, and requests without the admin token with 401', async () => {
      for (const body of [{ uses: 0 }, { uses: 1001 }, { expires_in: 30 * 86400 + 1 }, { expires_in: 0 }, { foo: 1 }]) {
        const res = await admin.post('/admin/v1/enrollment-tokens', body).expect(400);
        expect(res.body.errcode).toEqual(expect.stringMatching(/^M_/));
      }
      await http().get('/admin/v1/enrollment-tokens').expect(401);
      await http().post('/admin/v1/enrollment-tokens').send({}).expect(401);
    });
  });

  describe('a client home enrolling this server', () => {
    let client: ClientHome;
    afterAll(async () => {
      await client?.stop();
    });

    it('over HTTP: hosts the account, spends the token, and ops flow both ways', async () => {
      client = await startClientHome('http-enrollee', server);
      const { token, id } = await newToken();
      const res = await http().post('/_polyhome/v1/enroll').send({ document: client.document, token }).expect(201);
      expect(res.body).toEqual({
        user_id: client.account.userId,
        peer_id: server.resources.p2p.peerId,
        addrs: expect.arrayContaining([loopbackAddr(server)]),
      });
      expect(await usesLeft(server, id)).toBe(0);
      const detail = await admin.get(`/admin/v1/accounts/${encodeURIComponent(client.account.userId)}`).expect(200);
      expect(detail.body).toMatchObject({ custody: 'self', doc_seq: 2 });
      await expectSyncBothWays(server, client);
    });
  });

  describe('over libp2p', () => {
    let client: ClientHome;
    afterAll(async () => {
      await client?.stop();
    });

    it('enrollOverLibp2p hosts the account, and ops flow both ways', async () => {
      client = await startClientHome('p2p-enrollee', server);
      const { token, id } = await newToken({ uses: 2 });
      const answer = await enrollOverLibp2p(client.host, loopbackAddr(server), { document: client.document, token });
      expect(answer).toEqual({
        user_id: client.account.userId,
        peer_id: server.resources.p2p.peerId,
        addrs: expect.arrayContaining([loopbackAddr(server)]),
      });
      expect(await usesLeft(server, id)).toBe(1);
      await expectSyncBothWays(server, client);
    });

    it('answers refusals with the same errcode as HTTP, and spends nothing', async () => {
      const { document } = accountAdding('p2p-refused', serverHome(server));
      const rows = await accountRows(server);
      const refused = await enrollOverLibp2p(client.host, loopbackAddr(server), { document, token: 'phe_nope' }).catch(
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(EnrollmentRefusedError);
      expect(refused).toMatchObject({ errcode: 'M_FORBIDDEN', error: 'Unknown enrollment token.' });
      const already = await enrollOverLibp2p(client.host, loopbackAddr(server), {
        document: client.document,
        token: (await newToken()).token,
      }).catch((err: unknown) => err);
      expect(already).toMatchObject({ errcode: 'M_USER_IN_USE' });
      expect(await accountRows(server)).toBe(rows);
    });

    it('refuses malformed requests and frames over the cap, and keeps serving', async () => {
      // A short-lived host of a stranger (dialling only), as a CLI with no running home uses.
      await withTransientHost({ nodeKey: SecretKey.generate() }, async ({ host: stranger }) => {
        const ask = async (bytes: Uint8Array) => rawEnrollExchange(stranger, loopbackAddr(server), bytes);
        expect((await ask(new TextEncoder().encode('not json'))).errcode).toBe('M_NOT_JSON');
        expect((await ask(new TextEncoder().encode('{"document":{},"extra":1}'))).errcode).toBe('M_BAD_JSON');
        expect((await ask(new Uint8Array(ENROLL_MAX_FRAME_BYTES + 1).fill(32))).errcode).toBe('M_TOO_LARGE');
        // Still serving after all that.
        const ok = await enrollOverLibp2p(stranger, loopbackAddr(server), {
          document: accountAdding('p2p-after-junk', serverHome(server)).document,
          token: (await newToken()).token,
        });
        expect(ok.peer_id).toBe(server.resources.p2p.peerId);
      });
    });
  });

  describe('refusals leave nothing behind', () => {
    async function expectRefused(body: object, status: number, errcode: string, error?: RegExp): Promise<void> {
      const rows = await accountRows(server);
      const res = await http().post('/_polyhome/v1/enroll').send(body).expect(status);
      expect(res.body.errcode).toBe(errcode);
      if (error) expect(res.body.error).toMatch(error);
      expect(await accountRows(server)).toBe(rows);
    }

    it('a used-up token: 403, the second enrollment is not hosted', async () => {
      const { token, id } = await newToken();
      await http()
        .post('/_polyhome/v1/enroll')
        .send({ document: accountAdding('used-1', serverHome(server)).document, token })
        .expect(201);
      await expectRefused(
        { document: accountAdding('used-2', serverHome(server)).document, token },
        403,
        'M_FORBIDDEN',
        /used up/,
      );
      expect(await usesLeft(server, id)).toBe(0);
    });

    it('an expired token: 403', async () => {
      const { token, id } = await newToken({ uses: 5 });
      await table(server.resources.storage, 'enrollment_token').update(
        { id },
        { expiresAt: new Date(Date.now() - 1000) },
      );
      await expectRefused(
        { document: accountAdding('expired', serverHome(server)).document, token },
        403,
        'M_FORBIDDEN',
        /expired/,
      );
      expect(await usesLeft(server, id)).toBe(5);
    });

    it('no token, an unknown token, a deleted token: 403', async () => {
      const document = accountAdding('tokenless', serverHome(server)).document;
      await expectRefused({ document }, 403, 'M_FORBIDDEN', /enrollment token/);
      await expectRefused({ document, token: 'phe_unknown' }, 403, 'M_FORBIDDEN', /Unknown enrollment token/);
      const { token, id } = await newToken();
      await admin.delete(`/admin/v1/enrollment-tokens/${id}`).expect(200);
      await expectRefused({ document, token }, 403, 'M_FORBIDDEN', /Unknown enrollment token/);
    });

    it('a document that does not name this server: 403, token unspent', async () => {
      const { token, id } = await newToken();
      const other = {
        peer_id: '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo',
        role: 'server',
        name: 'other',
        addrs: [],
      };
      const { document } = accountAdding('elsewhere', other as never);
      await expectRefused({ document, token }, 403, 'M_FORBIDDEN', /does not name this server/);
      expect(await usesLeft(server, id)).toBe(1);
    });

    it('a document signed by another key: 400, token unspent', async () => {
      const { token, id } = await newToken();
      const victim = accountAdding('victim', serverHome(server));
      const attacker = accountAdding('attacker', serverHome(server));
      const { signatures: _drop, ...content } = victim.document as AccountDocument & { signatures: unknown };
      const forged = signJson(content, victim.account.serverName, 'ed25519:root', attacker.account.rootKey);
      await expectRefused({ document: forged, token }, 400, 'M_INVALID_PARAM');
      expect(await usesLeft(server, id)).toBe(1);
      // The genuine document still enrolls with the same token afterwards.
      await http().post('/_polyhome/v1/enroll').send({ document: victim.document, token }).expect(201);
    });

    it('an account already hosted: 409 M_USER_IN_USE, token unspent', async () => {
      const { document } = accountAdding('twice', serverHome(server));
      await http()
        .post('/_polyhome/v1/enroll')
        .send({ document, token: (await newToken()).token })
        .expect(201);
      const { token, id } = await newToken();
      await expectRefused({ document, token }, 409, 'M_USER_IN_USE');
      expect(await usesLeft(server, id)).toBe(1);
    });

    it('malformed bodies: 400', async () => {
      const { token } = await newToken();
      await expectRefused({ token }, 400, 'M_INVALID_PARAM');
      await expectRefused({ document: 'x', token }, 400, 'M_INVALID_PARAM');
      await expectRefused({ document: { type: 'polyhome.account' }, token }, 400, 'M_INVALID_PARAM');
      await expectRefused(
        { document: accountAdding('extra', serverHome(server)).document, token, extra: 1 },
        400,
        'M_INVALID_PARAM',
      );
    });

    it('two enrollments racing for the last use: exactly one wins', async () => {
      const { token, id } = await newToken();
      const results = await Promise.all(
        ['race-a', 'race-b', 'race-c'].map((seed) =>
          http()
            .post('/_polyhome/v1/enroll')
            .send({ document: accountAdding(seed, serverHome(server)).document, token }),
        ),
      );
      expect(results.map((r) => r.status).sort()).toEqual([201, 403, 403]);
      expect(await usesLeft(server, id)).toBe(0);
    });
  });
});

describe.each(SERVER_BACKENDS)(
  'enrollment policies open and closed, and admin-driven enrollment, on $name',
  (backend) => {
    let open: TestServer;
    let closed: TestServer;

    beforeAll(async () => {
      [open, closed] = await Promise.all([
        startTestServer(backend, { ...ENV, ENROLLMENT_POLICY: 'open' }),
        startTestServer(backend, { ...ENV, ENROLLMENT_POLICY: 'closed' }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([open?.close(), closed?.close()]);
    });

    it('open: enrolls without a token', async () => {
      const { account, document } = accountAdding('open-policy', serverHome(open));
      const res = await request(open.app.getHttpServer()).post('/_polyhome/v1/enroll').send({ document }).expect(201);
      expect(res.body.user_id).toBe(account.userId);
    });

    it('closed: refuses with 403 even with a valid token, over HTTP and libp2p', async () => {
      const { admin } = clients(() => closed);
      const { token } = (await admin.post('/admin/v1/enrollment-tokens').expect(201)).body;
      const { document } = accountAdding('closed-policy', serverHome(closed));
      const res = await request(closed.app.getHttpServer())
        .post('/_polyhome/v1/enroll')
        .send({ document, token })
        .expect(403);
      expect(res.body).toEqual({ errcode: 'M_FORBIDDEN', error: expect.stringContaining('closed') });
      const refused = await enrollOverLibp2p(open.resources.p2p.host, loopbackAddr(closed), { document, token }).catch(
        (err: unknown) => err,
      );
      expect(refused).toMatchObject({ errcode: 'M_FORBIDDEN' });
      expect(await accountRows(closed)).toBe(0);
    });

    // The admin "add a server home" route enrolls the remote server over /polyhome/enroll/1.0.0.
    it('the remote server hosts the account at once; a refusal comes back with its errcode', async () => {
      const fromClosed = clients(() => closed).admin;
      const account = (await fromClosed.post('/admin/v1/accounts', { localpart: 'spreads' }).expect(201)).body;
      // State made before the second server joins reaches it once it is enrolled.
      await closed.app
        .get(AccountsService)
        .applyLocal(account.server_name, [
          { op: 'member.set', key: '!before:x', body: { room_id: '!before:x', membership: 'join' } },
        ]);
      await fromClosed
        .post(`/admin/v1/accounts/${encodeURIComponent(account.user_id)}/homes`, {
          multiaddr: loopbackAddr(open),
          role: 'server',
          name: 'second',
        })
        .expect(201);
      const row = await open.resources.repositories.accounts.findByServerName(account.server_name);
      expect(row).toMatchObject({ userId: account.user_id, custody: 'self' });
      await waitFor(async () => {
        const res = await clients(() => open).admin.get(
          `/admin/v1/accounts/${encodeURIComponent(account.user_id)}/memberships`,
        );
        return res.body.chunk?.some((m: { room_id: string }) => m.room_id === '!before:x') ?? false;
      }, 'the enrolled server to receive the account’s state');

      const fromOpen = clients(() => open).admin;
      const other = (await fromOpen.post('/admin/v1/accounts', { localpart: 'refused' }).expect(201)).body;
      const refused = await fromOpen
        .post(`/admin/v1/accounts/${encodeURIComponent(other.user_id)}/homes`, {
          multiaddr: loopbackAddr(closed),
          role: 'server',
          name: 'nope',
        })
        .expect(403);
      expect(refused.body.error).toContain('refused the enrollment');
      // The refused document was never put in force: the account's document is unchanged.
      const detail = await fromOpen.get(`/admin/v1/accounts/${encodeURIComponent(other.user_id)}`).expect(200);
      expect(detail.body.doc_seq).toBe(1);
      expect(detail.body.homes).toHaveLength(1);
    });
  },
);

/** After enrollment: an op made on the client reaches the server, and one made on the server reaches the client. */
async function expectSyncBothWays(server: TestServer, client: ClientHome): Promise<void> {
  const { admin } = clients(() => server);
  const serverName = client.account.serverName;
  await client.join(server);
  const op = client.writer.devicePut('LAPTOP');
  await client.store.applyOps(serverName, [op], client.home.peerId);
  client.sync.publish(serverName, [op]);
  await waitFor(async () => {
    const res = await admin.get(`/admin/v1/accounts/${encodeURIComponent(client.account.userId)}/devices`);
    return res.body.chunk?.some((d: { device_id: string }) => d.device_id === 'LAPTOP') ?? false;
  }, 'the client’s device on the server');
  const serverPeer = server.resources.p2p.peerId;
  await server.app
    .get(AccountsService)
    .applyLocal(serverName, [
      { op: 'device.put', key: 'COMPANION', body: { ...deviceBody(client.account, 'COMPANION') } },
    ]);
  await waitFor(async () => {
    return ((await client.store.versionVector(serverName))[serverPeer] ?? 0) >= 1;
  }, 'the server’s op on the client');
}
