// One class per failure, each with a stable `code`, so drivers and stores can switch on codes without
// parsing messages. Refusals of untrusted ops are not thrown at callers of applyOps: they come back in
// ApplyResult.rejected. These errors are for programming mistakes and for documents that fail checks.
import type { OpRejectReason, SyncErrorCode } from './types.js';

/** Every stable error code this library throws. */
export type SyncErrorCodeName =
  | 'OP_REJECTED'
  | 'STALE_REPLICA'
  | 'DOCUMENT_REJECTED'
  | 'UNKNOWN_ACCOUNT'
  | 'ORIGIN_KEY_MISMATCH'
  | 'MALFORMED_MESSAGE';

/** Base class of every error this library throws. */
export abstract class SyncError extends Error {
  abstract readonly code: SyncErrorCodeName;
}

/** Thrown when an op is refused where a throw is wanted (createOp, assertValidOp); carries the typed reason. */
export class OpRejectedError extends SyncError {
  readonly code = 'OP_REJECTED';
  constructor(
    readonly reason: OpRejectReason,
    readonly detail: string,
  ) {
    super(`Op refused (${reason}): ${detail}`);
    this.name = 'OpRejectedError';
  }
}

/** Thrown when a Replica handle is used after a later version was made from it (as Automerge does with outdated documents). */
export class StaleReplicaError extends SyncError {
  readonly code = 'STALE_REPLICA';
  constructor() {
    super('This replica handle is outdated: use the one returned by the last applyOps/offerDocument');
    this.name = 'StaleReplicaError';
  }
}

/** Thrown when an offered account document does not validate, does not verify, or is for another account. */
export class DocumentRejectedError extends SyncError {
  readonly code = 'DOCUMENT_REJECTED';
  constructor(reason: string, options?: { cause?: unknown }) {
    super(`Account document refused: ${reason}`, options);
    this.name = 'DocumentRejectedError';
  }
}

/** Thrown when a store is asked about an account it does not host. */
export class UnknownAccountError extends SyncError {
  readonly code = 'UNKNOWN_ACCOUNT';
  constructor(account: string) {
    super(`This home does not host account ${account.slice(0, 64)}`);
    this.name = 'UnknownAccountError';
  }
}

/** Thrown when createOp is given a secret key that is not the key of the op's `origin`. */
export class OriginKeyMismatchError extends SyncError {
  readonly code = 'ORIGIN_KEY_MISMATCH';
  constructor(origin: string) {
    super(`The signing key is not the key of origin ${origin.slice(0, 60)}`);
    this.name = 'OriginKeyMismatchError';
  }
}

/** Thrown when a sync message from a peer is not a well-formed message of this protocol, or is over a cap. */
export class MalformedMessageError extends SyncError {
  readonly code = 'MALFORMED_MESSAGE';
  constructor(
    /** The error code to send the peer: `MALFORMED` or `TOO_LARGE`. */
    readonly syncCode: Extract<SyncErrorCode, 'MALFORMED' | 'TOO_LARGE'>,
    readonly detail: string,
  ) {
    super(`Sync message refused (${syncCode}): ${detail}`);
    this.name = 'MalformedMessageError';
  }
}
