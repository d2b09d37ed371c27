// Verifying a received batch's signatures ahead of applying it. A store applies a batch under the account's lock
// (PostgreSQL) or on PGlite's only session, and verification there is the larger part of the work: done ahead, on
// Node's thread pool, it runs on the other core and overlaps the database work of the batch before. The apply
// rules do not change: planApply still checks every signature, and finds the ones verified here in the process's
// signature memo (@polyhome/identity). Nothing here refuses anything; a malformed op simply has nothing verified
// ahead, and planApply refuses it with its own reason.
import {
  canonicalFields,
  decodeBase64,
  homeKeyId,
  isPeerId,
  MAX_JSON_DEPTH,
  publicKeyFromPeerId,
  signedBytes,
  verifyAhead,
  type SignatureCheck,
} from '@polyhome/identity';
import { adoptedEncoding, deepFreeze, rememberAdopted, type AdoptedEncoding } from './adopted.js';
import { MAX_OPS_PER_BATCH } from './constants.js';
import { deviceSignedBytes } from './key-signatures.js';
import { OP_TYPE } from './types.js';

// What a signature and the content hash leave out (signedBytes).
const UNSIGNED_FIELDS = ['signatures', 'unsigned'];

// Inputs whose checks were started already (by the session on arrival, then again by the store), with the work
// that checks them: a second call waits for it rather than verifying again.
const started = new WeakMap<object, Promise<unknown>>();

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function signatureText(signatures: unknown, user: unknown, keyId: string): string | undefined {
  if (typeof user !== 'string') return undefined;
  const byUser = record(record(signatures)?.[user]);
  const text = byUser !== undefined && Object.hasOwn(byUser, keyId) ? byUser[keyId] : undefined;
  return typeof text === 'string' && text.length <= 128 ? text : undefined;
}

/**
 * The Ed25519 checks an untrusted op will need: its signature by its origin home, and for a `device.put` the
 * device keys' self-signature. Empty for anything that does not look like an op (validation refuses it later).
 */
export function signatureChecksOf(input: unknown): SignatureCheck[] {
  const op = record(input);
  if (op === undefined || op.type !== OP_TYPE || typeof op.origin !== 'string' || !isPeerId(op.origin)) return [];
  const checks: SignatureCheck[] = [];
  try {
    const text = signatureText(op.signatures, op.account, homeKeyId(op.origin));
    if (text !== undefined) {
      checks.push({
        signature: decodeBase64(text),
        message: adoptedEncoding(op)?.signed ?? signedBytes(op),
        publicKey: publicKeyFromPeerId(op.origin),
      });
    }
    const body = record(op.body);
    if (op.op === 'device.put' && body !== undefined && typeof body.device_id === 'string') {
      const keyId = `ed25519:${body.device_id}`;
      const keys = record(body.keys);
      const key = keys !== undefined && Object.hasOwn(keys, keyId) ? keys[keyId] : undefined;
      const deviceText = signatureText(body.signatures, body.user_id, keyId);
      if (typeof key === 'string' && key.length <= 64 && deviceText !== undefined) {
        checks.push({
          signature: decodeBase64(deviceText),
          message: deviceSignedBytes(body),
          publicKey: decodeBase64(key),
        });
      }
    }
  } catch {
    // Not encodable or not base64: validation refuses the op with its own reason.
  }
  return checks;
}

/**
 * Verifies the signatures of a received batch on the thread pool and remembers those that verify, so that
 * planApply's checks of the same ops are lookups. At most MAX_OPS_PER_BATCH inputs are looked at (a batch is
 * capped at that); for inputs seen before, it waits for the checks already started. Resolves once every check
 * has finished; never rejects.
 */
export async function verifyOpsAhead(inputs: readonly unknown[]): Promise<void> {
  const checks: SignatureCheck[] = [];
  const fresh: object[] = [];
  const running = new Set<Promise<unknown>>();
  for (const input of inputs.slice(0, MAX_OPS_PER_BATCH)) {
    if (typeof input !== 'object' || input === null) continue;
    const work = started.get(input);
    if (work !== undefined) {
      running.add(work);
      continue;
    }
    fresh.push(input);
    checks.push(...signatureChecksOf(input));
  }
  if (fresh.length > 0) {
    const work = verifyAhead(checks).catch(() => 0);
    for (const input of fresh) started.set(input, work);
    running.add(work);
  }
  await Promise.all(running);
}

/**
 * Takes ownership of a received batch's ops, parsed from a frame by the caller, which changes them no more: each
 * op that is a plain JSON object is deep-frozen, and its canonical encoding (and a `device.put` body's self-signed
 * bytes) made once, here, for verifyOpsAhead and then validation to use instead of encoding it again; the planner
 * keeps a frozen op as it is instead of copying it. An op that cannot be frozen or encoded is left to validation,
 * which refuses it with its own reason. At most MAX_OPS_PER_BATCH inputs are looked at.
 */
export function adoptOps(inputs: readonly unknown[]): void {
  for (const input of inputs.slice(0, MAX_OPS_PER_BATCH)) {
    if (typeof input !== 'object' || input === null || Array.isArray(input)) continue;
    if (!deepFreeze(input, MAX_JSON_DEPTH)) continue;
    const op = input as Record<string, unknown>;
    let encoding: AdoptedEncoding | undefined;
    let device: Uint8Array | undefined;
    try {
      const fields = canonicalFields(op);
      encoding = { fields, signed: fields.bytesWithout(UNSIGNED_FIELDS) };
      if (op.op === 'device.put' && typeof op.body === 'object' && op.body !== null) {
        device = deviceSignedBytes(op.body);
      }
    } catch {
      // Not canonical JSON: validation refuses it (and encodes it again to say why).
    }
    rememberAdopted(op, encoding, op.body as object | undefined, device);
  }
}
