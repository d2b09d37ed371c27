// SQL statements of the room writes of the Matrix client API (issue 14), on real PostgreSQL and PGlite: one
// createRoom (public_chat with a name, as `npm run load` makes it: 7 events), one message, one join and one leave,
// each counted by the storage drivers (sqlStatementsSent) over the request and everything it sets off: the
// account's membership op, the change feed's append, and the federation fan-out of the new events. The server
// runs in this process; the test waits for that work with the change feed's drain() and federation's idle().
import type { INestApplication } from '@nestjs/common';
import { sqlStatementsSent } from '@polyhome/storage';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostedUser } from '../apps/server/src/testing/matrix-user.js';
import { startTestServer, SERVER_BACKENDS, type TestServer } from '../apps/server/src/testing/server-harness.js';
import { ChangeFeedService } from '../libs/matrix/src/sync/change-feed.service.js';

const ADMIN_TOKEN = 'room-statements-admin-token';
const PASSWORD = 'room statements password';
const V3 = '/_matrix/client/v3';

/** Upper bounds: the whole of a request and what it sets off (see the file comment; 240, 31, 49, 51 before issue 14). */
const LIMITS = { createRoom: 44, message: 17, join: 32, leave: 34 };

describe.each(SERVER_BACKENDS)('SQL statements of room writes on $name', (backend) => {
  let server: TestServer;
  let app: INestApplication;
  const tokens: Record<string, string> = {};
  const users: Record<string, string> = {};

  async function account(localpart: string): Promise<void> {
    const user = await hostedUser(server, ADMIN_TOKEN, localpart, PASSWORD);
    tokens[localpart] = user.accessToken;
    users[localpart] = user.userId;
  }

  /** Waits for the work a request set off: the change feed's appends and the federation fan-out. */
  async function settled(): Promise<void> {
    for (let round = 0; round < 3; round++) {
      await app.get(ChangeFeedService, { strict: false }).drain();
      await server.resources.p2p.federation?.idle();
    }
  }

  /** The statements of one request and what it set off, with its answer. */
  async function counted(
    who: string,
    method: 'post' | 'put',
    path: string,
    body: Record<string, unknown>,
  ): Promise<{ statements: number; body: Record<string, unknown> }> {
    await settled();
    const before = sqlStatementsSent();
    const agent = request(app.getHttpServer());
    const answer = await (method === 'post' ? agent.post(path) : agent.put(path))
      .set('Authorization', `Bearer ${tokens[who]}`)
      .send(body)
      .expect(200);
    await settled();
    return { statements: sqlStatementsSent() - before, body: answer.body as Record<string, unknown> };
  }

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0' });
    app = server.app;
    await app.listen(0, '127.0.0.1');
    await account('alice');
    await account('bob');
  }, 60_000);
  afterAll(async () => {
    await server?.close();
  });

  it('a createRoom, a message, a join and a leave stay within their statement budgets and write what they say', async () => {
    // A first room, so the counted one pays no first-time costs (the account's first room, caches).
    await counted('alice', 'post', `${V3}/createRoom`, { name: 'warm-up', preset: 'public_chat' });
    const created = await counted('alice', 'post', `${V3}/createRoom`, { name: 'counted', preset: 'public_chat' });
    const roomId = created.body['room_id'] as string;
    const room = encodeURIComponent(roomId);
    await counted('alice', 'put', `${V3}/rooms/${room}/send/m.room.message/warm-up`, { msgtype: 'm.text', body: 'a' });
    const message = await counted('alice', 'put', `${V3}/rooms/${room}/send/m.room.message/counted`, {
      msgtype: 'm.text',
      body: 'b',
    });
    const join = await counted('bob', 'post', `${V3}/join/${room}`, {});
    const leave = await counted('bob', 'post', `${V3}/rooms/${room}/leave`, {});
    const figures = {
      createRoom: created.statements,
      message: message.statements,
      join: join.statements,
      leave: leave.statements,
    };
    console.info(`${backend.name}: ${JSON.stringify(figures)}`);
    expect(figures.createRoom).toBeLessThanOrEqual(LIMITS.createRoom);
    expect(figures.message).toBeLessThanOrEqual(LIMITS.message);
    expect(figures.join).toBeLessThanOrEqual(LIMITS.join);
    expect(figures.leave).toBeLessThanOrEqual(LIMITS.leave);

    // What was written is what the client reads back.
    const state = await request(app.getHttpServer())
      .get(`${V3}/rooms/${room}/state`)
      .set('Authorization', `Bearer ${tokens['alice']}`)
      .expect(200);
    const contentOf = (type: string, key = '') =>
      (state.body as Array<{ type: string; state_key: string; content: Record<string, unknown> }>).find(
        (e) => e.type === type && e.state_key === key,
      )?.content;
    expect(contentOf('m.room.name')).toEqual({ name: 'counted' });
    expect(contentOf('m.room.join_rules')).toEqual({ join_rule: 'public' });
    expect(contentOf('m.room.member', users['alice'])).toEqual({ membership: 'join' });
    expect(contentOf('m.room.member', users['bob'])).toEqual({ membership: 'leave' });
    const page = await request(app.getHttpServer())
      .get(`${V3}/rooms/${room}/messages?dir=f&limit=20`)
      .set('Authorization', `Bearer ${tokens['alice']}`)
      .expect(200);
    const events = (page.body as { chunk: Array<{ type: string; content: Record<string, unknown> }> }).chunk;
    expect(events.map((e) => e.type)).toEqual([
      'm.room.create',
      'm.room.member',
      'm.room.power_levels',
      'm.room.join_rules',
      'm.room.history_visibility',
      'm.room.guest_access',
      'm.room.name',
      'm.room.message',
      'm.room.message',
      'm.room.member',
      'm.room.member',
    ]);
    const joined = await request(app.getHttpServer())
      .get(`${V3}/joined_rooms`)
      .set('Authorization', `Bearer ${tokens['bob']}`)
      .expect(200);
    expect(joined.body).toEqual({ joined_rooms: [] });
  });
});
