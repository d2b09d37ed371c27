import { stat } from 'node:fs/promises';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminTokenPath } from './admin/admin-token.js';
import { MAX_BODY_BYTES } from './app.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from './testing/server-harness.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';

describe.each(SERVER_BACKENDS)('server on $name', (backend) => {
  let server: TestServer;
  const http = () => request(server.app.getHttpServer());

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('GET /health reports the database and the queue up', async () => {
    const res = await http().get('/health').expect(200);
    expect(res.body).toMatchObject({
      status: 'ok',
      details: {
        database: { status: 'up', backend: backend.database },
        queue: { status: 'up', backend: backend.queue },
        p2p: { status: 'up', peer_id: expect.stringMatching(/^12D3KooW/) },
      },
    });
  });

  it('refuses /admin without a token: 401 M_MISSING_TOKEN', async () => {
    const res = await http().get('/admin/v1/node').expect(401);
    expect(res.body).toEqual({ errcode: 'M_MISSING_TOKEN', error: expect.any(String) });
  });

  it('refuses /admin with a malformed Authorization header: 401 M_MISSING_TOKEN', async () => {
    const res = await http().get('/admin/v1/node').set('Authorization', ADMIN_TOKEN).expect(401);
    expect(res.body.errcode).toBe('M_MISSING_TOKEN');
  });

  it('refuses /admin with a wrong token: 401 M_UNKNOWN_TOKEN', async () => {
    const res = await http().get('/admin/v1/node').set('Authorization', 'Bearer wrong-token-wrong-token').expect(401);
    expect(res.body).toEqual({ errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown admin token.' });
  });

  it('serves /admin with the right token', async () => {
    const res = await http().get('/admin/v1/node').set('Authorization', `Bearer ${ADMIN_TOKEN}`).expect(200);
    expect(res.body).toMatchObject({
      version: '0.1.0',
      database: backend.database,
      queue: backend.queue,
      accounts_hosted: 0,
      accounts_synced: 0,
    });
    expect(res.body.uptime_seconds).toEqual(expect.any(Number));
  });

  it('answers malformed JSON with 400 M_NOT_JSON, in the one error shape', async () => {
    const res = await http()
      .post('/admin/v1/node')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .set('Content-Type', 'application/json')
      .send('{"unterminated": ')
      .expect(400);
    expect(res.body).toEqual({ errcode: 'M_NOT_JSON', error: 'The request body is not valid JSON.' });
  });

  it('answers an oversized body with 413 M_TOO_LARGE', async () => {
    const res = await http()
      .post('/admin/v1/node')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ pad: 'x'.repeat(MAX_BODY_BYTES) }))
      .expect(413);
    expect(res.body.errcode).toBe('M_TOO_LARGE');
  });

  it('answers an unknown route with 404 M_UNRECOGNIZED', async () => {
    const res = await http().get('/no/such/route').expect(404);
    expect(res.body).toEqual({ errcode: 'M_UNRECOGNIZED', error: 'Unrecognized request.' });
  });

  it('echoes a request id and writes it, but never the token, to the logs', async () => {
    const res = await http()
      .get('/admin/v1/node')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .set('X-Request-Id', 'req-abc-123');
    expect(res.headers['x-request-id']).toBe('req-abc-123');
    const generated = await http().get('/health');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const line = server.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l['reqId'] === 'req-abc-123');
    expect(line).toMatchObject({ method: 'GET', path: '/admin/v1/node', status: 200 });
    expect(server.logs.join('\n')).not.toContain(ADMIN_TOKEN);
  });

  it('reports 503 with the failing dependency when the database is gone', async () => {
    await server.resources.storage.close();
    const res = await http().get('/health').expect(503);
    expect(res.body).toMatchObject({
      errcode: 'M_UNAVAILABLE',
      error: 'Unhealthy: database down.',
      details: { database: { status: 'down' }, queue: { status: 'up' }, p2p: { status: 'up' } },
    });
  });
});

describe('admin token generated at first start', () => {
  it('is written to DATA_DIR with mode 0600, its path logged once, the token itself never', async () => {
    const server = await startTestServer(SERVER_BACKENDS[0]);
    try {
      const file = adminTokenPath(server.db.dataDir);
      const { mode } = await stat(file);
      expect(mode & 0o777).toBe(0o600);
      const { readFile } = await import('node:fs/promises');
      const token = (await readFile(file, 'utf8')).trim();
      expect(token.length).toBeGreaterThanOrEqual(32);
      await request(server.app.getHttpServer())
        .get('/admin/v1/node')
        .set('Authorization', `Bearer ${token}`)
        .expect(200);
      expect(server.logs.filter((l) => l.includes(file))).toHaveLength(1);
      expect(server.logs.join('\n')).not.toContain(token);
    } finally {
      await server.close();
    }
  });
});
