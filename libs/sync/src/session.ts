// The sync session between two homes of one account, as a pure state machine in the manner of
// Automerge's sync API: state in, state out, no I/O. The driver (libs/p2p) owns the stream and the store:
//
//   on open:            [s, msgs] = pump(s) ; send msgs
//   on each frame:      [s, effects] = receive(s, frame); carry out effects (apply ops, offer document);
//                       then pump again
//   on a new local op:  pump again
//
// where pump is: loop { req = opsRequest(s, vv); ops = req ? store.opsMissing(account, req.vv, req.limit) : [];
// [s, msg] = generate(s, { document, vv, ops }); if (!msg) break; send(msg) }. Each pump sends at most a
// hello, a document, the acks owed and SESSION_WINDOW batches of ops, so no message costs unbounded work.
//
// Delivery inside a session is assumed ordered and lossless (a libp2p stream is); duplicated or reordered
// messages are harmless (ops are idempotent, vectors are joined by max). A lost frame means a broken
// stream: the session may stall, and the next session starts again from fresh hellos.
import { homeStatus, isPeerId, isServerName, type AccountDocument } from '@polyhome/identity';
import {
  MAX_OPS_PER_BATCH,
  MAX_REASON_LENGTH,
  MAX_VV_ENTRIES,
  CATCH_UP_BATCH_SIZE,
  SESSION_BATCH_BYTES,
  SESSION_BATCH_SIZE,
  SESSION_WINDOW,
} from './constants.js';
import { MalformedMessageError } from './errors.js';
import type { Op, SyncErrorCode, SyncMessage, VersionVector } from './types.js';

/** The state of one side of a session. Plain data; treat as immutable. */
export interface SessionState {
  /** The account (server name) this session is about. */
  readonly account: string;
  /** `closed` after an error was sent or received; nothing more is generated. */
  readonly phase: 'open' | 'closed';
  readonly helloSent: boolean;
  readonly helloReceived: boolean;
  /** Highest document seq the peer is known to hold (0 until its hello). */
  readonly theirDocSeq: number;
  /** Highest document seq sent in this session (each version is sent at most once). */
  readonly docSent: number;
  /** What the peer is known to hold: join of its hello, its acks and the ops it sent. */
  readonly theirVv: VersionVector;
  /** What the peer holds or will hold once batches in flight arrive: the basis of the next batch. */
  readonly sentVv: VersionVector;
  /** Batches of ops sent and not yet acknowledged. */
  readonly inFlight: number;
  /** Acks owed: one per batch of ops received (so the peer's window accounting stays exact). */
  readonly acksOwed: number;
  /** Per origin, the peer's seq at the last resend; no progress since means the peer refuses those ops. */
  readonly resentAt: VersionVector;
  /** Origins the peer keeps refusing, with the seq we stopped at: not sent again in this session. */
  readonly givenUp: VersionVector;
  /** The peer's last reported log digests with the vector they describe (hello or ack). */
  readonly theirDigests?:
    { readonly vv: VersionVector; readonly digests: Readonly<Record<string, string>> } | undefined;
  /**
   * Origins whose whole log was resent because the digests differed: once per origin until the next hello
   * is received or sent again (renewHello).
   */
  readonly resynced: Readonly<Record<string, true>>;
  /** An error to send before closing. */
  readonly outgoingError?: { code: SyncErrorCode; reason: string } | undefined;
}

/** What the driver passes to generate: the local document, vector, and the ops opsRequest asked for. */
export interface LocalSnapshot {
  readonly document: AccountDocument;
  readonly vv: VersionVector;
  /** logDigests of the replica; optional, but without it equivocation between two peers' logs goes unseen. */
  readonly digests?: Readonly<Record<string, string>>;
  /** The result of `opsMissing(opsRequest(...).vv, limit)`, or empty. Anything else in it is ignored. */
  readonly ops?: readonly Op[];
}

/** Ops the driver should fetch for the next batch: those the holder of `vv` lacks, at most `limit`. */
export interface OpsRequest {
  readonly vv: VersionVector;
  readonly limit: number;
}

