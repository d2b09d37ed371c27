// /polyhome/enroll/1.0.0: one length-prefixed JSON request `{ document, token? }`, one length-prefixed JSON
// answer (`{ user_id, peer_id, addrs }` or `{ errcode, error }`, the HTTP API's shapes), then close. The
// protocol lives here, framework-free: the server supplies the domain (token, policy, hosting the account)
// as one callback, and every home (the server's admin route, the CLI) enrolls a server with the same client.
import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { multiaddr as parseMultiaddr, type Multiaddr } from '@multiformats/multiaddr';
import {
  ENROLL_MAX_FRAME_BYTES,
  ENROLL_MAX_INBOUND_STREAMS,
  ENROLL_MAX_OUTBOUND_STREAMS,
  ENROLL_PROTOCOL,
  ENROLL_TIMEOUT_MS,
} from './constants.js';
import { EnrollmentProtocolError, EnrollmentRefusedError } from './errors.js';
import type { EnrollmentServer, EnrollmentServerComponents, EnrollmentServerInit, RedeemEnrollment } from './index.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import { decodeJsonObject, requestOneFrame, type FrameError } from './one-frame.js';
import { closeQuietly, isTooLarge } from './session.js';

/** What a client sends: the signed account document naming the server as a home, and a token if it asks for one. */
export interface EnrollRequest {
  document: unknown;
  token?: string;
}

/** What an enrolled server answers: the account, and how to reach the server. */
export interface EnrollResponse {
  user_id: string;
  peer_id: string;
  addrs: string[];
}

/** A refusal, in the same shape as the HTTP API's error body. */
export interface EnrollErrorResponse {
  errcode: string;
  error: string;
}

/** Encodes a frame as UTF-8 JSON. */
export function encodeEnrollFrame(value: EnrollRequest | EnrollResponse | EnrollErrorResponse): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

const enrollFrameError: FrameError = (message, cause) => new EnrollmentProtocolError(message, { cause });

/** Decodes a frame as UTF-8 JSON; throws EnrollmentProtocolError when it is not an object. */
export function decodeEnrollFrame(bytes: Uint8Array): Record<string, unknown> {
  return decodeJsonObject(bytes, enrollFrameError);
}

/** The libp2p node a client needs: dialling a protocol. */
export type EnrollClientHost = Pick<Libp2p, 'dialProtocol'>;

/** Options of enrollOverLibp2p. */
export interface EnrollOptions {
  /** Aborts the whole exchange; default ENROLL_TIMEOUT_MS. */
  signal?: AbortSignal;
}

/**
 * Asks the server at `address` (a multiaddr ending in /p2p/<PeerId>) to become a home of the account whose
 * signed document names it. Resolves with the server's answer; throws EnrollmentRefusedError when it refuses
 * (with its errcode, e.g. M_FORBIDDEN for a bad token) and EnrollmentProtocolError when it does not answer
 * properly. Dial errors are libp2p's own.
 */
export async function enrollOverLibp2p(
  host: EnrollClientHost,
  address: string | Multiaddr,
  request: EnrollRequest,
  options: EnrollOptions = {},
): Promise<EnrollResponse> {
  const signal = options.signal ?? AbortSignal.timeout(ENROLL_TIMEOUT_MS);
  const target = typeof address === 'string' ? parseMultiaddr(address) : address;
  const answer = await requestOneFrame(host, target, ENROLL_PROTOCOL, request, {
    maxDataLength: ENROLL_MAX_FRAME_BYTES,
    signal,
    closeTimeoutMs: ENROLL_TIMEOUT_MS,
    fail: enrollFrameError,
  });
  return parseAnswer(answer);
}

function parseAnswer(answer: Record<string, unknown>): EnrollResponse {
  const { errcode, error, user_id, peer_id, addrs } = answer;
  if (typeof errcode === 'string') {
    throw new EnrollmentRefusedError(errcode, typeof error === 'string' ? error : '');
  }
  if (
    typeof user_id !== 'string' ||
    typeof peer_id !== 'string' ||
    !Array.isArray(addrs) ||
    !addrs.every((a): a is string => typeof a === 'string')
  ) {
    throw new EnrollmentProtocolError('answer is neither an enrollment nor an error');
  }
  return { user_id, peer_id, addrs };
}

