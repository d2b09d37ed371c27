// Rooms across two server processes over libp2p (TCP on 127.0.0.1), driven by matrix-js-sdk: alice hosted on
// S1 invites bob hosted on S2 (S2 finds nothing but S1's bootstrap address), bob joins from his client, both
// send, and both servers show every message in one order. Then S2 is stopped, alice sends, S1 is killed with
// SIGKILL before it could deliver, both come back, and bob gets every message S1 had accepted.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { createClient, Direction, EventType, MsgType, type MatrixClient } from 'matrix-js-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteRedisPrefix } from './support/convergence.js';
import { CliNode } from './support/cli-node.js';
import { ServerProcess } from './support/server-process.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';

interface Hosted {
  server: ServerProcess;
  dispose(): Promise<void>;
}

async function serverProcess(label: string, env: Record<string, string> = {}): Promise<Hosted> {
  const prefix = `rooms-federation-${label}-${process.pid}-${Date.now()}`;
  const scratch = await mkdtemp(path.join(os.tmpdir(), `polyhome-${label}-`));
  const database = await createTestPostgresDatabase();
  const server = await ServerProcess.create({
    name: label,
    dataDir: scratch,
    env: { DATABASE_URL: database.url, REDIS_URL, QUEUE_PREFIX: prefix, ...env },
  });
  await server.start();
  return {
    server,
    async dispose() {
      await server.kill('SIGKILL');
      await database.drop().catch(() => undefined);
      await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

/** Hosts `localpart` on a server and returns a matrix-js-sdk client logged in with its password. */
async function hostedClient(server: ServerProcess, localpart: string): Promise<MatrixClient> {
  const password = `${localpart} password 1`;
  const made = await server.admin('POST', '/admin/v1/accounts', { localpart, password });
  if (made.status !== 201) throw new Error(`account ${localpart}: ${made.status} ${JSON.stringify(made.body)}`);
  const baseUrl = `http://127.0.0.1:${server.port}`;
  const client = createClient({ baseUrl });
  const login = await client.loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: String(made.body['user_id']) },
    password,
  });
  return createClient({ baseUrl, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id });
}

async function messages(client: MatrixClient, roomId: string): Promise<string[]> {
  const bodies: string[] = [];
  let from: string | null = null;
  for (let pages = 0; pages < 100; pages++) {
    const page = await client.createMessagesRequest(roomId, from, 100, Direction.Backward);
    for (const event of page.chunk) if (event.type === 'm.room.message') bodies.push(String(event.content['body']));
    if (page.end === undefined || page.chunk.length === 0) break;
    from = page.end;
  }
  return bodies.reverse();
}

