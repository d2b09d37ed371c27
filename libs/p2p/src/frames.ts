// Encoding and checking of sync frames: one JSON SyncMessage per length-prefixed frame. Everything
// received is checked here for shape and size before any handler sees it; ops themselves are checked
// (signature, origin, seq) by the ReplicaStore, which is the only thing allowed to accept them.
import { isServerName, type AccountDocument } from '@polyhome/identity';
import type { Op, SyncErrorCode, SyncMessage, VersionVector } from '@polyhome/sync';
import { MAX_ERROR_REASON_LENGTH, MAX_OPS_PER_FRAME, MAX_VECTOR_ENTRIES } from './constants.js';
import { MalformedFrameError } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

// An Ed25519 PeerId in base58btc: cheap to check per vector entry, unlike decoding the key.
const PEER_ID_TEXT = /^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$/;
const ERROR_CODES: ReadonlySet<SyncErrorCode> = new Set([
  'NOT_A_HOME',
  'UNKNOWN_ACCOUNT',
  'MALFORMED',
  'TOO_LARGE',
  'RATE_LIMITED',
  'INTERNAL',
]);

/** Limits applied when decoding a frame. */
export interface FrameLimits {
  /** Most ops accepted in one `ops` message. */
  maxOpsPerBatch: number;
  /** Most entries accepted in a version vector. */
  maxVectorEntries: number;
}

/** The limits the protocol runs with unless told otherwise. */
export const DEFAULT_FRAME_LIMITS: FrameLimits = Object.freeze({
  maxOpsPerBatch: MAX_OPS_PER_FRAME,
  maxVectorEntries: MAX_VECTOR_ENTRIES,
});

/** A decoded message of one of the kinds, for the dispatch table. */
export type MessageOf<T extends SyncMessage['t']> = Extract<SyncMessage, { t: T }>;

/** UTF-8 JSON of one message. */
export function encodeMessage(message: SyncMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

/**
 * UTF-8 JSON of an `ops` message from ops already serialised one by one, so the sender can count
 * bytes while it fills a batch without encoding the batch twice.
 */
export function encodeOpsFrame(account: string, opJson: readonly string[]): Uint8Array {
  return encoder.encode(`{"t":"ops","account":${JSON.stringify(account)},"ops":[${opJson.join(',')}]}`);
}

/** Parses and checks one frame. Throws MalformedFrameError (`tooLarge` set when a count cap was passed). */
export function decodeMessage(bytes: Uint8Array, limits: FrameLimits = DEFAULT_FRAME_LIMITS): SyncMessage {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new MalformedFrameError('not UTF-8 JSON');
  }
  const message = record(value, 'message');
  const t = message.t;
  const account = message.account;
  if (typeof account !== 'string' || !isServerName(account)) throw new MalformedFrameError('account');
  switch (t) {
    case 'hello':
      exactKeys(message, ['t', 'account', 'doc_seq', 'vv']);
      return { t, account, doc_seq: count(message.doc_seq, 'doc_seq'), vv: vector(message.vv, limits) };
    case 'doc':
      exactKeys(message, ['t', 'account', 'document']);
      // Shape only: the session verifies the root signature before the store sees it.
      return { t, account, document: record(message.document, 'document') as unknown as AccountDocument };
    case 'ops': {
      exactKeys(message, ['t', 'account', 'ops']);
      if (!Array.isArray(message.ops)) throw new MalformedFrameError('ops');
      if (message.ops.length > limits.maxOpsPerBatch) throw new TooManyOpsError(message.ops.length);
      // Each op is left as unknown for the store; only objects are worth handing over.
      for (const op of message.ops) record(op, 'op');
      return { t, account, ops: message.ops as Op[] };
    }
    case 'ack':
      exactKeys(message, ['t', 'account', 'vv']);
      return { t, account, vv: vector(message.vv, limits) };
    case 'error': {
      exactKeys(message, ['t', 'account', 'code', 'reason']);
      const code = message.code;
      if (typeof code !== 'string' || !ERROR_CODES.has(code as SyncErrorCode)) throw new MalformedFrameError('code');
      const reason = message.reason;
      if (typeof reason !== 'string' || reason.length > MAX_ERROR_REASON_LENGTH)
        throw new MalformedFrameError('reason');
      return { t, account, code: code as SyncErrorCode, reason };
    }
    default:
      throw new MalformedFrameError('unknown message type');
  }
}

/** Thrown by decodeMessage when an `ops` message carries more ops than the cap (answered with TOO_LARGE). */
export class TooManyOpsError extends MalformedFrameError {
  constructor(n: number) {
    super(`${n} ops in one message`);
    this.name = 'TooManyOpsError';
  }
}

/** Pointwise maximum of two version vectors (a new object). */
export function mergeVectors(a: VersionVector, b: VersionVector): VersionVector {
  const out: VersionVector = { ...a };
  for (const [origin, seq] of Object.entries(b)) {
    if (seq > (out[origin] ?? 0)) out[origin] = seq;
  }
  return out;
}

/** True when `a` holds nothing that `b` lacks. */
export function coveredBy(a: VersionVector, b: VersionVector): boolean {
  return Object.entries(a).every(([origin, seq]) => seq <= (b[origin] ?? 0));
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new MalformedFrameError(what);
  return value as Record<string, unknown>;
}

function exactKeys(message: Record<string, unknown>, keys: readonly string[]): void {
  const own = Object.keys(message);
  if (own.length !== keys.length || !keys.every((k) => Object.hasOwn(message, k))) {
    throw new MalformedFrameError(`fields of ${String(message.t)}`);
  }
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new MalformedFrameError(what);
  return value;
}

function vector(value: unknown, limits: FrameLimits): VersionVector {
  const entries = Object.entries(record(value, 'vv'));
  if (entries.length > limits.maxVectorEntries) throw new MalformedFrameError('vv has too many entries');
  for (const [origin, seq] of entries) {
    if (!PEER_ID_TEXT.test(origin)) throw new MalformedFrameError('vv origin');
    count(seq, 'vv seq');
  }
  // fromEntries makes own data properties only, so an origin can never reach a prototype.
  return Object.fromEntries(entries) as VersionVector;
}
