// Rooms across two server processes over libp2p (TCP on 127.0.0.1), driven by matrix-js-sdk: alice hosted on
// S1 invites bob hosted on S2 (S2 finds nothing but S1's bootstrap address), bob joins from his client, both
// send, and both servers show every message in one order. Then S2 is stopped, alice sends, S1 is killed with
// SIGKILL before it could deliver, both come back, and bob gets every message S1 had accepted. (An account of a
// laptop with S1 as companion, at the spec's counts on both storage pairs: rooms-scale.test.ts.)
import { waitFor } from '@polyhome/p2p/testing';
import { EventType, MsgType, type MatrixClient } from 'matrix-js-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, serverProcess, type Hosted } from './support/e2ee.js';
import { hostedClient, messages } from './support/rooms.js';

describe('rooms between two server processes', () => {
  let s1: Hosted;
  let s2: Hosted;
  let alice: MatrixClient;
  let bob: MatrixClient;
  let roomId: string;

  beforeAll(async () => {
    s1 = await serverProcess('s1', true);
    s2 = await serverProcess('s2', true, { P2P_BOOTSTRAP: s1.server.addr });
    alice = await hostedClient(s1.server, 'alice');
    bob = await hostedClient(s2.server, 'bob');
  }, 240_000);

  afterAll(async () => {
    await s1?.dispose();
    await s2?.dispose();
  }, 60_000);

  it('alice invites bob across servers; bob joins; 2 × 30 messages in one order on both servers', async () => {
    ({ room_id: roomId } = await alice.createRoom({ name: 'across', preset: 'private_chat' as never }));
    // bob's document reaches S1 through the DHT (S2 announces its accounts): the invite succeeds once it has.
    await eventually(() => alice.invite(roomId, bob.getUserId()!), 'the invite to reach bob on S2', 90_000);
    await eventually(() => bob.joinRoom(roomId), 'bob to join on S2', 60_000);
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
});