/** What the driver must do after a message was received. */
export type SessionEffect =
  /** Validate and apply these untrusted ops (store.applyOps); then pump, which sends the ack. */
  | { readonly kind: 'apply_ops'; readonly ops: readonly unknown[] }
  /** Offer this untrusted document (store.offerDocument); if it is refused as invalid, call failSession. */
  | { readonly kind: 'offer_document'; readonly document: unknown }
  /** The peer acknowledged holding `vv` (for delivery tracking). */
  | { readonly kind: 'peer_acked'; readonly vv: VersionVector }
  /** Close the stream, after sending `send` if there is one. */
  | {
      readonly kind: 'close';
      readonly by: 'us' | 'peer';
      readonly code: SyncErrorCode;
      readonly reason: string;
      readonly send?: SyncMessage;
    };

const encoder = new TextEncoder();

const ERROR_CODES: readonly SyncErrorCode[] = [
  'NOT_A_HOME',
  'UNKNOWN_ACCOUNT',
  'MALFORMED',
  'TOO_LARGE',
  'RATE_LIMITED',
  'INTERNAL',
];

/** A new session for one account (server name). */
export function initSession(account: string): SessionState {
  return {
    account,
    phase: 'open',
    helloSent: false,
    helloReceived: false,
    theirDocSeq: 0,
    docSent: 0,
    theirVv: {},
    sentVv: {},
    inFlight: 0,
    acksOwed: 0,
    resentAt: {},
    givenUp: {},
    resynced: {},
  };
}

/**
 * The error message to send a peer that is not a current home of the account (check before anything
 * else, with the document in force), or null when the peer is a home.
 */
export function admissionError(document: AccountDocument, account: string, peerId: string): SyncMessage | null {
  if (homeStatus(document, peerId).kind === 'home') return null;
  return { t: 'error', account, code: 'NOT_A_HOME', reason: 'the peer is not a home of this account' };
}

/**
 * Anti-entropy on an open session: the next generate sends a new hello with the current vector and digests,
 * and this side compares its digests again with the peer's last reported ones (resending, once more, the
 * whole log of an origin whose digest differs at the same seq). The peer, on that hello, compares its own
 * digests with ours and resends likewise. This is how two homes that hold different versions of a slot (an
 * equivocation that reached only one of them) find out while nothing else happens; run it from both ends, so
 * that whichever end holds the winning version sees the other's digests. A no-op before the first hellos.
 */
export function renewHello(session: SessionState): SessionState {
  if (session.phase !== 'open' || !session.helloSent || !session.helloReceived) return session;
  return { ...session, helloSent: false, resynced: {} };
}

/**
 * The ops to fetch for the next batch, or null when none should be sent now (no hello yet, window full,
 * nothing new). Pass the same vector and digests as to the generate call that follows.
 */
export function opsRequest(
  session: SessionState,
  localVv: VersionVector,
  localDigests?: Readonly<Record<string, string>>,
): OpsRequest | null {
  if (session.phase !== 'open' || !session.helloReceived || session.inFlight >= SESSION_WINDOW) return null;
  const basis = sendBasis(withResync(session, localVv, localDigests));
  for (const [origin, seq] of Object.entries(localVv)) {
    if (seq > (basis[origin] ?? 0)) return { vv: basis, limit: batchSize(basis, localVv) };
  }
  return null;
}

// Ops per message: CATCH_UP_BATCH_SIZE while the peer lacks more than a window of ordinary batches, else
// SESSION_BATCH_SIZE (a few new ops go out as they come, in small messages).
function batchSize(basis: VersionVector, localVv: VersionVector): number {
  let behind = 0;
  for (const [origin, seq] of Object.entries(localVv)) behind += Math.max(0, seq - (basis[origin] ?? 0));
  return behind > SESSION_WINDOW * SESSION_BATCH_SIZE ? CATCH_UP_BATCH_SIZE : SESSION_BATCH_SIZE;
}

/**
 * The next message to send, or null when there is nothing to send now. Call until it returns null.
 * Order: an error (then closed), our hello, a newer document, owed acks, a batch of ops.
 */
