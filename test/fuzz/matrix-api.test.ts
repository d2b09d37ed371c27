// Bad input at scale on the Matrix client API of a real server, with a valid access token: bodies of the
// account routes mutated field by field (wrong types, missing fields, random values), replaced by random JSON
// or by text that is not JSON, random path parameters and query strings, and wrong tokens. Matrix bodies are
// read leniently (extra fields are ignored, as the spec says), so a mutated body may be valid: then it may
// change the account. Anything refused must be a 4xx Matrix error and leave every table as it was; nothing
// may be a 5xx; and the home still serves the account afterwards.
import { encodeBase64, signBytes, signedBytes } from '@polyhome/identity';
import { deviceBody, deviceKey } from '@polyhome/sync/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../apps/server/src/app.js';
import { ChangeFeedService } from '../../libs/matrix/src/sync/change-feed.service.js';
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
  type Answer,
} from './support.js';

const ADMIN_TOKEN = 'fuzz-matrix-admin-token-0123';
const PASSWORD = 'fuzz matrix password';
const JSON_HEADERS = { 'content-type': 'application/json' };

/** PostgreSQL by default (the Matrix module's code is the same on both; the REST suite covers PGlite). */
const BACKENDS = fuzzBackends('postgres');

/** A key object signed by the fuzzing device's Ed25519 key (the fixture's key for its device id). */
function signedByDevice(c: Ctx, key: Record<string, unknown>): Record<string, unknown> {
  const signature = encodeBase64(signBytes(signedBytes(key), deviceKey(c.deviceId)));
  return { ...key, signatures: { [c.userId]: { [`ed25519:${c.deviceId}`]: signature } } };
}

interface Ctx {
  userId: string;
  deviceId: string;
  roomId: string;
  serverName: string;
}

/** A body route of the client API with a valid body to mutate. */
interface MatrixRoute {
  method: string;
  path: (ctx: Ctx, segment: string) => string;
  body: (ctx: Ctx) => Record<string, unknown>;
  /** Without the access token (login). */
  anonymous?: boolean;
}

const V3 = '/_matrix/client/v3';

const ROUTES: Record<string, MatrixRoute> = {
  login: {
    method: 'POST',
    path: () => `${V3}/login`,
    anonymous: true,
    // A wrong password: a login that succeeds would be a new device, which no mutation here can reach.
    body: (c) => ({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: c.userId },
      password: 'not the password',
      device_id: 'FUZZDEV',
      initial_device_display_name: 'fuzz',
    }),
  },
  loginToken: {
    method: 'POST',
    path: () => `${V3}/login`,
    anonymous: true,
    body: () => ({ type: 'm.login.token', token: 'not-a-login-token' }),
  },
  keysUpload: {
    method: 'POST',
    path: () => `${V3}/keys/upload`,
    // Valid as the base: device keys self-signed and one-time and fallback keys signed by the device's key.
    body: (c) => ({
      device_keys: { ...deviceBody({ userId: c.userId }, c.deviceId) },
      one_time_keys: { 'signed_curve25519:AAAAAQ': signedByDevice(c, { key: 'b3Rr' }) },
      fallback_keys: { 'signed_curve25519:AAAAAg': signedByDevice(c, { key: 'ZmI', fallback: true }) },
    }),
  },
  keysQuery: {
    method: 'POST',
    path: () => `${V3}/keys/query`,
    body: (c) => ({ device_keys: { [c.userId]: [c.deviceId] }, timeout: 1000 }),
  },
  keysClaim: {
    method: 'POST',
    path: () => `${V3}/keys/claim`,
    body: (c) => ({ one_time_keys: { [c.userId]: { [c.deviceId]: 'signed_curve25519' } } }),
  },
  crossSigning: {
    method: 'POST',
    path: () => `${V3}/keys/device_signing/upload`,
    body: (c) => ({
      master_key: { user_id: c.userId, usage: ['master'], keys: { 'ed25519:bWFzdGVy': 'bWFzdGVy' } },
      self_signing_key: { user_id: c.userId, usage: ['self_signing'], keys: { 'ed25519:c2VsZg': 'c2VsZg' } },
    }),
  },
  signaturesUpload: {
    method: 'POST',
    path: () => `${V3}/keys/signatures/upload`,
    body: (c) => ({ [c.userId]: { [c.deviceId]: { user_id: c.userId, device_id: c.deviceId, signatures: {} } } }),
  },
  createRoom: {
    method: 'POST',
    path: () => `${V3}/createRoom`,
    body: () => ({ name: 'fuzz', topic: 't', invite: [], preset: 'private_chat', room_version: '5', is_direct: false }),
  },
  join: {
    method: 'POST',
    path: (c, s) => `${V3}/join/${s === '' ? encodeURIComponent(c.roomId) : s}`,
    body: () => ({ reason: 'fuzz' }),
  },
  joinById: {
    method: 'POST',
    path: (c, s) => `${V3}/rooms/${s === '' ? encodeURIComponent(c.roomId) : s}/join`,
    body: () => ({}),
  },
  leave: {
    method: 'POST',
    path: (c, s) => `${V3}/rooms/${s === '' ? encodeURIComponent(c.roomId) : s}/leave`,
    body: () => ({ reason: 'fuzz' }),
  },
  invite: {
    method: 'POST',
    path: (c, s) => `${V3}/rooms/${s === '' ? encodeURIComponent(c.roomId) : s}/invite`,
    body: (c) => ({ user_id: `@bob:${c.serverName}` }),
  },
  sendToDevice: {
    method: 'PUT',
    path: (_c, s) => `${V3}/sendToDevice/${s === '' ? 'm.test' : s}/fuzz-txn`,
    body: (c) => ({ messages: { [c.userId]: { [c.deviceId]: { body: 'fuzz' }, '*': { all: true } } } }),
  },
  putDevice: {
    method: 'PUT',
    path: (c, s) => `${V3}/devices/${s === '' ? c.deviceId : s}`,
    body: () => ({ display_name: 'renamed' }),
  },
  deleteDevice: {
    method: 'DELETE',
    path: (c, s) => `${V3}/devices/${s === '' ? c.deviceId : s}`,
    body: (c) => ({ auth: { type: 'm.login.password', identifier: { type: 'm.id.user', user: c.userId } } }),
  },
  deleteDevices: {
    method: 'POST',
    path: () => `${V3}/delete_devices`,
    body: (c) => ({ devices: [c.deviceId], auth: { type: 'm.login.password', password: 'wrong', session: 'x' } }),
  },
};

