// Helpers of the room process tests (test/rooms-*.test.ts): matrix-js-sdk clients logged in on a server
// process or a client home, and a room's messages as `/messages` pages back through them.
import { createClient, Direction, type MatrixClient } from 'matrix-js-sdk';
import type { ServerProcess } from './server-process.js';

/** One `m.room.message` of a room: its event ID and body. */
export interface Message {
  id: string;
  body: string;
}

/** Hosts `localpart` on a server and returns a matrix-js-sdk client logged in with its password. */
export async function hostedClient(server: ServerProcess, localpart: string): Promise<MatrixClient> {
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

/** A matrix-js-sdk client logged in at `baseUrl` with a login token (`m.login.token`). */
export async function tokenClient(baseUrl: string, token: string): Promise<MatrixClient> {
  const answer = await createClient({ baseUrl }).loginRequest({ type: 'm.login.token', token });
  return createClient({
    baseUrl,
    userId: answer.user_id,
    accessToken: answer.access_token,
    deviceId: answer.device_id,
  });
}

/**
 * The room's messages, oldest first, as `/messages` pages back (100 a page) from `from` (the newest when null)
 * to the start, or to the first event `known` holds (not included): a gap a limited `/sync` timeline left.
 */
export async function roomMessages(
  client: MatrixClient,
  roomId: string,
  from: string | null = null,
  known: ReadonlySet<string> = new Set(),
): Promise<Message[]> {
  const found: Message[] = [];
  let token = from;
  for (let pages = 0; pages < 100; pages++) {
    const page = await client.createMessagesRequest(roomId, token, 100, Direction.Backward);
    for (const event of page.chunk) {
      if (known.has(event.event_id)) return found.reverse();
      if (event.type === 'm.room.message') found.push({ id: event.event_id, body: String(event.content['body']) });
    }
    if (page.end === undefined || page.chunk.length === 0) break;
    token = page.end;
  }
  return found.reverse();
}

/** The bodies of the room's messages, oldest first (`roomMessages`). */
export async function messages(client: MatrixClient, roomId: string): Promise<string[]> {
  return (await roomMessages(client, roomId)).map((m) => m.body);
}

/** A client of `userId` on a server home, logged in with a login token from the server's admin API. */
export async function serverClient(server: ServerProcess, userId: string): Promise<MatrixClient> {
  const made = await server.admin('POST', `/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`, {});
  if (made.status !== 201) throw new Error(`login token on ${server.init.name}: ${JSON.stringify(made.body)}`);
  return tokenClient(`http://127.0.0.1:${server.port}`, String(made.body['login_token']));
}
