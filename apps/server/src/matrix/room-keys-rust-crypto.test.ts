// matrix-js-sdk's Rust crypto backs its room keys up on one home of an account (`resetKeyBackup`, then an
// encrypted message); a new device logged in on the account's other home restores them from there.
import { waitFor } from '@polyhome/p2p/testing';
import { createClient, Method, type MatrixClient } from 'matrix-js-sdk';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BACKENDS } from '../testing/server-harness.js';
import { startTwoHomes, type TwoHomes } from '../testing/two-homes.js';

const ADMIN_TOKEN = 'room-keys-rust-crypto-admin-token';

interface VersionInfo {
  version: string;
  count: number;
  etag: string;
  algorithm: string;
}

describe.each(SERVER_BACKENDS)('Rust crypto key backup across two homes on $name', (backend) => {
  let homes: TwoHomes;
  let alice: MatrixClient;
  let restorer: MatrixClient | undefined;

  beforeAll(async () => {
    homes = await startTwoHomes(backend, ADMIN_TOKEN);
    alice = homes.clientA;
    await alice.initRustCrypto({ useIndexedDB: false });
  }, 60_000);
  afterAll(async () => {
    alice?.stopClient();
    restorer?.stopClient();
    await homes?.close();
  });

  const versionOn = async (client: MatrixClient): Promise<VersionInfo | null> =>
    client.http.authedRequest<VersionInfo>(Method.Get, '/room_keys/version').catch(() => null);

  it('backs a megolm session up on A; a new device on B restores it from B', async () => {
    const { userId, clientB } = homes;
    await alice.startClient();
    const crypto = alice.getCrypto()!;
    await crypto.resetKeyBackup();
    const version = (await crypto.getActiveSessionBackupVersion())!;
    expect(version).toMatch(/^1-[0-9a-f]{8}$/);

    const { room_id: roomId } = await alice.createRoom({
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    await waitFor(async () => await crypto.isEncryptionEnabledInRoom(roomId), 'the room known as encrypted', 60_000);
    const { event_id: eventId } = await alice.sendTextMessage(roomId, 'kept in the backup');
    // The Rust backup loop uploads the new session on its own schedule; B serves it once replicated.
    // Polled once a second: the server's rate limit would answer a tighter loop 429 on a slow machine.
    let onA: VersionInfo | null = null;
    let onB: VersionInfo | null = null;
    await waitFor(
      async () => {
        [onA, onB] = await Promise.all([versionOn(alice), versionOn(clientB)]);
        return onB !== null && onB.count >= 1 && JSON.stringify(onB) === JSON.stringify(onA);
      },
      'the session backed up, the same on A and B',
      150_000,
      1_000,
    );
    expect(onB).toEqual(onA);
    expect(onB).toMatchObject({ version, algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2' });

    // A second device of the account, logged in on B, with the backup key (as 4S or a recovery key would give it).
    const token = await request(homes.b.app.getHttpServer())
      .post(`/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .expect(201);
    const login = await createClient({ baseUrl: homes.urlB }).loginRequest({
      type: 'm.login.token',
      token: token.body.login_token,
    });
    restorer = createClient({
      baseUrl: homes.urlB,
      userId,
      accessToken: login.access_token,
      deviceId: login.device_id,
    });
    await restorer.initRustCrypto({ useIndexedDB: false });
    const backupKey = (await crypto.getSessionBackupPrivateKey())!;
    await restorer.getCrypto()!.storeSessionBackupPrivateKey(backupKey, version);
    const restored = await restorer.getCrypto()!.restoreKeyBackup();
    expect(restored.imported).toBeGreaterThanOrEqual(1);

    // The restored session decrypts the message on B.
    await restorer.startClient();
    await waitFor(
      async () => {
        const event = restorer!.getRoom(roomId)?.findEventById(eventId);
        if (event === undefined) return false;
        await restorer!.decryptEventIfNeeded(event);
        return event.getContent()['body'] === 'kept in the backup';
      },
      'the message decrypted on B',
      120_000,
    );
  }, 360_000);
});
