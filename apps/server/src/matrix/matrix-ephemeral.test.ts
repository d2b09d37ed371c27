// Typing, receipts, read markers, unread counts and presence through the Matrix client API on both backend
// pairs, driven by matrix-js-sdk: two accounts hosted on one server share a room; each client sees the other's
// typing and receipts (a private receipt only its owner), a /sync long-poll wakes on typing, read markers land
// as room account data, unread counts follow the receipts, and presence is the user's own. The home's EDU seams
// (local EDUs out, received EDUs in) are checked on the same running home.
import type { AddressInfo } from 'node:net';
import {
  ClientEvent,
  createClient,
  Method,
  MsgType,
  NotificationCountType,
  ReceiptType,
  RoomEvent,
  RoomMemberEvent,
  type MatrixClient,
  type MatrixEvent,
  type RoomMember,
} from 'matrix-js-sdk';
import type { LocalEdu } from '@polyhome/home';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P2pService } from '../p2p/p2p.service.js';
import { hostedUser, refusal, startUntilPrepared } from '../testing/matrix-user.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'matrix-ephemeral-admin-token';
const PASSWORD = 'correct horse battery staple';

interface SyncJson {
  next_batch: string;
  rooms: {
    join: Record<
      string,
      {
        ephemeral: { events: Array<{ type: string; content: Record<string, unknown> }> };
        account_data: { events: Array<{ type: string; content: Record<string, unknown> }> };
        unread_notifications: { notification_count: number; highlight_count: number };
      }
    >;
  };
  presence: { events: Array<{ type: string; sender: string; content: Record<string, unknown> }> };
}

