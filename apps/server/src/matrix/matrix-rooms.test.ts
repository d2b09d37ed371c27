// Rooms through the Matrix client API over the home's room engine, driven by matrix-js-sdk on both backend
// pairs: three accounts hosted on one server share a room (create with a preset, invite, join), exchange 40
// messages seen in one order by /messages and /sync, set and read state, are refused what their power level
// does not allow, redact, retry a transaction, filter, and start a js-sdk client that shows it all.
import type { AddressInfo } from 'node:net';
import { createClient, Direction, EventType, Method, MsgType, type MatrixClient } from 'matrix-js-sdk';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountsService } from '../accounts/accounts.service.js';
import { refusal, startUntilPrepared } from '../testing/matrix-user.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'matrix-rooms-admin-token';
const PASSWORD = 'correct horse battery staple';

interface ClientEventJson {
  event_id: string;
  type: string;
  sender: string;
  content: Record<string, unknown>;
  state_key?: string;
  redacts?: string;
  unsigned?: Record<string, unknown>;
}
interface JoinedRoomJson {
  timeline: { events: ClientEventJson[]; limited: boolean; prev_batch?: string };
  state: { events: ClientEventJson[] };
  summary: Record<string, unknown>;
}
interface SyncJson {
  next_batch: string;
  rooms: {
    join: Record<string, JoinedRoomJson>;
    invite: Record<string, { invite_state: { events: ClientEventJson[] } }>;
    leave: Record<string, unknown>;
  };
}

