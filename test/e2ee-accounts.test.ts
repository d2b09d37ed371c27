// End-to-end encryption between two accounts on two server processes, with matrix-js-sdk's Rust crypto: alice
// hosted on S1 (PostgreSQL + BullMQ) and bob on S2 (the embedded default: PGlite and the in-process queue, S2
// finding S1 through its bootstrap address). alice makes an encrypted room and invites bob; bob joins. Each
// sends 20 messages, and each client decrypts all 40: its client fetched the other's device keys over
// federation (/keys/query), claimed a one-time key of the other's device (/keys/claim), and sent it the room
// key as an Olm to-device message, delivered by the other server to its device's /sync.
import { waitFor } from '@polyhome/p2p/testing';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decryptedBodies, eventually, serverProcess, type Hosted } from './support/e2ee.js';
import type { ServerProcess } from './support/server-process.js';
/** Messages each user sends. */
const MESSAGES = 20;

/** Hosts `localpart` and returns a matrix-js-sdk client with Rust crypto, logged in with its password. */
async function cryptoClient(server: ServerProcess, localpart: string): Promise<MatrixClient> {
  const password = `${localpart} password 1`;
  const made = await server.admin('POST', '/admin/v1/accounts', { localpart, password });
  if (made.status !== 201) throw new Error(`account ${localpart}: ${made.status} ${JSON.stringify(made.body)}`);
  const baseUrl = `http://127.0.0.1:${server.port}`;
  const login = await createClient({ baseUrl }).loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: String(made.body['user_id']) },
    password,
  });
  const client = createClient({
    baseUrl,
    userId: login.user_id,
    accessToken: login.access_token,
    deviceId: login.device_id,
  });
  await client.initRustCrypto({ useIndexedDB: false });
  return client;
}

describe('end-to-end encryption between accounts on two servers (Rust crypto)', () => {
  let s1: Hosted;
  let s2: Hosted;
  let alice: MatrixClient;
  let bob: MatrixClient;

  beforeAll(async () => {
    s1 = await serverProcess('e2ee-s1', true);
    s2 = await serverProcess('e2ee-s2', false, { P2P_BOOTSTRAP: s1.server.addr });
    [alice, bob] = await Promise.all([cryptoClient(s1.server, 'alice'), cryptoClient(s2.server, 'bob')]);
    await Promise.all([alice.startClient({ initialSyncLimit: 50 }), bob.startClient({ initialSyncLimit: 50 })]);
  }, 240_000);

  afterAll(async () => {
    alice?.stopClient();
    bob?.stopClient();
    await s1?.dispose();
    await s2?.dispose();
  }, 60_000);

  it(`alice and bob each send ${MESSAGES} encrypted messages; both decrypt all ${2 * MESSAGES}`, async () => {
    const { room_id: roomId } = await alice.createRoom({
      name: 'encrypted across',
      preset: 'private_chat' as never,
      initial_state: [{ type: 'm.room.encryption', state_key: '', content: { algorithm: 'm.megolm.v1.aes-sha2' } }],
    });
    // bob's document reaches S1 through the DHT (S2 announces its accounts): the invite succeeds once it has.
    await eventually(() => alice.invite(roomId, bob.getUserId()!), 'the invite to reach bob on S2', 120_000);
    await eventually(() => bob.joinRoom(roomId), 'bob to join on S2', 90_000);
    // Each client sees the other joined before sending: its room key then goes to the other's device too.
    for (const [client, other] of [
      [alice, bob],
      [bob, alice],
    ] as const) {
      await waitFor(
        async () => client.getRoom(roomId)?.getMember(other.getUserId()!)?.membership === 'join',
        `${client.getUserId()} to see ${other.getUserId()} joined`,
        90_000,
      );
      await waitFor(
        async () => (await client.getCrypto()!.isEncryptionEnabledInRoom(roomId)) === true,
        'the room known as encrypted',
        60_000,
      );
    }
    for (let i = 0; i < MESSAGES; i++) {
      await alice.sendTextMessage(roomId, `alice ${i}`);
      await bob.sendTextMessage(roomId, `bob ${i}`);
    }
    const expected = Array.from({ length: MESSAGES }, (_, i) => [`alice ${i}`, `bob ${i}`]).flat();
    for (const [name, client] of [
      ['alice', alice],
      ['bob', bob],
    ] as const) {
      let seen = { bodies: [] as string[], failed: 0 };
      await waitFor(
        async () => {
          seen = await decryptedBodies(client, roomId);
          return seen.bodies.length === expected.length;
        },
        `${name}'s client to decrypt all ${expected.length} messages`,
        120_000,
        500,
      ).catch((err: Error) => {
        throw new Error(`${err.message}: ${seen.bodies.length} decrypted, ${seen.failed} failed`);
      });
      expect(seen.failed, `${name}'s undecryptable events`).toBe(0);
      expect([...seen.bodies].sort()).toEqual([...expected].sort());
    }
  }, 600_000);
});
