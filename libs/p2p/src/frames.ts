// Encoding and checking of sync frames: one JSON SyncMessage per length-prefixed frame. The envelope
// rules are the sync engine's (parseSyncMessage); this file adds the wire caps. Ops themselves are
// checked (signature, origin, seq) by the ReplicaStore, the only thing allowed to accept them.
import { MalformedMessageError, parseSyncMessage, type SyncMessage } from '@polyhome/sync';
import { MAX_OPS_PER_FRAME, MAX_VECTOR_ENTRIES } from './constants.js';
import { MalformedFrameError } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

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

/** UTF-8 JSON of one message. */
export function encodeMessage(message: SyncMessage): Uint8Array {
  return encoder.encode(JSON.stringify(message));
}

/** Parses a frame's bytes as UTF-8 JSON (the value is still untrusted). Throws MalformedFrameError. */
export function parseFrame(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw new MalformedFrameError('not UTF-8 JSON');
  }
}

/**
 * Parses and checks one frame: JSON, then the sync engine's envelope check (parseSyncMessage: fields,
 * account, vector caps, error codes), then this protocol's own caps. Throws MalformedFrameError
 * (TooManyOpsError when an `ops` message carries more ops than accepted).
 */
export function decodeMessage(bytes: Uint8Array, limits: FrameLimits = DEFAULT_FRAME_LIMITS): SyncMessage {
  return decodeValue(parseFrame(bytes), limits);
}

/** decodeMessage of a frame already parsed by parseFrame. */
export function decodeValue(value: unknown, limits: FrameLimits = DEFAULT_FRAME_LIMITS): SyncMessage {
  checkVectorSizes(value, limits);
  let message: SyncMessage;
  try {
    message = parseSyncMessage(value);
  } catch (error) {
    if (error instanceof MalformedMessageError) {
      if (error.syncCode === 'TOO_LARGE') throw new TooManyOpsError(error.detail);
      throw new MalformedFrameError(error.detail);
    }
    throw error;
  }
  if (message.t === 'ops' && message.ops.length > limits.maxOpsPerBatch)
    throw new TooManyOpsError(`${message.ops.length} ops`);
  if ((message.t === 'hello' || message.t === 'ack') && Object.keys(message.vv).length > limits.maxVectorEntries) {
    throw new MalformedFrameError('vv has too many entries');
  }
  return message;
}

/** What a server name looks like: 64 lowercase hex digits. The form only: no curve point is checked. */
const SERVER_NAME_FORM = /^[0-9a-f]{64}$/;

/**
 * The account a parsed first frame says hello about, read without checking anything costly (no PeerId, no
 * curve point): who is asking is decided from it before the frame is decoded. Undefined when the frame is
 * not an object with `t: "hello"` and an account of the server-name form.
 */
export function helloAccount(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { t, account } = value as { t?: unknown; account?: unknown };
  if (t !== 'hello' || typeof account !== 'string' || !SERVER_NAME_FORM.test(account)) return undefined;
  return account;
}

/**
 * Bounds the keys of a parsed frame's `vv` and `digests` by counting them, before any key is checked as a
 * PeerId (a point decompression each). Throws MalformedFrameError.
 */
export function checkVectorSizes(value: unknown, limits: FrameLimits = DEFAULT_FRAME_LIMITS): void {
  if (typeof value !== 'object' || value === null) return;
  const { vv, digests } = value as { vv?: unknown; digests?: unknown };
  for (const [name, map] of [
    ['vv', vv],
    ['digests', digests],
  ] as const) {
    if (typeof map !== 'object' || map === null) continue;
    let n = 0;
    for (const key in map) if (Object.hasOwn(map, key) && ++n > limits.maxVectorEntries) break;
    if (n > limits.maxVectorEntries) throw new MalformedFrameError(`${name} has too many entries`);
  }
}

/** Thrown by decodeMessage when an `ops` message carries more ops than the cap (answered with TOO_LARGE). */
export class TooManyOpsError extends MalformedFrameError {
  constructor(detail: string) {
    super(detail);
    this.name = 'TooManyOpsError';
  }
}
