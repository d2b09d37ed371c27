// The shared vocabulary of the sync engine: ops, version vectors, sync messages, and the store port.
// Written first so the pure engine (this package), the libp2p protocol (@polyhome/p2p) and the database
// store (@polyhome/storage) are built against one contract.
import type { AccountDocument } from '@polyhome/identity';
import type { OpKind } from './kinds.js';

// The op kinds, their namespaces and bodies are defined by the registry (kinds.ts) and the body validators.
export type { OpKind, OpNamespace } from './kinds.js';
export type { CrossSigningBody, CrossSigningUsage, DeviceBody, MemberBody, Membership } from './bodies.js';

/** `type` of every signed op; part of what is signed, so an op never verifies as another kind of object. */
export const OP_TYPE = 'polyhome.op';

/** The unsigned content of an op, exactly as DESIGN.md "Replicated account state" fixes it. */
export interface OpContent {
  type: typeof OP_TYPE;
  /** Server name of the account (64 lowercase hex). */
  account: string;
  /** PeerId of the home that made the op. */
  origin: string;
  /** Per-origin sequence number, gapless from 1. */
  seq: number;
  /** Lamport clock; orders concurrent writes, ties broken by `origin`. */
  lamport: number;
  /** `seq` of the account document the origin held when it made the op. */
  doc_seq: number;
  /** Milliseconds since the epoch at the origin (informative; never used for ordering). */
  ts: number;
  op: OpKind;
  /** Device id, room id, or the cross-signing key usage the op is about. */
  key: string;
  body: Record<string, unknown>;
}

/** A signed op: signed by its origin home as `signatures.<account>.ed25519:<origin>`. */
export interface Op extends OpContent {
  signatures: Record<string, Record<string, string>>;
}

/** What a home holds: for each origin, the highest gapless `seq` it has accepted. */
export type VersionVector = Record<string, number>;

/** Sync messages on `/polyhome/sync/1.0.0`, one JSON object per length-prefixed frame. */
export type SyncMessage =
  | {
      /** Opens a session for one account: the sender's document seq and version vector. */
      t: 'hello';
      account: string;
      doc_seq: number;
      vv: VersionVector;
      /** Optional (added after the first contract): per-origin log digests, to detect equivocation (see logDigests). */
      digests?: Record<string, string>;
    }
  | {
      /** A newer account document than the other side announced. */
      t: 'doc';
      account: string;
      document: AccountDocument;
    }
  | {
      /** A batch of ops, in per-origin `seq` order. */
      t: 'ops';
      account: string;
      ops: Op[];
    }
  | {
      /** What the sender now holds, after applying what it received (acknowledges delivery). */
      t: 'ack';
      account: string;
      vv: VersionVector;
      /** The sender's document seq (optional, added after the first contract): lets the peer resend a newer document. */
      doc_seq?: number;
      /** Optional: per-origin log digests after applying, as in `hello`. */
      digests?: Record<string, string>;
    }
  | {
      /** The sender refuses the session or a message; the stream is closed after it. */
      t: 'error';
      account: string;
      code: SyncErrorCode;
      reason: string;
    };

/** Why a session or message was refused. */
export type SyncErrorCode = 'NOT_A_HOME' | 'UNKNOWN_ACCOUNT' | 'MALFORMED' | 'TOO_LARGE' | 'RATE_LIMITED' | 'INTERNAL';

/** Why an op was refused; logged and counted by reason. */
export type OpRejectReason =
  | 'malformed'
  | 'wrong_type'
  | 'wrong_account'
  | 'bad_signature'
  | 'unknown_origin'
  | 'revoked'
  | 'duplicate'
  | 'too_large'
  | 'unknown_document'
  /** Out of order (or of an origin the document does not list yet) while the pending buffer is full; re-sent later. */
  | 'pending_full'
  /** A cross-signing key the document does not bind: another master key, or a key the master key did not sign. */
  | 'cross_signing';

/** The outcome of applying a batch of ops to one account's replica. */
export interface ApplyResult {
  /** Ops newly accepted (in the order they were applied). */
  accepted: Op[];
  /** Ops refused, each with its reason. Nothing of them was applied. */
  rejected: Array<{ op: unknown; reason: OpRejectReason; detail: string }>;
  /** Ops held back because an earlier `seq` of their origin is missing. */
  pending: number;
  /** Origins seen signing two different ops with one `seq` (equivocation), with both hashes. */
  equivocations: Array<{ origin: string; seq: number; held: string; other: string }>;
  /** Keys whose state changed (for waking clients): `<kind namespace>:<key>`. */
  changed: string[];
  /**
   * How many ops of `rejected` were refused as `pending_full` (the pending buffer of their origin, account or
   * store was full). The sender's acknowledged version vector does not cover them, so they are sent again later.
   * Optional so stores written before it was added still type-check; both stores always set it.
   */
  dropped?: number;
  /**
   * What the store read and wrote under the account's lock for this batch, so a sync session need not read it
   * again: the document in force and the heads (version vector and log digests) after the batch. A store that
   * cannot tell them without another read leaves them out.
   */
  after?: { document: AccountDocument; vv: VersionVector; digests: Record<string, string> };
  /**
   * True when the store recorded, in the batch's transaction, that the sender holds the ops it sent (accepted, or
   * already held here) and all before them, as `recordAck` would: the session does not record it again.
   */
  heldRecorded?: boolean;
}

/**
 * The port a home's storage implements for the sync protocol (PostgreSQL/PGlite in @polyhome/storage,
 * in memory in tests). Every method is about one account; `applyOps` is atomic.
 */
export interface ReplicaStore {
  /** The account document in force, or undefined when this home does not host the account. */
  document(account: string): Promise<AccountDocument | undefined>;
  /** Offers a newer document; returns the one in force afterwards (rollback and equivocation are refused). */
  offerDocument(account: string, document: AccountDocument, from: string): Promise<AccountDocument>;
  /** The version vector of what this home holds. */
  versionVector(account: string): Promise<VersionVector>;
  /** Up to `limit` ops the holder of `vv` lacks, in per-origin `seq` order. */
  opsMissing(account: string, vv: VersionVector, limit: number): Promise<Op[]>;
  /**
   * Validates and applies a batch in one transaction: all of a valid op, or nothing of it. With `recordHeld` (a
   * batch a peer sent), a store may record in that transaction that `from` holds the ops it sent, as `recordAck`
   * would, and say so in `heldRecorded`.
   */
  applyOps(
    account: string,
    ops: readonly unknown[],
    from: string,
    options?: { recordHeld?: boolean },
  ): Promise<ApplyResult>;
  /**
   * Per origin held, the digest of its log (see `logDigests`): sessions exchange them so two homes holding
   * different versions of one seq (a split equivocation) find out. A store without it still syncs, but
   * cannot detect that case.
   */
  logDigests?(account: string): Promise<Record<string, string>>;
  /**
   * The version vector and the log digests from one read, so they describe the same moment (a store that keeps
   * both in one table answers with one query where the two calls above take two).
   */
  heads?(account: string): Promise<{ vv: VersionVector; digests: Record<string, string> }>;
  /**
   * The document in force with the version vector and log digests, from one read (a session's view of its
   * account); undefined when the account is not hosted.
   */
  local?(
    account: string,
  ): Promise<{ document: AccountDocument; vv: VersionVector; digests: Record<string, string> } | undefined>;
}
