// Start-up endpoints of the Matrix client API, driven by matrix-js-sdk on both backend pairs: CORS and r0,
// capabilities, account data (global and per room), profile, push rules and filters, their place in /sync,
// and a client's whole start-up (startClient reaching PREPARED without help).
import type { AddressInfo } from 'node:net';
import { table } from '@polyhome/storage/testing';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUntilPrepared } from '../testing/matrix-user.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'matrix-account-admin-token';
const PASSWORD = 'correct horse battery staple';

describe.each(SERVER_BACKENDS)('Matrix account endpoints on $name', (backend) => {
  let server: TestServer;
  let baseUrl: string;
  let userId: string;
  let client: MatrixClient;
  let token: string;
  const http = () => request(server.app.getHttpServer());
  const opCount = () => table(server.resources.storage, 'op').count();

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    await server.app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(server.app.getHttpServer().address() as AddressInfo).port}`;
    const created = await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart: 'alice', password: PASSWORD })
      .expect(201);
    userId = created.body.user_id;
    const login = await createClient({ baseUrl }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: PASSWORD,
    });
    token = login.access_token;
    client = createClient({ baseUrl, userId, accessToken: token, deviceId: login.device_id });
  }, 60_000);
  afterAll(async () => {
    client?.stopClient();
    await server?.close();
  });

  it('answers CORS preflights and adds CORS headers on Matrix paths only; serves r0 as v3', async () => {
    const preflight = await http()
      .options('/_matrix/client/v3/login')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'POST')
      .expect(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
    expect(preflight.headers['access-control-allow-headers']).toContain('Authorization');
    // A preflight of a path no route serves is answered too (browsers send it before every request).
    await http().options('/_matrix/client/v3/no/such/route').expect(204);
    const versions = await http().get('/_matrix/client/versions').expect(200);
    expect(versions.headers['access-control-allow-origin']).toBe('*');
    const admin = await http().get('/admin/v1/accounts').set('Authorization', `Bearer ${ADMIN_TOKEN}`).expect(200);
    expect(admin.headers['access-control-allow-origin']).toBeUndefined();
    const r0 = await http()
      .get('/_matrix/client/r0/account/whoami')
      .set('Authorization', `Bearer ${token}`)
      .expect(200);
    expect(r0.body.user_id).toBe(userId);
    expect(r0.headers['access-control-allow-origin']).toBe('*');
  });

  it('serves capabilities, the TURN answer and .well-known', async () => {
    const caps = await client.getCapabilities();
    expect(caps['m.change_password']).toEqual({ enabled: false });
    const versions = caps['m.room_versions']!;
    expect(Object.keys(versions.available)).toContain(versions.default);
    const turn = await http().get('/_matrix/client/v3/voip/turnServer').set('Authorization', `Bearer ${token}`);
    expect(turn.status).toBe(200);
    expect(turn.body).toEqual({});
    const wellKnown = await http().get('/.well-known/matrix/client').set('Host', 'home.example:8008').expect(200);
    expect(wellKnown.body).toEqual({ 'm.homeserver': { base_url: 'http://home.example:8008' } });
  });

  it('stores account data as replicated ops: global and per room, absent is M_NOT_FOUND', async () => {
    await expect(client.getAccountDataFromServer('m.secret_storage.default_key')).resolves.toBeNull();
    const before = await opCount();
    await client.setAccountData('m.direct' as never, { '@bob:example': ['!dm:example'] } as never);
    await expect(client.getAccountDataFromServer('m.direct' as never)).resolves.toEqual({
      '@bob:example': ['!dm:example'],
    });
    // Element orders tags with floats, which signed ops cannot carry as JSON numbers: they survive as text.
    await client.setRoomAccountData(
      '!room:example',
      'm.tag' as never,
      { tags: { 'm.favourite': { order: 0.5 } } } as never,
    );
    const room = await http()
      .get(`/_matrix/client/v3/user/${encodeURIComponent(userId)}/rooms/!room:example/account_data/m.tag`)
      .set('Authorization', `Bearer ${token}`)
      .expect(200);
    expect(room.body).toEqual({ tags: { 'm.favourite': { order: 0.5 } } });
    // The room's data is not global data, and another room has none.
    await expect(client.getAccountDataFromServer('m.tag' as never)).resolves.toBeNull();
    expect(await opCount()).toBe(before + 2);
  });

  it('refuses bad account data and changes nothing', async () => {
    const before = await opCount();
    const put = (path: string, body: unknown) =>
      http()
        .put(`/_matrix/client/v3${path}`)
        .set('Authorization', `Bearer ${token}`)
        .send(body as object);
    const other = encodeURIComponent('@mallory:example');
    expect((await put(`/user/${other}/account_data/m.direct`, {})).body.errcode).toBe('M_FORBIDDEN');
    const reserved = await put(`/user/${encodeURIComponent(userId)}/account_data/m.push_rules`, {});
    expect([reserved.status, reserved.body.errcode]).toEqual([405, 'M_BAD_JSON']);
    const big = await put(`/user/${encodeURIComponent(userId)}/account_data/m.big`, { blob: 'x'.repeat(20_000) });
    expect([big.status, big.body.errcode]).toEqual([413, 'M_TOO_LARGE']);
    const notRoom = await put(`/user/${encodeURIComponent(userId)}/rooms/nope/account_data/m.tag`, {});
    expect(notRoom.body.errcode).toBe('M_INVALID_PARAM');
    const array = await put(`/user/${encodeURIComponent(userId)}/account_data/m.list`, [1, 2]);
    expect(array.status).toBe(400);
    expect(await opCount()).toBe(before);
  });

  it('sets and serves the profile; profiles of accounts not held here are M_NOT_FOUND', async () => {
    await client.setDisplayName('Alice Liddell');
    await client.setAvatarUrl('mxc://example/abc');
    await expect(client.getProfileInfo(userId)).resolves.toEqual({
      displayname: 'Alice Liddell',
      avatar_url: 'mxc://example/abc',
    });
    await expect(client.getProfileInfo(userId, 'displayname')).resolves.toEqual({ displayname: 'Alice Liddell' });
    const bad = await http()
      .put(`/_matrix/client/v3/profile/${encodeURIComponent(userId)}/avatar_url`)
      .set('Authorization', `Bearer ${token}`)
      .send({ avatar_url: 'https://example/a.png' });
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    const stranger = await http().get(`/_matrix/client/v3/profile/${encodeURIComponent('@bob:' + 'b'.repeat(64))}`);
    expect([stranger.status, stranger.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });

  it("serves the spec's default push rules and the user's rules in order, with enabled and actions", async () => {
    const rules = await client.getPushRules();
    expect(rules.global.override![0]).toMatchObject({ rule_id: '.m.rule.master', default: true, enabled: false });
    expect(rules.global.underride!.map((r) => r.rule_id)).toContain('.m.rule.message');
    const invite = rules.global.override!.find((r) => r.rule_id === '.m.rule.invite_for_me')!;
    expect(invite.conditions).toContainEqual({ kind: 'event_match', key: 'state_key', pattern: userId });

    const put = (kind: string, id: string, body: object, query = '') =>
      http()
        .put(`/_matrix/client/v3/pushrules/global/${kind}/${encodeURIComponent(id)}${query}`)
        .set('Authorization', `Bearer ${token}`)
        .send(body);
    await put('content', 'cats', { pattern: 'cat*', actions: ['notify'] }).expect(200);
    await put('content', 'dogs', { pattern: 'dog*', actions: ['notify'] }).expect(200);
    await put('content', 'birds', { pattern: 'bird*', actions: [] }, '?after=dogs').expect(200);
    await put('content', 'fish', { pattern: 'fish*', actions: [] }, '?before=cats').expect(200);
    const content = (await client.getPushRules()).global.content!.map((r) => r.rule_id);
    // New rules go on top; "after dogs" is below dogs; "before cats" is just above cats.
    expect(content).toEqual(['dogs', 'birds', 'fish', 'cats']);

    await client.setPushRuleEnabled('global', 'override' as never, '.m.rule.master', true);
    await client.setPushRuleActions('global', 'underride' as never, '.m.rule.message', ['dont_notify' as never]);
    await client.deletePushRule('global', 'content' as never, 'birds');
    const after = (await client.getPushRules()).global;
    expect(after.override![0]).toMatchObject({ rule_id: '.m.rule.master', enabled: true });
    expect(after.underride!.find((r) => r.rule_id === '.m.rule.message')!.actions).toEqual(['dont_notify']);
    expect(after.content!.map((r) => r.rule_id)).toEqual(['dogs', 'fish', 'cats']);

    const before = await opCount();
    expect((await put('override', '.m.rule.mine', { actions: [] })).body.errcode).toBe('M_INVALID_PARAM');
    expect((await put('content', 'x', { actions: [] })).body.errcode).toBe('M_MISSING_PARAM');
    expect((await put('content', 'x', { pattern: 'x', actions: [] }, '?before=nope')).status).toBe(404);
    expect((await put('bogus', 'x', { actions: [] })).body.errcode).toBe('M_INVALID_PARAM');
    const deleteDefault = await http()
      .delete('/_matrix/client/v3/pushrules/global/override/.m.rule.master')
      .set('Authorization', `Bearer ${token}`);
    expect(deleteDefault.body.errcode).toBe('M_INVALID_PARAM');
    expect(await opCount()).toBe(before);
  });

  it('stores filters per account and refuses others', async () => {
    const filter = { room: { timeline: { limit: 10 }, state: { lazy_load_members: true } } };
    // matrix-js-sdk's own filter calls, as a client makes them at start-up.
    const made = await client.createFilter(filter);
    expect(made.filterId).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
    const got = await client.getFilter(userId, made.filterId!, false);
    expect(got.getDefinition()).toEqual(filter);
    const missing = await http()
      .get(`/_matrix/client/v3/user/${encodeURIComponent(userId)}/filter/nope`)
      .set('Authorization', `Bearer ${token}`);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
    const other = await http()
      .post(`/_matrix/client/v3/user/${encodeURIComponent('@mallory:example')}/filter`)
      .set('Authorization', `Bearer ${token}`)
      .send(filter);
    expect(other.body.errcode).toBe('M_FORBIDDEN');
  });

  it('puts account data and push rules into /sync: all at first, then only what changed', async () => {
    const sync = async (since?: string) =>
      (
        await http()
          .get(`/_matrix/client/v3/sync${since === undefined ? '' : `?timeout=10000&since=${since}`}`)
          .set('Authorization', `Bearer ${token}`)
          .expect(200)
      ).body;
    const first = await sync();
    const types = first.account_data.events.map((e: { type: string }) => e.type);
    expect(types).toEqual(expect.arrayContaining(['m.direct', 'm.push_rules']));
    await client.setAccountData('m.ignored_user_list' as never, { ignored_users: {} } as never);
    const next = await sync(first.next_batch);
    expect(next.account_data.events).toEqual([{ type: 'm.ignored_user_list', content: { ignored_users: {} } }]);
  });

  it('logs in by localpart when one account here has it, and asks for the full user ID when several do', async () => {
    const byLocalpart = await createClient({ baseUrl }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'alice' },
      password: PASSWORD,
    });
    expect(byLocalpart.user_id).toBe(userId);
    const withAt = await http()
      .post('/_matrix/client/v3/login')
      .send({ type: 'm.login.password', identifier: { type: 'm.id.user', user: '@alice' }, password: PASSWORD })
      .expect(200);
    expect(withAt.body.user_id).toBe(userId);
    const wrong = await http()
      .post('/_matrix/client/v3/login')
      .send({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'nobody' }, password: PASSWORD });
    expect([wrong.status, wrong.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const twice = await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart: 'carol', password: PASSWORD })
      .expect(201);
    await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart: 'carol', password: PASSWORD, allow_duplicate_localpart: true })
      .expect(201);
    const ambiguous = await http()
      .post('/_matrix/client/v3/login')
      .send({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'carol' }, password: PASSWORD });
    expect([ambiguous.status, ambiguous.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect(ambiguous.body.error).toContain(twice.body.user_id);
  });

  it('gets a matrix-js-sdk client through start-up to PREPARED, unaided', async () => {
    const login = await createClient({ baseUrl }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'alice' },
      password: PASSWORD,
    });
    const fresh = createClient({ baseUrl, userId, accessToken: login.access_token, deviceId: login.device_id });
    try {
      const failures = await startUntilPrepared(fresh, 10);
      expect(fresh.pushRules?.global.override?.[0]?.rule_id).toBe('.m.rule.master');
      expect(fresh.getAccountData('m.direct' as never)?.getContent()).toEqual({ '@bob:example': ['!dm:example'] });
      expect(failures).toEqual([]);
    } finally {
      fresh.stopClient();
    }
  });
});
