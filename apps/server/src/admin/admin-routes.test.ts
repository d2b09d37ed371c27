// Every admin route, as the OpenAPI document lists them, refuses a request without the token and one with
// a wrong token: a route added without the guard fails here.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

describe('admin routes', () => {
  let server: TestServer;
  let routes: Array<[string, string]>;

  beforeAll(async () => {
    server = await startTestServer(SERVER_BACKENDS[0], { ADMIN_TOKEN: 'admin-routes-test-token' });
    const doc = await request(server.app.getHttpServer()).get('/admin/docs-json').expect(200);
    const paths = doc.body.paths as Record<string, Record<string, unknown>>;
    routes = Object.entries(paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method): [string, string] => [method, path.replace(/\{[^}]+\}/g, 'x')]),
    );
  });
  afterAll(async () => {
    await server?.close();
  });

  it('lists the admin routes in the OpenAPI document', () => {
    const paths = routes.map(([, path]) => path);
    for (const expected of [
      '/admin/v1/node',
      '/admin/v1/accounts',
      '/admin/v1/queues',
      '/admin/v1/peers',
      '/admin/v1/relay',
    ]) {
      expect(paths).toContain(expected);
    }
    expect(routes.every(([, path]) => path.startsWith('/admin/v1/'))).toBe(true);
  });

  it('shows the relay, its limits and its reservations (none yet)', async () => {
    const answer = await request(server.app.getHttpServer())
      .get('/admin/v1/relay')
      .set('Authorization', 'Bearer admin-routes-test-token')
      .expect(200);
    expect(answer.body).toEqual({
      enabled: true,
      limits: { max_reservations: 128, reservation_ttl_ms: 7_200_000, data_limit_bytes: 0, duration_limit_ms: 0 },
      reservations: [],
    });
  });

  it('refuses every one without a token (M_MISSING_TOKEN) and with a wrong one (M_UNKNOWN_TOKEN)', async () => {
    const http = request(server.app.getHttpServer());
    for (const [method, path] of routes) {
      const call = (m: string) => (http as unknown as Record<string, (p: string) => request.Test>)[m]!(path);
      const missing = await call(method).send({});
      expect([method, path, missing.status, missing.body.errcode]).toEqual([method, path, 401, 'M_MISSING_TOKEN']);
      const wrong = await call(method).set('Authorization', 'Bearer wrong-wrong-wrong-wrong').send({});
      expect([method, path, wrong.status, wrong.body.errcode]).toEqual([method, path, 401, 'M_UNKNOWN_TOKEN']);
    }
  });
});
