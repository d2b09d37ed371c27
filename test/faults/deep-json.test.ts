// Deeply nested JSON sent to a real server process: class-transformer walked it recursively and overflowed the
// stack (answered 500). Every JSON body now has a depth limit before any transform: 400 M_BAD_JSON, and the
// server goes on serving. The body is sent as raw text, since the test's own JSON.stringify would overflow too.
import { MAX_JSON_DEPTH } from '@polyhome/home';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deepJson } from '../support/attacks.js';
import { ADMIN_TOKEN, startFreshServer, type FreshServer } from '../support/server-process.js';

const ADMIN_TOKEN_HEADER = { Authorization: `Bearer ${ADMIN_TOKEN}` };

describe('deeply nested JSON to a server process', () => {
  let fresh: FreshServer;

  beforeAll(async () => {
    fresh = await startFreshServer('deep-json');
  }, 180_000);
  afterAll(async () => {
    await fresh?.dispose();
  }, 60_000);

  async function post(route: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`http://127.0.0.1:${fresh.server.port}${route}`, {
      method: 'POST',
      headers: { ...headers, 'Content-Type': 'application/json' },
      body,
      signal: AbortSignal.timeout(30_000),
    });
  }

  it('answers 400 M_BAD_JSON on every route that takes JSON, and stays healthy', async () => {
    // The deepest fits the 256 KiB body limit (two bytes a level).
    for (const depth of [MAX_JSON_DEPTH + 1, 10_000, 120_000]) {
      for (const [route, headers] of [
        ['/_matrix/client/v3/login', {}],
        ['/_polyhome/v1/enroll', {}],
        ['/admin/v1/enrollment-tokens', ADMIN_TOKEN_HEADER],
      ] as const) {
        const res = await post(route, deepJson(depth), headers);
        const body = (await res.json()) as { errcode?: string; error?: string };
        expect([route, depth, res.status, body.errcode]).toEqual([route, depth, 400, 'M_BAD_JSON']);
        expect(body.error).toContain(String(MAX_JSON_DEPTH));
      }
    }
    expect((await fresh.server.health()).status).toBe(200);
  }, 120_000);

  it('still takes a body nested as deep as allowed to its usual answer', async () => {
    // Valid JSON at the limit is not refused for its depth: the route answers as for any malformed login.
    const res = await post('/_matrix/client/v3/login', deepJson(MAX_JSON_DEPTH));
    const body = (await res.json()) as { errcode?: string };
    expect(res.status).toBe(400);
    expect(body.errcode).not.toBe('M_BAD_JSON');
  });
});
