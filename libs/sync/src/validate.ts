// Validation of untrusted ops, in the order of cost: structure and caps (cheap, no crypto), then the
// origin against the account document, then the signature. Every refusal carries an OpRejectReason and
// a detail string; nothing here mutates anything, so a refused op is never half-applied.
import {
  canonicalJsonBytes,
  homeKeyId,
  homeStatus,
  isPeerId,
  isServerName,
  publicKeyFromPeerId,
  verifyTyped,
  WrongTypeError,
  type AccountDocument,
  type Ed25519Options,
} from '@polyhome/identity';
import { MAX_BODY_BYTES, MAX_KEY_BYTES, MAX_OP_BYTES } from './constants.js';
import { OpRejectedError } from './errors.js';
import { OP_TYPE, type Op, type OpKind, type OpRejectReason } from './types.js';

/** What parseOp checks an op against. */
export interface ParseContext {
  /** The account the op must be for (its server name); refused as `wrong_account` otherwise. */
  account?: string;
  /** The account's user ID; when given, bodies that name a user must name this one. */
  userId?: string | undefined;
}

/** Where an op's origin stands in the document: accept now, or hold until a newer document arrives. */
export type OriginCheck = 'ok' | 'wait_for_document';

/** The outcome of validateOp: an op that may be applied (or held), or a typed refusal. */
export type OpValidation =
  | { readonly ok: true; readonly op: Op; readonly origin: OriginCheck }
  | { readonly ok: false; readonly reason: OpRejectReason; readonly detail: string };

const OP_FIELDS = [
  'type',
  'account',
  'origin',
  'seq',
  'lamport',
  'doc_seq',
  'ts',
  'op',
  'key',
  'body',
  'signatures',
] as const;
const OP_KINDS: readonly OpKind[] = ['device.put', 'device.delete', 'member.set', 'cross_signing.put'];
const MEMBERSHIPS = ['join', 'leave', 'invite', 'ban', 'knock'] as const;
const CROSS_SIGNING_USAGES = ['master', 'self_signing', 'user_signing'] as const;
const CONTROL_OR_LONE_SURROGATE = /[\p{Cc}\p{Cs}]/u;
// Unpadded base64 of an Ed25519 signature is 86 characters; leave room, refuse anything silly.
const MAX_SIGNATURE_TEXT = 128;
// Bounds on the Matrix objects inside bodies; generous for real clients, small enough to bound work.
const MAX_ALGORITHMS = 16;
const MAX_KEYS = 32;
const MAX_SIGNATURE_SERVERS = 8;
const MAX_SIGNATURES_PER_SERVER = 16;
const MAX_STRING_BYTES = 1024;
const encoder = new TextEncoder();

/**
 * Checks that an untrusted value is exactly an op (fields, types, integers, caps, body of its kind)
 * and returns it typed. Does not verify the signature or the origin. Throws OpRejectedError.
 */
export function parseOp(input: unknown, context: ParseContext = {}): Op {
  const value = expectRecord(input, '$');
  // The type comes first: a signed object of another kind (an account document) is `wrong_type`, not `malformed`.
  const type = Object.hasOwn(value, 'type') ? value.type : undefined;
  if (type !== OP_TYPE) {
    throw new OpRejectedError('wrong_type', `type is ${JSON.stringify(type)?.slice(0, 40)}, expected ${OP_TYPE}`);
  }
  let size: number;
  try {
    size = canonicalJsonBytes(value).length;
  } catch (error) {
    throw new OpRejectedError('malformed', `not canonical JSON: ${(error as Error).message}`);
  }
  if (size > MAX_OP_BYTES) throw new OpRejectedError('too_large', `op is ${size} bytes, at most ${MAX_OP_BYTES}`);
  for (const key of Object.keys(value)) {
    if (!(OP_FIELDS as readonly string[]).includes(key)) fail(`$.${key.slice(0, 40)}`, 'unknown field');
  }
  for (const field of OP_FIELDS) if (!Object.hasOwn(value, field)) fail(`$.${field}`, 'missing field');
  const account = expectString(value.account, '$.account');
  if (!isServerName(account)) fail('$.account', 'not an account server name');
  if (context.account !== undefined && account !== context.account) {
    throw new OpRejectedError('wrong_account', `op is for account ${account}, expected ${context.account}`);
  }
  const origin = expectString(value.origin, '$.origin');
  if (!isPeerId(origin)) fail('$.origin', 'not the PeerId of an Ed25519 key');
  expectInteger(value.seq, '$.seq', 1);
  expectInteger(value.lamport, '$.lamport', 1);
  expectInteger(value.doc_seq, '$.doc_seq', 1);
  expectInteger(value.ts, '$.ts', 0);
  const kind = value.op;
  if (typeof kind !== 'string' || !(OP_KINDS as readonly string[]).includes(kind)) {
    fail('$.op', `unknown op kind ${JSON.stringify(kind)?.slice(0, 40)}`);
  }
  const key = expectString(value.key, '$.key');
  expectText(key, '$.key', MAX_KEY_BYTES);
  const body = expectRecord(value.body, '$.body');
  const bodySize = canonicalJsonBytes(body).length;
  if (bodySize > MAX_BODY_BYTES) {
    throw new OpRejectedError('too_large', `body is ${bodySize} bytes, at most ${MAX_BODY_BYTES}`);
  }
  validateOpSignatures(value.signatures, account, origin);
  BODY_VALIDATORS[kind as OpKind](body, key, context.userId);
  return value as unknown as Op;
}

