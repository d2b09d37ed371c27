// The checks that untrusted values are what a body or an op field must be: each throws OpRejectedError
// (`malformed`) with the JSON path of the first thing wrong. Shared by the op parser (validate.ts) and the
// body validators of the op kinds (bodies.ts).
import { OpRejectedError } from './errors.js';

const CONTROL_OR_LONE_SURROGATE = /[\p{Cc}\p{Cs}]/u;
// Bounds on the Matrix objects inside bodies; generous for real clients, small enough to bound work.
const MAX_SIGNATURE_SERVERS = 8;
const MAX_SIGNATURES_PER_SERVER = 16;
const MAX_STRING_BYTES = 1024;
const encoder = new TextEncoder();

export function fail(path: string, reason: string): never {
  throw new OpRejectedError('malformed', `${path}: ${reason}`);
}

export function expectRecord(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) fail(path, 'must be a plain object');
  return value as Record<string, unknown>;
}

export function exactFields(
  record: Record<string, unknown>,
  path: string,
  required: readonly string[],
  optional: readonly string[],
): void {
  for (const key of Object.keys(record)) {
    if (!required.includes(key) && !optional.includes(key)) fail(`${path}.${key.slice(0, 40)}`, 'unknown field');
  }
  for (const field of required) if (!Object.hasOwn(record, field)) fail(`${path}.${field}`, 'missing field');
}

export function expectString(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, 'must be a string');
  return value;
}

export function expectText(text: string, path: string, maxBytes: number, allowEmpty = false): void {
  if (!allowEmpty && text.length === 0) fail(path, 'must not be empty');
  const bytes = encoder.encode(text).length;
  if (bytes > maxBytes) fail(path, `is ${bytes} bytes, at most ${maxBytes}`);
  if (CONTROL_OR_LONE_SURROGATE.test(text)) fail(path, 'contains a control character or lone surrogate');
}

export function expectInteger(value: unknown, path: string, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || Object.is(value, -0)) {
    fail(path, `must be an integer from ${min} to 2^53 - 1`);
  }
}

export function expectArray(value: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(value)) fail(path, 'must be an array');
  if (value.length > max) fail(path, `has ${value.length} entries, at most ${max}`);
  return value as unknown[];
}

export function expectStringMap(value: unknown, path: string, max: number): Record<string, string> {
  const record = expectRecord(value, path);
  const entries = Object.entries(record);
  if (entries.length > max) fail(path, `has ${entries.length} entries, at most ${max}`);
  for (const [key, text] of entries) {
    expectText(key, `${path} key`, 255);
    expectText(expectString(text, `${path}[${JSON.stringify(key.slice(0, 40))}]`), path, MAX_STRING_BYTES);
  }
  return record as Record<string, string>;
}

export function expectSignatureMap(value: unknown, path: string): void {
  const record = expectRecord(value, path);
  const servers = Object.entries(record);
  if (servers.length > MAX_SIGNATURE_SERVERS)
    fail(path, `has ${servers.length} servers, at most ${MAX_SIGNATURE_SERVERS}`);
  for (const [server, keys] of servers)
    expectStringMap(keys, `${path}[${JSON.stringify(server.slice(0, 70))}]`, MAX_SIGNATURES_PER_SERVER);
}

export function expectUser(value: unknown, path: string, userId: string | undefined): void {
  const text = expectString(value, path);
  if (userId !== undefined && text !== userId) fail(path, 'must be the account user');
}
