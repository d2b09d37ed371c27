// /polyhome/enroll/1.0.0: one length-prefixed JSON request `{ document, token? }`, one length-prefixed JSON
// answer (`{ user_id, peer_id, addrs }` or `{ errcode, error }`, the HTTP API's shapes), then close. The
// protocol lives here, framework-free: the server supplies the domain (token, policy, hosting the account)
// as one callback, and every home (the server's admin route, the CLI) enrolls a server with the same client.
import type { Libp2p } from '@libp2p/interface';
import { multiaddr as parseMultiaddr, type Multiaddr } from '@multiformats/multiaddr';
import {
  ENROLL_MAX_FRAME_BYTES,
  ENROLL_MAX_INBOUND_STREAMS,
  ENROLL_MAX_OUTBOUND_STREAMS,
  ENROLL_PROTOCOL,
  ENROLL_TIMEOUT_MS,
} from './constants.js';
import { EnrollmentProtocolError, EnrollmentRefusedError } from './errors.js';
import type { EnrollmentServer, EnrollmentServerComponents, EnrollmentServerInit } from './index.js';
import { silentLogger } from './logger.js';
import { decodeJsonObject, OneFrameServer, requestOneFrame, type FrameError } from './one-frame.js';

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
export class EnrollmentHandler extends OneFrameServer implements EnrollmentServer {
  constructor(components: EnrollmentServerComponents, init: EnrollmentServerInit) {
    super(components, {
      protocol: ENROLL_PROTOCOL,
      name: 'enrollment',
      maxFrameBytes: init.maxFrameBytes ?? ENROLL_MAX_FRAME_BYTES,
      timeoutMs: init.timeout ?? ENROLL_TIMEOUT_MS,
      maxInboundStreams: init.maxInboundStreams ?? ENROLL_MAX_INBOUND_STREAMS,
      maxOutboundStreams: init.maxOutboundStreams ?? ENROLL_MAX_OUTBOUND_STREAMS,
      logger: init.logger ?? silentLogger,
      answer: (request: Record<string, unknown>, from: string) => init.redeem(request, from),
    });
  }
}
