import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf, type Errcode } from '../common/api-error.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

interface Response {
  content?: { 'application/json'?: { example?: unknown; examples?: Record<string, { value: { errcode: string } }> } };
}

interface Operation {
  summary?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: Array<{ name: string; in: string }>;
  responses: Record<string, Response>;
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

  it('gives every admin operation a summary, an example answer and its error answers, each with an example', () => {
    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const where = `${method.toUpperCase()} ${path}`;
        expect([where, (op.summary ?? '').length > 10]).toEqual([where, true]);
        const statuses = Object.keys(op.responses);
        const success = statuses.filter((s) => s.startsWith('2'));
        expect([where, success.length]).toEqual([where, 1]);
        expect([where, op.responses[success[0]!]?.content?.['application/json']?.example]).not.toEqual([
          where,
          undefined,
        ]);
        const errors = statuses.filter((s) => /^4\d\d$/.test(s));
        expect([where, errors]).toEqual([where, expect.arrayContaining(['401'])]);
        // A path parameter can name nothing here (and a user ID be malformed); a query or a body can be refused.
        // A room's block is the exception: any room can be blocked, held here or not (as in Synapse).
        if (path.includes('{') && !path.endsWith('/block')) {
          expect([where, errors]).toEqual([where, expect.arrayContaining(['404'])]);
        }
        if (path.includes('{userId}')) expect([where, errors]).toEqual([where, expect.arrayContaining(['400'])]);
        if ((op.parameters ?? []).some((p) => p.in === 'query') || method === 'post') {
          expect([where, errors]).toEqual([where, expect.arrayContaining(['400'])]);
        }
        // Each error answer past 401 shows an example body per errcode, and the errcode fits the status.
        for (const status of errors.filter((s) => s !== '401')) {
          const examples = Object.values(op.responses[status]?.content?.['application/json']?.examples ?? {});
          expect([where, status, examples.length > 0]).toEqual([where, status, true]);
          for (const example of examples) {
            expect([where, String(statusOf(example.value.errcode as Errcode))]).toEqual([where, status]);
          }
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(15);
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

  it('pages every list route the same way: `limit` and `from` in, `chunk` and `next_from` out', () => {
    const lists = Object.entries(doc.paths).filter(([, item]) => {
      const example = item.get?.responses['200']?.content?.['application/json']?.example;
      return typeof example === 'object' && example !== null && 'chunk' in example;
    });
    expect(lists.map(([path]) => path)).toEqual(
      expect.arrayContaining([
        '/admin/v1/accounts',
        '/admin/v1/accounts/{userId}/devices',
        '/admin/v1/accounts/{userId}/memberships',
        '/admin/v1/rooms',
        '/admin/v1/audit',
        '/admin/v1/queues',
      ]),
    );
    for (const [path, item] of lists) {
      const query = (item.get?.parameters ?? []).filter((p) => p.in === 'query').map((p) => p.name);
      expect([path, query]).toEqual([path, expect.arrayContaining(['from', 'limit'])]);
    }
  });

  it('asks every destructive route for a reason', () => {
    const destructive = Object.entries(doc.paths).flatMap(([path, item]) =>
      (['post', 'delete'] as const)
        .filter(
          (m) =>
            item[m] !== undefined &&
            /deactivate|takedown|reactivate|password|^DELETE/.test(`${m === 'delete' ? 'DELETE' : ''}${path}`),
        )
        .map((m) => [m, path, item[m]!] as const),
    );
    expect(destructive.length).toBeGreaterThanOrEqual(7);
    for (const [method, path, op] of destructive) {
      if (path.startsWith('/admin/v1/enrollment-tokens')) continue;
      const body = (op as { requestBody?: { content?: Record<string, { schema?: { $ref?: string } }> } }).requestBody;
      const ref = body?.content?.['application/json']?.schema?.$ref ?? '';
      const schema = doc.components.schemas[ref.split('/').pop() ?? ''] as { required?: string[] } | undefined;
      expect([method, path, schema?.required]).toEqual([method, path, expect.arrayContaining(['reason'])]);
    }
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
