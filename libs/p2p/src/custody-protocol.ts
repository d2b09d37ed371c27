// /polyhome/custody/1.0.0: a home leaving an account (its provider migrates the account to another) hands the
// account's root key to a server home of the account, with the signed document that revokes the sender. One
// length-prefixed JSON request `{ document, root_key }` (root_key: unpadded base64 of the 32-byte seed; the
// stream is Noise-encrypted to the PeerId the sender dialled), one answer (`{ seq }` or `{ errcode, error }`, the
// HTTP API's shapes), then close. The checks and the storing are the receiver's domain, given as one callback.
import type { Libp2p, PeerId } from '@libp2p/interface';
import { multiaddr as parseMultiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { CUSTODY_MAX_FRAME_BYTES, CUSTODY_MAX_STREAMS, CUSTODY_PROTOCOL, CUSTODY_TIMEOUT_MS } from './constants.js';
import { CustodyProtocolError, CustodyRefusedError } from './errors.js';
import { silentLogger, type P2pLogger } from './logger.js';
import { OneFrameServer, requestOneFrame, type FrameError } from './one-frame.js';

/** What the leaving home sends. */
export interface CustodyRequest {
  /** The signed account document that revokes the sender and names the receiver as a server home. */
  document: unknown;
  /** Unpadded base64 of the root key's 32-byte seed. */
  root_key: string;
}

/** What the receiver answers when it holds the key and the document: the document's seq. */
export interface CustodyAnswer {
  seq: number;
}

/** A refusal, in the HTTP API's error shape. */
export interface CustodyErrorAnswer {
  errcode: string;
  error: string;
}

/** The receiver's domain: checks the request from `from` (its noise-proved PeerId) and stores the key. */
export type ReceiveCustody = (
  request: Record<string, unknown>,
  from: string,
) => Promise<CustodyAnswer | CustodyErrorAnswer>;

const fail: FrameError = (message, cause) => new CustodyProtocolError(message, { cause });

/**
 * Hands the root key to `peer` (a PeerId the caller's peer store can dial, or a multiaddr ending in /p2p/<PeerId>). Resolves with the seq of the
 * document the receiver holds in force; throws CustodyRefusedError (with its errcode) when it refuses and
 * CustodyProtocolError when it does not answer properly. Dial errors are libp2p's own.
 */
export async function handOverCustody(
  host: Pick<Libp2p, 'dialProtocol'>,
  peer: PeerId | Multiaddr | string,
  request: CustodyRequest,
  options: { signal?: AbortSignal } = {},
): Promise<CustodyAnswer> {
  const target = typeof peer === 'string' ? parseMultiaddr(peer) : peer;
  const answer = await requestOneFrame(host, target, CUSTODY_PROTOCOL, request, {
    maxDataLength: CUSTODY_MAX_FRAME_BYTES,
    signal: options.signal ?? AbortSignal.timeout(CUSTODY_TIMEOUT_MS),
    closeTimeoutMs: CUSTODY_TIMEOUT_MS,
    fail,
  });
  const { errcode, error, seq } = answer;
  if (typeof errcode === 'string') throw new CustodyRefusedError(errcode, typeof error === 'string' ? error : '');
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) {
    throw new CustodyProtocolError('answer is neither a custody answer nor an error');
  }
  return { seq };
}

/** Serves /polyhome/custody/1.0.0 on a node: start() with the node, stop() before it. */
export class CustodyHandler extends OneFrameServer {
  constructor(components: Pick<Libp2p, 'handle' | 'unhandle'>, init: { receive: ReceiveCustody; logger?: P2pLogger }) {
    super(components, {
      protocol: CUSTODY_PROTOCOL,
      name: 'custody handover',
      maxFrameBytes: CUSTODY_MAX_FRAME_BYTES,
      timeoutMs: CUSTODY_TIMEOUT_MS,
      maxInboundStreams: CUSTODY_MAX_STREAMS,
      maxOutboundStreams: CUSTODY_MAX_STREAMS,
      logger: init.logger ?? silentLogger,
      answer: init.receive,
    });
  }
}
