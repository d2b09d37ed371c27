// The Matrix client API's local store on PostgreSQL and PGlite, where it must stay bounded: a device holds at
// most so many one-time keys and fallback algorithms (an upload beyond is refused whole, nothing stored), and
// the /sync change stream keeps a key's newest entry and an account's newest entries only, answering a `since`
// older than what it pruned as expired (never as "nothing changed").
import { makeAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStorage, type Storage } from './data-source.js';
import { SqlMatrixStore, type StoredDeviceKey } from './matrix-store.js';
import { sqlStatementsSent } from './sql-statements.js';
import { SqlReplicaStore } from './replica-store.js';
import { createTestDatabase, STORAGE_BACKENDS, type TestDatabase } from './testing/backends.js';
import { table } from './testing/tables.js';

const LIMITS = { oneTime: 10, fallbackAlgorithms: 2 };
const CHANGES_PER_ACCOUNT = 5;

function keys(algorithm: string, from: number, count: number): StoredDeviceKey[] {
  return Array.from({ length: count }, (_, i) => ({
    keyId: `${algorithm}:K${from + i}`,
    algorithm,
    value: { key: `${algorithm}-${from + i}` },
  }));
}

describe.each(STORAGE_BACKENDS)('Matrix store bounds on %s', (backend) => {
  let db: TestDatabase;
  let storage: Storage;
  let store: SqlMatrixStore;
  const [alice, bob, carol] = ['matrix-store:alice', 'matrix-store:bob', 'matrix-store:carol'].map((seed) =>
    makeAccount({ seed, homes: 1 }),
  );
  const a = alice!.serverName;
  const b = bob!.serverName;
  const c = carol!.serverName;

  beforeAll(async () => {
    db = await createTestDatabase(backend);
    storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    await new SqlReplicaStore(storage.dataSource).hostAccounts([alice!.document, bob!.document, carol!.document], {
      custody: 'self',
    });
    store = new SqlMatrixStore(storage.dataSource, CHANGES_PER_ACCOUNT);
  });
  afterAll(async () => {
    await storage?.close();
    await db?.dispose();
  });

  it('refuses a one-time key upload past the limit whole, and counts a retried key once', async () => {
    const probe = table(storage, 'matrix_device_key');
    expect(await store.uploadKeys(a, 'D1', { oneTime: keys('signed_curve25519', 0, 8), fallback: [] }, LIMITS)).toEqual(
      { stored: true },
    );
    // A retry of held ids plus two new ones reaches the limit exactly.
    expect(await store.uploadKeys(a, 'D1', { oneTime: keys('signed_curve25519', 4, 6), fallback: [] }, LIMITS)).toEqual(
      { stored: true },
    );
    expect(await store.countOneTimeKeys(a, 'D1')).toEqual({ signed_curve25519: 10 });
    // One more, of any algorithm, and the fallback key sent with it: nothing of it is stored.
    const refused = await store.uploadKeys(
      a,
      'D1',
      { oneTime: keys('curve25519', 0, 1), fallback: keys('signed_curve25519', 100, 1) },
      LIMITS,
    );
    expect(refused).toEqual({ stored: false, kind: 'one_time', held: 10, adding: 1 });
    expect(await probe.count({ serverName: a, deviceId: 'D1' })).toBe(10);
    expect((await store.deviceKeyCounts(a, 'D1')).unusedFallback).toEqual([]);
    // Another device has its own room; a claimed key frees one.
    expect(
      await store.uploadKeys(a, 'D2', { oneTime: keys('signed_curve25519', 0, 10), fallback: [] }, LIMITS),
    ).toEqual({ stored: true });
    expect(await store.claimKey(a, 'D1', 'signed_curve25519')).not.toBeNull();
    expect(await store.uploadKeys(a, 'D1', { oneTime: keys('curve25519', 0, 1), fallback: [] }, LIMITS)).toEqual({
      stored: true,
    });
    expect(await store.countOneTimeKeys(a, 'D1')).toEqual({ signed_curve25519: 9, curve25519: 1 });
    expect(await store.deviceKeyCounts(a, 'D1')).toEqual({
      oneTime: { signed_curve25519: 9, curve25519: 1 },
      unusedFallback: [],
    });
    // The same counts with the account's changes, in one statement.
    const sent = sqlStatementsSent();
    expect(await store.changesAndKeyCounts(a, 0, 'D1')).toEqual({
      ...(await store.changesSince(a, 0)),
      deviceKeys: { oneTime: { signed_curve25519: 9, curve25519: 1 }, unusedFallback: [] },
    });
    expect(sqlStatementsSent() - sent).toBe(2);
  });

  it('lets two uploads at once never both pass the count', async () => {
    const results = await Promise.all(
      [0, 1, 2, 3].map((n) =>
        store.uploadKeys(a, 'D3', { oneTime: keys('signed_curve25519', n * 100, 4), fallback: [] }, LIMITS),
      ),
    );
    expect(results.filter((r) => r.stored)).toHaveLength(2);
    expect(await store.countOneTimeKeys(a, 'D3')).toEqual({ signed_curve25519: 8 });
  });

  it('keeps one fallback key per algorithm and refuses algorithms past the limit', async () => {
    const twoOfOne = [...keys('signed_curve25519', 0, 1), ...keys('signed_curve25519', 1, 1)];
    expect(await store.uploadKeys(a, 'F1', { oneTime: [], fallback: twoOfOne }, LIMITS)).toEqual({ stored: true });
    expect(await table(storage, 'matrix_device_key').rows({ serverName: a, deviceId: 'F1' })).toMatchObject([
      { keyId: 'signed_curve25519:K1' },
    ]);
    expect(await store.uploadKeys(a, 'F1', { oneTime: [], fallback: keys('other', 0, 1) }, LIMITS)).toEqual({
      stored: true,
    });
    const refused = await store.uploadKeys(
      a,
      'F1',
      { oneTime: keys('signed_curve25519', 50, 1), fallback: keys('third', 0, 1) },
      LIMITS,
    );
    expect(refused).toEqual({ stored: false, kind: 'fallback', held: 2, adding: 1 });
    expect(await store.countOneTimeKeys(a, 'F1')).toEqual({});
    // Replacing a held algorithm is no new one.
    expect(await store.uploadKeys(a, 'F1', { oneTime: [], fallback: keys('other', 5, 1) }, LIMITS)).toEqual({
      stored: true,
    });
    expect((await store.deviceKeyCounts(a, 'F1')).unusedFallback).toEqual(['other', 'signed_curve25519']);
    // A fallback key handed out is used, no longer unused.
    expect(await store.claimKey(a, 'F1', 'other')).not.toBeNull();
    expect(await store.deviceKeyCounts(a, 'F1')).toEqual({ oneTime: {}, unusedFallback: ['signed_curve25519'] });
    expect((await store.changesAndKeyCounts(a, 0, 'F1')).deviceKeys).toEqual({
      oneTime: {},
      unusedFallback: ['signed_curve25519'],
    });
  });

  it('keeps only the newest entry of a key: a key changed again and again is one row, answers unchanged', async () => {
    const probe = table(storage, 'matrix_change');
    const start = await store.position();
    for (let i = 0; i < 20; i++) await store.recordChanges(b, ['keys:D1', 'keys:D1']);
    expect(await probe.count({ serverName: b })).toBe(1);
    expect(await store.changesSince(b, start)).toEqual({
      position: await store.position(),
      keys: ['keys:D1'],
      expired: false,
    });
    expect((await store.changesSince(b, await store.position())).keys).toEqual([]);
  });

  it('keeps an account’s newest entries, and answers a since before what it pruned as expired', async () => {
    const probe = table(storage, 'matrix_change');
    const before = await store.position();
    await store.recordChanges(a, ['device:OLD']);
    const afterOld = await store.position();
    // Another account's changes do not push this account's out.
    for (let i = 0; i < 3 * CHANGES_PER_ACCOUNT; i++) await store.recordChanges(b, [`member:!b${i}`]);
    expect(await store.changesSince(a, before)).toMatchObject({ keys: ['device:OLD'], expired: false });
    // This account's own changes do.
    for (let i = 0; i < CHANGES_PER_ACCOUNT; i++) await store.recordChanges(a, [`member:!a${i}`]);
    expect(await probe.count({ serverName: a })).toBe(CHANGES_PER_ACCOUNT);
    expect(await probe.count({ serverName: b })).toBe(CHANGES_PER_ACCOUNT);
    const old = await store.changesSince(a, before);
    expect(old.expired).toBe(true);
    expect(old.keys).not.toContain('device:OLD');
    // Tokens after the pruned entry are answered change by change, as before.
    const recent = await store.changesSince(a, afterOld);
    expect(recent).toEqual({
      position: await store.position(),
      keys: Array.from({ length: CHANGES_PER_ACCOUNT }, (_, i) => `member:!a${i}`).sort(),
      expired: false,
    });
    // The stream's position is the newest entry's, never lowered by pruning.
    const last = await store.recordChanges(a, ['member:!last']);
    expect(await store.position()).toBe(last);
    expect((await table(storage, 'matrix_change_horizon').rows({ serverName: a })).length).toBe(1);
  });

  it('keeps the newest entries of an append larger than the bound, and expires what it pushed out', async () => {
    const before = await store.position();
    const many = Array.from({ length: 2 * CHANGES_PER_ACCOUNT }, (_, i) => `room:!many${i}`);
    const reached = await store.recordChanges(a, many);
    expect(reached).toBe(await store.position());
    expect(await table(storage, 'matrix_change').count({ serverName: a })).toBe(CHANGES_PER_ACCOUNT);
    expect((await store.changesSince(a, before)).expired).toBe(true);
    expect(await store.changesSince(a, reached)).toEqual({ position: reached, keys: [], expired: false });
  });

  it('appends the changes of several accounts in one transaction of fixed size, each pruned and expired alone', async () => {
    const probe = table(storage, 'matrix_change');
    const before = await store.position();
    const sent = sqlStatementsSent();
    const reached = await store.recordChangesOf(
      new Map([
        [a, ['device:X', 'device:X', 'member:!one']],
        [b, Array.from({ length: CHANGES_PER_ACCOUNT + 3 }, (_, i) => `room:!b${i}`)],
        [c, ['keys:C1']],
      ]),
    );
    // BEGIN, the lock (not on PGlite: its one session is the transaction's), one statement (insert, drop of older
    // entries, prune, horizons), COMMIT.
    expect(sqlStatementsSent() - sent).toBe(backend === 'pglite' ? 3 : 4);
    expect(reached).toBe(await store.position());
    expect(await store.changesSince(a, before)).toEqual({
      position: reached,
      keys: ['device:X', 'member:!one'],
      expired: false,
    });
    expect(await store.changesSince(c, before)).toEqual({ position: reached, keys: ['keys:C1'], expired: false });
    // Only bob went past the bound: his stream keeps its newest entries and expires the older position.
    expect(await probe.count({ serverName: b })).toBe(CHANGES_PER_ACCOUNT);
    expect((await store.changesSince(b, before)).expired).toBe(true);
    // Ids follow the map's order: bob's are the ones just before carol's single entry, the highest.
    const kept = await store.changesSince(b, reached - CHANGES_PER_ACCOUNT - 1);
    expect(kept.expired).toBe(false);
    expect(kept.keys).toEqual(Array.from({ length: CHANGES_PER_ACCOUNT }, (_, i) => `room:!b${i + 3}`).sort());
    // A key written again in a later append leaves one entry, at its newest position.
    const again = await store.recordChangesOf(
      new Map([
        [a, ['device:X']],
        [c, ['keys:C2']],
      ]),
    );
    expect((await store.changesSince(a, reached)).keys).toEqual(['device:X']);
    expect((await store.changesSince(c, reached)).keys).toEqual(['keys:C2']);
    expect(again).toBe(await store.position());
  });

  it('writes nothing of an append naming an account it does not hold', async () => {
    const before = await store.position();
    const stranger = makeAccount({ seed: 'matrix-store:stranger', homes: 1 }).serverName;
    await expect(
      store.recordChangesOf(
        new Map([
          [a, ['member:!lost']],
          [stranger, ['device:S']],
        ]),
      ),
    ).rejects.toThrow();
    expect(await store.position()).toBe(before);
    expect((await store.changesSince(a, before)).keys).toEqual([]);
  });
});