/** Verifies the op's signature by its origin's key (taken from the PeerId). Throws OpRejectedError (`wrong_type`, `bad_signature`). */
export function verifyOpSignature(op: Op, options?: Ed25519Options): void {
  try {
    verifyTyped(op, OP_TYPE, op.account, homeKeyId(op.origin), publicKeyFromPeerId(op.origin), options);
  } catch (error) {
    if (error instanceof WrongTypeError) throw new OpRejectedError('wrong_type', error.message);
    throw new OpRejectedError('bad_signature', (error as Error).message);
  }
}

/**
 * Checks the op's origin against the document held: a home is accepted; a revoked home only up to
 * its cutoff; an unknown origin is refused, unless the op names a newer document (which may list it),
 * then it may wait. Throws OpRejectedError (`revoked`, `unknown_origin`).
 */
export function checkOrigin(op: Op, document: AccountDocument): OriginCheck {
  const status = homeStatus(document, op.origin);
  switch (status.kind) {
    case 'home':
      return 'ok';
    case 'revoked':
      if (op.seq <= status.lastAcceptedSeq) return 'ok';
      throw new OpRejectedError(
        'revoked',
        `origin was revoked after seq ${status.lastAcceptedSeq}; op has seq ${op.seq} (document ${document.seq})`,
      );
    case 'unknown':
      if (op.doc_seq > document.seq) return 'wait_for_document';
      throw new OpRejectedError('unknown_origin', `origin is not a home in document ${document.seq}`);
  }
}

/** The whole check of one untrusted op against a document: structure, origin, signature. Never throws for bad input. */
export function validateOp(input: unknown, document: AccountDocument, options?: Ed25519Options): OpValidation {
  try {
    const op = parseOp(input, { account: accountOf(document), userId: document.user_id });
    const origin = checkOrigin(op, document);
    verifyOpSignature(op, options);
    return { ok: true, op, origin };
  } catch (error) {
    if (error instanceof OpRejectedError) return { ok: false, reason: error.reason, detail: error.detail };
    throw error;
  }
}

/** Like validateOp, but throws OpRejectedError for a refused op and returns the op when it can be applied now. */
export function assertValidOp(input: unknown, document: AccountDocument, options?: Ed25519Options): Op {
  const result = validateOp(input, document, options);
  if (!result.ok) throw new OpRejectedError(result.reason, result.detail);
  if (result.origin !== 'ok') {
    throw new OpRejectedError('unknown_document', `op names document ${result.op.doc_seq}, held ${document.seq}`);
  }
  return result.op;
}

/** The account server name of a document (the part of `user_id` after the colon). */
export function accountOf(document: AccountDocument): string {
  return document.user_id.slice(document.user_id.indexOf(':') + 1);
}

type BodyValidator = (body: Record<string, unknown>, key: string, userId: string | undefined) => void;

const BODY_VALIDATORS: Record<OpKind, BodyValidator> = {
  // The Matrix DeviceKeys object (/keys/upload `device_keys`), plus our display name and hosting home.
  'device.put'(body, key, userId) {
    exactFields(body, '$.body', ['user_id', 'device_id', 'algorithms', 'keys', 'signatures'], ['display_name', 'home']);
    expectUser(body.user_id, '$.body.user_id', userId);
    if (expectString(body.device_id, '$.body.device_id') !== key) fail('$.body.device_id', 'must equal the op key');
    const algorithms = expectArray(body.algorithms, '$.body.algorithms', MAX_ALGORITHMS);
    algorithms.forEach((a, i) => expectText(expectString(a, `$.body.algorithms[${i}]`), '$.body.algorithms', 255));
    expectStringMap(body.keys, '$.body.keys', MAX_KEYS);
    expectSignatureMap(body.signatures, '$.body.signatures');
    if (body.display_name !== undefined) {
      expectText(expectString(body.display_name, '$.body.display_name'), '$.body.display_name', 255, true);
    }
    if (body.home !== undefined && !isPeerId(expectString(body.home, '$.body.home'))) {
      fail('$.body.home', 'not the PeerId of an Ed25519 key');
    }
  },
  // A tombstone: it wins like any op and hides the device.
  'device.delete'(body) {
    exactFields(body, '$.body', [], []);
  },
  'member.set'(body, key, userId) {
    exactFields(body, '$.body', ['room_id', 'membership'], ['event']);
    const roomId = expectString(body.room_id, '$.body.room_id');
    if (roomId !== key) fail('$.body.room_id', 'must equal the op key');
    if (!roomId.startsWith('!') || roomId.length < 2) fail('$.body.room_id', 'a room id starts with "!"');
    const membership = body.membership;
    if (typeof membership !== 'string' || !(MEMBERSHIPS as readonly string[]).includes(membership)) {
      fail('$.body.membership', `must be one of ${MEMBERSHIPS.join(', ')}`);
    }
    if (body.event !== undefined) {
      // The event's own signatures are checked by the room, not here; we only check it is about this change.
      const event = expectRecord(body.event, '$.body.event');
      if (event.type !== 'm.room.member') fail('$.body.event.type', 'must be m.room.member');
      if (event.room_id !== undefined && event.room_id !== roomId) fail('$.body.event.room_id', 'must equal room_id');
      if (userId !== undefined && event.state_key !== userId)
        fail('$.body.event.state_key', 'must be the account user');
      const content = expectRecord(event.content, '$.body.event.content');
      if (content.membership !== membership) fail('$.body.event.content.membership', 'must equal membership');
    }
  },
  // The Matrix CrossSigningKey object; its signatures are for Matrix clients to check, not for us.
  'cross_signing.put'(body, key, userId) {
    if (!(CROSS_SIGNING_USAGES as readonly string[]).includes(key)) {
      fail('$.key', `must be one of ${CROSS_SIGNING_USAGES.join(', ')}`);
    }
    exactFields(body, '$.body', ['user_id', 'usage', 'keys'], ['signatures']);
    expectUser(body.user_id, '$.body.user_id', userId);
    const usage = expectArray(body.usage, '$.body.usage', 3).map((u, i) => expectString(u, `$.body.usage[${i}]`));
    if (!usage.includes(key)) fail('$.body.usage', 'must include the op key');
    const keys = expectStringMap(body.keys, '$.body.keys', 1);
    if (Object.keys(keys).length !== 1) fail('$.body.keys', 'a cross-signing key has exactly one key');
    if (body.signatures !== undefined) expectSignatureMap(body.signatures, '$.body.signatures');
  },
};

