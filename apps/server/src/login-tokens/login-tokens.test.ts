import { table } from '@polyhome/storage/testing';
import { makeAccount } from '@polyhome/sync/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';
import { LOGIN_TOKEN_LIFETIME_MS, LoginTokensService } from './login-tokens.service.js';

const ADMIN_TOKEN = 'login-token-test-admin-token';

describe.each(SERVER_BACKENDS)('login tokens on $name', (backend) => {
  let server: TestServer;
  let account: { user_id: string; server_name: string };
  const http = () => request(server.app.getHttpServer());
  const issue = (userId: string) =>
    http()
      .post(`/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`)
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`);
  const probe = () => table(server.resources.storage, 'login_token');
  const tokens = () => ({
    findBy: (where: { serverName: string }) => probe().rows(where),
    countBy: (where: { serverName: string }) => probe().count(where),
    update: (where: { serverName: string }, set: { expiresAt: Date }) => probe().update(where, set),
  });

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
    account = (
      await http()
        .post('/admin/v1/accounts')
        .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
        .send({ localpart: 'tokened' })
        .expect(201)
    ).body;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('issues a two-minute token, stores only its hash, and accepts it once', async () => {
    const res = await issue(account.user_id).expect(201);
    expect(res.body).toEqual({ login_token: expect.stringMatching(/^phl_[A-Za-z0-9_-]{43}$/), expires_in_ms: 120_000 });
    expect(LOGIN_TOKEN_LIFETIME_MS).toBe(120_000);
    const rows = await tokens().findBy({ serverName: account.server_name });
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(res.body.login_token);
    const service = server.app.get(LoginTokensService);
    await expect(service.consume(res.body.login_token)).resolves.toBe(account.server_name);
    await expect(service.consume(res.body.login_token)).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
    expect(await tokens().countBy({ serverName: account.server_name })).toBe(0);
  });

  it('refuses an expired token, and forgets it', async () => {
    const { login_token } = (await issue(account.user_id).expect(201)).body;
    await tokens().update({ serverName: account.server_name }, { expiresAt: new Date(Date.now() - 1) });
    const service = server.app.get(LoginTokensService);
    await expect(service.consume(login_token)).rejects.toMatchObject({
      errcode: 'M_FORBIDDEN',
      message: expect.stringContaining('expired'),
    });
    await expect(service.consume(login_token)).rejects.toMatchObject({ errcode: 'M_FORBIDDEN' });
  });

  it('accepts a token once even when two logins race for it', async () => {
    const { login_token } = (await issue(account.user_id).expect(201)).body;
    const service = server.app.get(LoginTokensService);
    const results = await Promise.allSettled([service.consume(login_token), service.consume(login_token)]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
  });

  it('refuses an unknown token', async () => {
    await expect(server.app.get(LoginTokensService).consume('phl_unknown')).rejects.toMatchObject({
      errcode: 'M_FORBIDDEN',
    });
  });

  it('answers 404 for an account not hosted here, 400 for a bad user ID, 401 without the admin token', async () => {
    const missing = await issue(makeAccount({ seed: 'not-hosted-here', homes: 1 }).userId).expect(404);
    expect(missing.body.errcode).toBe('M_NOT_FOUND');
    const bad = await issue('not-a-user-id').expect(400);
    expect(bad.body.errcode).toBe('M_INVALID_PARAM');
    await http()
      .post(`/admin/v1/accounts/${encodeURIComponent(account.user_id)}/login-token`)
      .expect(401);
  });
});
