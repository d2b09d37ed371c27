// Bad input at scale on the REST side of a real server: the admin API and the public enrollment and custody
// routes. Every generated request is invalid by construction (an unknown field, a wrong type, a value out of
// range, text that is not JSON, a body over the cap, a bad token, a path or id that names nothing), so each
// must be answered 4xx with `{ errcode, error }`, never 5xx, and leave every table of the database as it was.
import type { AccountDocument } from '@polyhome/identity';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../apps/server/src/app.js';
import { accountAdding, serverHome } from '../../apps/server/src/testing/client-home.js';
import { startTestServer, type TestServer } from '../../apps/server/src/testing/server-harness.js';
import {
  changedTables,
  expectHandled,
  expectRefusal,
  fuzzBackends,
  fuzzParams,
  fuzzTimeout,
  jsonValue,
  listen,
  malformedJson,
  pathSegment,
  queryString,
  send,
  tableDigests,
  wrongTypeOf,
} from './support.js';

const ADMIN_TOKEN = 'fuzz-admin-token-0123456789';
const PASSWORD = 'fuzz password 0123';
const JSON_HEADERS = { 'content-type': 'application/json' };
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** Both backends by default: the embedded default, and PostgreSQL, which costs little more. */
const BACKENDS = fuzzBackends('all');

/** One JSON body route: its path, a valid body, and the JSON type of each known field. */
interface BodyRoute {
  /** POST unless said. */
  method?: 'PUT';
  path: (ctx: Context) => string;
  auth: boolean;
  valid: (ctx: Context) => Record<string, unknown>;
  fields: Record<string, 'string' | 'number' | 'object' | 'boolean'>;
  /** Fields that must be present (null is refused there; optional fields take null as absent). */
  required: string[];
}

interface Context {
  userId: string;
  token: string;
  document: AccountDocument;
}

const BODY_ROUTES: Record<string, BodyRoute> = {
  createAccount: {
    path: () => '/admin/v1/accounts',
    auth: true,
    valid: () => ({ localpart: 'fuzzed', password: 'a good password' }),
    fields: { localpart: 'string', password: 'string' },
    required: ['localpart'],
  },
  createEnrollmentToken: {
    path: () => '/admin/v1/enrollment-tokens',
    auth: true,
    valid: () => ({ uses: 2, expires_in: 3600 }),
    fields: { uses: 'number', expires_in: 'number' },
    required: [],
  },
  addHome: {
    path: (ctx) => `/admin/v1/accounts/${encodeURIComponent(ctx.userId)}/homes`,
    auth: true,
    valid: () => ({
      multiaddr: '/ip4/127.0.0.1/tcp/9/p2p/12D3KooWGRUVh2upbjYgkUkUg5K8f8EJj6ssMgUbBBXvcscs5Pu8',
      role: 'client',
      name: 'laptop',
    }),
    fields: { multiaddr: 'string', role: 'string', name: 'string', token: 'string', pairing_code: 'string' },
    required: ['multiaddr', 'role', 'name'],
  },
  enroll: {
    path: () => '/_polyhome/v1/enroll',
    auth: false,
    valid: (ctx) => ({ document: ctx.document, token: ctx.token }),
    fields: { document: 'object', token: 'string' },
    required: ['document'],
  },
  blockRoom: {
    method: 'PUT',
    path: () => `/admin/v1/rooms/${encodeURIComponent('!fuzzed:example.org')}/block`,
    auth: true,
    valid: () => ({ block: true, reason: 'fuzzed' }),
    fields: { block: 'boolean', reason: 'string' },
    required: ['block', 'reason'],
  },
  custody: {
    path: () => '/_polyhome/v1/custody',
    auth: false,
    valid: (ctx) => ({ user_id: ctx.userId, password: 'not the password', passphrase: 'a long enough passphrase' }),
    fields: { user_id: 'string', password: 'string', passphrase: 'string' },
    required: ['user_id', 'password', 'passphrase'],
  },
};

