import { roomKeyKey, roomKeyPrefix, summaryOf, type Op } from '@polyhome/sync';
import { makeAccount, writers } from '@polyhome/sync/testing';
import { describe, expect, it } from 'vitest';
import { openStorage } from './data-source.js';
import { SqlReplicaStore } from './replica-store.js';
import { createTestDatabase, STORAGE_BACKENDS } from './testing/backends.js';

function keyBody(
  version: string,
  roomId: string,
  sessionId: string,
  rank: Partial<Record<'first_message_index' | 'forwarded_count' | 'is_verified', unknown>> = {},
): Record<string, unknown> {
  return {
    version,
    room_id: roomId,
    session_id: sessionId,
    first_message_index: 0,
    forwarded_count: 0,
    is_verified: false,
    session_data_json: '{"ciphertext":"c"}',
    ...rank,
  };
}

describe.each(STORAGE_BACKENDS)('lazy namespaces (key backup) on %s', (backend) => {
  it('are left out of the whole state and read by exact key prefix, LIKE wildcards taken literally', async () => {
    const db = await createTestDatabase(backend);
    const storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    try {
      const store = new SqlReplicaStore(storage.dataSource);
      const fixture = makeAccount({ seed: 'lazy', homes: 2 });
      const account = await store.hostAccount(fixture.document, { custody: 'self' });
      const [w] = writers(fixture);
      const version = '1-0a1b2c3d';
      // Rooms whose ids hold LIKE's wildcards and escape: a prefix must not match the others.
      const rooms = ['!a%:x', '!ab:x', '!a_:x', '!a\\:x', '!az:x'];
      const ops = [
        w!.make('room_keys.version.put', version, { algorithm: 'm.megolm_backup.v1', auth_data_json: '{}' }),
        ...rooms.map((room) =>
          w!.make('room_keys.key.put', roomKeyKey(version, room, 's'), keyBody(version, room, 's')),
        ),
        w!.make('room_keys.key.put', roomKeyKey('2-0a1b2c3d', '!a%:x', 's'), keyBody('2-0a1b2c3d', '!a%:x', 's')),
        w!.make('room_keys.key.delete', roomKeyKey(version, '!az:x', 's'), {}),
        w!.devicePut('D1'),
      ];
      expect((await store.applyOps(account, ops, fixture.homes[1]!.peerId)).accepted).toHaveLength(ops.length);

      const state = await store.state(account);
      expect(state.roomKeys).toEqual({});
      expect(state.roomKeyVersions).toEqual({});
      expect(Object.keys(state.devices)).toEqual(['D1']);

      expect(await store.stateRows(account, 'room_keys_version')).toEqual([{ key: version, value: ops[0]!.body }]);
      const ofVersion = await store.stateRows(account, 'room_keys_key', roomKeyPrefix(version));
      expect(ofVersion.map((r) => r.key).sort()).toEqual(rooms.map((room) => roomKeyKey(version, room, 's')).sort());
      expect(ofVersion.find((r) => r.key === roomKeyKey(version, '!az:x', 's'))?.value).toBeNull();
      for (const room of rooms) {
        expect(await store.stateRows(account, 'room_keys_key', roomKeyPrefix(version, room))).toEqual([
          { key: roomKeyKey(version, room, 's'), value: room === '!az:x' ? null : keyBody(version, room, 's') },
        ]);
      }
      expect(await store.stateRows(account, 'room_keys_key')).toHaveLength(rooms.length + 1);
    } finally {
      await storage.close();
      await db.dispose();
    }
  });

  it('keeps the better of two concurrent session keys, whatever order the homes ops arrive in', async () => {
    const fixture = makeAccount({ seed: 'lazy-rule', homes: 2 });
    const [a, b] = writers(fixture);
    const version = '1-0a1b2c3d';
    const key = roomKeyKey(version, '!r:x', 's');
    const made = a!.make('room_keys.version.put', version, { algorithm: 'm.megolm_backup.v1', auth_data_json: '{}' });
    b!.observe(made.lamport);
    // Concurrent uploads: B's worse key (a later first index) has the greater lamport, A's better one the lower.
    const better = a!.make('room_keys.key.put', key, keyBody(version, '!r:x', 's', { first_message_index: 2 }));
    b!.observe(better.lamport);
    const worse = b!.make('room_keys.key.put', key, keyBody(version, '!r:x', 's', { first_message_index: 5 }), {
      lamport: better.lamport + 1,
    });
    // Then A deletes the key (having seen both) and B, not having seen the deletion, uploads a verified key
    // before it: the deletion hides it. A last, worse key after the deletion is the one left.
    const verifiedBefore = b!.make('room_keys.key.put', key, keyBody(version, '!r:x', 's', { is_verified: true }));
    a!.observe(verifiedBefore.lamport);
    const deletion = a!.make('room_keys.key.delete', key, {});
    const after = a!.make('room_keys.key.put', key, keyBody(version, '!r:x', 's', { first_message_index: 9 }));
    const db = await createTestDatabase(backend);
    const storage = await openStorage({ databaseUrl: db.databaseUrl, dataDir: db.dataDir });
    try {
      const store = new SqlReplicaStore(storage.dataSource);
      const held = async (account: string) => (await store.stateRows(account, 'room_keys_key'))[0]?.value;
      // Each order of arrival on a fresh copy of the account (hosted, fed, checked, dropped).
      const orders: Array<{ name: string; ops: Op[][]; expected: Op }> = [
        { name: 'A first', ops: [[made, better], [worse]], expected: better },
        { name: 'B first', ops: [[worse], [made, better]], expected: better },
        { name: 'B then A in one batch', ops: [[worse, made, better]], expected: better },
        {
          name: 'with the deletion, A first',
          ops: [
            [made, better, deletion, after],
            [worse, verifiedBefore],
          ],
          expected: after,
        },
        {
          name: 'with the deletion, B first',
          ops: [[worse, verifiedBefore], [made, better, deletion], [after]],
          expected: after,
        },
      ];
      for (const order of orders) {
        const account = await store.hostAccount(fixture.document, { custody: 'self' });
        for (const batch of order.ops) await store.applyOps(account, batch, fixture.homes[1]!.peerId);
        expect(await held(account), order.name).toEqual(order.expected.body);
        // The summary kept batch by batch is the one of the rows, and the one computed afresh.
        const group = roomKeyPrefix(version);
        const fromRows = summaryOf(await store.stateRows(account, 'room_keys_key', group));
        expect(fromRows.count).toBe(1);
        expect(await store.stateSummary(account, 'room_keys_key', group), order.name).toEqual(fromRows);
        await storage.dataSource.query('DELETE FROM account_state_summary WHERE account = $1', [account]);
        expect(await store.stateSummary(account, 'room_keys_key', group), order.name).toEqual(fromRows);
        await storage.dataSource.query('DELETE FROM account WHERE server_name = $1', [account]);
      }
    } finally {
      await storage.close();
      await db.dispose();
    }
  });
});
