// A Matrix device uploading one-time keys in a loop, and an account whose change stream only grows, against a
// real server process. Neither had a bound: every key and every change was a row kept forever. Now a device
// holds at most DEVICE_KEY_LIMITS.oneTime one-time keys (an upload past it is 400 M_INVALID_PARAM, nothing
// stored) and the change stream keeps DEFAULT_CHANGES_PER_ACCOUNT entries per account; a client whose token is
// older than what was pruned is told everything changed (its device list included), never nothing.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodeBase64, signBytes, signedBytes } from '@polyhome/identity';
import { DEVICE_KEY_LIMITS } from '@polyhome/matrix';
import { waitFor } from '@polyhome/p2p/testing';
import { DEFAULT_CHANGES_PER_ACCOUNT, openStorage, type Storage } from '@polyhome/storage';
import { table } from '@polyhome/storage/testing';
import { deviceBody, deviceKey } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matrixLogin, startFreshServer, type Answer, type FreshServer } from '../support/server-process.js';

const OTK_BATCH = 50;

interface Client {
  userId: string;
  serverName: string;
  deviceId: string;
  call(method: string, route: string, body?: unknown): Promise<Answer>;
}

describe('Matrix key and change-stream bounds, against a server process', () => {
  let fresh: FreshServer;
  let storage: Storage;
  let scratch: string;

  beforeAll(async () => {
    fresh = await startFreshServer('matrix-bounds');
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-matrix-bounds-'));
    storage = await openStorage({
      databaseUrl: fresh.databaseUrl,
      dataDir: scratch,
      migrationsRun: false,
      poolSize: 2,
    });
  }, 180_000);
  afterAll(async () => {
    await storage?.close();
    await fresh?.dispose();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  async function hostedAccount(localpart: string): Promise<{ userId: string; serverName: string }> {
    const made = await fresh.server.admin('POST', '/admin/v1/accounts', { localpart, password: `${localpart} pw 1` });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const userId = String(made.body['user_id']);
    return { userId, serverName: userId.slice(userId.indexOf(':') + 1) };
  }

  async function login(account: { userId: string; serverName: string }): Promise<Client> {
    const { server } = fresh;
    const { deviceId, accessToken } = await matrixLogin(server, account.userId);
    const auth = { Authorization: `Bearer ${accessToken}` };
    return {
      ...account,
      deviceId,
      call: (method, route, body) => server.request(method, `/_matrix/client/v3${route}`, body, auth),
    };
  }

  // Keys signed by the device's Ed25519 key (the fixture's key for its id), as the home requires.
  let signer: { userId: string; deviceId: string } = { userId: '', deviceId: '' };
  function signed(key: Record<string, unknown>): Record<string, unknown> {
    const signature = encodeBase64(signBytes(signedBytes(key), deviceKey(signer.deviceId)));
    return { ...key, signatures: { [signer.userId]: { [`ed25519:${signer.deviceId}`]: signature } } };
  }
  function oneTimeKeys(from: number, count: number): Record<string, unknown> {
    return Object.fromEntries(
      Array.from({ length: count }, (_, i) => [`signed_curve25519:K${from + i}`, signed({ key: `key-${from + i}` })]),
    );
  }

  it('keeps a device at its one-time key limit however often it uploads, and claims still work', async () => {
    const client = await login(await hostedAccount('uploader'));
    signer = client;
    const deviceKeys = await client.call('POST', '/keys/upload', {
      device_keys: { ...deviceBody({ userId: client.userId }, client.deviceId) },
    });
    expect(deviceKeys.status, JSON.stringify(deviceKeys.body)).toBe(200);
    const stored = () =>
      table(storage, 'matrix_device_key').count({
        serverName: client.serverName,
        deviceId: client.deviceId,
        kind: 'one_time',
      });
    const limit = DEVICE_KEY_LIMITS.oneTime;
    const answers: Array<[number, string | number | undefined]> = [];
    // A client that never looks at the counts: 40 batches of 50 new keys, four times the limit.
    for (let n = 0; n < 40; n++) {
      const answer = await client.call('POST', '/keys/upload', {
        one_time_keys: oneTimeKeys(n * OTK_BATCH, OTK_BATCH),
      });
      const counts = answer.body['one_time_key_counts'] as Record<string, number> | undefined;
      answers.push([answer.status, answer.status === 200 ? counts?.['signed_curve25519'] : answer.body.errcode]);
      if (answer.status !== 200) expect(answer.body['error']).toContain(`at most ${limit} one-time keys`);
    }
    const accepted = limit / OTK_BATCH;
    expect(answers).toEqual([
      ...Array.from({ length: accepted }, (_, i) => [200, (i + 1) * OTK_BATCH]),
      ...Array.from({ length: 40 - accepted }, () => [400, 'M_INVALID_PARAM']),
    ]);
    expect(await stored()).toBe(limit);

    // A refused upload stores nothing of itself, not its fallback key either.
    const refused = await client.call('POST', '/keys/upload', {
      one_time_keys: oneTimeKeys(10_000, 1),
      fallback_keys: { 'signed_curve25519:FB': signed({ key: 'fallback', fallback: true }) },
    });
    expect([refused.status, refused.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect(await table(storage, 'matrix_device_key').count({ serverName: client.serverName, kind: 'fallback' })).toBe(
      0,
    );
    // A retry of keys already held is no new key: still answered with the count.
    const retry = await client.call('POST', '/keys/upload', { one_time_keys: oneTimeKeys(0, OTK_BATCH) });
    expect([retry.status, retry.body['one_time_key_counts']]).toEqual([200, { signed_curve25519: limit }]);
    // One oversized upload is refused before anything is stored.
    const oversized = await client.call('POST', '/keys/upload', { one_time_keys: oneTimeKeys(20_000, 201) });
    expect([oversized.status, oversized.body.errcode]).toEqual([400, 'M_BAD_JSON']);
    expect(await stored()).toBe(limit);

    // Claims go on; a claimed key makes room for exactly one new one.
    const claim = await client.call('POST', '/keys/claim', {
      one_time_keys: { [client.userId]: { [client.deviceId]: 'signed_curve25519' } },
    });
    expect(claim.status, JSON.stringify(claim.body)).toBe(200);
    const claimed = (claim.body['one_time_keys'] as Record<string, Record<string, Record<string, unknown>>>)[
      client.userId
    ]?.[client.deviceId];
    expect(Object.keys(claimed ?? {})).toEqual([expect.stringMatching(/^signed_curve25519:K/)]);
    expect(await stored()).toBe(limit - 1);
    const refill = await client.call('POST', '/keys/upload', { one_time_keys: oneTimeKeys(30_000, 1) });
    expect([refill.status, refill.body['one_time_key_counts']]).toEqual([200, { signed_curve25519: limit }]);
    const again = await client.call('POST', '/keys/upload', { one_time_keys: oneTimeKeys(30_001, 1) });
    expect([again.status, again.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const sync = await client.call('GET', '/sync?timeout=0');
    expect(sync.body['device_one_time_keys_count']).toEqual({ signed_curve25519: limit });
    expect(await stored()).toBe(limit);
  }, 300_000);

  it('keeps the change stream bounded, and tells a client with an old token that its devices changed', async () => {
    const account = await hostedAccount('streamer');
    const client = await login(account);
    const rows = () => table(storage, 'matrix_change').count({ serverName: account.serverName });
    const initial = await client.call('GET', '/sync?timeout=0');
    expect(initial.status, JSON.stringify(initial.body)).toBe(200);
    const old = String(initial.body['next_batch']);

    // A new device: the change a client holding `old` must hear of.
    const other = await login(account);
    const seen = await client.call('GET', `/sync?since=${old}&timeout=30000`);
    expect(seen.body['device_lists']).toEqual({ changed: [account.userId], left: [] });

    // Many more changes than the stream keeps for an account: one room each.
    const rooms = DEFAULT_CHANGES_PER_ACCOUNT + 60;
    let before = old;
    let last = '';
    for (let n = 0; n < rooms; n++) {
      if (n === rooms - 1) before = String((await other.call('GET', '/sync?timeout=0')).body['next_batch']);
      const made = await other.call('POST', '/createRoom', {});
      expect(made.status, JSON.stringify(made.body)).toBe(200);
      last = String(made.body['room_id']);
    }
    // The last room's change recorded means every earlier one is (the feed records in order).
    await waitFor(
      async () => {
        const answer = await client.call('GET', `/sync?since=${before}&timeout=0`);
        return Object.keys((answer.body['rooms'] as { join: Record<string, unknown> }).join).includes(last);
      },
      'the last room in the change stream',
      60_000,
    );
    expect(await rows()).toBeLessThanOrEqual(DEFAULT_CHANGES_PER_ACCOUNT);
    expect(await table(storage, 'matrix_change').count()).toBeLessThanOrEqual(2 * DEFAULT_CHANGES_PER_ACCOUNT);
    expect(await table(storage, 'matrix_change_horizon').count({ serverName: account.serverName })).toBe(1);

    // The old token: its device change was pruned, yet the answer says the devices changed, and gives every room.
    const stale = await client.call('GET', `/sync?since=${old}&timeout=0`);
    expect(stale.status, JSON.stringify(stale.body)).toBe(200);
    expect(stale.body['device_lists']).toEqual({ changed: [account.userId], left: [] });
    expect(Object.keys((stale.body['rooms'] as { join: Record<string, unknown> }).join)).toHaveLength(rooms);
    const now = String(stale.body['next_batch']);
    const changes = await client.call('GET', `/keys/changes?from=${old}&to=${now}`);
    expect(changes.body).toEqual({ changed: [account.userId], left: [] });

    // A token after the pruned entries is answered change by change: nothing changed since `now`.
    const fresh2 = await client.call('GET', `/sync?since=${now}&timeout=0`);
    expect(fresh2.body['device_lists']).toEqual({ changed: [], left: [] });
    expect((fresh2.body['rooms'] as { join: Record<string, unknown> }).join).toEqual({});
    expect((await client.call('GET', `/keys/changes?from=${now}&to=${now}`)).body).toEqual({ changed: [], left: [] });
  }, 600_000);
});
