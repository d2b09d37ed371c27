// Shared pieces of the fuzz suites: seed and run counts, a digest of every table of a server's database,
// the check of an error answer, and generators of hostile JSON.
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import type { DataSource } from 'typeorm';
import { expect } from 'vitest';
import { SERVER_BACKENDS, type ServerBackend, type TestServer } from '../../apps/server/src/testing/server-harness.js';

/** Seed of every property (FUZZ_SEED); fixed by default so a run is reproducible. */
export const FUZZ_SEED = Number(process.env['FUZZ_SEED'] ?? 8005);

/** Multiplier of every property's run count (FUZZ_SCALE, default 1): `FUZZ_SCALE=20` for a long soak. */
export const FUZZ_SCALE = Number(process.env['FUZZ_SCALE'] ?? 1);

if (!Number.isInteger(FUZZ_SEED)) throw new Error('FUZZ_SEED must be an integer');
if (!(FUZZ_SCALE > 0)) throw new Error('FUZZ_SCALE must be a positive number');

/**
 * The server backends a suite runs on: FUZZ_BACKENDS (`pglite`, `postgres`, or `all`) when set, else the
 * suite's default. A server on PostgreSQL starts in a fraction of PGlite's time, which the run budget feels.
 */
export function fuzzBackends(fallback: 'pglite' | 'postgres' | 'all'): ServerBackend[] {
  const chosen = (process.env['FUZZ_BACKENDS'] ?? fallback).split(',');
  return SERVER_BACKENDS.filter((b) => chosen.includes('all') || chosen.includes(b.database));
}

/** fast-check parameters of one property: `runs` cases at the default scale, the shared seed. */
export function fuzzParams<T>(runs: number): fc.Parameters<T> {
  return { numRuns: Math.max(1, Math.round(runs * FUZZ_SCALE)), seed: FUZZ_SEED, endOnFailure: true };
}

/** The timeout of a test running `runs` cases that take about `msPerCase` each, grown with FUZZ_SCALE. */
export function fuzzTimeout(runs: number, msPerCase: number): number {
  return 60_000 + Math.round(runs * FUZZ_SCALE * msPerCase * 4);
}

/** Tables whose rows the digest leaves out: the migration ledger only. */
const SKIPPED_TABLES = new Set(['migrations', 'typeorm_metadata']);

/**
 * A digest of every row of every table of the server's database (or of the tables in `only`), in one query:
 * equal digests mean no row was added, removed or changed. Works on PostgreSQL and PGlite alike.
 */
export async function databaseDigest(dataSource: DataSource, only?: readonly string[]): Promise<string> {
  return createHash('sha256')
    .update(JSON.stringify(await tableDigests(dataSource, only)))
    .digest('hex');
}

/** Row count and digest of each table (or of the tables in `only`), in one query. */
export async function tableDigests(dataSource: DataSource, only?: readonly string[]): Promise<Record<string, string>> {
  const tables = (await tableNames(dataSource)).filter((t) => only === undefined || only.includes(t));
  const parts = tables.map(
    (t) =>
      `SELECT '${t}' AS t, (SELECT count(*) FROM "${t}")::text AS n, ` +
      `(SELECT coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') FROM "${t}" r) AS h`,
  );
  const rows: Array<{ t: string; n: string; h: string }> = await dataSource.query(parts.join(' UNION ALL '));
  return Object.fromEntries(rows.sort((a, b) => a.t.localeCompare(b.t)).map((r) => [r.t, `${r.n}:${r.h}`]));
}

/** The tables whose rows differ between two results of tableDigests, with their row counts before and after. */
export function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return Object.keys({ ...before, ...after })
    .filter((t) => before[t] !== after[t])
    .map((t) => `${t} (${before[t]?.split(':')[0] ?? '-'} -> ${after[t]?.split(':')[0] ?? '-'} rows)`);
}

const tableCache = new WeakMap<DataSource, string[]>();

async function tableNames(dataSource: DataSource): Promise<string[]> {
  const cached = tableCache.get(dataSource);
  if (cached) return cached;
  const rows: Array<{ table_name: string }> = await dataSource.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
  );
  const names = rows
    .map((r) => r.table_name)
    .filter((n) => !SKIPPED_TABLES.has(n))
    .sort();
  tableCache.set(dataSource, names);
  return names;
}

