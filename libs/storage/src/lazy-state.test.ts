import { roomKeyKey, roomKeyPrefix } from '@polyhome/sync';
import { makeAccount, writers } from '@polyhome/sync/testing';
import { describe, expect, it } from 'vitest';
import { openStorage } from './data-source.js';
import { SqlReplicaStore } from './replica-store.js';
import { createTestDatabase, STORAGE_BACKENDS } from './testing/backends.js';

function keyBody(version: string, roomId: string, sessionId: string): Record<string, unknown> {
  return {
    version,
    room_id: roomId,
    session_id: sessionId,
    first_message_index: 0,
    forwarded_count: 0,
    is_verified: false,
    session_data_json: '{"ciphertext":"c"}',
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
});