describe.each(SERVER_BACKENDS)('Matrix typing, receipts and presence on $name', (backend) => {
  let server: TestServer;
  let baseUrl: string;
  const users: Record<'alice' | 'bob', { userId: string; serverName: string; client: MatrixClient }> = {} as never;
  let roomId: string;
  const edus: LocalEdu[] = [];

  async function account(localpart: 'alice' | 'bob'): Promise<void> {
    const user = await hostedUser(server, ADMIN_TOKEN, localpart, PASSWORD);
    const client = createClient({
      baseUrl,
      userId: user.userId,
      accessToken: user.accessToken,
      deviceId: user.deviceId,
    });
    users[localpart] = { userId: user.userId, serverName: user.serverName, client };
  }

  /** PUT /rooms/{roomId}/typing/{userId} as `who`, with any body. */
  const putTyping = (who: MatrixClient, userId: string, body: Record<string, unknown>) =>
    who.http.authedRequest(
      Method.Put,
      `/rooms/${encodeURIComponent(roomId)}/typing/${encodeURIComponent(userId)}`,
      undefined,
      body,
    );

  const sync = (who: MatrixClient, query: Record<string, string> = {}): Promise<SyncJson> =>
    who.http.authedRequest<SyncJson>(Method.Get, '/sync', query);
  const ephemeral = () => {
    const port = server.app.get(P2pService).home.ephemeral;
    if (port === undefined) throw new Error('the server home has no ephemeral port');
    return port;
  };

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    await server.app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(server.app.getHttpServer().address() as AddressInfo).port}`;
    await account('alice');
    await account('bob');
    ephemeral().onLocalEdu((edu) => edus.push(edu));
    const { alice, bob } = users;
    roomId = (await alice.client.createRoom({ preset: 'private_chat' as never, name: 'Porch' })).room_id;
    await alice.client.invite(roomId, bob.userId);
    await bob.client.joinRoom(roomId);
    expect(await startUntilPrepared(alice.client, 10)).toEqual([]);
    expect(await startUntilPrepared(bob.client, 10)).toEqual([]);
  }, 90_000);
  afterAll(async () => {
    for (const u of Object.values(users)) u.client.stopClient();
    await server?.close();
  });

  it("shows each client the other's typing, and a /sync long-poll wakes on it", async () => {
    const { alice, bob } = users;
    const typing = (who: MatrixClient, userId: string, value: boolean) =>
      new Promise<void>((resolve) => {
        const listener = (_e: MatrixEvent, member: RoomMember): void => {
          if (member.userId === userId && member.roomId === roomId && member.typing === value) {
            who.off(RoomMemberEvent.Typing, listener);
            resolve();
          }
        };
        who.on(RoomMemberEvent.Typing, listener);
      });
    const bobSees = typing(bob.client, alice.userId, true);
    await alice.client.sendTyping(roomId, true, 20_000);
    await bobSees;
    const aliceSees = typing(alice.client, bob.userId, true);
    await bob.client.sendTyping(roomId, true, 20_000);
    await aliceSees;
    const bobSeesStop = typing(bob.client, alice.userId, false);
    await alice.client.sendTyping(roomId, false, 0);
    await bobSeesStop;

    const aliceSeesStop = typing(alice.client, bob.userId, false);
    await bob.client.sendTyping(roomId, false, 0);
    await aliceSeesStop;

    // A long-poll (30 s) started before the change answers with it: were it not woken, it would answer empty.
    const start = await sync(alice.client);
    const polled = sync(alice.client, { since: start.next_batch, timeout: '30000' });
    await bob.client.sendTyping(roomId, true, 20_000);
    const answer = await polled;
    expect(answer.rooms.join[roomId]?.ephemeral.events).toContainEqual({
      type: 'm.typing',
      content: { user_ids: [bob.userId] },
    });
    expect(edus).toContainEqual({
      edu: { edu_type: 'm.typing', content: { room_id: roomId, user_id: alice.userId, typing: true } },
      roomId,
    });

    // Typing for another user, in a room one is not in, or with a bad body is refused.
    expect((await refusal(putTyping(bob.client, alice.userId, { typing: true, timeout: 1000 }))).errcode).toBe(
      'M_FORBIDDEN',
    );
    const other = (await bob.client.createRoom({ name: 'Shed' })).room_id;
    expect((await refusal(alice.client.sendTyping(other, true, 1000))).errcode).toBe('M_FORBIDDEN');
    expect((await refusal(putTyping(alice.client, alice.userId, { typing: 'yes' }))).errcode).toBe('M_BAD_JSON');
  }, 60_000);

  it("shows each client the other's read receipts (private ones only to their owner) and counts unread messages", async () => {
    const { alice, bob } = users;
    const sent: string[] = [];
    for (let i = 0; i < 3; i++) {
      sent.push((await alice.client.sendMessage(roomId, { msgtype: MsgType.Text, body: `note ${i}` })).event_id);
    }
    // Bob has read nothing of alice's three messages yet.
    const before = await sync(bob.client);
    expect(before.rooms.join[roomId]?.unread_notifications).toEqual({ notification_count: 3, highlight_count: 0 });

    const room = bob.client.getRoom(roomId)!;
    const aliceRoom = alice.client.getRoom(roomId)!;
    const eventIn = async (id: string): Promise<MatrixEvent> => {
      for (let tries = 0; tries < 1000; tries++) {
        const found = room.findEventById(id);
        if (found !== undefined) return found;
        await new Promise((resolve) => room.once(RoomEvent.Timeline, resolve));
      }
      throw new Error(`${id} never reached bob's client`);
    };
    const receiptSeen = (r: typeof room, userId: string, eventId: string) =>
      new Promise<void>((resolve) => {
        const check = (): void => {
          if (r.getEventReadUpTo(userId) === eventId) {
            r.off(RoomEvent.Receipt, check);
            resolve();
          }
        };
        r.on(RoomEvent.Receipt, check);
        check();
      });
    const first = await eventIn(sent[0]!);
    const aliceSees = receiptSeen(aliceRoom, bob.userId, sent[0]!);
    await bob.client.sendReceipt(first, ReceiptType.Read, {}, true);
    await aliceSees;
    const afterFirst = await sync(bob.client);
    expect(afterFirst.rooms.join[roomId]?.unread_notifications.notification_count).toBe(2);

    // A private receipt moves bob's own read position (and count) but never reaches alice.
    const last = await eventIn(sent[2]!);
    const bobSeesOwn = receiptSeen(room, bob.userId, sent[2]!);
    await bob.client.sendReceipt(last, ReceiptType.ReadPrivate, {}, true);
    await bobSeesOwn;
    const aliceSync = await sync(alice.client);
    const aliceReceipts = JSON.stringify(aliceSync.rooms.join[roomId]?.ephemeral.events ?? []);
    expect(aliceReceipts).not.toContain('m.read.private');
    expect(aliceReceipts).toContain(sent[0]!);
    const bobSync = await sync(bob.client);
    expect(JSON.stringify(bobSync.rooms.join[roomId]?.ephemeral.events)).toContain('m.read.private');
    expect(bobSync.rooms.join[roomId]?.unread_notifications.notification_count).toBe(0);
    // Only public receipts are EDUs for other homes.
    expect(edus.filter((e) => e.edu.edu_type === 'm.receipt').map((e) => JSON.stringify(e.edu))).toEqual([
      expect.stringContaining(sent[0]!),
    ]);

    // A receipt never moves back: an older event after a newer one leaves the newer.
    const second = await eventIn(sent[1]!);
    await bob.client.sendReceipt(second, ReceiptType.ReadPrivate, {}, true);
    expect(JSON.stringify((await sync(bob.client)).rooms.join[roomId]?.ephemeral.events)).toContain(sent[2]!);

    // Threaded receipts are kept apart; receipts for unknown events or of unknown types are refused.
    const threaded = await request(baseUrl)
      .post(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent(sent[1]!)}`)
      .set('Authorization', `Bearer ${bob.client.getAccessToken()}`)
      .send({ thread_id: 'main' });
    expect(threaded.status).toBe(200);
    const unknown = await request(baseUrl)
      .post(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/receipt/m.read/${encodeURIComponent('$nope')}`)
      .set('Authorization', `Bearer ${bob.client.getAccessToken()}`)
      .send({});
    expect(unknown.body.errcode).toBe('M_NOT_FOUND');
    const badType = await request(baseUrl)
      .post(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/receipt/m.seen/${encodeURIComponent(sent[1]!)}`)
      .set('Authorization', `Bearer ${bob.client.getAccessToken()}`)
      .send({});
    expect(badType.body.errcode).toBe('M_INVALID_PARAM');
  }, 60_000);

  it('sets the fully-read marker as room account data and receipts with read_markers', async () => {
    const { alice, bob } = users;
    const id = (await alice.client.sendMessage(roomId, { msgtype: MsgType.Text, body: 'marker' })).event_id;
    await bob.client.setRoomReadMarkersHttpRequest(roomId, id, id);
    const answer = await sync(bob.client);
    const joined = answer.rooms.join[roomId]!;
    expect(joined.account_data.events).toContainEqual({ type: 'm.fully_read', content: { event_id: id } });
    expect(joined.unread_notifications.notification_count).toBe(0);
    const readByBob = JSON.stringify(joined.ephemeral.events);
    expect(readByBob).toContain(id);
    // m.fully_read stays out of the account-data API, as the spec says.
    const put = await request(baseUrl)
      .put(
        `/_matrix/client/v3/user/${encodeURIComponent(bob.userId)}/rooms/${encodeURIComponent(roomId)}/account_data/m.fully_read`,
      )
      .set('Authorization', `Bearer ${bob.client.getAccessToken()}`)
      .send({ event_id: id });
    expect(put.status).toBe(405);
    // The js-sdk client holds the marker.
    const room = bob.client.getRoom(roomId)!;
    for (let tries = 0; tries < 1000 && room.getAccountData('m.fully_read')?.getContent()['event_id'] !== id; tries++) {
      await new Promise((resolve) => bob.client.once(ClientEvent.Sync, resolve));
    }
    expect(room.getAccountData('m.fully_read')?.getContent()['event_id']).toBe(id);
    expect(room.getUnreadNotificationCount(NotificationCountType.Total)).toBe(0);
  }, 60_000);

  it("serves the user's own presence, in /sync and by GET, and another's only to those sharing a room", async () => {
    const { alice, bob } = users;
    await alice.client.setPresence({ presence: 'unavailable', status_msg: 'out for lunch' });
    const own = await alice.client.getPresence(alice.userId);
    expect(own).toMatchObject({ presence: 'unavailable', status_msg: 'out for lunch' });
    expect(typeof own.last_active_ago).toBe('number');
    const seen = await sync(alice.client, { set_presence: 'offline' });
    expect(seen.presence.events).toContainEqual(
      expect.objectContaining({
        type: 'm.presence',
        sender: alice.userId,
        content: expect.objectContaining({ presence: 'unavailable' }),
      }),
    );
    // Bob shares the room: he may read it, and his /sync carries it.
    expect(await bob.client.getPresence(alice.userId)).toMatchObject({ presence: 'unavailable' });
    expect((await sync(bob.client)).presence.events.map((e) => e.sender)).toContain(alice.userId);
    // Nobody may set another's presence; a user nobody knows has none.
    expect(
      (
        await refusal(
          bob.client.http.authedRequest(Method.Put, `/presence/${encodeURIComponent(alice.userId)}/status`, undefined, {
            presence: 'online',
          }),
        )
      ).errcode,
    ).toBe('M_FORBIDDEN');
    expect((await refusal(bob.client.getPresence(`@nobody:${'0'.repeat(64)}`))).errcode).toBe('M_NOT_FOUND');
    expect(edus.some((e) => e.edu.edu_type === 'm.presence')).toBe(true);
  }, 60_000);

  it('takes in EDUs from another home only for users of their origin joined to the room, within size caps', async () => {
    const { alice, bob } = users;
    const port = ephemeral();
    // As if bob's server sent bob's typing: taken, and alice's client shows it.
    await bob.client.sendTyping(roomId, false, 0);
    const typed = await port.receiveEdu(bob.serverName, {
      edu_type: 'm.typing',
      content: { room_id: roomId, user_id: bob.userId, typing: true },
    });
    expect(typed).toEqual({ accepted: 1, refused: [] });
    const start = await sync(alice.client);
    expect(start.rooms.join[roomId]?.ephemeral.events).toContainEqual({
      type: 'm.typing',
      content: { user_ids: [bob.userId] },
    });
    // Alice's server cannot speak for bob, nor anyone for a user not in the room.
    const forged = await port.receiveEdu(alice.serverName, {
      edu_type: 'm.typing',
      content: { room_id: roomId, user_id: bob.userId, typing: false },
    });
    expect(forged.accepted).toBe(0);
    expect(forged.refused[0]).toContain('is not a user of');
    const stranger = `@eve:${bob.serverName}`;
    const outsider = await port.receiveEdu(bob.serverName, {
      edu_type: 'm.receipt',
      content: { [roomId]: { 'm.read': { [stranger]: { event_ids: ['$x'], data: { ts: 1 } } } } },
    });
    expect(outsider.accepted).toBe(0);
    expect(outsider.refused[0]).toContain('is not joined');
    // Private receipts never come from another home; oversized EDUs and unknown types are refused whole.
    const privateOne = await port.receiveEdu(bob.serverName, {
      edu_type: 'm.receipt',
      content: { [roomId]: { 'm.read.private': { [bob.userId]: { event_ids: ['$x'], data: { ts: 1 } } } } },
    });
    expect(privateOne.accepted).toBe(0);
    const huge = await port.receiveEdu(bob.serverName, {
      edu_type: 'm.presence',
      content: {
        push: [{ user_id: bob.userId, presence: 'online', last_active_ago: 0, status_msg: 'x'.repeat(70_000) }],
      },
    });
    expect(huge.refused[0]).toContain('larger than');
    expect((await port.receiveEdu(bob.serverName, { edu_type: 'm.nope', content: {} })).accepted).toBe(0);
    // A received receipt is stored and served like a local one.
    const id = (await alice.client.sendMessage(roomId, { msgtype: MsgType.Text, body: 'remote read' })).event_id;
    const read = await port.receiveEdu(bob.serverName, {
      edu_type: 'm.receipt',
      content: { [roomId]: { 'm.read': { [bob.userId]: { event_ids: [id], data: { ts: 1234 } } } } },
    });
    expect(read).toEqual({ accepted: 1, refused: [] });
    const after = await sync(alice.client, { since: start.next_batch });
    expect(after.rooms.join[roomId]?.ephemeral.events).toContainEqual({
      type: 'm.receipt',
      content: { [id]: { 'm.read': { [bob.userId]: { ts: 1234 } } } },
    });
  }, 60_000);
});
