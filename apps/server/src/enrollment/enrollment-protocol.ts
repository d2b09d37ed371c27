// /polyhome/enroll/1.0.0: one length-prefixed JSON request, one length-prefixed JSON answer, then close.
// Framework-free (no NestJS) so the CLI and other homes can enroll a server with the same client.
import type { Libp2p, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { multiaddr as parseMultiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { EnrollmentProtocolError, EnrollmentRefusedError } from './errors.js';

/** Protocol id of enrollment over libp2p. */
export const ENROLL_PROTOCOL = '/polyhome/enroll/1.0.0';

/** Largest frame either way: an account document is at most 64 KiB canonical, so this leaves room for JSON spacing. */
export const ENROLL_MAX_FRAME_BYTES = 128 * 1024;

/** Time allowed for a whole exchange (open, request, answer), each side. */
export const ENROLL_TIMEOUT_MS = 10_000;

/** Enrollment streams per connection: enrolling is rare, so a peer opening many at once is not enrolling. */
export const ENROLL_MAX_INBOUND_STREAMS = 2;

/** Outbound enrollment streams per connection. */
export const ENROLL_MAX_OUTBOUND_STREAMS = 2;

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

/** Decodes a frame as UTF-8 JSON; throws EnrollmentProtocolError when it is not an object. */
export function decodeEnrollFrame(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new EnrollmentProtocolError('frame is not UTF-8 JSON', { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EnrollmentProtocolError('frame is not a JSON object');
  }
  return value as Record<string, unknown>;
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
  const stream = await host.dialProtocol(target, ENROLL_PROTOCOL, { signal });
  try {
    const lp = lpStream(stream, { maxDataLength: ENROLL_MAX_FRAME_BYTES });
    await lp.write(encodeEnrollFrame(request), { signal });
    let frame;
    try {
      frame = await lp.read({ signal });
    } catch (err) {
      throw new EnrollmentProtocolError(`no answer: ${(err as Error).message}`, { cause: err });
    }
    const answer = decodeEnrollFrame(frame.subarray());
    await closeQuietly(stream);
    return parseAnswer(answer);
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
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

/** Closes a stream, aborting it if the close does not finish in time. */
export async function closeQuietly(stream: Stream): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(ENROLL_TIMEOUT_MS) });
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
  }
}
