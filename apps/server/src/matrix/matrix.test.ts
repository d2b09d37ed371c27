import type { AddressInfo } from 'node:net';
import { table } from '@polyhome/storage/testing';
import { encodeBase64, signBytes, signedBytes, type SecretKey } from '@polyhome/identity';
import { crossSigningKeys, deviceKey } from '@polyhome/sync/testing';
import { createClient, Method, type MatrixClient } from 'matrix-js-sdk';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountsService } from '../accounts/accounts.service.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'matrix-test-admin-token';
const PASSWORD = 'correct horse battery staple';

describe.each(SERVER_BACKENDS)('Matrix client API on $name', (backend) => {
  let server: TestServer;
  let baseUrl: string;
  let userId: string;
  let serverName: string;
  const http = () => request(server.app.getHttpServer());

  async function login(deviceName?: string): Promise<MatrixClient> {
    const anon = createClient({ baseUrl });
    const res = await anon.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: PASSWORD,
      ...(deviceName !== undefined ? { initial_device_display_name: deviceName } : {}),
    });
    return createClient({ baseUrl, userId: res.user_id, accessToken: res.access_token, deviceId: res.device_id });
  }

  async function opCount(): Promise<number> {
    return table(server.resources.storage, 'op').count();
  }

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    await server.app.listen(0, '127.0.0.1');
    const address = server.app.getHttpServer().address() as AddressInfo;
    baseUrl = `http://127.0.0.1:${address.port}`;
    const created = await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart: 'alice', password: PASSWORD })
      .expect(201);
    userId = created.body.user_id;
    serverName = created.body.server_name;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('serves /versions and the login flows', async () => {
    const versions = await http().get('/_matrix/client/versions').expect(200);
    expect(versions.body.versions).toContain('v1.1');
    const flows = await createClient({ baseUrl }).loginFlows();
    expect(flows.flows.map((f) => f.type)).toEqual(['m.login.password', 'm.login.token']);
  });

  it('logs in with a password: a new device on the account, a token stored hashed, whoami', async () => {
    const client = await login('laptop');
    const whoami = await client.whoami();
    expect(whoami).toMatchObject({ user_id: userId, device_id: client.getDeviceId() });
    const { devices } = await client.getDevices();
    expect(devices).toContainEqual(
      expect.objectContaining({ device_id: client.getDeviceId(), display_name: 'laptop' }),
    );
    // Replicated: the device is a device.put op of this home.
    const state = await server.app.get(AccountsService).state(userId);
    expect(state.devices[client.getDeviceId()!]).toMatchObject({ user_id: userId, home: expect.any(String) });
    // Only the token's hash is stored, and nothing logs it.
    const token = client.getAccessToken()!;
    const rows = await table(server.resources.storage, 'matrix_access_token').rows();
    expect(rows.some((r) => r['tokenHash'] === token)).toBe(false);
    expect(server.logs.join('\n')).not.toContain(token);
  });

  it('logs in with a single-use login token', async () => {
    const made = await http()
      .post(`/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({});
    expect(made.status).toBe(201);
    const anon = createClient({ baseUrl });
    const res = await anon.loginRequest({ type: 'm.login.token', token: made.body.login_token });
    expect(res.user_id).toBe(userId);
    const before = await opCount();
    const again = await http()
      .post('/_matrix/client/v3/login')
      .send({ type: 'm.login.token', token: made.body.login_token });
    expect(again.status).toBe(403);
    expect(again.body.errcode).toBe('M_FORBIDDEN');
    expect(await opCount()).toBe(before);
  });

  it('refuses bad logins, tokens and bodies with Matrix errors, changing nothing', async () => {
    const before = await opCount();
    const wrong = await http()
      .post('/_matrix/client/v3/login')
      .send({ type: 'm.login.password', identifier: { type: 'm.id.user', user: userId }, password: 'nope' });
    expect([wrong.status, wrong.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const unknown = await http().get('/_matrix/client/v3/account/whoami').set('Authorization', 'Bearer pha_nope');
    expect([unknown.status, unknown.body.errcode]).toEqual([401, 'M_UNKNOWN_TOKEN']);
    const missing = await http().get('/_matrix/client/v3/devices');
    expect([missing.status, missing.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
    const notJson = await http()
      .post('/_matrix/client/v3/login')
      .set('Content-Type', 'application/json')
      .send('{"type":');
    expect([notJson.status, notJson.body.errcode]).toEqual([400, 'M_NOT_JSON']);
    const client = await login();
    const after = await opCount();
    const token = client.getAccessToken()!;
    const badJson = await http()
      .post('/_matrix/client/v3/keys/upload')
      .query({ access_token: token })
      .send({ device_keys: { user_id: userId, device_id: client.getDeviceId(), algorithms: 'x', keys: {} } });
    expect([badJson.status, badJson.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    const unknownRoom = await http()
      .post(`/_matrix/client/v3/rooms/${encodeURIComponent(`!nope:${serverName}`)}/leave`)
      .set('Authorization', `Bearer ${token}`)
      .send({});
    expect([unknownRoom.status, unknownRoom.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const badRoom = await http().post('/_matrix/client/v3/join/nope').set('Authorization', `Bearer ${token}`).send({});
    expect([badRoom.status, badRoom.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect(await opCount()).toBe(after);
    expect(after).toBe(before + 1); // the one successful login
  });

  it('renames and deletes devices (UIA with the password); logout ends the token', async () => {
    const client = await login('phone');
    const other = await login('tablet');
    await client.setDeviceDetails(other.getDeviceId()!, { display_name: 'old tablet' });
    expect((await client.getDevice(other.getDeviceId()!)).display_name).toBe('old tablet');
    // First try: 401 with a session and the password flow.
    const first = await http()
      .delete(`/_matrix/client/v3/devices/${other.getDeviceId()}`)
      .set('Authorization', `Bearer ${client.getAccessToken()}`)
      .send({});
    expect(first.status).toBe(401);
    expect(first.body.flows).toEqual([{ stages: ['m.login.password'] }]);
    const auth = {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      session: first.body.session,
    };
    const wrong = await http()
      .delete(`/_matrix/client/v3/devices/${other.getDeviceId()}`)
      .set('Authorization', `Bearer ${client.getAccessToken()}`)
      .send({ auth: { ...auth, password: 'nope' } });
    expect([wrong.status, wrong.body.errcode]).toEqual([401, 'M_FORBIDDEN']);
    await client.deleteDevice(other.getDeviceId()!, { ...auth, password: PASSWORD });
    const ids = (await client.getDevices()).devices.map((d) => d.device_id);
    expect(ids).not.toContain(other.getDeviceId());
    // The deleted device's token is gone with it.
    await expect(other.whoami()).rejects.toMatchObject({ errcode: 'M_UNKNOWN_TOKEN' });
    await client.logout();
    await expect(client.whoami()).rejects.toMatchObject({ errcode: 'M_UNKNOWN_TOKEN' });
  });

  // Signs as the user with any key id (signJson takes only server key ids; cross-signing key ids are base64).
  function signJson<T extends object>(object: T, user: string, keyId: string, secret: SecretKey) {
    const held = (object as { signatures?: Record<string, Record<string, string>> }).signatures ?? {};
    const signature = encodeBase64(signBytes(signedBytes(object), secret));
    return { ...object, signatures: { ...held, [user]: { ...held[user], [keyId]: signature } } };
  }
  // Keys as a client's crypto makes them: device keys self-signed by the device's Ed25519 key, signed one-time keys.
  function signedDeviceKeys(deviceId: string, signer: SecretKey = deviceKey(deviceId)): Record<string, unknown> {
    const content = {
      user_id: userId,
      device_id: deviceId,
      algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
      keys: {
        [`curve25519:${deviceId}`]: 'curvekey',
        [`ed25519:${deviceId}`]: encodeBase64(deviceKey(deviceId).publicKey),
      },
    };
    return signJson(content, userId, `ed25519:${deviceId}`, signer);
  }
  function signedKey(deviceId: string, key: string, extra: object = {}, signer = deviceKey(deviceId)): object {
    return signJson({ key, ...extra }, userId, `ed25519:${deviceId}`, signer);
  }
  const uploadAs = (client: MatrixClient, path: string, body: object) =>
    http().post(`/_matrix/client/v3${path}`).set('Authorization', `Bearer ${client.getAccessToken()!}`).send(body);

  it('uploads keys and serves them to /keys/query and /keys/claim', async () => {
    const client = await login('crypto');
    const deviceId = client.getDeviceId()!;
    const deviceKeys = signedDeviceKeys(deviceId);
    const otk1 = signedKey(deviceId, 'otk1');
    const otk2 = signedKey(deviceId, 'otk2');
    const fallback = signedKey(deviceId, 'fb', { fallback: true });
    const uploaded = await client.http.authedRequest<{ one_time_key_counts: Record<string, number> }>(
      Method.Post,
      '/keys/upload',
      undefined,
      {
        device_keys: deviceKeys,
        one_time_keys: { 'signed_curve25519:AAAAAQ': otk1, 'signed_curve25519:AAAAAg': otk2 },
        fallback_keys: { 'signed_curve25519:AAAAAw': fallback },
      },
    );
    expect(uploaded.one_time_key_counts).toEqual({ signed_curve25519: 2 });
    const query = await client.http.authedRequest<{ device_keys: Record<string, Record<string, unknown>> }>(
      Method.Post,
      '/keys/query',
      undefined,
      { device_keys: { [userId]: [], '@bob:example.org': [] } },
    );
    expect(query.device_keys[userId]?.[deviceId]).toMatchObject({
      ...deviceKeys,
      unsigned: { device_display_name: 'crypto' },
    });
    expect(query.device_keys['@bob:example.org']).toBeUndefined();
    const claim = () =>
      client.http.authedRequest<{ one_time_keys: Record<string, Record<string, Record<string, unknown>>> }>(
        Method.Post,
        '/keys/claim',
        undefined,
        { one_time_keys: { [userId]: { [deviceId]: 'signed_curve25519' } } },
      );
    const claimed = [await claim(), await claim(), await claim()].map((c) => c.one_time_keys[userId]?.[deviceId]);
    expect(claimed).toEqual([
      { 'signed_curve25519:AAAAAQ': otk1 },
      { 'signed_curve25519:AAAAAg': otk2 },
      { 'signed_curve25519:AAAAAw': fallback },
    ]);
    const sync = await client.http.authedRequest<Record<string, unknown>>(Method.Get, '/sync');
    expect(sync).toMatchObject({ device_one_time_keys_count: {}, device_unused_fallback_key_types: [] });
  });

  it('refuses device keys whose self-signature is forged, and one-time keys not signed by the device', async () => {
    const client = await login('forger');
    const deviceId = client.getDeviceId()!;
    const before = await opCount();
    const stateOf = async () => (await server.app.get(AccountsService).state(userId)).devices[deviceId];
    const held = await stateOf();
    // Signed by another key than the device's ed25519 key it names: 400, and nothing stored.
    const forged = await uploadAs(client, '/keys/upload', {
      device_keys: signedDeviceKeys(deviceId, deviceKey('SOMEONE-ELSE')),
      one_time_keys: { 'signed_curve25519:AAAAAQ': signedKey(deviceId, 'otk1') },
    });
    expect([forged.status, forged.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect(forged.body.error).toContain('no valid self-signature');
    // No signature at all, or no ed25519 key, or keys changed after signing: refused the same way.
    const { signatures: _signatures, ...unsigned } = signedDeviceKeys(deviceId);
    expect((await uploadAs(client, '/keys/upload', { device_keys: unsigned })).status).toBe(400);
    const good = signedDeviceKeys(deviceId);
    const swapped = { ...good, keys: { ...(good['keys'] as object), [`curve25519:${deviceId}`]: 'other' } };
    expect((await uploadAs(client, '/keys/upload', { device_keys: swapped })).status).toBe(400);
    const noEd25519 = { ...good, keys: { [`curve25519:${deviceId}`]: 'curvekey' } };
    const missing = await uploadAs(client, '/keys/upload', { device_keys: noEd25519 });
    expect(missing.body.error).toContain(`no Ed25519 key ed25519:${deviceId}`);
    // A signed one-time key before the device has an ed25519 key cannot be checked.
    const early = await uploadAs(client, '/keys/upload', {
      one_time_keys: { 'signed_curve25519:AAAAAQ': signedKey(deviceId, 'otk1') },
    });
    expect([early.status, early.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect(await stateOf()).toEqual(held);
    expect(await opCount()).toBe(before);
    const counts = async () => (await uploadAs(client, '/keys/upload', {})).body.one_time_key_counts;
    expect(await counts()).toEqual({});
    // With valid device keys stored, one-time and fallback keys must still be signed by that device's key.
    expect((await uploadAs(client, '/keys/upload', { device_keys: good })).status).toBe(200);
    for (const body of [
      { one_time_keys: { 'signed_curve25519:AAAAAQ': signedKey(deviceId, 'otk1', {}, deviceKey('SOMEONE-ELSE')) } },
      { one_time_keys: { 'signed_curve25519:AAAAAQ': { key: 'otk1' } } },
      { one_time_keys: { 'signed_curve25519:AAAAAQ': 'otk1' } },
      // A float has no canonical JSON, so nothing can have signed it (the API fuzz found this one answered 500).
      { one_time_keys: { 'signed_curve25519:AAAAAQ': { ...signedKey(deviceId, 'otk1'), fallback: [0.5] } } },
      {
        one_time_keys: {
          'signed_curve25519:AAAAAQ': signedKey(deviceId, 'otk1'),
          'signed_curve25519:AAAAAg': { ...signedKey(deviceId, 'otk2'), key: 'tampered' },
        },
      },
      {
        fallback_keys: {
          'signed_curve25519:AAAAAw': { ...signedKey(deviceId, 'fb', { fallback: true }), fallback: false },
        },
      },
    ]) {
      const refused = await uploadAs(client, '/keys/upload', body);
      expect([refused.status, refused.body.errcode], JSON.stringify(body)).toEqual([400, 'M_INVALID_PARAM']);
      expect(refused.body.error).toContain('Nothing was stored');
    }
    expect(await counts()).toEqual({});
    const sync = await client.http.authedRequest<Record<string, unknown>>(Method.Get, '/sync');
    expect(sync).toMatchObject({ device_unused_fallback_key_types: [] });
  });

  it('verifies each uploaded signature with the key it names: failures reported, only valid ones stored', async () => {
    const client = await login('signer');
    const deviceId = client.getDeviceId()!;
    const deviceKeys = signedDeviceKeys(deviceId);
    expect((await uploadAs(client, '/keys/upload', { device_keys: deviceKeys })).status).toBe(200);
    const cs = crossSigningKeys({ userId }, 'alice-signatures');
    const setUp = await uploadAs(client, '/keys/device_signing/upload', {
      master_key: cs.bodies.master,
      self_signing_key: cs.bodies.self_signing,
      user_signing_key: cs.bodies.user_signing,
    });
    expect(setUp.status, JSON.stringify(setUp.body)).toBe(200);
    const ssk = encodeBase64(cs.secretKeys.self_signing.publicKey);
    const ops = await opCount();
    const query = async () =>
      (await uploadAs(client, '/keys/query', { device_keys: { [userId]: [deviceId] } }).expect(200)).body as {
        device_keys: Record<string, Record<string, { signatures: Record<string, Record<string, string>> }>>;
        master_keys: Record<string, { signatures?: Record<string, Record<string, string>> }>;
      };
    const garbage = encodeBase64(new Uint8Array(64).fill(7));
    const withSignature = (object: object, keyId: string, signature: string) => {
      const signatures = (object as { signatures?: Record<string, Record<string, string>> }).signatures ?? {};
      return { ...object, signatures: { ...signatures, [userId]: { ...signatures[userId], [keyId]: signature } } };
    };
    const bad = await uploadAs(client, '/keys/signatures/upload', {
      [userId]: {
        // A garbage signature by the self-signing key, and one by a key that may not sign a device.
        [deviceId]: withSignature(deviceKeys, `ed25519:${ssk}`, garbage),
        [cs.master]: withSignature(cs.bodies.master, 'ed25519:NOSUCHDEVICE', garbage),
        UNKNOWN: withSignature(deviceKeys, `ed25519:${ssk}`, garbage),
      },
    }).expect(200);
    expect(bad.body.failures).toEqual({
      [userId]: {
        [deviceId]: { errcode: 'M_INVALID_SIGNATURE', error: expect.stringContaining('does not verify') },
        [cs.master]: { errcode: 'M_INVALID_SIGNATURE', error: expect.stringContaining('not a key that may sign') },
        UNKNOWN: { errcode: 'M_NOT_FOUND', error: expect.any(String) },
      },
    });
    // A valid signature over another object than the key held is no signature on it either.
    const other = signJson(
      { ...deviceKeys, keys: { [`ed25519:${deviceId}`]: 'x' }, signatures: {} },
      userId,
      `ed25519:${ssk}`,
      cs.secretKeys.self_signing,
    );
    const mismatch = await uploadAs(client, '/keys/signatures/upload', { [userId]: { [deviceId]: other } }).expect(200);
    expect(mismatch.body.failures[userId][deviceId].errcode).toBe('M_INVALID_SIGNATURE');
    expect(await opCount()).toBe(ops);
    const unchanged = await query();
    expect(unchanged.device_keys[userId]?.[deviceId]?.signatures).toEqual(deviceKeys['signatures']);
    // Valid: the device signed by the self-signing key, the master key signed by the device; both served.
    const { signatures: _s, ...deviceContent } = deviceKeys;
    const deviceBySsk = signJson(deviceContent, userId, `ed25519:${ssk}`, cs.secretKeys.self_signing);
    const masterByDevice = signJson(cs.bodies.master, userId, `ed25519:${deviceId}`, deviceKey(deviceId));
    const good = await uploadAs(client, '/keys/signatures/upload', {
      [userId]: { [deviceId]: deviceBySsk, [cs.master]: masterByDevice },
    }).expect(200);
    expect(good.body.failures).toEqual({});
    const served = await query();
    expect(served.device_keys[userId]?.[deviceId]?.signatures).toEqual({
      [userId]: {
        ...(deviceKeys['signatures'] as Record<string, Record<string, string>>)[userId],
        ...deviceBySsk.signatures[userId],
      },
    });
    expect(served.master_keys[userId]?.signatures).toEqual(masterByDevice.signatures);
    // Signatures by other users' keys, or on their keys, are not this home's to keep.
    const foreign = await uploadAs(client, '/keys/signatures/upload', {
      '@bob:example.org': { BOBDEVICE: { user_id: '@bob:example.org' } },
    }).expect(200);
    expect(foreign.body.failures['@bob:example.org'].BOBDEVICE.errcode).toBe('M_FORBIDDEN');
  });

  it("names an uploaded master key in a hosted account's document, and refuses keys that master did not sign", async () => {
    const created = await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart: 'carol', password: PASSWORD })
      .expect(201);
    const carol: string = created.body.user_id;
    const anon = createClient({ baseUrl });
    const res = await anon.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: carol },
      password: PASSWORD,
    });
    const upload = (body: object) =>
      http()
        .post('/_matrix/client/v3/keys/device_signing/upload')
        .set('Authorization', `Bearer ${res.access_token}`)
        .send(body);
    const keys = crossSigningKeys({ userId: carol }, 'carol');
    const first = await upload({
      master_key: keys.bodies.master,
      self_signing_key: keys.bodies.self_signing,
      user_signing_key: keys.bodies.user_signing,
    });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const detail = await http()
      .get(`/admin/v1/accounts/${encodeURIComponent(carol)}`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(200);
    expect(detail.body.document.cross_signing).toEqual({ master: keys.master });
    const query = await http()
      .post('/_matrix/client/v3/keys/query')
      .set('Authorization', `Bearer ${res.access_token}`)
      .send({ device_keys: { [carol]: [] } })
      .expect(200);
    expect(query.body.master_keys[carol]).toEqual(keys.bodies.master);
    expect(query.body.self_signing_keys[carol]).toEqual(keys.bodies.self_signing);
    // A self-signing key signed by another key than the bound master: refused with the planner's reason.
    const forged = crossSigningKeys({ userId: carol }, 'carol-2', 'intruder');
    const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: carol }, password: PASSWORD };
    const refused = await upload({ self_signing_key: forged.bodies.self_signing, auth });
    expect([refused.status, refused.body.errcode]).toEqual([400, 'M_INVALID_SIGNATURE']);
    expect(refused.body.error).toContain('no valid signature');
    // Without a master key at all, a self-signing key cannot be checked: the spec's M_MISSING_PARAM.
    const dave = await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart: 'dave', password: PASSWORD })
      .expect(201);
    const daveLogin = await anon.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: dave.body.user_id },
      password: PASSWORD,
    });
    const daveKeys = crossSigningKeys({ userId: dave.body.user_id }, 'dave');
    const noMaster = await http()
      .post('/_matrix/client/v3/keys/device_signing/upload')
      .set('Authorization', `Bearer ${daveLogin.access_token}`)
      .send({ self_signing_key: daveKeys.bodies.self_signing });
    expect([noMaster.status, noMaster.body.errcode]).toEqual([400, 'M_MISSING_PARAM']);
    // Uploaded with a master key that did not sign it: refused, and the master key is not bound either.
    const mixed = await http()
      .post('/_matrix/client/v3/keys/device_signing/upload')
      .set('Authorization', `Bearer ${daveLogin.access_token}`)
      .send({
        master_key: daveKeys.bodies.master,
        self_signing_key: crossSigningKeys({ userId: dave.body.user_id }, 'dave', 'intruder').bodies.self_signing,
      });
    expect([mixed.status, mixed.body.errcode]).toEqual([400, 'M_INVALID_SIGNATURE']);
    const daveDetail = await http()
      .get(`/admin/v1/accounts/${encodeURIComponent(dave.body.user_id)}`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(200);
    expect(daveDetail.body.document.cross_signing).toBeUndefined();
    // The root names another master key: the keys held, bound to the old one, are served no more.
    const next = crossSigningKeys({ userId: carol }, 'carol-next');
    await server.app.get(AccountsService).bindCrossSigningMaster(created.body.server_name, next.master);
    const after = await http()
      .post('/_matrix/client/v3/keys/query')
      .set('Authorization', `Bearer ${res.access_token}`)
      .send({ device_keys: { [carol]: [] } })
      .expect(200);
    expect(after.body.master_keys).toEqual({});
    expect(after.body.self_signing_keys).toEqual({});
    expect(after.body.user_signing_keys).toEqual({});
  });

  it('creates a room in the room engine: joined_rooms, /sync rooms.join, leave, rejoin refused', async () => {
    const client = await login();
    const initial = await client.http.authedRequest<{ next_batch: string }>(Method.Get, '/sync');
    const { room_id: roomId } = await client.createRoom({ name: 'Hall' });
    expect(roomId).toMatch(/^!/);
    expect((await client.getJoinedRooms()).joined_rooms).toContain(roomId);
    const sync = await client.http.authedRequest<{
      next_batch: string;
      rooms: {
        join: Record<
          string,
          { timeline: { events: Array<Record<string, unknown>> }; state: { events: Array<Record<string, unknown>> } }
        >;
      };
    }>(Method.Get, '/sync', { since: initial.next_batch, timeout: '1000' });
    expect(sync.next_batch).toMatch(/^s\d+_\d+_\d+_\d+_d\d+$/);
    const joined = sync.rooms.join[roomId];
    const events = [...(joined?.state.events ?? []), ...(joined?.timeline.events ?? [])];
    expect(events).toContainEqual(expect.objectContaining({ type: 'm.room.create', sender: userId }));
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'm.room.member',
        state_key: userId,
        content: expect.objectContaining({ membership: 'join' }),
      }),
    );
    expect(events).toContainEqual(expect.objectContaining({ type: 'm.room.name', content: { name: 'Hall' } }));
    for (const event of events) expect(event['signatures']).toBeUndefined();
    await client.leave(roomId);
    expect((await client.getJoinedRooms()).joined_rooms).not.toContain(roomId);
    // A long poll returns at the first change of the account (the replicated membership ops count too): poll
    // until the leave is among them, a bounded number of times.
    let since = sync.next_batch;
    let leftRooms: string[] = [];
    for (let i = 0; i < 10 && leftRooms.length === 0; i++) {
      const left = await client.http.authedRequest<{ next_batch: string; rooms: { leave: Record<string, unknown> } }>(
        Method.Get,
        '/sync',
        { since, timeout: '5000' },
      );
      leftRooms = Object.keys(left.rooms.leave);
      since = left.next_batch;
    }
    expect(leftRooms).toEqual([roomId]);
    // The room is private (invite only): the last member cannot come back uninvited.
    const rejoin = await client.joinRoom(roomId).catch((err: { errcode?: string }) => err);
    expect(rejoin).toMatchObject({ errcode: 'M_FORBIDDEN' });
  });

  it('/sync long-polls and wakes on a change made through the port, with device_lists.changed', async () => {
    const client = await login();
    const initial = await client.http.authedRequest<{ next_batch: string }>(Method.Get, '/sync');
    const started = Date.now();
    const polling = client.http.authedRequest<{ next_batch: string; device_lists: { changed: string[] } }>(
      Method.Get,
      '/sync',
      { since: initial.next_batch, timeout: '20000' },
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    await server.app.get(AccountsService).applyLocal(serverName, [
      {
        op: 'device.put',
        key: 'PORTDEVICE',
        body: { user_id: userId, device_id: 'PORTDEVICE', algorithms: [], keys: {}, signatures: {} },
      },
    ]);
    const woke = await polling;
    // Woken by the change, not by the 20 s timeout.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(woke.device_lists.changed).toEqual([userId]);
    expect(woke.next_batch).not.toBe(initial.next_batch);
    // Nothing new once every change is taken: a short timeout then returns no device change.
    let quiet = woke;
    for (let i = 0; i < 10 && (i === 0 || quiet.device_lists.changed.length > 0); i++) {
      quiet = await client.http.authedRequest<{ next_batch: string; device_lists: { changed: string[] } }>(
        Method.Get,
        '/sync',
        { since: quiet.next_batch, timeout: '200' },
      );
    }
    expect(quiet.device_lists.changed).toEqual([]);
    const changes = await client.http.authedRequest<{ changed: string[] }>(Method.Get, '/keys/changes', {
      from: initial.next_batch,
      to: woke.next_batch,
    });
    expect(changes.changed).toEqual([userId]);
    expect(await table(server.resources.storage, 'matrix_change').count()).toBeGreaterThan(0);
  });
});
