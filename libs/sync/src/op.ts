// Making and hashing ops. An op is signed by its origin home as the account's server name with key id
// `ed25519:<origin peerId>`, over canonical JSON that includes `type: "polyhome.op"`, so the same key's
// signature over an account document (or anything else) never verifies as an op.
import {
  homeKeyId,
  peerIdFromPublicKey,
  sha256Hex,
  signedBytes,
  signTyped,
  type Ed25519Options,
  type SecretKey,
} from '@polyhome/identity';
import { OriginKeyMismatchError } from './errors.js';
import { OP_TYPE, type Op, type OpContent } from './types.js';
import { parseOp } from './validate.js';

/** The fields of an op before signing (`type` is filled in). */
export type OpFields = Omit<OpContent, 'type'>;

/**
 * Signs an op as its origin home and checks it the way a receiving home would (structure and caps).
 * Throws OriginKeyMismatchError when the key is not the origin's, OpRejectedError when the op would be refused.
 */
export function createOp(
  fields: OpFields,
  homeSecretKey: SecretKey,
  options?: Ed25519Options & { userId?: string },
): Op {
  if (peerIdFromPublicKey(homeSecretKey.publicKey) !== fields.origin) throw new OriginKeyMismatchError(fields.origin);
  const content: OpContent = {
    type: OP_TYPE,
    account: fields.account,
    origin: fields.origin,
    seq: fields.seq,
    lamport: fields.lamport,
    doc_seq: fields.doc_seq,
    ts: fields.ts,
    op: fields.op,
    key: fields.key,
    body: fields.body,
  };
  const op = signTyped(content, OP_TYPE, fields.account, homeKeyId(fields.origin), homeSecretKey, options);
  // Never make an op a peer would refuse: it would be stuck in our log and block the origin's later seqs.
  return parseOp(op, { account: fields.account, userId: options?.userId });
}

/** Hex sha256 of the op's canonical JSON without `signatures`/`unsigned`: the content hash that decides equivocation. */
export function opHash(op: Op): string {
  return opHashOfSigned(signedBytes(op));
}

/** opHash from the op's signed bytes (parseEncodedOp's `signed`), when they are already encoded. */
export function opHashOfSigned(signed: Uint8Array): string {
  return sha256Hex(signed);
}

/** The state namespace an op kind writes to (from the registry). */
export { namespaceOf } from './kinds.js';

/**
 * Total order of writes to one key: greater lamport wins, ties broken by origin, then by seq (only a
 * misbehaving origin reuses a lamport). Returns > 0 when `a` wins over `b`.
 */
export function compareOps(a: Op, b: Op): number {
  if (a.lamport !== b.lamport) return a.lamport - b.lamport;
  if (a.origin !== b.origin) return a.origin < b.origin ? -1 : 1;
  return a.seq - b.seq;
}