/** Out-of-range values for fields whose type alone is not the defect. */
const OUT_OF_RANGE: Record<string, fc.Arbitrary<unknown>> = {
  localpart: fc.oneof(fc.constantFrom('', 'UPPER', 'a b', 'é', 'x'.repeat(65)), fc.string({ minLength: 65 })),
  password: fc.string({ maxLength: 7 }),
  uses: fc.oneof(
    fc.integer({ max: 0 }),
    fc.integer({ min: 1001 }),
    fc.double({ min: 1.1, max: 9.9, noNaN: true }).filter((n) => !Number.isInteger(n)),
  ),
  expires_in: fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: 30 * 24 * 3600 + 1 })),
  multiaddr: fc.oneof(fc.constantFrom('', '/ip4/1.2.3.4/tcp/1', '/p2p/short'), fc.string({ maxLength: 40 })),
  role: fc.string({ maxLength: 10 }).filter((s) => s !== 'server' && s !== 'client'),
  name: fc.constantFrom('', 'n'.repeat(65)),
  passphrase: fc.string({ maxLength: 11 }),
  reason: fc.oneof(fc.constantFrom('', ' ', '\n\t'), fc.string({ minLength: 1001, maxLength: 1100 })),
};

/** A body that is wrong in at least one way; `describe` says how, for the failure message. */
function defectiveBody(route: BodyRoute, ctx: Context): fc.Arbitrary<{ text: string; how: string }> {
  const base = route.valid(ctx);
  const fieldNames = Object.keys(route.fields);
  const unknownField = fc
    .tuple(
      fc.string({ minLength: 1, maxLength: 16 }).filter((k) => !fieldNames.includes(k) && k !== '__proto__'),
      jsonValue,
    )
    .map(([k, v]) => ({ text: JSON.stringify({ ...base, [k]: v }), how: `unknown field ${JSON.stringify(k)}` }));
  const wrongType = fc
    .constantFrom(...fieldNames)
    .chain((f) => wrongTypeOf(route.fields[f]!).map((v) => ({ f, v })))
    .filter(({ f, v }) => v !== null || route.required.includes(f))
    .map(({ f, v }) => ({ text: JSON.stringify({ ...base, [f]: v }), how: `${f} = ${JSON.stringify(v)}` }));
  const ranged = fieldNames.filter((f) => OUT_OF_RANGE[f] !== undefined);
  const outOfRange =
    ranged.length === 0
      ? wrongType
      : fc
          .constantFrom(...ranged)
          .chain((f) => OUT_OF_RANGE[f]!.map((v) => ({ f, v })))
          .map(({ f, v }) => ({ text: JSON.stringify({ ...base, [f]: v }), how: `${f} out of range` }));
  const notObject = fc
    .oneof(fc.array(jsonValue, { maxLength: 3 }), fc.string(), fc.integer(), fc.constant(true))
    .map((v) => ({ text: JSON.stringify(v), how: 'not an object' }));
  const notJson = malformedJson.map((text) => ({ text, how: 'not JSON' }));
  return fc.oneof(unknownField, wrongType, outOfRange, notObject, notJson);
}

/** A document that no longer verifies: one signed field changed, or its signature replaced. */
function tamperedDocument(document: AccountDocument): fc.Arbitrary<{ doc: unknown; how: string }> {
  const fields = Object.keys(document).filter((k) => k !== 'signatures');
  const changedField = fc
    .tuple(fc.constantFrom(...fields), jsonValue)
    .filter(([f, v]) => JSON.stringify(v) !== JSON.stringify((document as unknown as Record<string, unknown>)[f]))
    .map(([f, v]) => ({ doc: { ...document, [f]: v }, how: `document.${f} changed` }));
  const dropped = fc
    .constantFrom(...fields, 'signatures')
    .map((f) => ({ doc: Object.fromEntries(Object.entries(document).filter(([k]) => k !== f)), how: `no ${f}` }));
  const [serverName, sigs] = Object.entries(document.signatures)[0]!;
  const badSignature = fc
    .oneof(
      fc.string({ maxLength: 90 }),
      fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64').replace(/=+$/, '')),
    )
    .filter((s) => s !== Object.values(sigs)[0])
    .map((s) => ({
      doc: { ...document, signatures: { [serverName]: { [Object.keys(sigs)[0]!]: s } } },
      how: 'signature replaced',
    }));
  return fc.oneof(changedField, dropped, badSignature);
}

