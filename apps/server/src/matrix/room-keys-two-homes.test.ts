import { Method, type MatrixClient } from 'matrix-js-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@polyhome/p2p/testing';
import { SERVER_BACKENDS } from '../testing/server-harness.js';
import { startTwoHomes, type TwoHomes } from '../testing/two-homes.js';

const ADMIN_TOKEN = 'room-keys-two-homes-admin-token';
const ALGORITHM = 'm.megolm_backup.v1.curve25519-aes-sha2';

interface VersionInfo {
  algorithm: string;
  auth_data: Record<string, unknown>;
  version: string;
  count: number;
  etag: string;
}

interface KeyData {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: Record<string, unknown>;
}

function keyData(session: string, overrides: Partial<KeyData> = {}): KeyData {
  return {
    first_message_index: 0,
    forwarded_count: 0,
    is_verified: false,
    session_data: { ciphertext: `ciphertext of ${session}`, ephemeral: 'eph', mac: 'mac' },
    ...overrides,
  };
}

/** A client's request, answering the Matrix error body instead of throwing it. */
async function call<T>(
  client: MatrixClient,
  method: Method,
  path: string,
  query?: Record<string, string>,
  body?: unknown,
): Promise<T | { errcode: string; error: string; current_version?: string; httpStatus: number }> {
  try {
    return await client.http.authedRequest<T>(method, path, query, body as never);
  } catch (err) {
    const e = err as { errcode: string; data: Record<string, unknown>; httpStatus: number };
    return { ...(e.data as { errcode: string; error: string }), httpStatus: e.httpStatus };
  }
}

const current = (client: MatrixClient) => call<VersionInfo>(client, Method.Get, '/room_keys/version');

