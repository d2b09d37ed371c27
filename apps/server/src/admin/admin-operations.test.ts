// The operator's admin API on a real server (real database, real queue, real libp2p): account search and
// details, deactivation, takedown, reactivation, password reset, device deletion, rooms, statistics and the
// audit log; bad input refused with a clear error and nothing changed. Then two server homes of one account:
// what an operator does on one reaches the other.
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '@polyhome/p2p/testing';
import { AccountsService } from '../accounts/accounts.service.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'admin-operations-test-token';
const PASSWORD = 'correct horse battery staple';
const enc = encodeURIComponent;

interface Json {
  [key: string]: unknown;
}

/** The admin API and the Matrix client API of one listening server. */
function clientsOf(server: TestServer) {
  const http = () => request(server.app.getHttpServer());
  const auth = (t: request.Test) => t.set('Authorization', `Bearer ${ADMIN_TOKEN}`);
  return {
    get: (url: string) => auth(http().get(url)),
    post: (url: string, body: object) => auth(http().post(url)).send(body),
    put: (url: string, body: object) => auth(http().put(url)).send(body),
    delete: (url: string, body?: object) => auth(http().delete(url)).send(body ?? {}),
    login: (user: string, password: string) =>
      http()
        .post('/_matrix/client/v3/login')
        .send({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password }),
    matrix: (method: 'get' | 'post' | 'put', url: string, token: string, body?: object) =>
      http()[method](url).set('Authorization', `Bearer ${token}`).send(body),
  };
}

