import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

interface Operation {
  tags?: string[];
  security?: unknown[];
  parameters?: Array<{ name: string; in: string }>;
  responses: Record<string, unknown>;
}

describe('OpenAPI document of the admin API', () => {
  let server: TestServer;
  let doc: {
    openapi: string;
    info: { title: string; version: string };
    security: unknown[];
    components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  };
  const http = () => request(server.app.getHttpServer());

  beforeAll(async () => {
    server = await startTestServer(SERVER_BACKENDS[0], { ADMIN_TOKEN });
    doc = (await http().get('/admin/docs-json').expect(200)).body;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('is served at /admin/docs-json without a token', () => {
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info).toMatchObject({ title: 'polyhome admin API', version: '0.1.0' });
  });

  it('declares the admin bearer scheme and requires it for the whole document', () => {
    expect(doc.components.securitySchemes['admin']).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ admin: [] }]);
  });

  it('holds the admin routes only, each tagged and answering 401 in the error shape', () => {
    const paths = Object.keys(doc.paths);
    expect(paths).toEqual(expect.arrayContaining(['/admin/v1/node', '/admin/v1/queues']));
    expect(paths.every((p) => p.startsWith('/admin/v1/'))).toBe(true);
    const node = doc.paths['/admin/v1/node']?.get;
    expect(node?.tags).toEqual(['node']);
    expect(node?.security).toEqual([{ admin: [] }]);
    expect(node?.responses).toHaveProperty('200');
    expect(node?.responses).toHaveProperty('401');
    expect(doc.components.schemas).toHaveProperty('NodeInfoDto');
    expect(doc.components.schemas).toHaveProperty('ErrorBodyDto');
  });

  it('describes the pagination query of GET /admin/v1/queues and its page shape', () => {
    const queues = doc.paths['/admin/v1/queues']?.get;
    expect(queues?.parameters?.map((p) => [p.name, p.in]).sort()).toEqual([
      ['from', 'query'],
      ['limit', 'query'],
    ]);
    const limit = queues?.parameters?.find((p) => p.name === 'limit') as { schema?: unknown } | undefined;
    expect(limit?.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 500, default: 100 });
    expect(doc.components.schemas['QueuesPageDto']).toMatchObject({
      properties: { chunk: { type: 'array' }, next_from: { type: 'string' } },
      required: ['chunk'],
    });
  });

  it('tells the truth: every route it lists refuses a request without the token', async () => {
    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      const url = path.replace(/\{[^}]+\}/g, 'x');
      for (const method of METHODS) {
        if (!item[method]) continue;
        const res = await http()[method](url);
        expect([method, path, res.status]).toEqual([method, path, 401]);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2);
  });

  it('serves the Swagger UI at /admin/docs with a CSP that lets it run', async () => {
    const page = await http().get('/admin/docs').redirects(1).expect(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.text).toContain('swagger-ui-bundle.js');
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp).toContain("img-src 'self' data:");
    expect(csp).not.toContain('upgrade-insecure-requests');
    // The assets the page loads, all from this origin.
    for (const src of page.text.matchAll(/<script src="([^"]+)"/g)) {
      const asset = new URL(src[1]!, 'http://h/admin/docs/').pathname;
      await http().get(asset).expect(200);
    }
    const init = await http().get('/admin/docs/swagger-ui-init.js').expect(200);
    expect(init.text).toContain('/admin/v1/queues');
    expect(init.text).not.toContain(ADMIN_TOKEN);
  });
});
