// Keys of another user through the Matrix client API, on both backends: two accounts hosted on one server share
// a room; alice's client queries bob's device keys, claims his one-time key once and then his fallback key, and
// her /sync long-poll and /keys/changes name bob when his device list changes; /sync device_lists.left names a user
// who left the only encrypted room shared with alice, not one still in another; device_lists.changed names a user
// newly sharing an encrypted room with her (joined one, or one turned encrypted), not one joining an unencrypted room.
import { encodeBase64, signBytes, signedBytes } from '@polyhome/identity';
import { deviceBody, deviceKey } from '@polyhome/sync/testing';
import { createClient, Method, type MatrixClient } from 'matrix-js-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostedUser, type TestMatrixUser } from '../testing/matrix-user.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'matrix-keys-admin-token';
const PASSWORD = 'correct horse battery staple';
const ALG = 'signed_curve25519';

type Claimed = { one_time_keys: Record<string, Record<string, Record<string, { key: string }>>>; failures: object };

describe.each(SERVER_BACKENDS)('keys of another account on $name', (backend) => {
  let server: TestServer;
  let alice: TestMatrixUser & { client: MatrixClient };
  let bob: TestMatrixUser & { client: MatrixClient };

  async function user(localpart: string) {
    const hosted = await hostedUser(server, ADMIN_TOKEN, localpart, PASSWORD);
    const client = createClient({
      baseUrl: hosted.baseUrl,
      userId: hosted.userId,
      accessToken: hosted.accessToken,
      deviceId: hosted.deviceId,
    });
    return { ...hosted, client };
  }

  /** A signed_curve25519 key signed by bob's device key. */
  const signed = (key: string, fallback = false) => {
    const body = { key, ...(fallback ? { fallback } : {}) };
    const signature = encodeBase64(signBytes(signedBytes(body), deviceKey(bob.deviceId)));
    return { ...body, signatures: { [bob.userId]: { [`ed25519:${bob.deviceId}`]: signature } } };
  };

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    await server.app.listen(0, '127.0.0.1');
    alice = await user('alice');
    bob = await user('bob');
    const roomId = (await alice.client.createRoom({ preset: 'private_chat' as never })).room_id;
    await alice.client.invite(roomId, bob.userId);
    await bob.client.joinRoom(roomId);
  }, 90_000);
  afterAll(async () => {
    await server?.close();
  });

  it("queries bob's device keys and claims his one-time key once, then his fallback key", async () => {
    const keys = deviceBody({ userId: bob.userId }, bob.deviceId);
    await bob.client.http.authedRequest(Method.Post, '/keys/upload', undefined, {
      device_keys: keys,
      one_time_keys: { [`${ALG}:OTK1`]: signed('one-time') },
      fallback_keys: { [`${ALG}:FB1`]: signed('fallback', true) },
    });
    const query = await alice.client.http.authedRequest<{
      device_keys: Record<string, Record<string, object>>;
      failures: object;
    }>(Method.Post, '/keys/query', undefined, { device_keys: { [bob.userId]: [] } });
    expect(query.failures).toEqual({});
    expect(query.device_keys[bob.userId]?.[bob.deviceId]).toMatchObject(keys);
    const claim = () =>
      alice.client.http.authedRequest<Claimed>(Method.Post, '/keys/claim', undefined, {
        one_time_keys: { [bob.userId]: { [bob.deviceId]: ALG } },
      });
    expect((await claim()).one_time_keys[bob.userId]?.[bob.deviceId]?.[`${ALG}:OTK1`]?.key).toBe('one-time');
    expect((await claim()).one_time_keys[bob.userId]?.[bob.deviceId]?.[`${ALG}:FB1`]?.key).toBe('fallback');
    const counts = await bob.client.http.authedRequest<{ one_time_key_counts: Record<string, number> }>(
      Method.Post,
      '/keys/upload',
      undefined,
      {},
    );
    expect(counts.one_time_key_counts[ALG] ?? 0).toBe(0);
  });

  it("names bob in alice's /sync device_lists.changed and /keys/changes when his device list changes", async () => {
    const initial = await alice.client.http.authedRequest<{ next_batch: string }>(Method.Get, '/sync');
    const polling = alice.client.http.authedRequest<{ device_lists: { changed: string[] } }>(Method.Get, '/sync', {
      since: initial.next_batch,
      timeout: '20000',
    });
    await bob.client.http.authedRequest(Method.Put, `/devices/${encodeURIComponent(bob.deviceId)}`, undefined, {
      display_name: 'renamed',
    });
    expect((await polling).device_lists.changed).toContain(bob.userId);
    const changes = await alice.client.http.authedRequest<{ changed: string[] }>(Method.Get, '/keys/changes', {
      from: initial.next_batch,
      to: initial.next_batch,
    });
    expect(changes.changed).toEqual([bob.userId]);
  });

  it('refuses malformed user ids and oversized requests; a server that is no account is a failure', async () => {
    const elsewhere = await alice.client.http.authedRequest<{ failures: Record<string, { status: number }> }>(
      Method.Post,
      '/keys/query',
      undefined,
      { device_keys: { '@carol:example.org': [] } },
    );
    expect(elsewhere.failures['example.org']?.status).toBe(404);
    await expect(
      alice.client.http.authedRequest(Method.Post, '/keys/query', undefined, { device_keys: { 'bob@nowhere': [] } }),
    ).rejects.toMatchObject({ errcode: 'M_INVALID_PARAM' });
    const many = Object.fromEntries(Array.from({ length: 1_001 }, (_, i) => [`@u${i}:${bob.serverName}`, []]));
    await expect(
      alice.client.http.authedRequest(Method.Post, '/keys/query', undefined, { device_keys: many }),
    ).rejects.toMatchObject({ errcode: 'M_TOO_LARGE' });
  });

  it('names in device_lists.left a user who left the only encrypted room shared, not one still in another', async () => {
    const carol = await user('carol');
    const encrypted = async (members: Array<TestMatrixUser & { client: MatrixClient }>) => {
      const roomId = (
        await alice.client.createRoom({
          preset: 'private_chat' as never,
          initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
        })
      ).room_id;
      for (const member of members) {
        await alice.client.invite(roomId, member.userId);
        await member.client.joinRoom(roomId);
      }
      return roomId;
    };
    const shared = await encrypted([bob, carol]);
    await encrypted([carol]);
    type Lists = { next_batch: string; device_lists: { changed: string[]; left: string[] } };
    const sync = (since?: string) =>
      alice.client.http.authedRequest<Lists>(Method.Get, '/sync', since === undefined ? {} : { since, timeout: '0' });
    const before = await sync();
    expect(before.device_lists.left).toEqual([]);
    await bob.client.leave(shared);
    await carol.client.leave(shared);
    const after = await sync(before.next_batch);
    // bob shares only an unencrypted room with alice now; carol is still in the second encrypted room.
    expect(after.device_lists.left).toEqual([bob.userId]);
    expect(after.device_lists.changed).not.toContain(bob.userId);
    expect((await sync(after.next_batch)).device_lists.left).toEqual([]);
  });

  it('names in device_lists.changed a user newly sharing an encrypted room, not one joining an unencrypted one', async () => {
    const dave = await user('dave');
    const erin = await user('erin');
    const encrypted = (
      await alice.client.createRoom({
        preset: 'private_chat' as never,
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
      })
    ).room_id;
    const plain = (await alice.client.createRoom({ preset: 'private_chat' as never })).room_id;
    type Lists = { next_batch: string; device_lists: { changed: string[]; left: string[] } };
    const sync = (since?: string) =>
      alice.client.http.authedRequest<Lists>(Method.Get, '/sync', since === undefined ? {} : { since, timeout: '0' });
    const before = await sync();
    await alice.client.invite(encrypted, dave.userId);
    await dave.client.joinRoom(encrypted);
    await alice.client.invite(plain, erin.userId);
    await erin.client.joinRoom(plain);
    const joined = await sync(before.next_batch);
    expect(joined.device_lists.changed).toContain(dave.userId);
    expect(joined.device_lists.changed).not.toContain(erin.userId);
    expect(joined.device_lists.left).toEqual([]);
    // The unencrypted room turns encrypted: erin now shares an encrypted room with alice.
    await alice.client.sendStateEvent(
      plain,
      'm.room.encryption' as never,
      { algorithm: 'm.megolm.v1.aes-sha2' } as never,
      '',
    );
    const turned = await sync(joined.next_batch);
    expect(turned.device_lists.changed).toContain(erin.userId);
    expect(turned.device_lists.changed).not.toContain(dave.userId);
  });
});
