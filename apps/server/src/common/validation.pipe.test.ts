// Regression: Nest's ValidationPipe deleted `__proto__`, `constructor` and `prototype` keys from a body in place,
// so a tampered account document whose extra key was one of them verified as the original and enrolled.
import { withTransientHost } from '@polyhome/home';
import { rawEnrollExchange } from '@polyhome/p2p/testing';
import { table } from '@polyhome/storage/testing';
import { makeHome } from '@polyhome/sync/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountAdding, loopbackAddr, serverHome } from '../testing/client-home.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';
import { findDroppedKey } from './validation.pipe.js';

const ADMIN_TOKEN = 'validation-pipe-admin-token';

describe('findDroppedKey', () => {
  it('finds the keys at any depth, as own keys only', () => {
    expect(findDroppedKey(JSON.parse('{"a":{"b":[{"__proto__":1}]}}'))).toBe('$.a.b[0].__proto__');
    expect(findDroppedKey({ x: { constructor: 0 } })).toBe('$.x.constructor');
    expect(findDroppedKey([{ prototype: null }])).toBe('$[0].prototype');
    expect(findDroppedKey({ a: [1, 'constructor', { b: {} }], c: null })).toBeUndefined();
  });
});

describe('a body key that Nest would drop', () => {
  const backend = SERVER_BACKENDS[0];
  let server: TestServer;
  let token: string;
  const http = () => request(server.app.getHttpServer());

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0' });
    const made = await http()
      .post('/admin/v1/enrollment-tokens')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ uses: 5 })
      .expect(201);
    token = made.body.token;
  });
  afterAll(async () => {
    await server?.close();
  });

  async function unchanged(): Promise<void> {
    // No account enrolled, no token use spent.
    expect(await server.resources.repositories.accounts.count()).toBe(0);
    expect((await table(server.resources.storage, 'enrollment_token').rows()).map((t) => t['usesLeft'])).toEqual([5]);
  }

  for (const key of ['__proto__', 'constructor', 'prototype']) {
    it(`refuses a signed document with "${key}" added to it, over HTTP and libp2p, enrolling nothing`, async () => {
      const { document } = accountAdding(`pipe-${key}`, serverHome(server));
      const text = JSON.stringify({ document, token }).replace('"revoked":{}', `"revoked":{"${key}":7}`);
      expect(text).toContain(key);
      const res = await http().post('/_polyhome/v1/enroll').set('Content-Type', 'application/json').send(text);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        errcode: 'M_INVALID_PARAM',
        error: `property $.document.revoked.${key} should not exist`,
      });
      await unchanged();

      await withTransientHost({ nodeKey: makeHome(`pipe-peer-${key}`).secretKey }, async ({ host }) => {
        const answer = await rawEnrollExchange(host, loopbackAddr(server), new TextEncoder().encode(text));
        expect(answer).toEqual({ errcode: 'M_BAD_JSON', error: `property $.document.revoked.${key} should not exist` });
      });
      await unchanged();
    });
  }

  for (const key of ['valueOf', 'toString', 'hasOwnProperty']) {
    it(`refuses "${key}", a name every object inherits, at the top of an admin body like any unknown field`, async () => {
      const res = await http()
        .post('/admin/v1/enrollment-tokens')
        .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
        .set('Content-Type', 'application/json')
        .send(`{"uses":2,"${key}":1}`);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ errcode: 'M_INVALID_PARAM', error: `property ${key} should not exist` });
      expect(await table(server.resources.storage, 'enrollment_token').rows()).toHaveLength(1);
      await unchanged();
    });
  }

  it('refuses such a key at the top of an admin body like any unknown field', async () => {
    const res = await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .set('Content-Type', 'application/json')
      .send('{"localpart":"mallory","__proto__":{"admin":true}}');
    expect(res.status).toBe(400);
    expect(res.body.errcode).toBe('M_INVALID_PARAM');
    await unchanged();
  });
});