function fail(path: string, reason: string): never {
  throw new OpRejectedError('malformed', `${path}: ${reason}`);
}

function expectRecord(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(path, 'must be an object');
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) fail(path, 'must be a plain object');
  return value as Record<string, unknown>;
}

function exactFields(
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

function expectString(value: unknown, path: string): string {
  if (typeof value !== 'string') fail(path, 'must be a string');
  return value;
}

function expectText(text: string, path: string, maxBytes: number, allowEmpty = false): void {
  if (!allowEmpty && text.length === 0) fail(path, 'must not be empty');
  const bytes = encoder.encode(text).length;
  if (bytes > maxBytes) fail(path, `is ${bytes} bytes, at most ${maxBytes}`);
  if (CONTROL_OR_LONE_SURROGATE.test(text)) fail(path, 'contains a control character or lone surrogate');
}

function expectInteger(value: unknown, path: string, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || Object.is(value, -0)) {
    fail(path, `must be an integer from ${min} to 2^53 - 1`);
  }
}

function expectArray(value: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(value)) fail(path, 'must be an array');
  if (value.length > max) fail(path, `has ${value.length} entries, at most ${max}`);
  return value as unknown[];
}

function expectStringMap(value: unknown, path: string, max: number): Record<string, string> {
  const record = expectRecord(value, path);
  const entries = Object.entries(record);
  if (entries.length > max) fail(path, `has ${entries.length} entries, at most ${max}`);
  for (const [key, text] of entries) {
    expectText(key, `${path} key`, 255);
    expectText(expectString(text, `${path}[${JSON.stringify(key.slice(0, 40))}]`), path, MAX_STRING_BYTES);
  }
  return record as Record<string, string>;
}

function expectSignatureMap(value: unknown, path: string): void {
  const record = expectRecord(value, path);
  const servers = Object.entries(record);
  if (servers.length > MAX_SIGNATURE_SERVERS)
    fail(path, `has ${servers.length} servers, at most ${MAX_SIGNATURE_SERVERS}`);
  for (const [server, keys] of servers)
    expectStringMap(keys, `${path}[${JSON.stringify(server.slice(0, 70))}]`, MAX_SIGNATURES_PER_SERVER);
}

function expectUser(value: unknown, path: string, userId: string | undefined): void {
  const text = expectString(value, path);
  if (userId !== undefined && text !== userId) fail(path, 'must be the account user');
}

// Exactly one signature, the origin's: extra signatures add size and work and mean nothing here.
function validateOpSignatures(value: unknown, account: string, origin: string): void {
  const signatures = expectRecord(value, '$.signatures');
  const keyId = homeKeyId(origin);
  const servers = Object.keys(signatures);
  if (servers.length !== 1 || servers[0] !== account) {
    throw new OpRejectedError('bad_signature', 'signatures must hold exactly the origin signature under the account');
  }
  const byKey = expectRecord(signatures[account], `$.signatures.${account}`);
  const keys = Object.keys(byKey);
  if (keys.length !== 1 || keys[0] !== keyId) {
    throw new OpRejectedError('bad_signature', `signatures must hold exactly ${keyId.slice(0, 70)}`);
  }
  const text = byKey[keyId];
  if (typeof text !== 'string' || text.length > MAX_SIGNATURE_TEXT) {
    throw new OpRejectedError('bad_signature', 'signature must be a base64 string');
  }
}