describe('rooms between two server processes and a laptop', () => {
  let s1: Hosted;
  let s2: Hosted;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let roomId: string;
  let laptop: CliNode | undefined;
  let laptopDir: string | undefined;

  beforeAll(async () => {
    s1 = await serverProcess('s1');
    s2 = await serverProcess('s2', { P2P_BOOTSTRAP: s1.server.addr });
    alice = await hostedClient(s1.server, 'alice');
    bob = await hostedClient(s2.server, 'bob');
  }, 240_000);

  afterAll(async () => {
    await laptop?.stop('SIGKILL');
    await s1?.dispose();
    await s2?.dispose();
    if (laptopDir !== undefined) await rm(laptopDir, { recursive: true, force: true });
  }, 60_000);

  it('alice invites bob across servers; bob joins; 2 × 30 messages in one order on both servers', async () => {
    ({ room_id: roomId } = await alice.createRoom({ name: 'across', preset: 'private_chat' as never }));
    // bob's document reaches S1 through the DHT (S2 announces its accounts): the invite succeeds once it has.
    await waitFor(
      async () => {
        try {
          await alice.invite(roomId, bob.getUserId()!);
          return true;
        } catch {
          return false;
        }
      },
      'the invite to reach bob on S2',
      90_000,
      1_000,
    );
    await waitFor(
      async () => {
        try {
          await bob.joinRoom(roomId);
          return true;
        } catch {
          return false;
        }
      },
      'bob to join on S2',
      60_000,
      500,
    );
    const send = async (who: MatrixClient, name: string): Promise<void> => {
      for (let i = 0; i < 30; i++) {
        await who.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body: `${name} ${i}` });
      }
    };
    await Promise.all([send(alice, 'alice'), send(bob, 'bob')]);
    let seen: string[][] = [];
    await waitFor(
      async () => {
        seen = await Promise.all([messages(alice, roomId), messages(bob, roomId)]);
        return seen[0]!.length === 60 && seen[0]!.join('\n') === seen[1]!.join('\n');
      },
      'the same 60 messages in the same order on S1 and S2',
      90_000,
      500,
    );
    for (const name of ['alice', 'bob']) {
      const own = seen[0]!.filter((b) => b.startsWith(`${name} `));
      expect(own).toEqual(Array.from({ length: 30 }, (_, i) => `${name} ${i}`));
    }
  }, 300_000);

  it('S2 away, S1 killed with SIGKILL before delivering: after both restart, bob gets every accepted message', async () => {
    await s2.server.kill('SIGKILL');
    for (let i = 0; i < 40; i++) {
      await alice.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body: `while away ${i}` });
    }
    await s1.server.kill('SIGKILL');
    await s1.server.start();
    await s2.server.start();
    await waitFor(
      async () => (await messages(bob, roomId).catch(() => [])).filter((b) => b.startsWith('while away')).length === 40,
      'bob to get the 40 messages S1 had accepted',
      120_000,
      1_000,
    );
    const [onS1, onS2] = await Promise.all([messages(alice, roomId), messages(bob, roomId)]);
    expect(onS2).toEqual(onS1);
    expect(onS2.filter((b) => b.startsWith('while away'))).toEqual(
      Array.from({ length: 40 }, (_, i) => `while away ${i}`),
    );
  }, 300_000);

  it("dave on a laptop with S1 as companion talks with bob; the laptop away gets bob's messages from S1 alone", async () => {
    laptopDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-rooms-laptop-'));
    laptop = new CliNode('laptop', laptopDir);
    const made = await laptop.json<{ user_id: string }>('init', '--localpart', 'dave', '--name', 'laptop');
    await laptop.start('--bootstrap', s1.server.addr);
    await laptop.json('home', 'add', s1.server.addr, '--role', 'server', '--name', 'companion');
    const loginToken = async (): Promise<string> =>
      (await laptop!.json<{ login_token: string }>('login-token')).login_token;
    const login = async (baseUrl: string, token: string): Promise<MatrixClient> => {
      const answer = await createClient({ baseUrl }).loginRequest({ type: 'm.login.token', token });
      return createClient({
        baseUrl,
        userId: answer.user_id,
        accessToken: answer.access_token,
        deviceId: answer.device_id,
      });
    };
    let dave = await login(laptop.matrixUrl, await loginToken());
    expect(dave.getUserId()).toBe(made.user_id);
    const { room_id: room } = await dave.createRoom({ name: 'laptop room', preset: 'private_chat' as never });
    let refusal = '';
    await waitFor(
      async () => {
        try {
          await dave.invite(room, bob.getUserId()!);
          return true;
        } catch (err) {
          refusal = (err as Error).message;
          return false;
        }
      },
      'the invite from the laptop to reach bob on S2',
      90_000,
      1_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message} (last refusal: ${refusal})\n${laptop!.tail()}`);
    });
    await waitFor(
      async () => {
        try {
          await bob.joinRoom(room);
          return true;
        } catch {
          return false;
        }
      },
      "bob to join the laptop's room",
      60_000,
      500,
    );
    for (let i = 0; i < 10; i++) {
      await dave.sendEvent(room, EventType.RoomMessage, { msgtype: MsgType.Text, body: `dave ${i}` });
      await bob.sendEvent(room, EventType.RoomMessage, { msgtype: MsgType.Text, body: `bob ${i}` });
    }
    // dave's view on his companion S1 too.
    const token = await s1.server.admin(
      'POST',
      `/admin/v1/accounts/${encodeURIComponent(made.user_id)}/login-token`,
      {},
    );
    const daveOnS1 = await login(`http://127.0.0.1:${s1.server.port}`, String(token.body['login_token']));
    let views: string[][] = [];
    await waitFor(
      async () => {
        views = await Promise.all([messages(dave, room), messages(bob, room), messages(daveOnS1, room)]);
        return views[0]!.length === 20 && views.every((v) => v.join('\n') === views[0]!.join('\n'));
      },
      'the same 20 messages on the laptop, S2 and S1',
      90_000,
      500,
    );

    // The laptop stops; bob sends; S2 goes away; the laptop comes back and gets them from S1.
    expect(await laptop.stop()).toBe(0);
    for (let i = 0; i < 50; i++) {
      await bob.sendEvent(room, EventType.RoomMessage, { msgtype: MsgType.Text, body: `later ${i}` });
    }
    await waitFor(
      async () => (await messages(daveOnS1, room)).filter((b) => b.startsWith('later')).length === 50,
      "S1 to hold bob's 50 messages",
      90_000,
      500,
    );
    await s2.server.kill('SIGKILL');
    await laptop.start('--bootstrap', s1.server.addr);
    dave = await login(laptop.matrixUrl, await loginToken());
    await waitFor(
      async () => (await messages(dave, room).catch(() => [])).filter((b) => b.startsWith('later')).length === 50,
      'the laptop to get the 50 messages from S1 with S2 down',
      120_000,
      1_000,
    );
    expect(await messages(dave, room)).toEqual(await messages(daveOnS1, room));
    await s2.server.start();
  }, 400_000);
});
