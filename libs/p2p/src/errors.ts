// One error class per failure, each with a stable `code` (js-libp2p habit: `this.name = 'XError'`).

/** Base class of the errors this package throws. */
export abstract class P2pError extends Error {
  /** Stable machine-readable code. */
  abstract readonly code: string;
}

/** Thrown when the node key does not produce the PeerId identity derives from its public key. */
export class NodeKeyMismatchError extends P2pError {
  readonly code = 'NODE_KEY_MISMATCH';
  constructor(expected: string, actual: string) {
    super(`node key gives PeerId ${actual}, identity derives ${expected}`);
    this.name = 'NodeKeyMismatchError';
  }
}

/** Thrown when the host init names no node key, or both a key and a key file. */
export class InvalidHostInitError extends P2pError {
  readonly code = 'INVALID_HOST_INIT';
  constructor(reason: string) {
    super(reason);
    this.name = 'InvalidHostInitError';
  }
}

/** Thrown when a lookup is given something that is neither a user ID nor a server name. */
export class InvalidAccountIdError extends P2pError {
  readonly code = 'INVALID_ACCOUNT_ID';
  constructor(reason: string) {
    super(`not a polyhome user ID or server name: ${reason}`);
    this.name = 'InvalidAccountIdError';
  }
}

/** Thrown when the DHT holds no valid account document for an account (a forged record counts as none). */
export class AccountNotFoundError extends P2pError {
  readonly code = 'ACCOUNT_NOT_FOUND';
  constructor(serverName: string) {
    super(`no valid account document found for ${serverName}`);
    this.name = 'AccountNotFoundError';
  }
}

/** Thrown by the DHT validator when a record under `/polyhome/...` is not a valid signed account document for its key. */
export class InvalidRecordError extends P2pError {
  readonly code = 'INVALID_RECORD';
  constructor(reason: string) {
    super(`invalid polyhome DHT record: ${reason}`);
    this.name = 'InvalidRecordError';
  }
}

/**
 * Thrown by the DHT record store when a record would replace a stored one that the selector prefers (an older
 * seq over a newer, a replay); kad-dht then refuses the PUT_VALUE.
 */
export class StaleRecordError extends P2pError {
  readonly code = 'STALE_RECORD';
  constructor(key: string, seq: number, storedSeq: number) {
    super(`DHT record ${key.slice(0, 120)} at seq ${seq} does not replace the stored seq ${storedSeq}`);
    this.name = 'StaleRecordError';
  }
}

/** Thrown when a SeqGuardStore cannot read or write what it keeps (a file store: the path and the reason). */
export class SeqGuardStoreError extends P2pError {
  readonly code = 'SEQ_GUARD_STORE';
  constructor(where: string, reason: string) {
    super(`DHT replay guard store ${where}: ${reason}`);
    this.name = 'SeqGuardStoreError';
  }
}

/** Thrown when a sync call names an account this node does not host. */
export class AccountNotHostedError extends P2pError {
  readonly code = 'ACCOUNT_NOT_HOSTED';
  constructor(serverName: string) {
    super(`this node does not host ${serverName}`);
    this.name = 'AccountNotHostedError';
  }
}

/** Thrown when a received sync frame is not a well-formed message (the stream is closed with MALFORMED). */
export class MalformedFrameError extends P2pError {
  readonly code = 'MALFORMED';
  constructor(reason: string) {
    super(`malformed sync frame: ${reason}`);
    this.name = 'MalformedFrameError';
  }
}

/** Thrown when the sync service is used before start() or after stop(). */
export class NotStartedError extends P2pError {
  readonly code = 'NOT_STARTED';
  constructor() {
    super('the sync service is not started');
    this.name = 'NotStartedError';
  }
}

/** Thrown when a home does not give an account document (it holds none, or the asking peer is not a home of it). */
export class DocumentUnavailableError extends P2pError {
  readonly code = 'DOCUMENT_UNAVAILABLE';
  constructor(serverName: string, reason: string) {
    super(`no account document of ${serverName}: ${reason}`);
    this.name = 'DocumentUnavailableError';
  }
}

/** Thrown by the enrollment client when the server answered with an error (`errcode` and `error` are its own). */
export class EnrollmentRefusedError extends P2pError {
  readonly code = 'ENROLLMENT_REFUSED';
  constructor(
    readonly errcode: string,
    readonly error: string,
  ) {
    super(`enrollment refused: ${errcode}: ${error}`);
    this.name = 'EnrollmentRefusedError';
  }
}

/** Thrown by the enrollment client when the server's answer is not an enrollment answer (malformed, too large, or none). */
export class EnrollmentProtocolError extends P2pError {
  readonly code = 'ENROLLMENT_PROTOCOL';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EnrollmentProtocolError';
  }
}

/** Thrown by the pairing client when the answer is not a pairing answer (malformed, too large, or none). */
export class PairingProtocolError extends P2pError {
  readonly code = 'PAIRING_PROTOCOL';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PairingProtocolError';
  }
}

