import type { AddressInfo } from 'node:net';
import { createClient, Method, type MatrixClient } from 'matrix-js-sdk';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountsService } from '../accounts/accounts.service.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';
import { waitFor } from '@polyhome/p2p/testing';
import { encodeBase64, keyPairFromSeed, serverNameFromPublicKey, signBytes, signedBytes } from '@polyhome/identity';
import { deviceBody, deviceKey } from '@polyhome/sync/testing';

const ADMIN_TOKEN = 'matrix-two-homes-admin-token';
const PASSWORD = 'correct horse battery staple';

async function listen(server: TestServer): Promise<string> {
  await server.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(server.app.getHttpServer().address() as AddressInfo).port}`;
}

describe('one account on two server homes, a matrix-js-sdk client on each', () => {
  let a: TestServer;
  let b: TestServer;
  let urlA: string;
  let urlB: string;
  let userId: string;
  let clientA: MatrixClient;
  let clientB: MatrixClient;

  beforeAll(async () => {
    const backend = SERVER_BACKENDS[0];
    [a, b] = await Promise.all([startTestServer(backend, { ADMIN_TOKEN }), startTestServer(backend, { ADMIN_TOKEN })]);
    [urlA, urlB] = await Promise.all([listen(a), listen(b)]);
    const created = await request(a.app.getHttpServer())
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart: 'alice', password: PASSWORD })
      .expect(201);
    userId = created.body.user_id;
    // A signs a document naming both homes with the account's root key; B co-hosts from it.
    const document = await a.app.get(AccountsService).addHome(userId, b.app.get(AccountsService).selfHome());
    await b.app.get(AccountsService).hostCoHosted(document, null);
    const login = await createClient({ baseUrl: urlA }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: PASSWORD,
    });
    clientA = createClient({ baseUrl: urlA, userId, accessToken: login.access_token, deviceId: login.device_id });
    // B holds no password for a co-hosted account: its client logs in with a login token made on B.
    const token = await request(b.app.getHttpServer())
      .post(`/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(201);
    const loginB = await createClient({ baseUrl: urlB }).loginRequest({
      type: 'm.login.token',
      token: token.body.login_token,
    });
    clientB = createClient({ baseUrl: urlB, userId, accessToken: loginB.access_token, deviceId: loginB.device_id });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('a login and key upload on A show on B in /devices, /keys/query and /sync device_lists', async () => {
    await waitFor(
      async () => (await clientB.getDevices()).devices.some((d) => d.device_id === clientA.getDeviceId()),
      "A's login device on B",
    );
    const initial = await clientB.http.authedRequest<{ next_batch: string }>(Method.Get, '/sync');
    const polling = clientB.http.authedRequest<{ device_lists: { changed: string[] } }>(Method.Get, '/sync', {
      since: initial.next_batch,
      timeout: '20000',
    });
    const deviceId = clientA.getDeviceId()!;
    const deviceKeys = { ...deviceBody({ userId }, deviceId) };
    await clientA.http.authedRequest(Method.Post, '/keys/upload', undefined, { device_keys: deviceKeys });
    expect((await polling).device_lists.changed).toEqual([userId]);
    const query = await clientB.http.authedRequest<{ device_keys: Record<string, Record<string, unknown>> }>(
      Method.Post,
      '/keys/query',
      undefined,
      { device_keys: { [userId]: [] } },
    );
    expect(query.device_keys[userId]?.[deviceId]).toMatchObject(deviceKeys);
  });

  it("B's client claims the one-time key of A's device from A over federation, once, then its fallback key", async () => {
    const deviceId = clientA.getDeviceId()!;
    const signed = (key: string, fallback = false) => {
      const body = { key, ...(fallback ? { fallback } : {}) };
      const signature = encodeBase64(signBytes(signedBytes(body), deviceKey(deviceId)));
      return { ...body, signatures: { [userId]: { [`ed25519:${deviceId}`]: signature } } };
    };
    await clientA.http.authedRequest(Method.Post, '/keys/upload', undefined, {
      one_time_keys: { 'signed_curve25519:OTK1': signed('one-time') },
      fallback_keys: { 'signed_curve25519:FB1': signed('fallback', true) },
    });
    type Claimed = { one_time_keys: Record<string, Record<string, Record<string, { key: string }>>>; failures: object };
    const claim = (body: object) => clientB.http.authedRequest<Claimed>(Method.Post, '/keys/claim', undefined, body);
    const wanted = { one_time_keys: { [userId]: { [deviceId]: 'signed_curve25519' } } };
    const first = await claim(wanted);
    expect(first.failures).toEqual({});
    expect(first.one_time_keys[userId]?.[deviceId]?.['signed_curve25519:OTK1']?.key).toBe('one-time');
    const second = await claim(wanted);
    expect(second.one_time_keys[userId]?.[deviceId]?.['signed_curve25519:FB1']?.key).toBe('fallback');
    // A's client sees its device hold no one-time key any more.
    const counts = await clientA.http.authedRequest<{ one_time_key_counts: Record<string, number> }>(
      Method.Post,
      '/keys/upload',
      undefined,
      {},
    );
    expect(counts.one_time_key_counts['signed_curve25519'] ?? 0).toBe(0);
    // An account no home can be found for is a failure, named by its server name; a malformed user id is refused.
    const nobody = serverNameFromPublicKey(keyPairFromSeed(new Uint8Array(32).fill(7)).publicKey);
    const query = await clientB.http.authedRequest<{ failures: Record<string, unknown> }>(
      Method.Post,
      '/keys/query',
      undefined,
      { device_keys: { [`@nobody:${nobody}`]: [] }, timeout: 3_000 },
    );
    expect(Object.keys(query.failures)).toEqual([nobody]);
    await expect(claim({ one_time_keys: { 'not-a-user': { X: 'signed_curve25519' } } })).rejects.toMatchObject({
      errcode: 'M_INVALID_PARAM',
    });
  });

  it("logs in with alice's password on B too: the verifier replicated, the password never left A", async () => {
    const login = () =>
      createClient({ baseUrl: urlB }).loginRequest({
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: 'alice' },
        password: PASSWORD,
      });
    await waitFor(async () => (await login().catch(() => null)) !== null, 'a password login on B');
    expect((await login()).user_id).toBe(userId);
    await expect(
      createClient({ baseUrl: urlB }).loginRequest({
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: userId },
        password: 'not the password',
      }),
    ).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
    expect(b.logs.join('\n')).not.toContain(PASSWORD);
  });

  it('account data, profile and push rules set on A are served by B, and reach its /sync', async () => {
    const since = (await clientB.http.authedRequest<{ next_batch: string }>(Method.Get, '/sync')).next_batch;
    await clientA.setAccountData('m.direct' as never, { '@bob:example': ['!dm:example'] } as never);
    await clientA.setRoomAccountData('!r:example', 'm.tag' as never, { tags: { u: { order: 0.25 } } } as never);
    await clientA.setDisplayName('Alice on A');
    await clientA.setPushRuleEnabled('global', 'override' as never, '.m.rule.master', true);
    await waitFor(async () => (await clientB.getAccountDataFromServer('m.direct' as never)) !== null, 'm.direct on B');
    const tag = await clientB.http.authedRequest(
      Method.Get,
      `/user/${encodeURIComponent(userId)}/rooms/!r:example/account_data/m.tag`,
    );
    expect(tag).toEqual({ tags: { u: { order: 0.25 } } });
    await waitFor(async () => (await clientB.getProfileInfo(userId)).displayname === 'Alice on A', 'profile on B');
    await waitFor(
      async () => (await clientB.getPushRules()).global.override![0]!.enabled === true,
      'master rule enabled on B',
    );
    const synced = await clientB.http.authedRequest<{ account_data: { events: Array<{ type: string }> } }>(
      Method.Get,
      '/sync',
      { since, timeout: '10000' },
    );
    expect(synced.account_data.events.map((e) => e.type)).toEqual(expect.arrayContaining(['m.direct', 'm.push_rules']));
  });

  it("sendToDevice on A reaches the device logged in on B through B's /sync, once", async () => {
    const deviceB = clientB.getDeviceId()!;
    await waitFor(
      async () => (await clientA.getDevices()).devices.some((d) => d.device_id === deviceB),
      "B's login device on A",
    );
    type ToDeviceSync = { next_batch: string; to_device: { events: Array<Record<string, unknown>> } };
    const initial = await clientB.http.authedRequest<ToDeviceSync>(Method.Get, '/sync');
    expect(initial.to_device.events).toEqual([]);
    const polling = clientB.http.authedRequest<ToDeviceSync>(Method.Get, '/sync', {
      since: initial.next_batch,
      timeout: '20000',
    });
    const to = (content: Record<string, unknown>) => new Map([[userId, new Map([[deviceB, content]])]]);
    await clientA.sendToDevice('m.test', to({ hello: 'B' }), 'txn1');
    const got = await polling;
    expect(got.to_device.events).toEqual([{ sender: userId, type: 'm.test', content: { hello: 'B' } }]);
    // The same txn again is the same message (not sent twice); a later one comes alone.
    await clientA.sendToDevice('m.test', to({ hello: 'B' }), 'txn1');
    await clientA.sendToDevice('m.test', to({ hello: 'again' }), 'txn2');
    const next = await clientB.http.authedRequest<ToDeviceSync>(Method.Get, '/sync', {
      since: got.next_batch,
      timeout: '20000',
    });
    expect(next.to_device.events).toEqual([{ sender: userId, type: 'm.test', content: { hello: 'again' } }]);
    const after = await clientB.http.authedRequest<ToDeviceSync>(Method.Get, '/sync', { since: next.next_batch });
    expect(after.to_device.events).toEqual([]);
    await expect(
      clientA.http.authedRequest(Method.Put, '/sendToDevice/m.test/bad', undefined, {
        messages: { [userId]: { [deviceB]: 'not an object' } },
      }),
    ).rejects.toMatchObject({ errcode: 'M_BAD_JSON' });
  });

  it("a room joined on A is in B's /joined_rooms; a device logged out on B leaves A's /devices", async () => {
    const { room_id: roomId } = await clientA.createRoom({});
    await waitFor(async () => (await clientB.getJoinedRooms()).joined_rooms.includes(roomId), 'the room on B');
    const deviceB = clientB.getDeviceId()!;
    expect((await clientA.getDevices()).devices.map((d) => d.device_id)).toContain(deviceB);
    await clientB.logout();
    await waitFor(
      async () => !(await clientA.getDevices()).devices.some((d) => d.device_id === deviceB),
      "B's device gone on A",
    );
    // A's token is A's alone: B does not honour it.
    const foreign = createClient({ baseUrl: urlB, userId, accessToken: clientA.getAccessToken()!, deviceId: 'X' });
    await expect(foreign.whoami()).rejects.toMatchObject({ errcode: 'M_UNKNOWN_TOKEN' });
  });
});