describe.each(SERVER_BACKENDS)('key backup on two server homes of one account ($name)', (backend) => {
  let homes: TwoHomes;
  let clientA: MatrixClient;
  let clientB: MatrixClient;

  beforeAll(async () => {
    homes = await startTwoHomes(backend, ADMIN_TOKEN);
    ({ clientA, clientB } = homes);
  }, 60_000);
  afterAll(async () => {
    await homes?.close();
  });

  it('a version and keys made on A are served by B with the same count and etag', async () => {
    expect(await current(clientA)).toMatchObject({ errcode: 'M_NOT_FOUND', httpStatus: 404 });
    const authData = { public_key: 'pUbLiCkEy', signatures: { [homes.userId]: { 'ed25519:DEV': 'sig' } } };
    const { version } = (await call<{ version: string }>(clientA, Method.Post, '/room_keys/version', undefined, {
      algorithm: ALGORITHM,
      auth_data: authData,
    })) as { version: string };
    expect(version).toMatch(/^1-[0-9a-f]{8}$/);
    const uploaded = {
      rooms: {
        '!one:example': { sessions: { s1: keyData('s1'), s2: keyData('s2', { forwarded_count: 2 }) } },
        '!two:example': { sessions: { s3: keyData('s3', { is_verified: true, first_message_index: 4 }) } },
      },
    };
    const put = (await call<{ etag: string; count: number }>(
      clientA,
      Method.Put,
      '/room_keys/keys',
      { version },
      uploaded,
    )) as { etag: string; count: number };
    expect(put.count).toBe(3);
    await waitFor(async () => ((await current(clientB)) as VersionInfo).count === 3, 'the three keys on B');
    const onB = (await current(clientB)) as VersionInfo;
    expect(onB).toEqual({ algorithm: ALGORITHM, auth_data: authData, version, count: 3, etag: put.etag });
    expect(await call(clientB, Method.Get, `/room_keys/version/${version}`)).toEqual(onB);
    expect(await call(clientB, Method.Get, '/room_keys/keys', { version })).toEqual(uploaded);
    expect(await call(clientB, Method.Get, '/room_keys/keys/!two:example', { version })).toEqual(
      uploaded.rooms['!two:example'],
    );
    expect(await call(clientB, Method.Get, '/room_keys/keys/!one:example/s2', { version })).toEqual(
      uploaded.rooms['!one:example'].sessions.s2,
    );
    expect(await call(clientB, Method.Get, '/room_keys/keys/!one:example/nope', { version })).toMatchObject({
      errcode: 'M_NOT_FOUND',
    });
    expect(await call(clientB, Method.Get, '/room_keys/keys/!none:example', { version })).toEqual({ sessions: {} });
  });

  it('refuses bad input with a Matrix error and changes nothing', async () => {
    const before = (await current(clientA)) as VersionInfo;
    const { version } = before;
    expect(await call(clientA, Method.Post, '/room_keys/version', undefined, { algorithm: ALGORITHM })).toMatchObject({
      errcode: 'M_MISSING_PARAM',
      httpStatus: 400,
    });
    const missing = { rooms: { '!one:example': { sessions: { s9: { first_message_index: 0, is_verified: false } } } } };
    expect(await call(clientA, Method.Put, '/room_keys/keys', { version }, missing)).toMatchObject({
      errcode: 'M_MISSING_PARAM',
    });
    const notRoom = { rooms: { 'one:example': { sessions: { s9: keyData('s9') } } } };
    expect(await call(clientA, Method.Put, '/room_keys/keys', { version }, notRoom)).toMatchObject({
      errcode: 'M_INVALID_PARAM',
    });
    expect(await call(clientA, Method.Put, '/room_keys/keys', {}, { rooms: {} })).toMatchObject({
      errcode: 'M_MISSING_PARAM',
    });
    expect(await call(clientA, Method.Put, '/room_keys/keys', { version: '99-00000000' }, { rooms: {} })).toMatchObject(
      { errcode: 'M_NOT_FOUND', httpStatus: 404 },
    );
    expect(
      await call(clientA, Method.Put, `/room_keys/version/${version}`, undefined, {
        algorithm: 'm.other',
        auth_data: {},
      }),
    ).toMatchObject({ errcode: 'M_INVALID_PARAM' });
    expect(await current(clientA)).toEqual(before);
  });

  it('keeps the better of two keys of a session (verified, then lower first index, then fewer forwards)', async () => {
    const { version } = (await current(clientA)) as VersionInfo;
    const path = '/room_keys/keys/!rule:example/sess';
    const put = (data: KeyData) =>
      call<{ etag: string; count: number }>(clientA, Method.Put, path, { version }, data) as Promise<{
        etag: string;
        count: number;
      }>;
    const held = () => call<KeyData>(clientA, Method.Get, path, { version });
    const first = await put(keyData('sess', { first_message_index: 5, forwarded_count: 3 }));
    expect(first.count).toBe(4);
    // Worse: a later first index. Kept, and the etag stays.
    expect(await put(keyData('sess', { first_message_index: 6 }))).toEqual(first);
    expect(await held()).toMatchObject({ first_message_index: 5 });
    // Better: an earlier first index.
    const earlier = await put(keyData('sess', { first_message_index: 2, forwarded_count: 3 }));
    expect(earlier.etag).not.toBe(first.etag);
    expect(await held()).toMatchObject({ first_message_index: 2, forwarded_count: 3 });
    // Same index, fewer forwards: better.
    await put(keyData('sess', { first_message_index: 2, forwarded_count: 1 }));
    expect(await held()).toMatchObject({ first_message_index: 2, forwarded_count: 1 });
    // Verified beats an earlier first index.
    await put(keyData('sess', { first_message_index: 9, is_verified: true }));
    expect(await held()).toMatchObject({ first_message_index: 9, is_verified: true });
    // An unverified key never replaces a verified one.
    await put(keyData('sess', { first_message_index: 0 }));
    expect(await held()).toMatchObject({ first_message_index: 9, is_verified: true });
    const onA = (await current(clientA)) as VersionInfo;
    await waitFor(async () => ((await current(clientB)) as VersionInfo).etag === onA.etag, 'the same etag on B');
    expect(await call(clientB, Method.Get, path, { version })).toEqual(await held());
  });

  it('a newer version made on B becomes current on A: keys for the old one are refused', async () => {
    const old = ((await current(clientA)) as VersionInfo).version;
    const { version } = (await call<{ version: string }>(clientB, Method.Post, '/room_keys/version', undefined, {
      algorithm: ALGORITHM,
      auth_data: { public_key: 'second' },
    })) as { version: string };
    expect(version).toMatch(/^2-[0-9a-f]{8}$/);
    await waitFor(async () => ((await current(clientA)) as VersionInfo).version === version, 'the new version on A');
    expect(await current(clientA)).toMatchObject({ version, count: 0, auth_data: { public_key: 'second' } });
    const refused = await call(clientA, Method.Put, '/room_keys/keys/!one:example/s1', { version: old }, keyData('s1'));
    expect(refused).toMatchObject({ errcode: 'M_WRONG_ROOM_KEYS_VERSION', current_version: version, httpStatus: 403 });
    // The old version is still readable by its id.
    expect(await call(clientA, Method.Get, `/room_keys/version/${old}`)).toMatchObject({ version: old, count: 4 });
  });

  it('versions made on both homes at once converge to one current version everywhere', async () => {
    const made = await Promise.all(
      [clientA, clientB].map(
        (client) =>
          call<{ version: string }>(client, Method.Post, '/room_keys/version', undefined, {
            algorithm: ALGORITHM,
            auth_data: { public_key: client.getDeviceId() },
          }) as Promise<{ version: string }>,
      ),
    );
    expect(made[0]!.version).not.toBe(made[1]!.version);
    const highest = async (client: MatrixClient) => {
      const all = await Promise.all(made.map((m) => call(client, Method.Get, `/room_keys/version/${m.version}`)));
      return all.every((v) => 'version' in (v as object));
    };
    await waitFor(async () => (await highest(clientA)) && (await highest(clientB)), 'both versions on both homes');
    const [onA, onB] = await Promise.all([current(clientA), current(clientB)]);
    expect(onA).toEqual(onB);
    expect(made.map((m) => m.version)).toContain((onA as VersionInfo).version);
  });

  it('takes 600 keys in one upload (two op batches) whole on both homes, and keeps them out of /sync', async () => {
    const { version, count } = (await current(clientA)) as VersionInfo;
    const sessions = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`bulk${i}`, keyData(`b${i}`)]));
    expect(
      await call(clientA, Method.Put, '/room_keys/keys/!bulk:example', { version }, { sessions: sessions(1001) }),
    ).toMatchObject({ errcode: 'M_TOO_LARGE', httpStatus: 413 });
    const put = (await call(
      clientA,
      Method.Put,
      '/room_keys/keys/!bulk:example',
      { version },
      {
        sessions: sessions(600),
      },
    )) as { etag: string; count: number };
    expect(put.count).toBe(count + 600);
    await waitFor(async () => ((await current(clientB)) as VersionInfo).etag === put.etag, 'the 600 keys on B');
    const room = (await call(clientB, Method.Get, '/room_keys/keys/!bulk:example', { version })) as {
      sessions: Record<string, KeyData>;
    };
    expect(Object.keys(room.sessions)).toHaveLength(600);
    // Neither home put a backup key into its /sync change stream.
    const serverName = homes.userId.slice(homes.userId.indexOf(':') + 1);
    for (const home of [homes.a, homes.b]) {
      const { keys } = await home.resources.repositories.matrix.changesSince(serverName, 0);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.filter((key) => key.startsWith('room_keys'))).toEqual([]);
    }
  });

  it('uploads of one session on both homes at once converge on the better key everywhere, in both orders', async () => {
    const { version } = (await current(clientA)) as VersionInfo;
    const SESSIONS = 40;
    // A holds the better key of the even sessions, B of the odd ones: whichever home's op is the later, or arrives
    // first, every home must end with the better key of each session.
    const upload = (home: 'a' | 'b') => ({
      sessions: Object.fromEntries(
        Array.from({ length: SESSIONS }, (_, i) => {
          const better = (i % 2 === 0) === (home === 'a');
          return [`c${i}`, keyData(`c${i} from ${home}`, { first_message_index: better ? 1 : 7 })];
        }),
      ),
    });
    const path = '/room_keys/keys/!concurrent:example';
    await Promise.all([
      call(clientA, Method.Put, path, { version }, upload('a')),
      call(clientB, Method.Put, path, { version }, upload('b')),
    ]);
    const room = async (client: MatrixClient) =>
      ((await call(client, Method.Get, path, { version })) as { sessions: Record<string, KeyData> }).sessions;
    await waitFor(
      async () => JSON.stringify(await room(clientA)) === JSON.stringify(await room(clientB)),
      'the same keys on both homes',
    );
    const held = await room(clientA);
    expect(Object.keys(held)).toHaveLength(SESSIONS);
    for (let i = 0; i < SESSIONS; i++) {
      expect(held[`c${i}`], `session c${i}`).toEqual(
        keyData(`c${i} from ${i % 2 === 0 ? 'a' : 'b'}`, { first_message_index: 1 }),
      );
    }
    const [onA, onB] = await Promise.all([current(clientA), current(clientB)]);
    expect((onA as VersionInfo).etag).toBe((onB as VersionInfo).etag);
  });

  it('deletes keys and versions everywhere', async () => {
    const { version, count } = (await current(clientA)) as VersionInfo;
    const upload = { rooms: { '!d:example': { sessions: { d1: keyData('d1'), d2: keyData('d2') } } } };
    expect(await call(clientA, Method.Put, '/room_keys/keys', { version }, upload)).toMatchObject({ count: count + 2 });
    const afterOne = (await call(clientA, Method.Delete, '/room_keys/keys/!d:example/d1', { version })) as {
      etag: string;
      count: number;
    };
    expect(afterOne.count).toBe(count + 1);
    await waitFor(
      async () => ((await current(clientB)) as VersionInfo).etag === afterOne.etag,
      'the deletion of d1 on B',
    );
    expect(await call(clientB, Method.Get, '/room_keys/keys/!d:example', { version })).toEqual({
      sessions: { d2: keyData('d2') },
    });
    expect(await call(clientB, Method.Delete, '/room_keys/keys', { version })).toMatchObject({ count: 0 });
    expect(await call(clientB, Method.Delete, `/room_keys/version/${version}`)).toEqual({});
    await waitFor(
      async () => ((await current(clientA)) as VersionInfo).version !== version,
      'the deleted version gone from A',
    );
    expect(await call(clientA, Method.Get, `/room_keys/version/${version}`)).toMatchObject({ errcode: 'M_NOT_FOUND' });
    expect(await call(clientA, Method.Get, '/room_keys/keys', { version })).toMatchObject({ errcode: 'M_NOT_FOUND' });
    // A new version never takes the id of a deleted one.
    const next = (await call<{ version: string }>(clientA, Method.Post, '/room_keys/version', undefined, {
      algorithm: ALGORITHM,
      auth_data: {},
    })) as { version: string };
    expect(Number(next.version.split('-')[0])).toBeGreaterThan(Number(version.split('-')[0]));
  });
});
