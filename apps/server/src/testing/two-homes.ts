// One account on two server homes, a matrix-js-sdk client logged in on each: A holds the password, B co-hosts
// from the document A signs and logs its client in with a login token.
import type { AddressInfo } from 'node:net';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import request from 'supertest';
import { AccountsService } from '../accounts/accounts.service.js';
import { startTestServer, type ServerBackend, type TestServer } from './server-harness.js';

/** The password of the account the two homes share. */
export const TWO_HOMES_PASSWORD = 'correct horse battery staple';

/** The two started homes, their base URLs, the account's user ID and a client on each. */
export interface TwoHomes {
  a: TestServer;
  b: TestServer;
  urlA: string;
  urlB: string;
  userId: string;
  clientA: MatrixClient;
  clientB: MatrixClient;
  close(): Promise<void>;
}

async function listen(server: TestServer): Promise<string> {
  await server.app.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${(server.app.getHttpServer().address() as AddressInfo).port}`;
}

/** Starts two server homes on `backend`, makes `alice` on A, co-hosts her on B and logs a client in on each. */
export async function startTwoHomes(backend: ServerBackend, adminToken: string): Promise<TwoHomes> {
  const [a, b] = await Promise.all([
    startTestServer(backend, { ADMIN_TOKEN: adminToken }),
    startTestServer(backend, { ADMIN_TOKEN: adminToken }),
  ]);
  const close = async (): Promise<void> => {
    await Promise.all([a.close(), b.close()]);
  };
  try {
    const [urlA, urlB] = await Promise.all([listen(a), listen(b)]);
    const created = await request(a.app.getHttpServer())
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${adminToken}`)
      .send({ localpart: 'alice', password: TWO_HOMES_PASSWORD })
      .expect(201);
    const userId = created.body.user_id as string;
    // A signs a document naming both homes with the account's root key; B co-hosts from it.
    const document = await a.app.get(AccountsService).addHome(userId, b.app.get(AccountsService).selfHome());
    await b.app.get(AccountsService).hostCoHosted(document, null);
    const login = await createClient({ baseUrl: urlA }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: TWO_HOMES_PASSWORD,
    });
    const clientA = createClient({ baseUrl: urlA, userId, accessToken: login.access_token, deviceId: login.device_id });
    // B holds no password for a co-hosted account: its client logs in with a login token made on B.
    const token = await request(b.app.getHttpServer())
      .post(`/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`)
      .set('Authorization', `Bearer ${adminToken}`)
      .expect(201);
    const loginB = await createClient({ baseUrl: urlB }).loginRequest({
      type: 'm.login.token',
      token: token.body.login_token,
    });
    const clientB = createClient({
      baseUrl: urlB,
      userId,
      accessToken: loginB.access_token,
      deviceId: loginB.device_id,
    });
    return { a, b, urlA, urlB, userId, clientA, clientB, close };
  } catch (err) {
    await close();
    throw err;
  }
}