describe.each(BACKENDS)('fuzz: admin, enrollment and custody HTTP on $name', (backend) => {
  let server: TestServer;
  let base: string;
  let ctx: Context;
  let digest: Record<string, string>;

  /** Fails with the per-table counts when anything in the database changed since the last check. */
  async function expectUnchanged(what: string): Promise<void> {
    const now = await tableDigests(server.resources.storage.dataSource);
    const changed = changedTables(digest, now);
    if (changed.length > 0) expect.fail(`${what} changed the database: ${changed.join(', ')}`);
  }

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0', ENROLLMENT_POLICY: 'token' });
    base = await listen(server);
    const hosted = await send(base, 'POST', '/admin/v1/accounts', {
      headers: { ...AUTH, ...JSON_HEADERS },
      body: JSON.stringify({ localpart: 'alice', password: PASSWORD }),
    });
    expect(hosted.status).toBe(201);
    const token = await send(base, 'POST', '/admin/v1/enrollment-tokens', {
      headers: { ...AUTH, ...JSON_HEADERS },
      body: JSON.stringify({ uses: 1000 }),
    });
    expect(token.status).toBe(201);
    // A document that names this server and would enroll with this token: only its tampered forms are sent.
    const { document } = accountAdding('fuzz-enrollee', serverHome(server));
    ctx = {
      userId: (hosted.body as { user_id: string }).user_id,
      token: (token.body as { token: string }).token,
      document,
    };
    digest = await tableDigests(server.resources.storage.dataSource);
  });
  afterAll(async () => {
    await server?.close();
  });

  const BODY_RUNS = 400;
  it(
    'defective JSON bodies on every body route: 4xx with an error body, nothing stored',
    async () => {
      const names = Object.keys(BODY_ROUTES);
      const arb = fc
        .constantFrom(...names)
        .chain((name) => defectiveBody(BODY_ROUTES[name]!, ctx).map((b) => ({ name, ...b })));
      await fc.assert(
        fc.asyncProperty(arb, async ({ name, text, how }) => {
          const route = BODY_ROUTES[name]!;
          const answer = await send(base, route.method ?? 'POST', route.path(ctx), {
            headers: { ...JSON_HEADERS, ...(route.auth ? AUTH : {}) },
            body: text,
          });
          expectRefusal(answer, `${name}: ${how}`);
          await expectUnchanged(`${name}: ${how}`);
        }),
        fuzzParams(BODY_RUNS),
      );
    },
    fuzzTimeout(BODY_RUNS, 20),
  );

  const ENROLL_RUNS = 150;
  it(
    'enrollment with a valid token and a tampered document: refused, no account and no token use',
    async () => {
      await fc.assert(
        fc.asyncProperty(tamperedDocument(ctx.document), async ({ doc, how }) => {
          const answer = await send(base, 'POST', '/_polyhome/v1/enroll', {
            headers: JSON_HEADERS,
            body: JSON.stringify({ document: doc, token: ctx.token }),
          });
          expectRefusal(answer, how);
          await expectUnchanged(how);
        }),
        fuzzParams(ENROLL_RUNS),
      );
    },
    fuzzTimeout(ENROLL_RUNS, 30),
  );

  const PATH_RUNS = 400;
  it(
    'bad paths, ids and query strings: handled without 5xx; only GETs may succeed, and nothing changes',
    async () => {
      // Route templates with their parameters replaced by random segments; POSTs carry an unknown field.
      const templates: Array<[string, (seg: string, ctx: Context) => string]> = [
        ['GET', () => '/admin/v1/accounts'],
        ['GET', (s) => `/admin/v1/accounts/${s}`],
        ['DELETE', (s) => `/admin/v1/accounts/${s}`],
        ['GET', (s) => `/admin/v1/accounts/${s}/devices`],
        ['GET', (s) => `/admin/v1/accounts/${s}/memberships`],
        ['GET', (s) => `/admin/v1/accounts/${s}/homes`],
        ['DELETE', (s, c) => `/admin/v1/accounts/${encodeURIComponent(c.userId)}/homes/${s}`],
        ['DELETE', (s) => `/admin/v1/accounts/${s}/homes/${s}`],
        ['POST', (s) => `/admin/v1/accounts/${s}/login-token`],
        ['GET', () => '/admin/v1/enrollment-tokens'],
        ['DELETE', (s) => `/admin/v1/enrollment-tokens/${s}`],
        ['GET', () => '/admin/v1/peers'],
        ['GET', () => '/admin/v1/node'],
        ['GET', () => '/admin/v1/queues'],
        ['GET', (s) => `/admin/v1/${s}`],
        ['PUT', (s) => `/admin/v1/accounts/${s}`],
        ['PATCH', () => '/admin/v1/enrollment-tokens'],
        ['POST', (s) => `/_polyhome/v1/${s}`],
        ['GET', () => '/_polyhome/v1/enroll'],
        ['GET', (s) => `/${s}`],
        ['DELETE', (s) => `/${s}/${s}`],
      ];
      const arb = fc.record({
        template: fc.integer({ min: 0, max: templates.length - 1 }),
        segment: pathSegment,
        query: fc.option(queryString, { nil: undefined }),
      });
      await fc.assert(
        fc.asyncProperty(arb, async ({ template, segment, query }) => {
          const [method, make] = templates[template]!;
          const path = make(segment, ctx) + (query === undefined ? '' : `?${query}`);
          const what = `${method} ${path.slice(0, 200)}`;
          const answer = await send(base, method, path, {
            headers: { ...AUTH, ...JSON_HEADERS },
            body: JSON.stringify({ 'unknown field': 1 }),
          });
          const accepted = expectHandled(answer, what);
          if (method !== 'GET') expect(accepted, what).toBe(false);
          await expectUnchanged(what);
        }),
        fuzzParams(PATH_RUNS),
      );
    },
    fuzzTimeout(PATH_RUNS, 20),
  );

  const AUTH_RUNS = 150;
  it(
    'admin routes with a wrong, malformed or missing token: 401, nothing changes',
    async () => {
      const header = fc.oneof(
        fc.constant(undefined),
        fc.string({ maxLength: 60 }).map((s) => `Bearer ${s}`),
        fc.string({ maxLength: 60 }),
        fc.constantFrom(
          'Bearer',
          `Basic ${ADMIN_TOKEN}`,
          `Bearer ${ADMIN_TOKEN}x`,
          `Bearer ${ADMIN_TOKEN.toUpperCase()}`,
        ),
        fc.constant(`Bearer ${ADMIN_TOKEN.slice(0, -1)}`),
      );
      const route = fc.constantFrom(
        ['GET', '/admin/v1/node'],
        ['GET', '/admin/v1/accounts'],
        ['POST', '/admin/v1/accounts'],
        ['POST', '/admin/v1/enrollment-tokens'],
        ['DELETE', '/admin/v1/accounts/x'],
        ['GET', '/admin/v1/queues'],
      );
      await fc.assert(
        fc.asyncProperty(header, route, async (value, [method, path]) => {
          // Header values must be printable ASCII (fetch refuses the rest itself).
          const headerValue = value?.replace(/[^\x20-\x7e]/g, '');
          const what = `${method} ${path} with ${JSON.stringify(headerValue)}`;
          const answer = await send(base, method!, path!, {
            headers: { ...JSON_HEADERS, ...(headerValue === undefined ? {} : { authorization: headerValue }) },
            body: JSON.stringify({ localpart: 'intruder', uses: 1 }),
          });
          expectRefusal(answer, what);
          expect(answer.status, what).toBe(401);
          await expectUnchanged(what);
        }),
        fuzzParams(AUTH_RUNS),
      );
    },
    fuzzTimeout(AUTH_RUNS, 15),
  );

  const LARGE_RUNS = 20;
  it(
    'bodies over the cap on every body route: 413 M_TOO_LARGE, nothing changes',
    async () => {
      const names = Object.keys(BODY_ROUTES);
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...names),
          fc.integer({ min: MAX_BODY_BYTES + 1, max: MAX_BODY_BYTES * 4 }),
          async (name, size) => {
            const route = BODY_ROUTES[name]!;
            const padding = 'x'.repeat(size);
            const answer = await send(base, route.method ?? 'POST', route.path(ctx), {
              headers: { ...JSON_HEADERS, ...(route.auth ? AUTH : {}) },
              body: JSON.stringify({ ...route.valid(ctx), padding }),
            });
            expectRefusal(answer, `${name} with ${size} bytes`);
            expect(answer.body).toMatchObject({ errcode: 'M_TOO_LARGE' });
            await expectUnchanged(name);
          },
        ),
        fuzzParams(LARGE_RUNS),
      );
    },
    fuzzTimeout(LARGE_RUNS, 100),
  );
});