export function generate(session: SessionState, local: LocalSnapshot): [SessionState, SyncMessage | null] {
  const account = session.account;
  if (session.outgoingError !== undefined) {
    const { code, reason } = session.outgoingError;
    return [
      { ...session, phase: 'closed', outgoingError: undefined },
      { t: 'error', account, code, reason },
    ];
  }
  if (session.phase !== 'open') return [session, null];
  if (!session.helloSent) {
    return [
      { ...session, helloSent: true },
      {
        t: 'hello',
        account,
        doc_seq: local.document.seq,
        vv: { ...local.vv },
        ...(local.digests === undefined ? {} : { digests: { ...local.digests } }),
      },
    ];
  }
  if (!session.helloReceived) return [session, null];
  const docSeq = local.document.seq;
  if (docSeq > session.theirDocSeq && docSeq > session.docSent) {
    return [
      { ...session, docSent: docSeq },
      { t: 'doc', account, document: local.document },
    ];
  }
  if (session.acksOwed > 0) {
    return [
      { ...session, acksOwed: session.acksOwed - 1 },
      // With our digests, so the peer always knows them as of its last batch: a slot that later changes here
      // (an equivocation, the lower hash winning) is then seen to differ, and resent, without a new hello.
      {
        t: 'ack',
        account,
        vv: { ...local.vv },
        doc_seq: docSeq,
        ...(local.digests === undefined ? {} : { digests: { ...local.digests } }),
      },
    ];
  }
  if (session.inFlight >= SESSION_WINDOW) return [session, null];
  session = withResync(session, local.vv, local.digests);
  // Take from what the driver fetched only ops that extend the basis gaplessly: stale or reordered
  // driver input is ignored rather than sent.
  const basis = sendBasis(session);
  const limit = batchSize(basis, local.vv);
  const next = new Map<string, number>();
  const batch: Op[] = [];
  let bytes = 0;
  for (const op of local.ops ?? []) {
    if (batch.length >= limit) break;
    const expected = next.get(op.origin) ?? (basis[op.origin] ?? 0) + 1;
    if (op.seq !== expected) continue;
    if (op.seq > (local.vv[op.origin] ?? 0)) continue;
    const size = encoder.encode(JSON.stringify(op)).length;
    if (batch.length > 0 && bytes + size > SESSION_BATCH_BYTES) break;
    bytes += size;
    batch.push(op);
    next.set(op.origin, op.seq + 1);
  }
  if (batch.length === 0) return [session, null];
  const sentVv = { ...session.sentVv };
  for (const [origin, after] of next) sentVv[origin] = Math.max(sentVv[origin] ?? 0, after - 1);
  return [
    { ...session, sentVv, inFlight: session.inFlight + 1 },
    { t: 'ops', account, ops: batch },
  ];
}

/** Takes one received message (untrusted) and says what the driver must do. Never throws for bad input. */
export function receive(session: SessionState, input: unknown): [SessionState, SessionEffect[]] {
  if (session.phase !== 'open') return [session, []];
  let message: SyncMessage;
  try {
    message = parseSyncMessage(input, session.account);
  } catch (error) {
    if (error instanceof MalformedMessageError) return failed(session, error.syncCode, error.detail);
    throw error;
  }
  switch (message.t) {
    case 'hello': {
      const theirVv = joinVectors(session.theirVv, message.vv);
      // A hello after the first one (renewHello on the peer's side): compare digests afresh.
      const again = session.helloReceived ? { resynced: {} } : {};
      return [
        {
          ...session,
          ...again,
          ...digestsOf(message),
          helloReceived: true,
          theirDocSeq: Math.max(session.theirDocSeq, message.doc_seq),
          theirVv,
          sentVv: joinVectors(session.sentVv, theirVv),
        },
        [],
      ];
    }
    case 'doc': {
      // The peer holds at least this document, valid or not: never send it back an older one.
      const seq = (message.document as { seq?: unknown }).seq;
      const theirDocSeq =
        typeof seq === 'number' && Number.isSafeInteger(seq) ? Math.max(session.theirDocSeq, seq) : session.theirDocSeq;
      return [{ ...session, theirDocSeq }, [{ kind: 'offer_document', document: message.document }]];
    }
    case 'ops': {
      // The sender's log is gapless, so sending seq n means it holds 1..n: never echo those back.
      const theirVv = joinVectors(session.theirVv, heldVector(message.ops));
      return [
        { ...session, theirVv, sentVv: joinVectors(session.sentVv, theirVv), acksOwed: session.acksOwed + 1 },
        [{ kind: 'apply_ops', ops: message.ops }],
      ];
    }
    case 'ack': {
      const theirVv = joinVectors(session.theirVv, message.vv);
      const theirDocSeq = Math.max(session.theirDocSeq, message.doc_seq ?? 0);
      const inFlight = Math.max(0, session.inFlight - 1);
      let next: SessionState = {
        ...session,
        ...digestsOf(message),
        theirVv,
        theirDocSeq,
        inFlight,
        sentVv: joinVectors(session.sentVv, theirVv),
      };
      if (inFlight === 0) next = settle(next);
      return [next, [{ kind: 'peer_acked', vv: message.vv }]];
    }
    case 'error':
      return [
        { ...session, phase: 'closed' },
        [{ kind: 'close', by: 'peer', code: message.code, reason: message.reason }],
      ];
  }
}

