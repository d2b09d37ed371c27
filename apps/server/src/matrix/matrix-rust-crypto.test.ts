// matrix-js-sdk's Rust crypto against a home: the keys it makes (self-signed device keys, signed one-time and
// fallback keys, cross-signing keys and the signatures it uploads when it sets cross-signing up) pass every
// check the key endpoints make, on both backends; a second device of the account decrypts a message the first
// encrypted, its Megolm key having come as an Olm to-device message through /sendToDevice and /sync.
import type { AddressInfo } from 'node:net';
import { waitFor } from '@polyhome/p2p/testing';
import { createClient, Method, type MatrixClient } from 'matrix-js-sdk';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'rust-crypto-test-admin-token';
const PASSWORD = 'correct horse battery staple';

interface KeysQuery {
  device_keys: Record<string, Record<string, { signatures: Record<string, Record<string, string>> }>>;
  master_keys: Record<string, { keys: Record<string, string>; signatures?: Record<string, Record<string, string>> }>;
  self_signing_keys: Record<string, { keys: Record<string, string> }>;
  user_signing_keys: Record<string, unknown>;
}

describe.each(SERVER_BACKENDS)('Rust crypto of matrix-js-sdk on $name', (backend) => {
  let server: TestServer;
  let client: MatrixClient;
  let userId: string;
  let baseUrl: string;
  let second: MatrixClient | undefined;

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    await server.app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(server.app.getHttpServer() as { address(): AddressInfo }).address().port}`;
    const created = await request(server.app.getHttpServer())
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart: 'rusty', password: PASSWORD })
      .expect(201);
    userId = created.body.user_id;
    const login = await createClient({ baseUrl }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: PASSWORD,
    });
    client = createClient({ baseUrl, userId, accessToken: login.access_token, deviceId: login.device_id });
    await client.initRustCrypto({ useIndexedDB: false });
  }, 60_000);
  afterAll(async () => {
    client?.stopClient();
    second?.stopClient();
    await server?.close();
  });

  const query = () =>
    client.http.authedRequest<KeysQuery>(Method.Post, '/keys/query', undefined, { device_keys: { [userId]: [] } });

  it('uploads self-signed device keys and signed one-time keys, then sets cross-signing up', async () => {
    const deviceId = client.getDeviceId()!;
    await client.startClient();
    await waitFor(async () => (await query()).device_keys[userId]?.[deviceId] !== undefined, 'device keys uploaded');
    const counts = await client.http.authedRequest<{ one_time_key_counts: Record<string, number> }>(
      Method.Post,
      '/keys/upload',
      undefined,
      {},
    );
    expect(counts.one_time_key_counts['signed_curve25519']).toBeGreaterThan(0);
    await client.getCrypto()!.bootstrapCrossSigning({
      authUploadDeviceSigningKeys: async (makeRequest) => {
        await makeRequest({
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: userId },
          password: PASSWORD,
        });
      },
    });
    await waitFor(async () => {
      const keys = await query();
      const master = keys.master_keys[userId];
      const ssk = Object.keys(keys.self_signing_keys[userId]?.keys ?? {})[0];
      const device = keys.device_keys[userId]?.[deviceId];
      // The device signed by the self-signing key, the master key signed by the device: both stored.
      return (
        master !== undefined &&
        ssk !== undefined &&
        device?.signatures[userId]?.[ssk] !== undefined &&
        master.signatures?.[userId]?.[`ed25519:${deviceId}`] !== undefined
      );
    }, 'cross-signing set up, device and master key cross-signed');
    // The client learns the new signatures through its own key query (after /sync says its keys changed): on a
    // loaded machine that lands after the server has them, so its view is awaited too, not read once.
    await waitFor(
      async () =>
        (await client.getCrypto()!.getDeviceVerificationStatus(userId, deviceId))?.crossSigningVerified === true,
      'the client to see its device cross-signed',
    );
    const status = await client.getCrypto()!.getDeviceVerificationStatus(userId, deviceId);
    expect(status?.crossSigningVerified).toBe(true);
  }, 60_000);

  it('another device of the account decrypts a message: the room key reached it as a to-device message', async () => {
    const login = await createClient({ baseUrl }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: PASSWORD,
    });
    const other = createClient({ baseUrl, userId, accessToken: login.access_token, deviceId: login.device_id });
    second = other;
    await other.initRustCrypto({ useIndexedDB: false });
    await other.startClient();
    const otherDevice = other.getDeviceId()!;
    await waitFor(
      async () => (await query()).device_keys[userId]?.[otherDevice] !== undefined,
      'the second device keys',
    );
    // The first client learns the new device (device_lists.changed, then its own key query).
    await waitFor(
      async () => (await client.getCrypto()!.getUserDeviceInfo([userId], true)).get(userId)?.has(otherDevice) === true,
      'the first client to know the second device',
    );
    const { room_id: roomId } = await client.createRoom({
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    await waitFor(async () => (await client.getCrypto()!.isEncryptionEnabledInRoom(roomId)) === true, 'encryption on');
    await client.sendTextMessage(roomId, 'only for my devices');
    const decrypted = () =>
      other
        .getRoom(roomId)
        ?.getLiveTimeline()
        .getEvents()
        .find((e) => e.isEncrypted() && e.getType() === 'm.room.message');
    await waitFor(async () => decrypted()?.getContent()['body'] === 'only for my devices', 'the message decrypted');
    expect(decrypted()?.isDecryptionFailure()).toBe(false);
  }, 90_000);
});
