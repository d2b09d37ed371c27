// The whole end-to-end encryption story across homes and accounts, with matrix-js-sdk's Rust crypto and real
// processes: alice's account lives on her laptop (a client home) with S1 as its companion server; bob is on
// S2. alice's device on S1 sets up cross-signing, secret storage (a recovery key) and key backup; her laptop's
// device and it verify each other with SAS over to-device messages. alice invites bob to an encrypted room;
// each sends 20 messages and every device (alice's two, bob's) decrypts all 40. Then S3 is added to alice's
// account: a third device logged in there, given only the recovery key, reads the backup key from secret
// storage, restores the room keys, pages back through the room with matrix-js-sdk's scrollback (S3 takes the
// room in and backfills it) and decrypts the whole history.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { createClient, Direction, Method, type MatrixClient } from 'matrix-js-sdk';
import {
  CryptoEvent,
  VerificationPhase,
  type CryptoCallbacks,
  type GeneratedSecretStorageKey,
  type VerificationRequest,
} from 'matrix-js-sdk/lib/crypto-api/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from './support/cli-node.js';
import {
  confirmSas,
  decryptedBodies,
  eventually,
  serverProcess,
  watchClients,
  type ClientWatch,
  type Hosted,
} from './support/e2ee.js';
import type { ServerProcess } from './support/server-process.js';
/** Messages each user sends. */
const MESSAGES = 20;

/** A matrix-js-sdk client with Rust crypto, logged in with a login token at `baseUrl`. */
async function tokenClient(
  watch: ClientWatch,
  baseUrl: string,
  token: string,
  cryptoCallbacks?: CryptoCallbacks,
): Promise<MatrixClient> {
  const login = await createClient({ baseUrl }).loginRequest({ type: 'm.login.token', token });
  const client = createClient({
    baseUrl,
    userId: login.user_id,
    accessToken: login.access_token,
    deviceId: login.device_id,
    ...(cryptoCallbacks === undefined ? {} : { cryptoCallbacks }),
    ...watch.options(),
  });
  await client.initRustCrypto({ useIndexedDB: false });
  return client;
}

/** A login token for `userId` from a server's admin API. */
async function serverToken(server: ServerProcess, userId: string): Promise<string> {
  const made = await server.admin('POST', `/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`, {});
  if (made.status !== 201) throw new Error(`login token on ${server.init.name}: ${JSON.stringify(made.body)}`);
  return String(made.body['login_token']);
}

