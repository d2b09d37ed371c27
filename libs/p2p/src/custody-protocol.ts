// /polyhome/custody/1.0.0: a home leaving an account (its provider migrates the account to another) hands the
// account's root key to a server home of the account, with the signed document that revokes the sender. One
// length-prefixed JSON request `{ document, root_key }` (root_key: unpadded base64 of the 32-byte seed; the
// stream is Noise-encrypted to the PeerId the sender dialled), one answer (`{ seq }` or `{ errcode, error }`, the
// HTTP API's shapes), then close. The checks and the storing are the receiver's domain, given as one callback.
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { multiaddr as parseMultiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { lpStream } from '@libp2p/utils';
import { CUSTODY_MAX_FRAME_BYTES, CUSTODY_MAX_STREAMS, CUSTODY_PROTOCOL, CUSTODY_TIMEOUT_MS } from './constants.js';
import { CustodyProtocolError, CustodyRefusedError } from './errors.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import { decodeJsonObject, requestOneFrame, type FrameError } from './one-frame.js';
import { closeQuietly, isTooLarge } from './session.js';

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
export class CustodyHandler {
  readonly #components: Pick<Libp2p, 'handle' | 'unhandle'>;
  readonly #receive: ReceiveCustody;
  readonly #log: P2pLogger;
  #started = false;

  constructor(components: Pick<Libp2p, 'handle' | 'unhandle'>, init: { receive: ReceiveCustody; logger?: P2pLogger }) {
    this.#components = components;
    this.#receive = init.receive;
    this.#log = init.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    await this.#components.handle(
      CUSTODY_PROTOCOL,
      (stream, connection) => {
        this.#serve(stream, connection).catch((err: unknown) => {
          this.#log.debug(
            { ...errorFields(err), peer: connection.remotePeer.toString(), protocol: CUSTODY_PROTOCOL },
            'custody answer not delivered',
          );
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        });
      },
      { maxInboundStreams: CUSTODY_MAX_STREAMS, maxOutboundStreams: CUSTODY_MAX_STREAMS },
    );
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    try {
      await this.#components.unhandle(CUSTODY_PROTOCOL);
    } catch (err) {
      this.#log.debug({ ...errorFields(err), protocol: CUSTODY_PROTOCOL }, 'custody handler not unregistered');
    }
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const lp = lpStream(stream, { maxDataLength: CUSTODY_MAX_FRAME_BYTES });
    let answer: CustodyAnswer | CustodyErrorAnswer;
    try {
      const frame = await lp.read({ signal: AbortSignal.timeout(CUSTODY_TIMEOUT_MS) });
      answer = await this.#answer(frame.subarray(), from);
    } catch (err) {
      if (!isTooLarge(err)) {
        this.#log.debug({ ...errorFields(err), peer: from, protocol: CUSTODY_PROTOCOL }, 'custody request not read');
        stream.abort(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      answer = { errcode: 'M_TOO_LARGE', error: `The request is larger than ${CUSTODY_MAX_FRAME_BYTES} bytes.` };
    }
    await lp.write(new TextEncoder().encode(JSON.stringify(answer)), {
      signal: AbortSignal.timeout(CUSTODY_TIMEOUT_MS),
    });
    await closeQuietly(stream, CUSTODY_TIMEOUT_MS);
  }

  async #answer(bytes: Uint8Array, from: string): Promise<CustodyAnswer | CustodyErrorAnswer> {
    let request: Record<string, unknown>;
    try {
      request = decodeJsonObject(bytes, fail);
    } catch (err) {
      return { errcode: 'M_NOT_JSON', error: (err as Error).message };
    }
    try {
      return await this.#receive(request, from);
    } catch (err) {
      this.#log.error(
        { ...errorFields(err), stack: (err as Error).stack, peer: from, protocol: CUSTODY_PROTOCOL },
        'custody handover failed',
      );
      return { errcode: 'M_UNKNOWN', error: 'Internal error.' };
    }
  }
}