/** An HTTP answer as the fuzz suites see it. */
export interface Answer {
  status: number;
  /** The body parsed as JSON, or the raw text when it is not JSON. */
  body: unknown;
}

/** Sends one request to `base` and reads the whole answer. */
export async function send(
  base: string,
  method: string,
  path: string,
  options: { body?: string | Uint8Array; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: options.headers,
    ...(options.body !== undefined && method !== 'GET' && method !== 'HEAD' ? { body: options.body } : {}),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? '' : JSON.parse(text);
  } catch {
    // kept as text: the assertion says what came back
  }
  return { status: res.status, body };
}

/** Listens on 127.0.0.1 (an OS-chosen port) and returns the base URL. */
export async function listen(server: TestServer): Promise<string> {
  await server.app.listen(0, '127.0.0.1');
  const { port } = server.app.getHttpServer().address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

/** Asserts a refusal: a 4xx whose body is `{ errcode: "M_...", error: string }`. */
export function expectRefusal(answer: Answer, what: string): void {
  const context = `${what} -> ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
  expect(answer.status, context).toBeGreaterThanOrEqual(400);
  expect(answer.status, context).toBeLessThan(500);
  expect(answer.body, context).toEqual(
    expect.objectContaining({ errcode: expect.stringMatching(/^M_[A-Z_]+$/), error: expect.any(String) }),
  );
}

/** Asserts a non-5xx answer; a refusal must have the error body. Returns whether it was accepted (2xx). */
export function expectHandled(answer: Answer, what: string): boolean {
  const context = `${what} -> ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`;
  expect(answer.status, context).toBeLessThan(500);
  if (answer.status < 300) return true;
  expectRefusal(answer, what);
  return false;
}

/** Any JSON value, nested a little, with the strings hostile input likes (unicode, huge numbers, keys like __proto__). */
export const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -1, 1e308, -1e-308, 2 ** 53, '', '\u0000', '__proto__', 'constructor'),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('__proto__', 'constructor')), tie('value'), {
      maxKeys: 4,
    }),
  ),
})).value;

/** A value of a JSON type other than `kind` (for "wrong type" mutations). */
export function wrongTypeOf(kind: 'string' | 'number' | 'object' | 'array' | 'boolean'): fc.Arbitrary<unknown> {
  const all: Record<string, fc.Arbitrary<unknown>> = {
    string: fc.string({ maxLength: 20 }),
    number: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
    object: fc.dictionary(fc.string({ maxLength: 8 }), fc.integer(), { maxKeys: 3 }),
    array: fc.array(fc.integer(), { maxLength: 3 }),
    boolean: fc.boolean(),
  };
  const others = Object.entries(all)
    .filter(([k]) => k !== kind)
    .map(([, v]) => v);
  return fc.oneof(fc.constant(null), ...others);
}

/** Text that is not valid JSON: cut-off documents, trailing garbage, non-JSON literals, bad escapes. */
export const malformedJson: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('{', '{"a":', '[1,', '{"a" 1}', "{'a':1}", 'undefined', 'NaN', '{"a":1}}', '"\\x"', '{"a":01}'),
  jsonValue
    .map((v) => JSON.stringify(v) ?? 'null')
    .chain((s) => fc.integer({ min: 0, max: Math.max(0, s.length - 1) }).map((cut) => `{${s.slice(0, cut)}`)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).map((s) => `{"k": ${s}`),
);

/** A random path segment: empty, dots, percent-escapes, unicode, very long. */
export const pathSegment: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', '.', '..', '%00', '%2F', '%ZZ', '~', '@', ':', '!x:y', '$', ' '),
  fc.string({ unit: 'binary', maxLength: 30 }).map(encodeURIComponent),
  fc.integer({ min: 300, max: 3000 }).map((n) => 'a'.repeat(n)),
);

/** A query string of 1 to 4 random parameters (names and values escaped). */
export const queryString: fc.Arbitrary<string> = fc
  .array(
    fc.tuple(
      fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('limit', 'from', 'since', 'timeout', '__proto__')),
      fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.constantFrom('-1', '0', '1e9', 'NaN', '[]', '')),
    ),
    { minLength: 1, maxLength: 4 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));