/** Waits until `client` decrypts every body of `expected` (any order), with no decryption failure left. */
async function decryptsAll(client: MatrixClient, roomId: string, expected: string[], who: string): Promise<void> {
  let seen = { bodies: [] as string[], failed: 0 };
  await waitFor(
    async () => {
      seen = await decryptedBodies(client, roomId);
      return seen.failed === 0 && expected.every((b) => seen.bodies.includes(b));
    },
    `${who} to decrypt all ${expected.length} messages`,
    150_000,
    500,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${seen.bodies.length} decrypted, ${seen.failed} failed`);
  });
}

// Both storage pairs: S1 on PostgreSQL + BullMQ with S2 and S3 on the embedded default, then the other way round.
describe.each([
  { s1: 'postgres + bullmq', others: 'pglite + in-process queue', s1Postgres: true },
  { s1: 'pglite + in-process queue', others: 'postgres + bullmq', s1Postgres: false },
])(
  'end-to-end encryption across a laptop, three servers and two accounts (Rust crypto); S1 on $s1, S2 and S3 on $others',
  ({ s1Postgres }) => {
    let s1: Hosted;
    let s2: Hosted;
    let s3: Hosted | undefined;
    let laptop: CliNode;
    let laptopDir: string;
    let userId: string;
    const clients: MatrixClient[] = [];
    let onS1: MatrixClient;
    let onLaptop: MatrixClient;
    let bob: MatrixClient;
    let recoveryKey: GeneratedSecretStorageKey | undefined;
    const watch = watchClients();
    /** What a client asks of its user for secret storage: the recovery key, once there is one. */
    const typedRecoveryKey: CryptoCallbacks = {
      getSecretStorageKey: async ({ keys }) => {
        const keyId = Object.keys(keys)[0];
        return keyId === undefined || recoveryKey === undefined ? null : [keyId, recoveryKey.privateKey];
      },
    };

    beforeAll(async () => {
      s1 = await serverProcess('scn-s1', s1Postgres);
      s2 = await serverProcess('scn-s2', !s1Postgres, { P2P_BOOTSTRAP: s1.server.addr });
      laptopDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-scn-laptop-'));
      laptop = new CliNode('laptop', laptopDir);
      userId = (await laptop.json<{ user_id: string }>('init', '--localpart', 'alice', '--name', 'laptop')).user_id;
      await laptop.start('--bootstrap', s1.server.addr);
      await laptop.json('home', 'add', s1.server.addr, '--role', 'server', '--name', 'companion');
      const bobPassword = 'bob password 1';
      const made = await s2.server.admin('POST', '/admin/v1/accounts', { localpart: 'bob', password: bobPassword });
      expect(made.status).toBe(201);
      const bobBase = `http://127.0.0.1:${s2.server.port}`;
      const bobLogin = await createClient({ baseUrl: bobBase }).loginRequest({
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: String(made.body['user_id']) },
        password: bobPassword,
      });
      bob = createClient({
        ...watch.options(),
        baseUrl: bobBase,
        userId: bobLogin.user_id,
        accessToken: bobLogin.access_token,
        deviceId: bobLogin.device_id,
      });
      await bob.initRustCrypto({ useIndexedDB: false });
      onS1 = await tokenClient(
        watch,
        `http://127.0.0.1:${s1.server.port}`,
        await serverToken(s1.server, userId),
        typedRecoveryKey,
      );
      const laptopToken = (await laptop.json<{ login_token: string }>('login-token')).login_token;
      onLaptop = await tokenClient(watch, laptop.matrixUrl, laptopToken);
      clients.push(bob, onS1, onLaptop);
      await Promise.all(clients.map(async (c) => c.startClient({ initialSyncLimit: 100 })));
    }, 300_000);

    afterAll(async () => {
      for (const client of clients) client.stopClient();
      await laptop?.stop('SIGKILL');
      await s3?.dispose();
      await s1?.dispose();
      await s2?.dispose();
      if (laptopDir !== undefined) await rm(laptopDir, { recursive: true, force: true });
    }, 60_000);

    it('cross-signing, secret storage and backup on S1; SAS with the laptop; 40 messages decrypted everywhere; on S3 the keys restored and the history paged back and decrypted', async () => {
      // 1. alice's device on S1 sets up cross-signing (the account's first keys: no user-interactive auth), secret
      // storage with a recovery key (account data) holding the cross-signing keys, and key backup, its key in
      // secret storage too.
      const cryptoS1 = onS1.getCrypto()!;
      await cryptoS1.bootstrapCrossSigning({ authUploadDeviceSigningKeys: async (makeRequest) => makeRequest(null) });
      const made = await cryptoS1.createRecoveryKeyFromPassphrase();
      recoveryKey = made;
      await cryptoS1.bootstrapSecretStorage({
        createSecretStorageKey: async () => made,
        setupNewKeyBackup: true,
      });
      expect(await cryptoS1.isSecretStorageReady()).toBe(true);
      const version = (await cryptoS1.getActiveSessionBackupVersion())!;
      expect(version).toBeTruthy();

      // 2. Her device on the laptop and the one on S1 verify each other with SAS, over to-device messages.
      const deviceS1 = onS1.getDeviceId()!;
      const deviceLaptop = onLaptop.getDeviceId()!;
      for (const [client, other] of [
        [onS1, deviceLaptop],
        [onLaptop, deviceS1],
      ] as const) {
        await waitFor(
          async () => (await client.getCrypto()!.getUserDeviceInfo([userId], true)).get(userId)?.has(other) === true,
          `device ${other} known to ${client.getDeviceId()}`,
          90_000,
        );
      }
      const received = new Promise<VerificationRequest>((resolve) =>
        onLaptop.on(CryptoEvent.VerificationRequestReceived, resolve),
      );
      const outgoing = await cryptoS1.requestDeviceVerification(userId, deviceLaptop);
      const incoming = await received;
      await incoming.accept();
      await waitFor(() => outgoing.phase === VerificationPhase.Ready, 'the request ready on S1', 60_000);
      const verifierS1 = await outgoing.startVerification('m.sas.v1');
      await waitFor(() => incoming.verifier !== undefined, "the laptop's verifier", 60_000);
      const [emojiS1, emojiLaptop] = await Promise.all([confirmSas(verifierS1), confirmSas(incoming.verifier!)]);
      expect(emojiS1).toHaveLength(7);
      expect(emojiLaptop).toEqual(emojiS1);
      expect((await cryptoS1.getDeviceVerificationStatus(userId, deviceLaptop))?.localVerified).toBe(true);
      expect((await onLaptop.getCrypto()!.getDeviceVerificationStatus(userId, deviceS1))?.localVerified).toBe(true);

      // 3. An encrypted room with bob; 20 messages each; every device decrypts all 40.
      const { room_id: roomId } = await onS1.createRoom({
        name: 'the whole story',
        preset: 'private_chat' as never,
        initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
      });
      await eventually(() => onS1.invite(roomId, bob.getUserId()!), 'the invite to reach bob on S2', 120_000);
      await eventually(() => bob.joinRoom(roomId), 'bob to join on S2', 90_000);
      for (const client of clients) {
        await waitFor(
          async () =>
            client.getRoom(roomId)?.getMember(bob.getUserId()!)?.membership === 'join' &&
            client.getRoom(roomId)?.getMember(userId)?.membership === 'join' &&
            (await client.getCrypto()!.isEncryptionEnabledInRoom(roomId)),
          `${client.getUserId()}/${client.getDeviceId()} to see both joined in an encrypted room`,
          120_000,
        );
      }
      for (let i = 0; i < MESSAGES; i++) {
        await onS1.sendTextMessage(roomId, `alice ${i}`);
        await bob.sendTextMessage(roomId, `bob ${i}`);
      }
      const expected = Array.from({ length: MESSAGES }, (_, i) => [`alice ${i}`, `bob ${i}`]).flat();
      await decryptsAll(onS1, roomId, expected, "alice's device on S1");
      await decryptsAll(onLaptop, roomId, expected, "alice's device on her laptop");
      await decryptsAll(bob, roomId, expected, "bob's device on S2");
      // Every session is in the backup before the third device looks.
      await waitFor(
        async () => {
          const info = await onS1.http.authedRequest<{ count: number }>(Method.Get, '/room_keys/version');
          return info.count >= 2;
        },
        "alice's and bob's sessions in the backup",
        120_000,
      );

      // 4. S3 joins alice's account. A device there, given only the recovery key (as a user types it), reads the
      // backup key from secret storage (replicated account data), restores the room keys, pages back through the
      // room (S3 took it in from alice's other homes and backfills the history on demand) and decrypts all 40.
      s3 = await serverProcess('scn-s3', !s1Postgres, { P2P_BOOTSTRAP: s1.server.addr });
      await laptop.json('home', 'add', s3.server.addr, '--role', 'server', '--name', 'new provider');
      const third = await tokenClient(
        watch,
        `http://127.0.0.1:${s3.server.port}`,
        await serverToken(s3.server, userId),
        typedRecoveryKey,
      );
      clients.push(third);
      const cryptoS3 = third.getCrypto()!;
      await eventually(
        async () => {
          if (!(await cryptoS3.isSecretStorageReady())) throw new Error('secret storage not on S3 yet');
          await cryptoS3.loadSessionBackupPrivateKeyFromSecretStorage();
          const restored = await cryptoS3.restoreKeyBackup();
          if (restored.imported < 2) throw new Error(`${restored.imported} of ${restored.total} keys imported`);
        },
        'the backup restored on S3 with the key from secret storage',
        120_000,
      );
      expect(await cryptoS3.getSessionBackupPrivateKey()).toEqual(await cryptoS1.getSessionBackupPrivateKey());
      await third.startClient({ initialSyncLimit: 10 });
      await waitFor(() => third.getRoom(roomId)?.getMyMembership() === 'join', 'the room on S3', 120_000, 500);
      let scrolled = 0;
      let scrollError = 'none';
      await waitFor(
        async () => {
          const room = third.getRoom(roomId)!;
          const seen = await decryptedBodies(third, roomId);
          if (seen.failed === 0 && expected.every((b) => seen.bodies.includes(b))) return true;
          // matrix-js-sdk's own scrollback (/messages from the timeline's prev_batch), as a user scrolling up.
          if (room.getLiveTimeline().getPaginationToken(Direction.Backward) !== null) {
            // A failed page is scrolled again, as a user would; the last error is reported if all 40 never come.
            await third.scrollback(room, 30).then(
              () => (scrolled += 1),
              (err: unknown) => (scrollError = String(err)),
            );
          }
          return false;
        },
        'the device on S3 to page back and decrypt all 40 messages',
        150_000,
        1_000,
      ).catch(async (err: Error) => {
        const seen = await decryptedBodies(third, roomId);
        const token = third.getRoom(roomId)?.getLiveTimeline().getPaginationToken(Direction.Backward);
        const missing = expected.filter((b) => !seen.bodies.includes(b));
        const events = third.getRoom(roomId)?.getLiveTimeline().getEvents() ?? [];
        const shape = events.map(
          (e) => `${e.getType()}${e.getType() === 'm.room.message' ? `:${String(e.getContent()['body'])}` : ''}`,
        );
        throw new Error(
          `${err.message}: missing ${missing.join(', ')}; live timeline ${shape.join(' ')}; ${seen.bodies.length} decrypted, ${seen.failed} failed, ${scrolled} scrollbacks, token ${String(token)}, last scrollback error: ${scrollError}`,
        );
      });
      expect(scrolled).toBeGreaterThan(0);
      // Nothing starved: no answer of 500 or more to any client, and no SDK gave up on a queue or a retry.
      expect(watch.broken).toEqual([]);
      expect(watch.gaveUp).toEqual([]);
      expect(watch.lines).toBeGreaterThan(0);
    }, 900_000);
  },
);
