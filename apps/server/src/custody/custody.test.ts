import { importSecretKey, publicKeyToHex } from '@polyhome/identity';
import { makeAccount } from '@polyhome/sync/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountsService } from '../accounts/accounts.service.js';
import { accountAdding, serverHome } from '../testing/client-home.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'custody-test-admin-token';
const PASSWORD = 'correct horse battery';
const PASSPHRASE = 'a long passphrase for the export';

describe.each(SERVER_BACKENDS)('custody handover on $name', (backend) => {
  let server: TestServer;
  const http = () => request(server.app.getHttpServer());
  const admin = (method: 'get' | 'post', url: string, body: object = {}) =>
    http()[method](url).set('Authorization', `Bearer ${ADMIN_TOKEN}`).send(body);
  const hosted = async (localpart: string) =>
    (await admin('post', '/admin/v1/accounts', { localpart, password: PASSWORD }).expect(201)).body as {
      user_id: string;
      server_name: string;
    };
  const row = async (serverName: string) => {
    const found = await server.resources.repositories.accounts.findByServerName(serverName);
    if (found === undefined) throw new Error(`no account ${serverName}`);
    return found;
  };

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0', ENROLLMENT_POLICY: 'open' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('hands the root key over once; the server then keeps hosting the account but cannot sign for it', async () => {
    const account = await hosted('keeper');
    const res = await http()
      .post('/_polyhome/v1/custody')
      .send({ user_id: account.user_id, password: PASSWORD, passphrase: PASSPHRASE })
      .expect(200);
    expect(res.body).toEqual({ export: expect.any(String), document: expect.objectContaining({ seq: 1 }) });
    // The export opens with the passphrase to the account's own root key.
    const key = await importSecretKey(res.body.export, PASSPHRASE);
    expect(publicKeyToHex(key.publicKey)).toBe(account.server_name);

    const after = await row(account.server_name);
    expect(after).toMatchObject({ custody: 'self', sealedRootKey: null });
    const detail = await admin('get', `/admin/v1/accounts/${encodeURIComponent(account.user_id)}`).expect(200);
    expect(detail.body).toMatchObject({ custody: 'self', status: 'active' });

    const again = await http()
      .post('/_polyhome/v1/custody')
      .send({ user_id: account.user_id, password: PASSWORD, passphrase: PASSPHRASE })
      .expect(403);
    expect(again.body).toEqual({
      errcode: 'M_FORBIDDEN',
      error: expect.stringContaining("already in the user's custody"),
    });

    const accounts = server.app.get(AccountsService);
    const somewhere = accountAdding('custody-other-home', serverHome(server)).account.homes[0]!.home;
    await expect(accounts.addHome(account.user_id, somewhere)).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
    await expect(accounts.removeHome(account.user_id, somewhere.peer_id)).rejects.toMatchObject({
      errcode: 'M_FORBIDDEN',
    });
    // Still a home of the account: its own changes are still made and signed by its home key.
    await accounts.applyLocal(account.server_name, [
      { op: 'member.set', key: '!room:x', body: { room_id: '!room:x', membership: 'join' } },
    ]);
  });

  it('names the claiming device as a client home, signed before the key leaves', async () => {
    const account = await hosted('claimer');
    const device = accountAdding('custody-claiming-device', serverHome(server)).account.homes[0]!.home;
    const res = await http()
      .post('/_polyhome/v1/custody')
      .send({
        user_id: account.user_id,
        password: PASSWORD,
        passphrase: PASSPHRASE,
        peer_id: device.peer_id,
        home_name: 'laptop',
      })
      .expect(200);
    expect(res.body.document.seq).toBe(2);
    expect(res.body.document.homes).toContainEqual({
      peer_id: device.peer_id,
      role: 'client',
      name: 'laptop',
      addrs: [],
    });
    const detail = await admin('get', `/admin/v1/accounts/${encodeURIComponent(account.user_id)}`).expect(200);
    expect(detail.body.document).toEqual(res.body.document);
    const bad = await http()
      .post('/_polyhome/v1/custody')
      .send({ user_id: account.user_id, password: PASSWORD, passphrase: PASSPHRASE, peer_id: 'not-a-peer-id' })
      .expect(400);
    expect(bad.body.errcode).toBeDefined();
  });

  it('refuses a wrong password, an unknown user and a short passphrase, and keeps the key', async () => {
    const account = await hosted('careful');
    const wrong = await http()
      .post('/_polyhome/v1/custody')
      .send({ user_id: account.user_id, password: 'not the password', passphrase: PASSPHRASE })
      .expect(403);
    expect(wrong.body.errcode).toBe('M_FORBIDDEN');
    const unknown = await http()
      .post('/_polyhome/v1/custody')
      .send({
        user_id: makeAccount({ seed: 'not-hosted-here', homes: 1 }).userId,
        password: PASSWORD,
        passphrase: PASSPHRASE,
      })
      .expect(403);
    expect(unknown.body.errcode).toBe('M_FORBIDDEN');
    const short = await http()
      .post('/_polyhome/v1/custody')
      .send({ user_id: account.user_id, password: PASSWORD, passphrase: 'too short' })
      .expect(400);
    expect(short.body.errcode).toBe('M_INVALID_PARAM');
    await http()
      .post('/_polyhome/v1/custody')
      .send({ user_id: account.user_id, password: PASSWORD, passphrase: PASSPHRASE, extra: true })
      .expect(400);
    expect(await row(account.server_name)).toMatchObject({ custody: 'hosted', sealedRootKey: expect.any(Buffer) });
  });

  it('gives the key to exactly one of two concurrent requests', async () => {
    const account = await hosted('racer');
    const body = { user_id: account.user_id, password: PASSWORD, passphrase: PASSPHRASE };
    const results = await Promise.all([
      http().post('/_polyhome/v1/custody').send(body),
      http().post('/_polyhome/v1/custody').send(body),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 403]);
  });

  it('refuses a co-hosted account (the user already holds its key)', async () => {
    const { account, document } = accountAdding('cohosted-custody', serverHome(server));
    await http().post('/_polyhome/v1/enroll').send({ document }).expect(201);
    const res = await http()
      .post('/_polyhome/v1/custody')
      .send({ user_id: account.userId, password: PASSWORD, passphrase: PASSPHRASE })
      .expect(403);
    expect(res.body.errcode).toBe('M_FORBIDDEN');
  });
});