/** Closes a session with an error for the peer (e.g. its document did not verify); returns the close effect to carry out. */
export function failSession(session: SessionState, code: SyncErrorCode, reason: string): [SessionState, SessionEffect] {
  const [next, effects] = failed(session, code, reason);
  return [next, effects[0]!];
}

/**
 * Checks that an untrusted value is a sync message of this protocol for `account` (envelope only: ops
 * and documents inside are validated by applyOps and offerDocument). Throws MalformedMessageError.
 */
export function parseSyncMessage(input: unknown, account?: string): SyncMessage {
  const message = record(input, '$');
  const t = message.t;
  const shape = typeof t === 'string' ? SHAPES[t] : undefined;
  if (shape === undefined) malformed(`unknown message type ${JSON.stringify(t)?.slice(0, 20)}`);
  for (const key of Object.keys(message)) {
    if (!shape.required.includes(key) && !shape.optional.includes(key)) malformed(`unknown field ${key.slice(0, 40)}`);
  }
  for (const key of shape.required) if (!Object.hasOwn(message, key)) malformed(`missing field ${key}`);
  if (typeof message.account !== 'string' || !isServerName(message.account)) malformed('account is not a server name');
  if (account !== undefined && message.account !== account) malformed('message for another account');
  switch (t) {
    case 'hello':
      integer(message.doc_seq, 'doc_seq', 1);
      vector(message.vv, 'vv');
      if (message.digests !== undefined) digestMap(message.digests);
      break;
    case 'doc':
      record(message.document, 'document');
      break;
    case 'ops':
      if (!Array.isArray(message.ops)) malformed('ops must be an array');
      if (message.ops.length > MAX_OPS_PER_BATCH) {
        throw new MalformedMessageError('TOO_LARGE', `${message.ops.length} ops, at most ${MAX_OPS_PER_BATCH}`);
      }
      break;
    case 'ack':
      vector(message.vv, 'vv');
      if (message.doc_seq !== undefined) integer(message.doc_seq, 'doc_seq', 1);
      if (message.digests !== undefined) digestMap(message.digests);
      break;
    case 'error':
      if (typeof message.code !== 'string' || !(ERROR_CODES as readonly string[]).includes(message.code)) {
        malformed('unknown error code');
      }
      if (typeof message.reason !== 'string') malformed('reason must be a string');
      if (message.reason.length > MAX_REASON_LENGTH) malformed(`reason longer than ${MAX_REASON_LENGTH}`);
      break;
  }
  return message as unknown as SyncMessage;
}

const SHAPES: Record<string, { required: readonly string[]; optional: readonly string[] }> = {
  hello: { required: ['t', 'account', 'doc_seq', 'vv'], optional: ['digests'] },
  doc: { required: ['t', 'account', 'document'], optional: [] },
  ops: { required: ['t', 'account', 'ops'], optional: [] },
  ack: { required: ['t', 'account', 'vv'], optional: ['doc_seq', 'digests'] },
  error: { required: ['t', 'account', 'code', 'reason'], optional: [] },
};

// The digests a hello or ack carries, with the vector they describe.
function digestsOf(message: { vv: VersionVector; digests?: Record<string, string> }): Partial<SessionState> {
  return message.digests === undefined ? {} : { theirDigests: { vv: message.vv, digests: message.digests } };
}