/** Every path to a leaf or a node of a JSON object (for picking one to mutate). */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([k, v]) => paths(v, [...prefix, k]))];
}

/** A deep copy of `value` with the node at `path` replaced (or deleted when `replacement` is undefined). */
function setAt(value: unknown, path: string[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(value)
    ? [...(value as unknown[])]
    : { ...(value as Record<string, unknown>) };
  const [head, ...rest] = path;
  const next = setAt((copy as Record<string, unknown>)[head!], rest, replacement);
  if (next === undefined && rest.length === 0) {
    if (Array.isArray(copy)) copy.splice(Number(head), 1);
    else delete copy[head!];
  } else (copy as Record<string, unknown>)[head!] = next;
  return copy;
}

/** One generated request against a body route: the route's name, the path segment, and the body text. */
function mutatedRequest(ctx: Ctx): fc.Arbitrary<{ name: string; segment: string; text: string; how: string }> {
  return fc.constantFrom(...Object.keys(ROUTES)).chain((name) => {
    const base = ROUTES[name]!.body(ctx);
    const all = paths(base).filter((p) => p.length > 0);
    // A route whose valid body is `{}` has no field to change or remove: a random field is added instead.
    const fields = all.length > 0 ? all : [['reason']];
    const replaced = fc
      .tuple(fc.constantFrom(...fields), jsonValue)
      .map(([p, v]) => ({ text: JSON.stringify(setAt(base, p, v)), how: `${p.join('.')} = ${JSON.stringify(v)}` }));
    const removed = fc
      .constantFrom(...fields)
      .map((p) => ({ text: JSON.stringify(setAt(base, p, undefined)), how: `no ${p.join('.')}` }));
    const added = fc
      .tuple(fc.constantFrom([] as string[], ...all), fc.string({ maxLength: 12 }), jsonValue)
      .map(([p, k, v]) => {
        const at = p.reduce<unknown>((o, key) => (o as Record<string, unknown>)[key], base);
        const target = typeof at === 'object' && at !== null && !Array.isArray(at) ? p : [];
        return { text: JSON.stringify(setAt(base, [...target, k], v)), how: `added ${[...target, k].join('.')}` };
      });
    const random = jsonValue.map((v) => ({ text: JSON.stringify(v), how: 'random JSON' }));
    const broken = malformedJson.map((text) => ({ text, how: 'not JSON' }));
    const segment = fc.oneof({ weight: 2, arbitrary: fc.constant('') }, { weight: 1, arbitrary: pathSegment });
    return fc
      .tuple(fc.oneof(replaced, removed, added, random, broken), segment)
      .map(([b, s]) => ({ name, segment: s, ...b }));
  });
}

/** A Matrix answer: 2xx, a 4xx Matrix error, or the first step of user-interactive auth (401 with flows). */
function expectMatrixHandled(answer: Answer, what: string): boolean {
  const body = answer.body as Record<string, unknown>;
  if (answer.status === 401 && typeof body === 'object' && body !== null && Array.isArray(body['flows'])) {
    expect(body['session'], what).toEqual(expect.any(String));
    return false;
  }
  return expectHandled(answer, what);
}

describe.each(BACKENDS)('fuzz: Matrix client API on $name', (backend) => {
  let server: TestServer;
  let base: string;
  let ctx: Ctx;
  let accessToken: string;
  let digest: Record<string, string>;
  const counts = { accepted: 0, refused: 0 };

  async function expectUnchanged(what: string): Promise<void> {
    const now = await tableDigests(server.resources.storage.dataSource);
    const changed = changedTables(digest, now);
    if (changed.length > 0) expect.fail(`${what} changed the database: ${changed.join(', ')}`);
  }

  /** After an accepted request the account may have changed: that is the new reference. */
  async function rebase(): Promise<void> {
    // The change feed (matrix_change) is appended by a listener just after an op is stored, so an accepted
    // request may still be writing when it is answered: drain waits for every change reported so far.
    await server.app.get(ChangeFeedService, { strict: false }).drain();
    // An accepted room event is fanned out after it was answered (the fan-out cursor moves then).
    await server.resources.p2p.federation?.idle();
    digest = await tableDigests(server.resources.storage.dataSource);
  }

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN, RATE_LIMIT_PER_MINUTE: '0' });
    base = await listen(server);
    const created = await send(base, 'POST', '/admin/v1/accounts', {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...JSON_HEADERS },
      body: JSON.stringify({ localpart: 'alice', password: PASSWORD }),
    });
    expect(created.status).toBe(201);
    const { user_id: userId, server_name: serverName } = created.body as { user_id: string; server_name: string };
    const login = await send(base, 'POST', `${V3}/login`, {
      headers: JSON_HEADERS,
      body: JSON.stringify({
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: userId },
        password: PASSWORD,
      }),
    });
    expect(login.status).toBe(200);
    const session = login.body as { access_token: string; device_id: string };
    accessToken = session.access_token;
    const room = await send(base, 'POST', `${V3}/createRoom`, {
      headers: { authorization: `Bearer ${accessToken}`, ...JSON_HEADERS },
      body: '{}',
    });
    expect(room.status).toBe(200);
    ctx = { userId, serverName, deviceId: session.device_id, roomId: (room.body as { room_id: string }).room_id };
    await rebase();
  });
  afterAll(async () => {
    await server?.close();
  });

  const BODY_RUNS = 700;
  it(
    'mutated, random and malformed bodies on the account routes: no 5xx; refusals are Matrix errors and change nothing',
    async () => {
      await fc.assert(
        fc.asyncProperty(mutatedRequest(ctx), async ({ name, segment, text, how }) => {
          const route = ROUTES[name]!;
          const path = route.path(ctx, segment);
          const what = `${name} ${route.method} ${path.slice(0, 120)}: ${how.slice(0, 200)}`;
          const answer = await send(base, route.method, path, {
            headers: { ...JSON_HEADERS, ...(route.anonymous ? {} : { authorization: `Bearer ${accessToken}` }) },
            body: text,
          });
          if (expectMatrixHandled(answer, what)) {
            counts.accepted++;
            await rebase();
          } else {
            counts.refused++;
            await expectUnchanged(what);
          }
        }),
        fuzzParams(BODY_RUNS),
      );
    },
    fuzzTimeout(BODY_RUNS, 25),
  );

  const QUERY_RUNS = 250;
  it(
    'sync, key changes and device reads with random parameters: no 5xx, no long wait, nothing changes',
    async () => {
      // A valid `since` with a `timeout` would wait for a change: timeouts are left out, 0 or invalid.
      const timeout = fc.oneof(
        fc.constant(undefined),
        fc.constant('0'),
        fc.constantFrom('-1', '1.5', 'abc', '99999999999', ''),
      );
      const token = fc.oneof(
        fc.constantFrom('s0', 's1', 's999999999999999', 's', 'x1', ''),
        fc.string({ maxLength: 20 }),
      );
      const request = fc.oneof(
        fc
          .record({
            since: fc.option(token, { nil: undefined }),
            timeout,
            extra: fc.option(queryString, { nil: undefined }),
          })
          .map(
            ({ since, timeout: t, extra }) =>
              `${V3}/sync?` +
              [
                since === undefined ? '' : `since=${encodeURIComponent(since)}`,
                t === undefined ? '' : `timeout=${encodeURIComponent(t)}`,
                extra ?? '',
              ]
                .filter(Boolean)
                .join('&'),
          ),
        fc
          .record({ from: token, to: token })
          .map(({ from, to }) => `${V3}/keys/changes?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`),
        pathSegment.map((s) => `${V3}/devices/${s}`),
        queryString.map((q) => `${V3}/joined_rooms?${q}`),
        queryString.map((q) => `${V3}/account/whoami?${q}`),
        fc.tuple(pathSegment, pathSegment).map(([a, b]) => `/_matrix/client/${a}/${b}`),
      );
      await fc.assert(
        fc.asyncProperty(request, async (path) => {
          const what = `GET ${path.slice(0, 200)}`;
          const answer = await send(base, 'GET', path, { headers: { authorization: `Bearer ${accessToken}` } });
          expectMatrixHandled(answer, what);
          await expectUnchanged(what);
        }),
        fuzzParams(QUERY_RUNS),
      );
    },
    fuzzTimeout(QUERY_RUNS, 20),
  );

  const TOKEN_RUNS = 150;
  it(
    'wrong or malformed access tokens on every route: 401, nothing changes',
    async () => {
      const credential = fc.oneof(
        fc.string({ maxLength: 50 }).map((s) => ({ header: `Bearer ${s}` })),
        fc.string({ maxLength: 50 }).map((s) => ({ query: s })),
        fc.constant({}),
        fc.constant({ header: `Bearer ${'x'.repeat(10)}${accessToken.slice(10)}` }),
      );
      const names = Object.keys(ROUTES).filter((n) => !ROUTES[n]!.anonymous);
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...names, 'sync', 'whoami'), credential, async (name, cred) => {
          const route: MatrixRoute =
            name === 'sync'
              ? { method: 'GET', path: () => `${V3}/sync`, body: () => ({}) }
              : name === 'whoami'
                ? { method: 'GET', path: () => `${V3}/account/whoami`, body: () => ({}) }
                : ROUTES[name]!;
          const header = 'header' in cred ? cred.header.replace(/[^\x20-\x7e]/g, '') : undefined;
          const query = 'query' in cred ? `?access_token=${encodeURIComponent(cred.query)}` : '';
          const what = `${name} with ${JSON.stringify(cred).slice(0, 120)}`;
          const answer = await send(base, route.method, route.path(ctx, '') + query, {
            headers: { ...JSON_HEADERS, ...(header === undefined ? {} : { authorization: header }) },
            body: JSON.stringify(route.body(ctx)),
          });
          expectRefusal(answer, what);
          await expectUnchanged(what);
        }),
        fuzzParams(TOKEN_RUNS),
      );
    },
    fuzzTimeout(TOKEN_RUNS, 15),
  );

  const LARGE_RUNS = 10;
  it(
    'bodies over the cap: 413 M_TOO_LARGE, nothing changes',
    async () => {
      const names = Object.keys(ROUTES);
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...names),
          fc.integer({ min: MAX_BODY_BYTES + 1, max: MAX_BODY_BYTES * 3 }),
          async (name, size) => {
            const route = ROUTES[name]!;
            const answer = await send(base, route.method, route.path(ctx, ''), {
              headers: { ...JSON_HEADERS, authorization: `Bearer ${accessToken}` },
              body: JSON.stringify({ ...route.body(ctx), padding: 'x'.repeat(size) }),
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

  it('still serves the account afterwards', async () => {
    const whoami = await send(base, 'GET', `${V3}/account/whoami`, {
      headers: { authorization: `Bearer ${accessToken}` },
    });
    expect(whoami).toEqual({ status: 200, body: expect.objectContaining({ user_id: ctx.userId }) });
    const sync = await send(base, 'GET', `${V3}/sync`, { headers: { authorization: `Bearer ${accessToken}` } });
    expect(sync.status).toBe(200);
    // Not vacuous: most mutations were refused, and some were valid requests the home carried out.
    expect(counts.refused).toBeGreaterThan(counts.accepted);
    expect(counts.accepted).toBeGreaterThan(0);
  });
});