/** Thrown by federationRequest before anything is sent when the method or path cannot go on the wire. */
export class InvalidFederationRequestError extends P2pError {
  readonly code = 'INVALID_FEDERATION_REQUEST';
  constructor(reason: string) {
    super(`invalid federation request: ${reason}`);
    this.name = 'InvalidFederationRequestError';
  }
}

/** Thrown by federationRequest when the peer cannot be dialled, or does not speak the federation protocol. */
export class FederationUnreachableError extends P2pError {
  readonly code = 'FEDERATION_UNREACHABLE';
  constructor(
    readonly peer: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`home ${peer} cannot be reached for federation: ${reason}`, options);
    this.name = 'FederationUnreachableError';
  }
}

/** Thrown by federationRequest when the exchange did not finish within its time limit (the stream is aborted). */
export class FederationTimeoutError extends P2pError {
  readonly code = 'FEDERATION_TIMEOUT';
  constructor(
    readonly peer: string,
    timeoutMs: number,
  ) {
    super(`home ${peer} did not answer the federation request within ${timeoutMs} ms`);
    this.name = 'FederationTimeoutError';
  }
}

/** Thrown by federationRequest when the caller's signal aborted the exchange (the stream is aborted). */
export class FederationAbortedError extends P2pError {
  readonly code = 'FEDERATION_ABORTED';
  constructor(peer: string, options?: { cause?: unknown }) {
    super(`federation request to ${peer} aborted by the caller`, options);
    this.name = 'FederationAbortedError';
  }
}

/** Thrown by federationRequest when the answer is larger than its maxResponseBytes (the stream is aborted). */
export class FederationResponseTooLargeError extends P2pError {
  readonly code = 'FEDERATION_RESPONSE_TOO_LARGE';
  constructor(
    readonly peer: string,
    readonly maxBytes: number,
  ) {
    super(`home ${peer} answered with more than ${maxBytes} bytes; raise maxResponseBytes if that is legitimate`);
    this.name = 'FederationResponseTooLargeError';
  }
}

/** Thrown by federationRequest when the answer is not an HTTP/1.1 answer with a JSON body (or none came). */
export class FederationBadResponseError extends P2pError {
  readonly code = 'FEDERATION_BAD_RESPONSE';
  constructor(
    readonly peer: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`home ${peer} sent a bad federation answer: ${reason}`, options);
    this.name = 'FederationBadResponseError';
  }
}

/** Thrown by clientApiRequest: the home could not be reached, did not answer in time, or answered badly. */
export class ClientApiError extends P2pError {
  readonly code = 'CLIENT_API';
  constructor(
    readonly kind: 'unreachable' | 'timeout' | 'aborted' | 'bad-response',
    readonly peer: string,
    reason: string,
    cause?: unknown,
  ) {
    super(`home ${peer}: ${reason}`, { cause });
    this.name = 'ClientApiError';
  }
}

/**
 * One line for a libp2p node that could not listen (libp2p's own message carries the socket error's stack):
 * "the address 127.0.0.1:4001 is in use" for a busy port, else the message's first line.
 */
export function listenFailureReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const busy = /EADDRINUSE: address already in use (\S+)/.exec(message);
  if (busy !== null) return `the address ${busy[1]} is in use by another process`;
  const denied = /EACCES: permission denied (\S+)/.exec(message);
  if (denied !== null) return `no permission to listen on ${denied[1]}`;
  return (message.split('\n')[0] ?? message).replace(/:$/, '');
}

/** Thrown by SyncService.resync before anything is done: the account is not hosted, or the peer is no current home. */
export class ResyncRefusedError extends P2pError {
  readonly code = 'RESYNC_REFUSED';
  constructor(reason: string) {
    super(reason);
    this.name = 'ResyncRefusedError';
  }
}

/** Thrown by SyncService.resync when the home could not be dialled. */
export class HomeUnreachableError extends P2pError {
  readonly code = 'HOME_UNREACHABLE';
  constructor(
    readonly peerId: string,
    reason: string,
  ) {
    super(reason);
    this.name = 'HomeUnreachableError';
  }
}

/** Thrown by SyncService.resync when its signal aborts before the two homes converged. */
export class ResyncTimeoutError extends P2pError {
  readonly code = 'RESYNC_TIMEOUT';
  constructor(reason: string) {
    super(reason);
    this.name = 'ResyncTimeoutError';
  }
}

/** Thrown by handOverCustody when the receiving home refuses the key (its errcode and reason). */
export class CustodyRefusedError extends P2pError {
  readonly code = 'CUSTODY_REFUSED';
  constructor(
    readonly errcode: string,
    readonly error: string,
  ) {
    super(`custody handover refused: ${errcode}: ${error}`);
    this.name = 'CustodyRefusedError';
  }
}

/** Thrown by handOverCustody when the answer is not a custody answer (malformed, too large, or none). */
export class CustodyProtocolError extends P2pError {
  readonly code = 'CUSTODY_PROTOCOL';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CustodyProtocolError';
  }
}