describe.each(SERVER_BACKENDS)('the admin API for operators on $name', (backend) => {
  let server: TestServer;
  let api: ReturnType<typeof clientsOf>;
  const audit = async (): Promise<Json[]> => (await api.get('/admin/v1/audit?limit=500').expect(200)).body.chunk;
  const account = async (localpart: string): Promise<{ user_id: string; server_name: string }> =>
    (await api.post('/admin/v1/accounts', { localpart, password: PASSWORD }).expect(201)).body;

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    api = clientsOf(server);
  });
  afterAll(async () => {
    await server?.close();
  });

  it('searches accounts by a part of the user ID, a page at a time, and refuses a cursor it did not make', async () => {
    for (const localpart of ['srch_one', 'srch_two', 'srch_three', 'unrelated']) await account(localpart);
    const first = await api.get('/admin/v1/accounts?search=SRCH_&limit=2').expect(200);
    expect(first.body.chunk).toHaveLength(2);
    const rest = await api.get(`/admin/v1/accounts?search=srch_&limit=2&from=${first.body.next_from}`).expect(200);
    expect(rest.body.next_from).toBeUndefined();
    const found = [...first.body.chunk, ...rest.body.chunk].map((a: { user_id: string }) => a.user_id.split(':')[0]);
    expect(found).toEqual(['@srch_one', '@srch_three', '@srch_two']);
    // `_` is a plain character, not a wildcard: `h_th` finds `srch_three` only (a wildcard would find `srchxth`).
    await account('srchxth');
    const underscore = await api.get('/admin/v1/accounts?search=h_th').expect(200);
    expect(underscore.body.chunk.map((a: { user_id: string }) => a.user_id.split(':')[0])).toEqual(['@srch_three']);
    for (const bad of ['from=not-a-cursor', `from=${Buffer.from('{"x":1}').toString('base64url')}`, 'limit=501']) {
      const res = await api.get(`/admin/v1/accounts?${bad}`).expect(400);
      expect(res.body.errcode).toBe('M_INVALID_PARAM');
      expect(res.body.error).toMatch(/from|limit/);
    }
    const audit = await api.get('/admin/v1/audit?from=eyJrIjoiYWJjIn0').expect(400);
    expect(audit.body.error).toContain('next_from');
  });

  it('shows an account in full: homes with sync state, devices, rooms with membership, custody, last activity', async () => {
    const acct = await account('detailed');
    const login = await api.login(acct.user_id, PASSWORD).expect(200);
    const token = login.body.access_token as string;
    const room = await api
      .matrix('post', '/_matrix/client/v3/createRoom', token, { name: 'Detailed room' })
      .expect(200);
    const detail = (await api.get(`/admin/v1/accounts/${enc(acct.user_id)}`).expect(200)).body;
    expect(detail).toMatchObject({ custody: 'hosted', status: 'active' });
    expect(detail.homes).toEqual([expect.objectContaining({ self: true, pending_ops: 0, role: 'server' })]);
    expect(detail.devices).toEqual([
      expect.objectContaining({ device_id: login.body.device_id, home: server.resources.p2p.peerId }),
    ]);
    expect(detail.rooms).toEqual([expect.objectContaining({ room_id: room.body.room_id, membership: 'join' })]);
    expect(detail.last_activity.access_tokens).toBe(1);
    expect(Date.parse(detail.last_activity.last_login_at)).not.toBeNaN();
    expect(Date.parse(detail.last_activity.last_op_at)).not.toBeNaN();
    const devices = await api.get(`/admin/v1/accounts/${enc(acct.user_id)}/devices?limit=1`).expect(200);
    expect(devices.body).toEqual({ chunk: [expect.objectContaining({ device_id: login.body.device_id })] });

    const rooms = await api.get('/admin/v1/rooms?search=detailed%20ROOM').expect(200);
    expect(rooms.body.chunk).toEqual([
      expect.objectContaining({ room_id: room.body.room_id, name: 'Detailed room', joined_members: 1 }),
    ]);
    const one = (await api.get(`/admin/v1/rooms/${enc(room.body.room_id)}`).expect(200)).body;
    expect(one.members).toEqual([{ user_id: acct.user_id, membership: 'join' }]);
    expect(one.servers).toEqual([
      {
        server_name: acct.server_name,
        members: 1,
        hosted_here: true,
        homes: [expect.objectContaining({ peer_id: server.resources.p2p.peerId, role: 'server' })],
      },
    ]);
    expect(one.state.map((s: { type: string }) => s.type)).toEqual(
      expect.arrayContaining(['m.room.create', 'm.room.member', 'm.room.name', 'm.room.power_levels']),
    );
    expect((await api.get(`/admin/v1/rooms/${enc('!nope:example')}`).expect(404)).body.errcode).toBe('M_NOT_FOUND');
    expect((await api.get('/admin/v1/rooms/not-a-room').expect(400)).body.errcode).toBe('M_INVALID_PARAM');
  });

  it('deactivates: leaves rooms through the engine, refuses logins and tokens, deletes the devices here, audits', async () => {
    const acct = await account('leaving');
    const login = await api.login(acct.user_id, PASSWORD).expect(200);
    const token = login.body.access_token as string;
    const room = (await api.matrix('post', '/_matrix/client/v3/createRoom', token, {}).expect(200)).body.room_id;
    const url = `/admin/v1/accounts/${enc(acct.user_id)}`;

    // Bad input first: each is refused with a message saying what is wrong, and nothing changes.
    const before = await audit();
    const refusals = [
      [await api.post(`${url}/deactivate`, {}), /reason/],
      [await api.post(`${url}/deactivate`, { reason: '   ' }), /reason must say why/],
      [await api.post(`${url}/deactivate`, { reason: 'x', force: true }), /force should not exist/],
      [await api.post(`${url}/deactivate`, { reason: 'x'.repeat(1001) }), /reason/],
      [await api.delete(`${url}/devices/${login.body.device_id}`), /reason/],
      [await api.delete(url), /reason/],
      [await api.post(`${url}/password`, { password: 'new password 1' }), /reason/],
    ] as const;
    for (const [res, message] of refusals) {
      expect([res.status, res.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
      expect(res.body.error).toMatch(message);
    }
    expect(await audit()).toEqual(before);
    await api.matrix('get', '/_matrix/client/v3/joined_rooms', token, undefined).expect(200);
    expect((await api.get(url).expect(200)).body.status).toBe('active');

    const done = (await api.post(`${url}/deactivate`, { reason: 'Spam (ticket 1)' }).expect(200)).body;
    expect(done).toMatchObject({
      status: 'deactivated',
      rooms_left: [room],
      rooms_not_left: [],
      devices_deleted: [login.body.device_id],
      tokens_revoked: 1,
    });
    // The old token and a new login are refused; the room shows the user gone; the device is tombstoned.
    const refused = await api.matrix('get', '/_matrix/client/v3/joined_rooms', token, undefined).expect(401);
    expect(refused.body.errcode).toBe('M_UNKNOWN_TOKEN');
    expect((await api.login(acct.user_id, PASSWORD).expect(403)).body.errcode).toBe('M_FORBIDDEN');
    const members = (await api.get(`/admin/v1/rooms/${enc(room)}`).expect(200)).body.members;
    expect(members).toEqual([{ user_id: acct.user_id, membership: 'leave' }]);
    const detail = (await api.get(url).expect(200)).body;
    expect(detail.devices).toEqual([]);
    expect(detail.rooms).toEqual([expect.objectContaining({ room_id: room, membership: 'leave' })]);
    // Evidence kept: the account, its document and its ops (the leave and the deletion among them).
    expect(detail.document.user_id).toBe(acct.user_id);
    expect((await server.resources.replicaStore.versionVector(acct.server_name))[server.resources.p2p.peerId]).toBe(5);
    const entry = (await audit())[0];
    expect(entry).toMatchObject({
      action: 'account.deactivate',
      target: acct.user_id,
      reason: 'Spam (ticket 1)',
      detail: { rooms_left: [room], devices_deleted: [login.body.device_id], tokens_revoked: 1 },
    });
    expect((await api.post(`${url}/deactivate`, { reason: 'again' }).expect(400)).body.error).toContain(
      'deactivated already',
    );

    await api.post(`${url}/reactivate`, { reason: 'Appeal granted' }).expect(200);
    const again = await api.login(acct.user_id, PASSWORD).expect(200);
    await api.matrix('get', '/_matrix/client/v3/joined_rooms', again.body.access_token, undefined).expect(200);
    expect((await audit())[0]).toMatchObject({ action: 'account.reactivate', reason: 'Appeal granted' });
  });

  it('takes an account down here (no sync, no logins) without touching its replicated state, and back', async () => {
    const acct = await account('takendown');
    const login = await api.login(acct.user_id, PASSWORD).expect(200);
    const url = `/admin/v1/accounts/${enc(acct.user_id)}`;
    const vv = await server.resources.replicaStore.versionVector(acct.server_name);
    const done = (await api.post(`${url}/takedown`, { reason: 'Court order 7' }).expect(200)).body;
    expect(done).toMatchObject({ status: 'taken_down', tokens_revoked: 1 });
    expect(server.resources.p2p.hosted()).not.toContain(acct.server_name);
    expect((await api.login(acct.user_id, PASSWORD).expect(403)).body.errcode).toBe('M_FORBIDDEN');
    // No op was written: its other homes keep the account as it was.
    expect(await server.resources.replicaStore.versionVector(acct.server_name)).toEqual(vv);
    expect((await api.get(url).expect(200)).body.devices).toEqual([
      expect.objectContaining({ device_id: login.body.device_id }),
    ]);
    await api.post(`${url}/reactivate`, { reason: 'Order lifted' }).expect(200);
    expect(server.resources.p2p.hosted()).toContain(acct.server_name);
    await api.login(acct.user_id, PASSWORD).expect(200);
    const actions = (await audit()).slice(0, 2).map((e) => e.action);
    expect(actions).toEqual(['account.reactivate', 'account.takedown']);
  });

  it('resets the password with a replicated verifier, ending the tokens, and deletes a device with an op', async () => {
    const acct = await account('forgetful');
    const login = await api.login(acct.user_id, PASSWORD).expect(200);
    const url = `/admin/v1/accounts/${enc(acct.user_id)}`;
    const short = await api.post(`${url}/password`, { password: 'short', reason: 'x' }).expect(400);
    expect(short.body.error).toContain('password');
    await api.post(`${url}/password`, { password: 'a new password', reason: 'User asked by phone' }).expect(200);
    await api.login(acct.user_id, PASSWORD).expect(403);
    await api.matrix('get', '/_matrix/client/v3/joined_rooms', login.body.access_token, undefined).expect(401);
    const state = await server.resources.replicaStore.state(acct.server_name);
    const row = await server.resources.repositories.accounts.findByServerName(acct.server_name);
    expect(state.password['verifier']?.['verifier']).toBe(row?.passwordHash);

    const second = await api.login(acct.user_id, 'a new password').expect(200);
    const device = second.body.device_id as string;
    const missing = await api.delete(`${url}/devices/NOSUCH`, { reason: 'x' }).expect(404);
    expect(missing.body.error).toContain('NOSUCH');
    await api.delete(`${url}/devices/${device}`, { reason: 'Lost phone' }).expect(200);
    expect((await api.get(`${url}/devices`).expect(200)).body.chunk.map((d: Json) => d['device_id'])).not.toContain(
      device,
    );
    await api.matrix('get', '/_matrix/client/v3/joined_rooms', second.body.access_token, undefined).expect(401);
    const entries = await audit();
    expect(entries.slice(0, 2)).toEqual([
      expect.objectContaining({ action: 'device.delete', reason: 'Lost phone', detail: { device_id: device } }),
      expect.objectContaining({ action: 'account.password', reason: 'User asked by phone' }),
    ]);
    const byTarget = await api.get(`/admin/v1/audit?target=${enc(acct.user_id)}&limit=1`).expect(200);
    expect(byTarget.body.chunk).toEqual([entries[0]]);
    const next = await api.get(`/admin/v1/audit?target=${enc(acct.user_id)}&limit=1&from=${byTarget.body.next_from}`);
    expect(next.body.chunk).toEqual([entries[1]]);
  });

  it('counts accounts, devices, rooms, events and ops', async () => {
    const stats = (await api.get('/admin/v1/stats').expect(200)).body;
    const accounts = (await api.get('/admin/v1/accounts?limit=500').expect(200)).body.chunk.length;
    expect(stats.accounts).toBe(accounts);
    expect(stats.accounts_by_status).toEqual({ active: accounts });
    expect(stats.rooms).toBe(2);
    expect(stats.events).toBeGreaterThan(10);
    expect(stats.ops).toBeGreaterThan(stats.devices);
    expect(stats.ops_per_second).toBe(0);
    expect(stats.delivery_backlog).toEqual([]);
    expect(stats.room_delivery_backlog).toEqual([]);
  });

  it('deletes a room: the users hosted here leave and forget it, with an audit entry; bad input changes nothing', async () => {
    const owner = await account('roomowner');
    const guest = await account('roomguest');
    const ownerToken = (await api.login(owner.user_id, PASSWORD).expect(200)).body.access_token as string;
    const guestToken = (await api.login(guest.user_id, PASSWORD).expect(200)).body.access_token as string;
    const room = (await api.matrix('post', '/_matrix/client/v3/createRoom', ownerToken, { invite: [guest.user_id] }))
      .body.room_id as string;
    await api.matrix('post', `/_matrix/client/v3/join/${enc(room)}`, guestToken, {}).expect(200);
    const url = `/admin/v1/rooms/${enc(room)}`;

    const before = await audit();
    for (const [res, errcode] of [
      [await api.delete(url), 'M_INVALID_PARAM'],
      [await api.delete(url, { reason: ' ' }), 'M_INVALID_PARAM'],
      [await api.delete(`/admin/v1/rooms/${enc('!nothere:x')}`, { reason: 'Spam' }), 'M_NOT_FOUND'],
      [await api.delete(`/admin/v1/rooms/${enc('room')}`, { reason: 'Spam' }), 'M_INVALID_PARAM'],
    ] as const) {
      expect([res.status, res.body.errcode]).toEqual([errcode === 'M_NOT_FOUND' ? 404 : 400, errcode]);
    }
    expect(await audit()).toEqual(before);
    const joined = async (token: string): Promise<string[]> =>
      (await api.matrix('get', '/_matrix/client/v3/joined_rooms', token).expect(200)).body.joined_rooms;
    expect(await joined(guestToken)).toContain(room);

    const done = (await api.delete(url, { reason: 'Abuse report 77' }).expect(200)).body;
    const both = [owner.user_id, guest.user_id].sort();
    expect(done).toEqual({ room_id: room, left: both, forgotten: both, failed: [], blocked: false });
    expect(await joined(ownerToken)).not.toContain(room);
    expect(await joined(guestToken)).not.toContain(room);
    const members = (await api.get(url).expect(200)).body.members as Json[];
    expect(members.map((m) => m['membership'])).toEqual(['leave', 'leave']);
    // Forgotten: not even in a /sync that asks for left rooms.
    const filter = encodeURIComponent(JSON.stringify({ room: { include_leave: true } }));
    const sync = (await api.matrix('get', `/_matrix/client/v3/sync?filter=${filter}`, guestToken).expect(200)).body;
    expect(Object.keys(sync.rooms?.leave ?? {})).not.toContain(room);
    expect((await audit())[0]).toMatchObject({ action: 'room.delete', target: room, reason: 'Abuse report 77' });
  });

  it('blocks a room: no user here may join it or be invited into it, members stay; unblocks; deletes with block', async () => {
    const owner = await account('blockowner');
    const guest = await account('blockguest');
    const ownerToken = (await api.login(owner.user_id, PASSWORD).expect(200)).body.access_token as string;
    const guestToken = (await api.login(guest.user_id, PASSWORD).expect(200)).body.access_token as string;
    const room = (await api.matrix('post', '/_matrix/client/v3/createRoom', ownerToken, { name: 'Blocked room' })).body
      .room_id as string;
    const url = `/admin/v1/rooms/${enc(room)}`;
    const join = (token: string, roomId = room) =>
      api.matrix('post', `/_matrix/client/v3/join/${enc(roomId)}`, token, {});
    const invite = () =>
      api.matrix('post', `/_matrix/client/v3/rooms/${enc(room)}/invite`, ownerToken, { user_id: guest.user_id });
    const refusedAsBlocked = (res: request.Response, roomId = room) => {
      expect([res.status, res.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      expect(res.body.error).toBe(`Room ${roomId} is blocked by the server's administrator.`);
    };

    const before = await audit();
    for (const [res, errcode] of [
      [await api.put(`${url}/block`, { block: true }), 'M_INVALID_PARAM'],
      [await api.put(`${url}/block`, { block: true, reason: ' ' }), 'M_INVALID_PARAM'],
      [await api.put(`${url}/block`, { reason: 'Spam' }), 'M_INVALID_PARAM'],
      [await api.put(`${url}/block`, { block: 'yes', reason: 'Spam' }), 'M_INVALID_PARAM'],
      [await api.put(`${url}/block`, { block: true, reason: 'Spam', extra: 1 }), 'M_INVALID_PARAM'],
      [await api.put(`/admin/v1/rooms/${enc('room')}/block`, { block: true, reason: 'Spam' }), 'M_INVALID_PARAM'],
      [await api.get(`/admin/v1/rooms/${enc('room')}/block`), 'M_INVALID_PARAM'],
      [await api.delete(url, { reason: 'Spam', block: 'yes' }), 'M_INVALID_PARAM'],
    ] as const) {
      expect([res.status, res.body.errcode]).toEqual([400, errcode]);
    }
    expect(await audit()).toEqual(before);
    expect((await api.get(`${url}/block`).expect(200)).body).toEqual({ room_id: room, block: false });

    const blocked = (await api.put(`${url}/block`, { block: true, reason: 'Spam room (ticket 12)' }).expect(200)).body;
    expect(blocked).toEqual({
      room_id: room,
      block: true,
      reason: 'Spam room (ticket 12)',
      blocked_at: expect.any(String),
    });
    expect((await api.get(`${url}/block`).expect(200)).body).toEqual(blocked);
    expect((await api.get(url).expect(200)).body.block).toEqual({
      reason: 'Spam room (ticket 12)',
      blocked_at: blocked.blocked_at,
    });
    const listed = (await api.get('/admin/v1/rooms?search=blocked%20room').expect(200)).body.chunk;
    expect(listed).toEqual([expect.objectContaining({ room_id: room, blocked: true })]);
    // Neither an invite of a user hosted here nor a join (plain HTTP, as any client) gets through.
    refusedAsBlocked(await invite());
    refusedAsBlocked(await join(guestToken));
    // Members stay, and the room works for them.
    await api
      .matrix('put', `/_matrix/client/v3/rooms/${enc(room)}/send/m.room.message/t1`, ownerToken, {
        msgtype: 'm.text',
        body: 'still here',
      })
      .expect(200);
    const members = (await api.get(url).expect(200)).body.members as Json[];
    expect(members).toEqual([{ user_id: owner.user_id, membership: 'join' }]);
    // A room not held here can be blocked too: the join is refused before any other server is asked.
    const elsewhere = '!elsewhere:example.org';
    await api.put(`/admin/v1/rooms/${enc(elsewhere)}/block`, { block: true, reason: 'Known spam' }).expect(200);
    refusedAsBlocked(await join(guestToken, elsewhere), elsewhere);

    const lifted = (await api.put(`${url}/block`, { block: false, reason: 'Cleaned up' }).expect(200)).body;
    expect(lifted).toEqual({ room_id: room, block: false });
    expect((await api.get('/admin/v1/rooms?search=blocked%20room').expect(200)).body.chunk[0].blocked).toBe(false);
    await invite().expect(200);
    await join(guestToken).expect(200);
    // Lifting a block that is not there changes nothing, and says so in the audit log.
    await api.put(`${url}/block`, { block: false, reason: 'Again' }).expect(200);
    const entries = (await audit()).slice(0, 4);
    expect(entries.map((e) => [e['action'], e['target'], e['reason'], e['detail']])).toEqual([
      ['room.unblock', room, 'Again', { changed: false }],
      ['room.unblock', room, 'Cleaned up', { changed: true }],
      ['room.block', elsewhere, 'Known spam', { changed: true }],
      ['room.block', room, 'Spam room (ticket 12)', { changed: true }],
    ]);

    // Deleting with block: both leave, and neither can come back.
    const done = (await api.delete(url, { reason: 'Abuse report 78', block: true }).expect(200)).body;
    const both = [owner.user_id, guest.user_id].sort();
    expect(done).toEqual({ room_id: room, left: both, forgotten: both, failed: [], blocked: true });
    refusedAsBlocked(await join(ownerToken));
    refusedAsBlocked(await join(guestToken));
    expect((await api.get(url).expect(200)).body.block.reason).toBe('Abuse report 78');
    expect((await audit())[0]).toMatchObject({
      action: 'room.delete',
      target: room,
      reason: 'Abuse report 78',
      detail: { blocked: true },
    });
  });
});

describe('the admin API of one server home acting for an account co-hosted on another', () => {
  let a: TestServer;
  let b: TestServer;
  let userId: string;
  let serverName: string;
  let closedB = false;

  beforeAll(async () => {
    const backend = SERVER_BACKENDS[0];
    [a, b] = await Promise.all([startTestServer(backend, { ADMIN_TOKEN }), startTestServer(backend, { ADMIN_TOKEN })]);
    await Promise.all([a.app.listen(0, '127.0.0.1'), b.app.listen(0, '127.0.0.1')]);
    const created = await clientsOf(a).post('/admin/v1/accounts', { localpart: 'twohomes', password: PASSWORD });
    ({ user_id: userId, server_name: serverName } = created.body);
    const document = await a.app.get(AccountsService).addHome(userId, b.app.get(AccountsService).selfHome());
    await b.app.get(AccountsService).hostCoHosted(document, null);
    expect((b.app.getHttpServer().address() as AddressInfo).port).toBeGreaterThan(0);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), closedB ? undefined : b?.close()]);
  });

  it('deletes on A a device logged in on B, and B drops it; a password reset on A is the one B checks', async () => {
    const onB = clientsOf(b);
    const onA = clientsOf(a);
    await waitFor(
      async () => (await b.resources.replicaStore.state(serverName)).password['verifier'] !== undefined,
      'the password verifier to reach B',
    );
    const login = await onB.login(userId, PASSWORD).expect(200);
    const device = login.body.device_id as string;
    await waitFor(async () => {
      const devices = (await onA.get(`/admin/v1/accounts/${enc(userId)}/devices`)).body.chunk as Json[] | undefined;
      return devices?.some((d) => d['device_id'] === device && d['home'] === b.resources.p2p.peerId) ?? false;
    }, 'the device logged in on B to reach A');
    await onA.delete(`/admin/v1/accounts/${enc(userId)}/devices/${device}`, { reason: 'Stolen laptop' }).expect(200);
    await waitFor(
      async () => (await b.resources.replicaStore.state(serverName)).devices[device] === undefined,
      'the deletion to reach B',
    );
    await onA
      .post(`/admin/v1/accounts/${enc(userId)}/password`, { password: 'rotated password', reason: 'Rotation' })
      .expect(200);
    await waitFor(async () => (await onB.login(userId, 'rotated password')).status === 200, 'B to take the reset');
    await onB.login(userId, PASSWORD).expect(403);
    // A's audit log has both; B's has none (the actions were A's operator's).
    expect((await onA.get('/admin/v1/audit').expect(200)).body.chunk.map((e: Json) => e['action'])).toEqual([
      'account.password',
      'device.delete',
    ]);
    expect((await onB.get('/admin/v1/audit').expect(200)).body.chunk).toEqual([]);
    // The backlog figure of A names B once B has acknowledged (or not) what A holds.
    await waitFor(async () => {
      const stats = (await onA.get('/admin/v1/stats').expect(200)).body;
      return stats.delivery_backlog.some((h: Json) => h['peer_id'] === b.resources.p2p.peerId);
    }, 'A to list B in its delivery backlog');
  });

  it('lists in room_delivery_backlog the room events A owes B while B is down', async () => {
    const onA = clientsOf(a);
    const token = (await onA.post(`/admin/v1/accounts/${enc(userId)}/login-token`, {}).expect(201)).body.login_token;
    const login = await request(a.app.getHttpServer())
      .post('/_matrix/client/v3/login')
      .send({ type: 'm.login.token', token })
      .expect(200);
    const peerB = b.resources.p2p.peerId;
    await b.close();
    closedB = true;
    // A room made on A goes to every home of the account: B is down, so its events wait in A's outbox.
    await onA.matrix('post', '/_matrix/client/v3/createRoom', login.body.access_token, {}).expect(200);
    await waitFor(async () => {
      const stats = (await onA.get('/admin/v1/stats').expect(200)).body;
      return stats.room_delivery_backlog.some(
        (h: Json) => h['peer_id'] === peerB && typeof h['pending_events'] === 'number' && h['pending_events'] > 0,
      );
    }, "A to list B's owed room events in its room delivery backlog");
  });
});