/** The answering side (see EnrollmentServer in index.ts): protocol, caps and timeouts; the domain is `redeem`. */
export class EnrollmentHandler implements EnrollmentServer {
  readonly #components: EnrollmentServerComponents;
  readonly #redeem: RedeemEnrollment;
  readonly #log: P2pLogger;
  readonly #timeout: number;
  readonly #maxFrameBytes: number;
  readonly #maxInboundStreams: number;
  readonly #maxOutboundStreams: number;
  #started = false;

  constructor(components: EnrollmentServerComponents, init: EnrollmentServerInit) {
    this.#components = components;
    this.#redeem = init.redeem;
    this.#log = init.logger ?? silentLogger;
    this.#timeout = init.timeout ?? ENROLL_TIMEOUT_MS;
    this.#maxFrameBytes = init.maxFrameBytes ?? ENROLL_MAX_FRAME_BYTES;
    this.#maxInboundStreams = init.maxInboundStreams ?? ENROLL_MAX_INBOUND_STREAMS;
    this.#maxOutboundStreams = init.maxOutboundStreams ?? ENROLL_MAX_OUTBOUND_STREAMS;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    await this.#components.handle(
      ENROLL_PROTOCOL,
      (stream, connection) => {
        this.#serve(stream, connection).catch((err: unknown) => {
          // The answer could not be written (the peer left, or stalled past the timeout).
          this.#log.debug(
            { ...errorFields(err), peer: connection.remotePeer.toString(), protocol: ENROLL_PROTOCOL },
            'enrollment answer not delivered',
          );
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        });
      },
      { maxInboundStreams: this.#maxInboundStreams, maxOutboundStreams: this.#maxOutboundStreams },
    );
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    try {
      await this.#components.unhandle(ENROLL_PROTOCOL);
    } catch (err) {
      // The node may be stopping at the same moment; then there is nothing left to unregister.
      this.#log.debug({ ...errorFields(err), protocol: ENROLL_PROTOCOL }, 'enrollment handler not unregistered');
    }
  }

  // One request, one answer, then close; every wait is bounded.
  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const from = connection.remotePeer.toString();
    const lp = lpStream(stream, { maxDataLength: this.#maxFrameBytes });
    let answer: EnrollResponse | EnrollErrorResponse;
    try {
      const frame = await lp.read({ signal: AbortSignal.timeout(this.#timeout) });
      answer = await this.#answer(frame.subarray(), from);
    } catch (err) {
      if (!isTooLarge(err)) {
        this.#log.debug({ ...errorFields(err), peer: from, protocol: ENROLL_PROTOCOL }, 'enrollment request not read');
        stream.abort(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      answer = { errcode: 'M_TOO_LARGE', error: `The request is larger than ${this.#maxFrameBytes} bytes.` };
    }
    await lp.write(encodeEnrollFrame(answer), { signal: AbortSignal.timeout(this.#timeout) });
    await closeQuietly(stream, this.#timeout);
  }

  async #answer(bytes: Uint8Array, from: string): Promise<EnrollResponse | EnrollErrorResponse> {
    let request: Record<string, unknown>;
    try {
      request = decodeEnrollFrame(bytes);
    } catch (err) {
      return { errcode: 'M_NOT_JSON', error: (err as Error).message };
    }
    try {
      return await this.#redeem(request, from);
    } catch (err) {
      // redeem answers refusals itself; a throw is a failure of the domain (database down, a bug).
      this.#log.error(
        { ...errorFields(err), stack: (err as Error).stack, peer: from, protocol: ENROLL_PROTOCOL },
        'enrollment failed',
      );
      return { errcode: 'M_UNKNOWN', error: 'Internal error.' };
    }
  }
}
