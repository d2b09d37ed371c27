import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const LIMIT = 3;

describe.each(SERVER_BACKENDS)('rate limit of unauthenticated routes on $name', (backend) => {
  let server: TestServer;
  const http = () => request(server.app.getHttpServer());

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: String(LIMIT) });
  });
  afterAll(async () => {
    await server?.close();
  });

  it(`admits ${LIMIT} requests a minute to /health, then answers 429 M_LIMIT_EXCEEDED with retry_after_ms and Retry-After`, async () => {
    for (let i = 0; i < LIMIT; i++) {
      const ok = await http().get('/health').expect(200);
      // No X-RateLimit-* headers: they would tell anyone the limits.
      expect(Object.keys(ok.headers).filter((h) => h.startsWith('x-ratelimit'))).toEqual([]);
    }
    const res = await http().get('/health').expect(429);
    expect(res.body).toEqual({
      errcode: 'M_LIMIT_EXCEEDED',
      error: expect.any(String),
      retry_after_ms: expect.any(Number),
    });
    expect(res.body.retry_after_ms).toBeGreaterThan(0);
    expect(res.body.retry_after_ms).toBeLessThanOrEqual(60_000);
    expect(res.headers['retry-after']).toBe(String(res.body.retry_after_ms / 1000));
  });

  it('counts each route on its own: /metrics still answers', async () => {
    await http().get('/metrics').expect(200);
  });

  it('never limits admin routes, which need the token anyway', async () => {
    for (let i = 0; i < LIMIT * 3; i++) {
      await http().get('/admin/v1/node').set('Authorization', `Bearer ${ADMIN_TOKEN}`).expect(200);
    }
    // Without a token the guard answers, not the limit.
    for (let i = 0; i < LIMIT + 1; i++) await http().get('/admin/v1/node').expect(401);
  });

  it('counts the refusal in the metrics', async () => {
    const text = (await http().get('/metrics').expect(200)).text;
    expect(text).toContain('polyhome_http_requests_total{method="GET",route="/health",status="429"} 1');
  });
});

describe('RATE_LIMIT_PER_MINUTE=0', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer(SERVER_BACKENDS[0], { RATE_LIMIT_PER_MINUTE: '0' });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('turns the limit off', async () => {
    for (let i = 0; i < 20; i++) await request(server.app.getHttpServer()).get('/health').expect(200);
  });
});

describe('security headers', () => {
  let server: TestServer;
  const http = () => request(server.app.getHttpServer());

  beforeAll(async () => {
    server = await startTestServer(SERVER_BACKENDS[0], { ADMIN_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('are on /health, with a CSP that lets the JSON API load nothing', async () => {
    const res = await http().get('/health').expect(200);
    expect(res.headers).toMatchObject({
      'content-security-policy': "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'",
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-resource-policy': 'cross-origin',
      'x-dns-prefetch-control': 'off',
      'x-permitted-cross-domain-policies': 'none',
    });
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('are on errors too (401, 404)', async () => {
    for (const path of ['/admin/v1/node', '/no/such/route']) {
      const res = await http().get(path);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    }
  });
});
