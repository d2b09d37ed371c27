// Validation of untrusted ops, in the order of cost: structure and caps (cheap, no crypto), then the
// origin against the account document, then the signature. Every refusal carries an OpRejectReason and
// a detail string; nothing here mutates anything, so a refused op is never half-applied.
import {
  canonicalFields,
  decodeBase64,
  homeKeyId,
  homeStatus,
  isPeerId,
  isServerName,
  publicKeyFromPeerId,
  SignatureInvalidError,
  signedBytes,
  verifyBytes,
  verifyTyped,
  WrongTypeError,
  type AccountDocument,
  type CanonicalFields,
  type Ed25519Options,
} from '@polyhome/identity';
import { adoptedEncoding, forgetEncodings } from './adopted.js';
import { expectInteger, expectRecord, expectString, expectText, fail } from './checks.js';
import { MAX_BODY_BYTES, MAX_KEY_BYTES, MAX_OP_BYTES } from './constants.js';
import { OpRejectedError } from './errors.js';
import { isOpKind, OP_KINDS } from './kinds.js';
import { OP_TYPE, type CrossSigningBody, type Op, type OpRejectReason } from './types.js';

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
// Unpadded base64 of an Ed25519 signature is 86 characters; leave room, refuse anything silly.
const MAX_SIGNATURE_TEXT = 128;

// What a signature and the content hash leave out (signing.ts, signedBytes).
const UNSIGNED_FIELDS = ['signatures', 'unsigned'];

/** An op that parsed, with the bytes its signature and its content hash cover, from the one encoding parsing made. */
export interface EncodedOp {
  readonly op: Op;
  /** The op's canonical JSON without `signatures`: what `signedBytes(op)` returns, not encoded again. */
  readonly signed: Uint8Array;
}

/**
 * Checks that an untrusted value is exactly an op (fields, types, integers, caps, body of its kind)
 * and returns it typed. Does not verify the signature or the origin. Throws OpRejectedError.
 */
export function parseOp(input: unknown, context: ParseContext = {}): Op {
  return parseFields(input, context).op;
}

/**
 * Like parseOp, and also returns the bytes the op's signature and content hash cover, derived from the
 * canonical encoding the size checks made: one encoding per op. Throws OpRejectedError.
 */
export function parseEncodedOp(input: unknown, context: ParseContext = {}): EncodedOp {
  const adopted = typeof input === 'object' && input !== null ? adoptedEncoding(input) : undefined;
  const { op, encoded } = parseFields(input, context);
  return { op, signed: adopted?.signed ?? encoded.bytesWithout(UNSIGNED_FIELDS) };
}

function parseFields(input: unknown, context: ParseContext): { op: Op; encoded: CanonicalFields } {
  const value = expectRecord(input, '$');
  // The type comes first: a signed object of another kind (an account document) is `wrong_type`, not `malformed`.
  const type = Object.hasOwn(value, 'type') ? value.type : undefined;
  if (type !== OP_TYPE) {
    throw new OpRejectedError('wrong_type', `type is ${JSON.stringify(type)?.slice(0, 40)}, expected ${OP_TYPE}`);
  }
  // Encoded once: the op's size, its body's size and its signed bytes all come from this.
  // An adopted op (deep-frozen on arrival, verify-ahead.ts) was encoded then.
  let encoded: CanonicalFields;
  try {
    encoded = adoptedEncoding(value)?.fields ?? canonicalFields(value);
  } catch (error) {
    throw new OpRejectedError('malformed', `not canonical JSON: ${(error as Error).message}`);
  }
  const size = encoded.byteLength;
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
  if (!isOpKind(kind)) fail('$.op', `unknown op kind ${JSON.stringify(kind)?.slice(0, 40)}`);
  const key = expectString(value.key, '$.key');
  expectText(key, '$.key', MAX_KEY_BYTES);
  const body = expectRecord(value.body, '$.body');
  const bodySize = encoded.valueByteLength('body') ?? 0;
  if (bodySize > MAX_BODY_BYTES) {
    throw new OpRejectedError('too_large', `body is ${bodySize} bytes, at most ${MAX_BODY_BYTES}`);
  }
  validateOpSignatures(value.signatures, account, origin);
  try {
    OP_KINDS[kind].validate(body, key, context.userId);
  } finally {
    forgetEncodings(value, body);
  }
  return { op: value as unknown as Op, encoded };
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
 * Verifies the signature of an op from parseEncodedOp over the bytes parsing encoded, by its origin's key
 * (taken from the PeerId). Parsing checked the type and that the only signature is the origin's. Throws
 * OpRejectedError (`bad_signature`) with the detail verifyOpSignature gives.
 */
export function verifyEncodedOp({ op, signed }: EncodedOp, options?: Ed25519Options): void {
  const keyId = homeKeyId(op.origin);
  try {
    const signature = decodeBase64(op.signatures[op.account]?.[keyId] ?? '');
    if (!verifyBytes(signature, signed, publicKeyFromPeerId(op.origin), options)) {
      throw new SignatureInvalidError(op.account, keyId);
    }
  } catch (error) {
    throw new OpRejectedError('bad_signature', (error as Error).message);
  }
}

/**
 * Checks a `cross_signing.put` against the cross-signing master key the document names (DESIGN.md, "The account
 * document"): a master key op must carry exactly that key, and a self-signing or user-signing key must carry a
 * valid signature by it, so no home can make its own keys (or a rogue device) look cross-signed. A document
 * that names no master key (made before the binding, or before the account set up cross-signing) binds nothing.
 * Other kinds pass. Throws OpRejectedError (`cross_signing`).
 */
export function checkCrossSigning(op: Op, document: AccountDocument, options?: Ed25519Options): void {
  if (op.op !== 'cross_signing.put') return;
  const master = document.cross_signing?.master;
  if (master === undefined) return;
  const refusal = crossSigningRefusal(
    op.key,
    op.body as unknown as CrossSigningBody,
    document.user_id,
    master,
    options,
  );
  if (refusal !== undefined) throw new OpRejectedError('cross_signing', `${refusal} (document ${document.seq})`);
}

/**
 * Why a cross-signing key of `usage` (a body valid for `cross_signing.put`) is not bound by `master`, or
 * undefined when it is: the master key itself, or a key with a valid signature by it under `userId`.
 */
export function crossSigningRefusal(
  usage: string,
  body: CrossSigningBody,
  userId: string,
  master: string,
  options?: Ed25519Options,
): string | undefined {
  if (usage === 'master') {
    const [keyId, key] = Object.entries(body.keys)[0] ?? ['', ''];
    if (key === master && keyId === `ed25519:${master}`) return undefined;
    return `master key ${key.slice(0, 12)}... is not the master key the document names (${master.slice(0, 12)}...)`;
  }
  const text = body.signatures?.[userId]?.[`ed25519:${master}`];
  let valid: boolean;
  try {
    valid =
      typeof text === 'string' && verifyBytes(decodeBase64(text), signedBytes(body), decodeBase64(master), options);
  } catch {
    valid = false;
  }
  if (valid) return undefined;
  return `${usage} key has no valid signature by the master key the document names (${master.slice(0, 12)}...)`;
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
    const encoded = parseEncodedOp(input, { account: accountOf(document), userId: document.user_id });
    const { op } = encoded;
    const origin = checkOrigin(op, document);
    verifyEncodedOp(encoded, options);
    checkCrossSigning(op, document, options);
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