// Origins where both sides hold the same seq but different digests: some slot holds different ops
// (equivocation). Resend that origin's whole log once in this session, so the peer sees our versions.
function withResync(
  session: SessionState,
  localVv: VersionVector,
  localDigests: Readonly<Record<string, string>> | undefined,
): SessionState {
  const theirs = session.theirDigests;
  if (theirs === undefined || localDigests === undefined) return session;
  let next = session;
  for (const [origin, digest] of Object.entries(localDigests)) {
    if (next.resynced[origin] === true) continue;
    const seq = localVv[origin] ?? 0;
    if (seq === 0 || theirs.vv[origin] !== seq) continue;
    const other = theirs.digests[origin];
    if (other === undefined || other === digest) continue;
    const { [origin]: _given, ...givenUp } = next.givenUp;
    next = {
      ...next,
      sentVv: { ...next.sentVv, [origin]: 0 },
      givenUp,
      resynced: { ...next.resynced, [origin]: true },
    };
  }
  return next;
}

// What the peer holds or will hold, less origins given up on (treated as fully sent).
function sendBasis(session: SessionState): VersionVector {
  return joinVectors(session.sentVv, session.givenUp);
}

// All batches sent are acknowledged: whatever the peer still lacks was dropped (its pending buffer was
// full) or refused. Resend from what it holds, once per stall point; an origin that made no progress
// since the last resend is refused by the peer, and is not sent again in this session.
function settle(session: SessionState): SessionState {
  const resentAt = { ...session.resentAt };
  const givenUp = { ...session.givenUp };
  const sentVv: VersionVector = {};
  for (const [origin, sent] of Object.entries(session.sentVv)) {
    const held = session.theirVv[origin] ?? 0;
    if (held >= sent) {
      sentVv[origin] = sent;
      continue;
    }
    if (resentAt[origin] === held) {
      givenUp[origin] = sent;
      sentVv[origin] = sent;
    } else {
      resentAt[origin] = held;
      sentVv[origin] = held;
    }
  }
  return { ...session, sentVv, resentAt, givenUp };
}

function failed(session: SessionState, code: SyncErrorCode, reason: string): [SessionState, SessionEffect[]] {
  const text = reason.slice(0, MAX_REASON_LENGTH);
  const send: SyncMessage = { t: 'error', account: session.account, code, reason: text };
  return [
    { ...session, phase: 'closed', outgoingError: undefined },
    [{ kind: 'close', by: 'us', code, reason: text, send }],
  ];
}

/**
 * Per origin, the highest seq among untrusted op-like values (anything without a string origin and a positive
 * safe-integer seq is skipped): what the sender of those ops holds, its log being gapless.
 */
export function heldVector(ops: readonly unknown[]): VersionVector {
  const held: VersionVector = {};
  for (const op of ops) {
    const o = op as { origin?: unknown; seq?: unknown } | null;
    if (typeof o?.origin === 'string' && typeof o.seq === 'number' && Number.isSafeInteger(o.seq) && o.seq > 0) {
      held[o.origin] = Math.max(held[o.origin] ?? 0, o.seq);
    }
  }
  return held;
}

/** The highest seq per origin of two vectors. */
export function joinVectors(a: VersionVector, b: VersionVector): VersionVector {
  const out: VersionVector = { ...a };
  for (const [origin, seq] of Object.entries(b)) if (seq > (out[origin] ?? 0)) out[origin] = seq;
  return out;
}

function malformed(detail: string): never {
  throw new MalformedMessageError('MALFORMED', detail);
}

function record(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) malformed(`${path} must be an object`);
  return value as Record<string, unknown>;
}

function integer(value: unknown, path: string, min: number): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    malformed(`${path} must be an integer >= ${min}`);
  }
}

function vector(value: unknown, path: string): void {
  const vv = record(value, path);
  const entries = Object.entries(vv);
  if (entries.length > MAX_VV_ENTRIES)
    throw new MalformedMessageError('TOO_LARGE', `${path} has ${entries.length} entries`);
  for (const [origin, seq] of entries) {
    if (!isPeerId(origin)) malformed(`${path} has a key that is not a PeerId`);
    integer(seq, `${path} entry`, 0);
  }
}

const DIGEST = /^[0-9a-f]{32}$/;

function digestMap(value: unknown): void {
  const digests = record(value, 'digests');
  const entries = Object.entries(digests);
  if (entries.length > MAX_VV_ENTRIES)
    throw new MalformedMessageError('TOO_LARGE', `digests has ${entries.length} entries`);
  for (const [origin, digest] of entries) {
    if (!isPeerId(origin)) malformed('digests has a key that is not a PeerId');
    if (typeof digest !== 'string' || !DIGEST.test(digest)) malformed('a digest is 32 lowercase hex characters');
  }
}