describe.each(SERVER_BACKENDS)('Matrix rooms on $name', (backend) => {
  let server: TestServer;
  let baseUrl: string;
  const accounts: Record<'alice' | 'bob' | 'carol', { userId: string; token: string; client: MatrixClient }> =
    {} as never;
  let roomId: string;
  const http = () => request(server.app.getHttpServer());

  async function account(localpart: 'alice' | 'bob' | 'carol'): Promise<void> {
    const created = await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart, password: PASSWORD })
      .expect(201);
    const userId = created.body.user_id as string;
    const login = await createClient({ baseUrl }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: PASSWORD,
    });
    const client = createClient({ baseUrl, userId, accessToken: login.access_token, deviceId: login.device_id });
    accounts[localpart] = { userId, token: login.access_token, client };
  }

  const sync = (who: MatrixClient, query: Record<string, string> = {}): Promise<SyncJson> =>
    who.http.authedRequest<SyncJson>(Method.Get, '/sync', query);

  /** Every m.room.message body of the room through /messages, paging `dir` from the end that direction starts at. */
  async function allMessages(who: MatrixClient, dir: Direction, limit: number): Promise<string[]> {
    const bodies: string[] = [];
    let from: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const page = await who.createMessagesRequest(roomId, from, limit, dir);
      for (const event of page.chunk) {
        if (event.type === 'm.room.message') bodies.push(String(event.content['body']));
      }
      if (page.end === undefined || page.chunk.length === 0) break;
      from = page.end;
    }
    return dir === Direction.Backward ? bodies.reverse() : bodies;
  }

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    await server.app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(server.app.getHttpServer().address() as AddressInfo).port}`;
    await account('alice');
    await account('bob');
    await account('carol');
  }, 60_000);
  afterAll(async () => {
    for (const a of Object.values(accounts)) a.client.stopClient();
    await server?.close();
  });

  it('creates a room with a preset and a name; the invitee sees invite_state, joins, and 40 messages keep one order', async () => {
    const { alice, bob, carol } = accounts;
    const bobStart = await sync(bob.client);
    const created = await alice.client.createRoom({
      preset: 'private_chat' as never,
      name: 'Kitchen',
      topic: 'What we eat',
    });
    roomId = created.room_id;
    await alice.client.invite(roomId, bob.userId);
    await alice.client.invite(roomId, carol.userId);
    const invited = await sync(bob.client, { since: bobStart.next_batch, timeout: '10000' });
    const inviteState = invited.rooms.invite[roomId]?.invite_state.events ?? [];
    expect(inviteState).toContainEqual(expect.objectContaining({ type: 'm.room.name', content: { name: 'Kitchen' } }));
    expect(inviteState).toContainEqual(
      expect.objectContaining({
        type: 'm.room.member',
        state_key: bob.userId,
        content: expect.objectContaining({ membership: 'invite' }),
      }),
    );
    expect(invited.rooms.join[roomId]).toBeUndefined();

    await bob.client.joinRoom(roomId);
    await carol.client.joinRoom(roomId);
    expect((await bob.client.getJoinedRooms()).joined_rooms).toEqual([roomId]);
    const afterJoin = await sync(alice.client);

    const send = async (who: MatrixClient, name: string): Promise<void> => {
      for (let i = 0; i < 20; i++) {
        await who.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body: `${name} ${i}` });
      }
    };
    await Promise.all([send(alice.client, 'alice'), send(bob.client, 'bob')]);

    const aliceBack = await allMessages(alice.client, Direction.Backward, 7);
    expect(aliceBack).toHaveLength(40);
    // Each sender's messages in the order sent, the two senders interleaved the same way for everyone.
    expect(aliceBack.filter((b) => b.startsWith('alice'))).toEqual(Array.from({ length: 20 }, (_, i) => `alice ${i}`));
    expect(aliceBack.filter((b) => b.startsWith('bob'))).toEqual(Array.from({ length: 20 }, (_, i) => `bob ${i}`));
    expect(await allMessages(bob.client, Direction.Backward, 13)).toEqual(aliceBack);
    expect(await allMessages(bob.client, Direction.Forward, 9)).toEqual(aliceBack);
    expect(await allMessages(alice.client, Direction.Forward, 40)).toEqual(aliceBack);

    // /sync: the newest 10 (limited), then prev_batch pages back to the join.
    for (const who of [alice.client, bob.client]) {
      const incremental = await sync(who, {
        since: afterJoin.next_batch,
        filter: JSON.stringify({ room: { timeline: { limit: 10 } } }),
      });
      const room = incremental.rooms.join[roomId]!;
      expect(room.timeline.limited).toBe(true);
      expect(room.timeline.events).toHaveLength(10);
      const newest = room.timeline.events.map((e) => String(e.content['body']));
      expect(newest).toEqual(aliceBack.slice(30));
      const older: string[] = [];
      let from = room.timeline.prev_batch ?? null;
      expect(from).not.toBeNull();
      while (from !== null && older.length < 30) {
        const page = await who.createMessagesRequest(roomId, from, 8, Direction.Backward);
        if (page.chunk.length === 0) break;
        for (const e of page.chunk) if (e.type === 'm.room.message') older.unshift(String(e.content['body']));
        from = page.end ?? null;
      }
      expect(older.slice(-30)).toEqual(aliceBack.slice(0, 30));
      expect(room.summary).toMatchObject({ 'm.joined_member_count': 3, 'm.invited_member_count': 0 });
    }
  }, 120_000);

  it('sets and reads state; unset keys are M_NOT_FOUND; members and joined members', async () => {
    const { alice, bob, carol } = accounts;
    await alice.client.sendStateEvent(roomId, 'm.room.topic' as never, { topic: 'Recipes' } as never, '');
    const topic = await bob.client.getStateEvent(roomId, 'm.room.topic', '');
    expect(topic).toEqual({ topic: 'Recipes' });
    const asEvent = await http()
      .get(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/state/m.room.topic/?format=event`)
      .set('Authorization', `Bearer ${bob.token}`)
      .expect(200);
    expect(asEvent.body).toMatchObject({ type: 'm.room.topic', state_key: '', sender: alice.userId, room_id: roomId });
    expect(asEvent.body.hashes).toBeUndefined();
    expect(asEvent.body.signatures).toBeUndefined();
    const unset = await refusal(bob.client.getStateEvent(roomId, 'com.example.unset', ''));
    expect([unset.httpStatus, unset.errcode]).toEqual([404, 'M_NOT_FOUND']);
    const state = await bob.client.roomState(roomId);
    expect(state).toContainEqual(expect.objectContaining({ type: 'm.room.name', content: { name: 'Kitchen' } }));
    const joined = await bob.client.getJoinedRoomMembers(roomId);
    expect(Object.keys(joined.joined).sort()).toEqual([alice.userId, bob.userId, carol.userId].sort());
    const members = await http()
      .get(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/members?membership=join`)
      .set('Authorization', `Bearer ${bob.token}`)
      .expect(200);
    expect(members.body.chunk).toHaveLength(3);
  });

  it('refuses bad bodies and ids before the engine, changing nothing', async () => {
    const { bob } = accounts;
    const before = await allMessages(bob.client, Direction.Backward, 100);
    const path = `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}`;
    const put = (p: string) => http().put(p).set('Authorization', `Bearer ${bob.token}`);
    const arrayBody = await put(`${path}/send/m.room.message/t-array`).send([1, 2]).expect(400);
    expect(arrayBody.body.errcode).toBe('M_BAD_JSON');
    const badMessage = await put(`${path}/send/m.room.message/t-bad`).send({ msgtype: 'm.text', body: 5 }).expect(400);
    expect(badMessage.body.errcode).toBe('M_BAD_JSON');
    const big = await put(`${path}/send/m.room.message/t-big`).send({ msgtype: 'm.text', body: 'x'.repeat(61_000) });
    expect(big.body.errcode).toBe('M_TOO_LARGE');
    const badTxn = await put(`${path}/send/m.room.message/${'t'.repeat(300)}`).send({ body: 'x', msgtype: 'm.text' });
    expect([badTxn.status, badTxn.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    const badRoom = await put(`/_matrix/client/v3/rooms/not-a-room/send/m.room.message/t1`).send({}).expect(400);
    expect(badRoom.body.errcode).toBe('M_INVALID_PARAM');
    const alias = await http()
      .post(`/_matrix/client/v3/join/${encodeURIComponent('#kitchen:example.org')}`)
      .set('Authorization', `Bearer ${bob.token}`)
      .send({})
      .expect(404);
    expect(alias.body).toMatchObject({ errcode: 'M_NOT_FOUND', error: expect.stringContaining('alias') });
    const version = await http()
      .post('/_matrix/client/v3/createRoom')
      .set('Authorization', `Bearer ${bob.token}`)
      .send({ room_version: '1' })
      .expect(400);
    expect(version.body.errcode).toBe('M_UNSUPPORTED_ROOM_VERSION');
    expect(await allMessages(bob.client, Direction.Backward, 100)).toEqual(before);
    expect((await bob.client.getJoinedRooms()).joined_rooms).toEqual([roomId]);
  });

  it('refuses kick and ban without power (M_FORBIDDEN, nothing changes); the creator can kick', async () => {
    const { alice, bob, carol } = accounts;
    const kick = await refusal(bob.client.kick(roomId, alice.userId, 'no'));
    expect([kick.httpStatus, kick.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const ban = await refusal(bob.client.ban(roomId, carol.userId, 'no'));
    expect([ban.httpStatus, ban.errcode]).toEqual([403, 'M_FORBIDDEN']);
    expect(Object.keys((await alice.client.getJoinedRoomMembers(roomId)).joined)).toHaveLength(3);
    expect(await bob.client.getStateEvent(roomId, 'm.room.member', carol.userId)).toMatchObject({
      membership: 'join',
    });

    await alice.client.kick(roomId, carol.userId, 'bye');
    expect(await bob.client.getStateEvent(roomId, 'm.room.member', carol.userId)).toMatchObject({
      membership: 'leave',
      reason: 'bye',
    });
    expect((await carol.client.getJoinedRooms()).joined_rooms).toEqual([]);
  });

  it('redacts: both clients see the redacted event and the redaction', async () => {
    const { alice, bob } = accounts;
    const bobSince = await sync(bob.client);
    const { event_id: secret } = await alice.client.sendEvent(roomId, EventType.RoomMessage, {
      msgtype: MsgType.Text,
      body: 'secret',
    });
    const { event_id: redaction } = await alice.client.redactEvent(roomId, secret, undefined, { reason: 'oops' });
    for (const who of [alice.client, bob.client]) {
      const seen = await who.fetchRoomEvent(roomId, secret);
      expect(seen.content).toEqual({});
      expect((seen.unsigned as Record<string, unknown>)['redacted_because']).toMatchObject({
        event_id: redaction,
        type: 'm.room.redaction',
      });
    }
    const update = await sync(bob.client, { since: bobSince.next_batch, timeout: '5000' });
    const events = update.rooms.join[roomId]?.timeline.events ?? [];
    expect(events.find((e) => e.event_id === redaction)).toMatchObject({
      redacts: secret,
      content: { reason: 'oops' },
    });
  });

  it('retrying a transaction id gives the same event once', async () => {
    const { alice } = accounts;
    const first = await alice.client.sendTextMessage(roomId, 'once', 'retry-txn-1');
    const again = await alice.client.sendTextMessage(roomId, 'once', 'retry-txn-1');
    expect(again.event_id).toBe(first.event_id);
    const newest = await alice.client.createMessagesRequest(roomId, null, 5, Direction.Backward);
    expect(newest.chunk.filter((e) => e.content['body'] === 'once')).toHaveLength(1);
  });

  it('lazy-loads members: only the timeline senders and the user', async () => {
    const { alice, bob, carol } = accounts;
    // Carol was kicked above: invited again, she joins and speaks once before Alice's last message.
    await alice.client.invite(roomId, carol.userId);
    await carol.client.joinRoom(roomId);
    const beforeCarol = await sync(bob.client);
    await carol.client.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body: 'carol speaks' });
    await alice.client.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body: 'last' });
    const lazy = await sync(bob.client, {
      filter: JSON.stringify({ room: { timeline: { limit: 1 }, state: { lazy_load_members: true } } }),
    });
    const members = (lazy.rooms.join[roomId]?.state.events ?? [])
      .concat(lazy.rooms.join[roomId]?.timeline.events ?? [])
      .filter((e) => e.type === 'm.room.member')
      .map((e) => e.state_key);
    expect(members).not.toContain(carol.userId);
    expect(members).toContain(alice.userId);
    const full = await sync(bob.client, { filter: JSON.stringify({ room: { timeline: { limit: 1 } } }) });
    const all = (full.rooms.join[roomId]?.state.events ?? []).map((e) => e.state_key);
    expect(all).toContain(carol.userId);
    const page = await http()
      .get(`/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/messages`)
      .query({ dir: 'b', limit: '1', filter: JSON.stringify({ lazy_load_members: true }) })
      .set('Authorization', `Bearer ${bob.token}`)
      .expect(200);
    expect(page.body.state.map((e: ClientEventJson) => e.state_key)).toEqual([alice.userId]);
    // Incremental and not limited: no state changed, yet the senders' member events come with their messages.
    const incremental = await sync(bob.client, {
      since: beforeCarol.next_batch,
      filter: JSON.stringify({ room: { timeline: { limit: 5 }, state: { lazy_load_members: true } } }),
    });
    const room = incremental.rooms.join[roomId]!;
    expect(room.timeline.limited).toBe(false);
    expect(room.timeline.events.map((e) => e.content['body'])).toEqual(['carol speaks', 'last']);
    expect(room.state.events.map((e) => e.state_key).sort()).toEqual([alice.userId, carol.userId].sort());
  }, 60_000);

  it('serves /context, filtered /messages, and /sync with room filters, full_state and an old token', async () => {
    const { alice, bob } = accounts;
    const bodies = await allMessages(bob.client, Direction.Backward, 100);
    const middle = await bob.client.createMessagesRequest(roomId, null, 30, Direction.Backward);
    const target = middle.chunk.find((e) => e.content['body'] === 'bob 10')!;
    const context = await bob.client.http.authedRequest<{
      event: ClientEventJson;
      events_before: ClientEventJson[];
      events_after: ClientEventJson[];
      state: ClientEventJson[];
      start: string;
      end: string;
    }>(Method.Get, `/rooms/${encodeURIComponent(roomId)}/context/${encodeURIComponent(target.event_id!)}`, {
      limit: '4',
    });
    expect(context.event.event_id).toBe(target.event_id);
    const at = bodies.indexOf('bob 10');
    // events_before newest first, events_after oldest first, around the event in the common order.
    expect(context.events_before.map((e) => e.content['body'])).toEqual([bodies[at - 1], bodies[at - 2]]);
    expect(context.events_after.map((e) => e.content['body'])).toEqual([bodies[at + 1], bodies[at + 2]]);
    expect(context.state).toContainEqual(expect.objectContaining({ type: 'm.room.create' }));

    const onlyAlice = await bob.client.http.authedRequest<{ chunk: ClientEventJson[] }>(
      Method.Get,
      `/rooms/${encodeURIComponent(roomId)}/messages`,
      { dir: 'b', limit: '5', filter: JSON.stringify({ senders: [alice.userId], types: ['m.room.mess*'] }) },
    );
    expect(onlyAlice.chunk).toHaveLength(5);
    expect(onlyAlice.chunk.every((e) => e.sender === alice.userId && e.type === 'm.room.message')).toBe(true);
    const noMessages = await bob.client.http.authedRequest<{ chunk: ClientEventJson[] }>(
      Method.Get,
      `/rooms/${encodeURIComponent(roomId)}/messages`,
      { dir: 'f', limit: '10', filter: JSON.stringify({ not_types: ['m.room.message'] }) },
    );
    expect(noMessages.chunk.length).toBeGreaterThan(0);
    expect(noMessages.chunk.some((e) => e.type === 'm.room.message')).toBe(false);

    const excluded = await sync(bob.client, { filter: JSON.stringify({ room: { not_rooms: [roomId] } }) });
    expect(excluded.rooms.join[roomId]).toBeUndefined();
    const stored = await bob.client.createFilter({ room: { timeline: { limit: 3, types: ['m.room.message'] } } });
    const filtered = await sync(bob.client, { filter: stored.filterId! });
    // The limit applies before the type filter (documented): of the newest three events (Carol's join, her
    // message, "last"), the messages remain.
    const timeline = filtered.rooms.join[roomId]!.timeline;
    expect(timeline.events.map((e) => [e.type, e.content['body']])).toEqual([
      ['m.room.message', 'carol speaks'],
      ['m.room.message', 'last'],
    ]);
    expect(timeline.limited).toBe(true);
    // full_state: the whole state even though nothing changed since the token.
    const full = await sync(bob.client, { since: filtered.next_batch, full_state: 'true' });
    expect(full.rooms.join[roomId]?.state.events.length).toBeGreaterThan(3);
    // Tokens are `s<change>_<room>_<receipt>_<memory>_d<toDevice>`. A token of before the room stream (`s<change>`) is still read: the rooms come as on an initial sync.
    const change = /^s(\d+)_\d+_\d+_\d+_d\d+$/.exec(filtered.next_batch)![1];
    const old = await sync(bob.client, { since: `s${change}` });
    expect(old.rooms.join[roomId]).toBeDefined();
    expect(old.next_batch).toMatch(/^s\d+_\d+_\d+_\d+_d\d+$/);
    const bad = await refusal(sync(bob.client, { since: 'garbage' }));
    expect([bad.httpStatus, bad.errcode]).toEqual([400, 'M_INVALID_PARAM']);
  });

  it('bans, unbans and forgets', async () => {
    const { alice, carol } = accounts;
    const carolSince = await sync(carol.client);
    await alice.client.ban(roomId, carol.userId, 'rude');
    expect(await alice.client.getStateEvent(roomId, 'm.room.member', carol.userId)).toMatchObject({
      membership: 'ban',
    });
    const barred = await refusal(carol.client.joinRoom(roomId));
    expect(barred.errcode).toBe('M_FORBIDDEN');
    await alice.client.unban(roomId, carol.userId);
    expect(await alice.client.getStateEvent(roomId, 'm.room.member', carol.userId)).toMatchObject({
      membership: 'leave',
    });
    // Forgetting needs the room left: refused while joined, then done after leaving.
    const joined = await refusal(alice.client.forget(roomId));
    expect(joined.httpStatus).toBe(400);
    const leaveFilter = JSON.stringify({ room: { include_leave: true } });
    const left = await sync(carol.client, { since: carolSince.next_batch, filter: leaveFilter });
    expect(left.rooms.leave[roomId]).toBeDefined();
    await carol.client.forget(roomId);
    const forgotten = await sync(carol.client, { since: carolSince.next_batch, filter: leaveFilter });
    expect(forgotten.rooms.leave[roomId]).toBeUndefined();
  });

  it('leaves a room joined on another home of the account whose events have not reached this home', async () => {
    const { bob } = accounts;
    const serverName = bob.userId.slice(bob.userId.indexOf(':') + 1);
    const elsewhere = `!elsewhere:${serverName}`;
    // The join another home made, as it replicates: the account's state has it, this home's engine does not.
    await server.app
      .get(AccountsService)
      .applyLocal(serverName, [{ op: 'member.set', key: elsewhere, body: { room_id: elsewhere, membership: 'join' } }]);
    expect((await bob.client.getJoinedRooms()).joined_rooms).toContain(elsewhere);
    await bob.client.leave(elsewhere);
    // The leave is set in the account's state, where the homes that hold the room enact it.
    expect((await bob.client.getJoinedRooms()).joined_rooms).not.toContain(elsewhere);
    const state = await server.app.get(AccountsService).state(bob.userId);
    expect(state.memberships[elsewhere]).toMatchObject({ membership: 'leave' });
    // A room neither held nor joined is still refused.
    expect((await refusal(bob.client.leave(`!never:${serverName}`))).errcode).toBe('M_NOT_FOUND');
  });

  it('rejects an invite of a room not held over federation, and keeps the invite when no home answers', async () => {
    const { bob } = accounts;
    const serverName = bob.userId.slice(bob.userId.indexOf(':') + 1);
    const invited = `!invited:${serverName}`;
    // An invite that reached the account's state and not this home's engine, from a server no home serves.
    const invite = {
      type: 'm.room.member',
      room_id: invited,
      sender: '@carol:unreachable',
      state_key: bob.userId,
      content: { membership: 'invite' },
    };
    await server.app
      .get(AccountsService)
      .applyLocal(serverName, [
        { op: 'member.set', key: invited, body: { room_id: invited, membership: 'invite', event: invite } },
      ]);
    // make_leave/send_leave through the inviter's homes (and the room's, and the account's other homes): none.
    const refused = await refusal(bob.client.leave(invited));
    expect(refused.errcode).toBe('M_UNKNOWN');
    expect(refused.httpStatus).toBe(502);
    expect(refused.data.error).toMatch(/Could not leave/);
    // Not written as a leave the room never gets: the invite stands.
    const state = await server.app.get(AccountsService).state(bob.userId);
    expect(state.memberships[invited]).toMatchObject({ membership: 'invite' });
  });

  it('starts a matrix-js-sdk client to PREPARED with the room, its timeline and members', async () => {
    const { alice, bob, carol } = accounts;
    const login = await createClient({ baseUrl }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: bob.userId },
      password: PASSWORD,
    });
    const fresh = createClient({
      baseUrl,
      userId: bob.userId,
      accessToken: login.access_token,
      deviceId: login.device_id,
    });
    try {
      const failures = await startUntilPrepared(fresh, 20);
      const room = fresh.getRoom(roomId);
      expect(room?.name).toBe('Kitchen');
      const bodies = room!
        .getLiveTimeline()
        .getEvents()
        .filter((e) => e.getType() === 'm.room.message')
        .map((e) => e.getContent()['body']);
      expect(bodies.at(-1)).toBe('last');
      expect(bodies.length).toBeGreaterThan(5);
      // Carol was banned and unbanned above: two members remain.
      const joined = room!.getJoinedMembers().map((m) => m.userId);
      expect(joined.sort()).toEqual([alice.userId, bob.userId].sort());
      expect(room!.getMember(carol.userId)?.membership).toBe('leave');
      // A message sent now reaches the running client through its long poll.
      const arrived = new Promise<string>((resolve) => {
        room!.on(
          'Room.timeline' as never,
          ((event: { getContent: () => Record<string, unknown> }) => {
            const body = event.getContent()['body'];
            if (body === 'live') resolve(String(body));
          }) as never,
        );
      });
      await alice.client.sendEvent(roomId, EventType.RoomMessage, { msgtype: MsgType.Text, body: 'live' });
      expect(await arrived).toBe('live');
      expect(failures).toEqual([]);
    } finally {
      fresh.stopClient();
    }
  }, 60_000);
});
