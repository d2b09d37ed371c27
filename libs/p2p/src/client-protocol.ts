// /polyhome/client/1.0.0: the Matrix client API over libp2p, for `polyhome proxy`. One HTTP/1.1 request and its
// answer per stream (the federation codec's framing: Content-Length bodies, no chunking, no keep-alive), with
// binary bodies and a whitelist of headers. The home forwards each request to its own Matrix client API (the
// `forward` function), which checks the access token as for any client: the PeerId of the caller grants nothing.
// This file owns the wire's defences, all before `forward` runs: concurrency caps (429), the path whitelist
// (403, so `/admin/...` is never reached), methods (405), the body cap (413), head and read deadlines (408), a
// total deadline long enough for /sync long polls (504), a failed forward answered 502.
import type { Libp2p, PeerId } from '@libp2p/interface';
import {
  CLIENT_API_CLIENT_TIMEOUT,
  CLIENT_API_HEAD_TIMEOUT,
  CLIENT_API_MAX_BODY_BYTES,
  CLIENT_API_MAX_BODY_BYTES_IN_FLIGHT,
  CLIENT_API_MAX_CONCURRENT,
  CLIENT_API_MAX_CONCURRENT_PER_PEER,
  CLIENT_API_MAX_RESPONSE_BYTES,
  CLIENT_API_MAX_STREAMS,
  CLIENT_API_METHODS,
  CLIENT_API_PATH_PREFIXES,
  CLIENT_API_PROTOCOL,
  CLIENT_API_READ_TIMEOUT,
  CLIENT_API_REQUEST_HEADERS,
  CLIENT_API_REQUEST_TIMEOUT,
  CLIENT_API_RESPONSE_HEADERS,
  FEDERATION_LINGER_TIMEOUT,
  FEDERATION_MAX_HEAD_BYTES,
  FEDERATION_RETRY_AFTER_MS,
} from './constants.js';
import { ClientApiError } from './errors.js';
import { encodeMessage, encodeResponse, statusLine } from './federation-codec.js';
import {
  HttpStreamServer,
  refusal,
  type StreamRefusal,
  type StreamRequest,
  type StreamServer,
  type StreamServerOptions,
  type WireCounts,
} from './http-stream-server.js';
import { silentLogger } from './logger.js';
import { DialFailedError, exchange, REFUSAL_WRITE_TIMEOUT } from './wire-io.js';

/** Headers as pairs, names lower-cased. */
export type HeaderPairs = Array<[string, string]>;

/** A client API request as the home's `forward` sees it, after every wire check passed. */
export interface ClientApiRequest {
  method: string;
  /** Path (percent-encoded, under CLIENT_API_PATH_PREFIXES, no dot segments) and query, as sent. */
  target: string;
  /** The whitelisted headers (CLIENT_API_REQUEST_HEADERS). */
  headers: HeaderPairs;
  /** The body, or undefined when there was none. */
  body: Uint8Array | undefined;
  /** The caller (it grants nothing: the access token does). */
  peerId: PeerId;
  /** Aborted when the caller goes away or the request's time is up. */
  signal: AbortSignal;
}

/** An answer: status, headers (filtered by CLIENT_API_RESPONSE_HEADERS before they go on the wire), body. */
export interface ClientApiResponse {
  status: number;
  headers: HeaderPairs;
  body: Uint8Array;
}

/** Answers one request, usually by forwarding it to the home's Matrix client API; a throw is answered 502. */
export type ClientApiForward = (request: ClientApiRequest) => Promise<ClientApiResponse>;

/** Options of createClientApiServer; every cap and timeout defaults to the CLIENT_API_* constants. */
export interface ClientApiServerInit extends StreamServerOptions {
  forward: ClientApiForward;
  /** Largest answer body, bytes (default CLIENT_API_MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
}

/** Requests answered and refused so far, by reason. */
export interface ClientApiCounts extends WireCounts {
  /** Forwarded and answered by the home's client API (whatever status it chose). */
  forwarded: number;
}

/** Serves /polyhome/client/1.0.0 on a libp2p node. */
export type ClientApiServer = StreamServer<ClientApiCounts>;

/** Creates the client API server on a libp2p node; start() it after the node, stop() it before. */
export function createClientApiServer(
  components: Pick<Libp2p, 'handle' | 'unhandle'>,
  init: ClientApiServerInit,
): ClientApiServer {
  return new ClientApiService(components, init);
}

/**
 * Why a path is not served over the client API, or undefined when it is: it must lie under
 * CLIENT_API_PATH_PREFIXES, and hold no dot segment (plain or percent-encoded) nor backslash, which a URL parser
 * would resolve to another path (`/_matrix/client/../../admin`).
 */
export function clientApiPathRefusal(path: string): string | undefined {
  const served = `Only the Matrix client API (${CLIENT_API_PATH_PREFIXES.join(', ')}) is served over ${CLIENT_API_PROTOCOL}.`;
  if (!CLIENT_API_PATH_PREFIXES.some((prefix) => path.startsWith(prefix) || `${path}/` === prefix)) return served;
  if (path.includes('\\')) return `${served} The path holds a backslash.`;
  for (const segment of path.split('/')) {
    const plain = segment.replace(/%2e/gi, '.');
    if (plain === '.' || plain === '..') return `${served} The path holds a dot segment.`;
  }
  return undefined;
}

class ClientApiService extends HttpStreamServer implements ClientApiServer {
  readonly #forward: ClientApiForward;
  readonly #maxResponseBytes: number;

  constructor(components: Pick<Libp2p, 'handle' | 'unhandle'>, init: ClientApiServerInit) {
    super(
      components,
      CLIENT_API_PROTOCOL,
      'client API',
      {
        maxHeadBytes: FEDERATION_MAX_HEAD_BYTES,
        maxBodyBytes: init.maxBodyBytes ?? CLIENT_API_MAX_BODY_BYTES,
        headTimeout: init.headTimeout ?? CLIENT_API_HEAD_TIMEOUT,
        readTimeout: init.readTimeout ?? CLIENT_API_READ_TIMEOUT,
        requestTimeout: init.requestTimeout ?? CLIENT_API_REQUEST_TIMEOUT,
        maxConcurrentPerPeer: init.maxConcurrentPerPeer ?? CLIENT_API_MAX_CONCURRENT_PER_PEER,
        maxConcurrent: init.maxConcurrent ?? CLIENT_API_MAX_CONCURRENT,
        maxBodyBytesInFlight: init.maxBodyBytesInFlight ?? CLIENT_API_MAX_BODY_BYTES_IN_FLIGHT,
        maxStreams: CLIENT_API_MAX_STREAMS,
        lingerMs: FEDERATION_LINGER_TIMEOUT,
        retryAfterMs: FEDERATION_RETRY_AFTER_MS,
      },
      init.logger ?? silentLogger,
      ['forwarded', 'limited', 'forbidden', 'tooLarge', 'malformed', 'timedOut', 'failed', 'dropped'],
    );
    this.#forward = init.forward;
    this.#maxResponseBytes = init.maxResponseBytes ?? CLIENT_API_MAX_RESPONSE_BYTES;
  }

  get counts(): ClientApiCounts {
    return { ...this.counters } as unknown as ClientApiCounts;
  }

  // The path whitelist and the methods, before the body is read.
  protected admit(head: Omit<StreamRequest, 'body'>): Promise<StreamRefusal | undefined> {
    const denied = clientApiPathRefusal(head.path);
    if (denied !== undefined) return Promise.resolve(refusal('forbidden', 403, 'M_FORBIDDEN', denied));
    if (!CLIENT_API_METHODS.includes(head.method)) {
      return Promise.resolve(
        refusal('forbidden', 405, 'M_UNRECOGNIZED', `Method ${head.method} is not served over the client API.`),
      );
    }
    return Promise.resolve(undefined);
  }

  protected async respond(raw: StreamRequest, signal: AbortSignal, total: AbortSignal): Promise<Uint8Array> {
    const request: ClientApiRequest = {
      method: raw.method,
      target: raw.target,
      headers: pickHeaders(raw.headers, CLIENT_API_REQUEST_HEADERS),
      body: raw.body.byteLength === 0 ? undefined : raw.body,
      peerId: raw.peerId,
      signal,
    };
    const ran = await this.runHandler(
      () => this.#forward(request),
      signal,
      total,
      { status: 502, errcode: 'M_UNKNOWN', error: "The home's Matrix client API did not answer; try again later." },
      { peer: raw.peerId.toString(), method: raw.method },
    );
    if ('answer' in ran) return ran.answer;
    const answer = ran.value;
    if (answer.body.byteLength > this.#maxResponseBytes) {
      this.counters['failed']!++;
      return matrixError(502, 'M_TOO_LARGE', `The answer is larger than ${this.#maxResponseBytes} bytes.`);
    }
    this.counters['forwarded']!++;
    return encodeMessage(statusLine(answer.status), filterResponseHeaders(answer.headers), answer.body);
  }
}

/** The bytes of an answer with a Matrix error body. */
function matrixError(status: number, errcode: string, error: string): Uint8Array {
  return encodeResponse(status, new TextEncoder().encode(JSON.stringify({ errcode, error })));
}

function pickHeaders(headers: Iterable<readonly [string, string]>, allowed: readonly string[]): HeaderPairs {
  const out: HeaderPairs = [];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (allowed.includes(lower)) out.push([lower, value]);
  }
  return out;
}

/** The answer headers carried back: CLIENT_API_RESPONSE_HEADERS and every `access-control-*` (CORS passes through). */
export function filterResponseHeaders(headers: Iterable<readonly [string, string]>): HeaderPairs {
  const out: HeaderPairs = [];
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (CLIENT_API_RESPONSE_HEADERS.includes(lower) || lower.startsWith('access-control-')) out.push([lower, value]);
  }
  return out;
}

/** Options of clientApiRequest. */
export interface ClientApiRequestInit {
  method: string;
  /** Path and query, as the client sent them. */
  target: string;
  /** Headers; only CLIENT_API_REQUEST_HEADERS are sent. */
  headers?: Iterable<readonly [string, string]>;
  body?: Uint8Array;
  signal?: AbortSignal;
  /** The whole exchange, ms (default CLIENT_API_CLIENT_TIMEOUT). */
  timeoutMs?: number;
  /** Largest answer body read, bytes (default CLIENT_API_MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
}

/**
 * Sends one client API request to `peer` and resolves with its answer (any status). Throws ClientApiError with
 * `kind` 'unreachable' (dial or protocol negotiation failed), 'timeout', 'aborted' (the caller's signal) or
 * 'bad-response' (not HTTP/1.1, or larger than maxResponseBytes).
 */
export async function clientApiRequest(
  host: Pick<Libp2p, 'dialProtocol'>,
  peer: PeerId,
  init: ClientApiRequestInit,
): Promise<ClientApiResponse> {
  const peerText = peer.toString();
  const timeoutMs = init.timeoutMs ?? CLIENT_API_CLIENT_TIMEOUT;
  const maxResponseBytes = init.maxResponseBytes ?? CLIENT_API_MAX_RESPONSE_BYTES;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = init.signal === undefined ? timeout : AbortSignal.any([timeout, init.signal]);
  const request = encodeMessage(
    `${init.method} ${init.target} HTTP/1.1`,
    pickHeaders(init.headers ?? [], CLIENT_API_REQUEST_HEADERS),
    init.body,
  );
  const stopped = (err: unknown): ClientApiError | undefined => {
    if (init.signal?.aborted === true) return new ClientApiError('aborted', peerText, 'the caller went away', err);
    if (timeout.aborted) return new ClientApiError('timeout', peerText, `no answer within ${timeoutMs} ms`, err);
    return undefined;
  };
  try {
    const answer = await exchange(host, peer, CLIENT_API_PROTOCOL, request, {
      signal,
      maxResponseBytes,
      closeTimeout: REFUSAL_WRITE_TIMEOUT,
      tooLarge: () =>
        new ClientApiError('bad-response', peerText, `the answer is larger than ${maxResponseBytes} bytes`),
      bad: (reason) => new ClientApiError('bad-response', peerText, reason),
    });
    return { status: answer.status, headers: filterResponseHeaders(answer.headers), body: answer.body };
  } catch (err) {
    const stop = stopped(err);
    if (stop !== undefined) throw stop;
    if (err instanceof ClientApiError) throw err;
    if (err instanceof DialFailedError) throw new ClientApiError('unreachable', peerText, err.message, err.cause);
    throw new ClientApiError('bad-response', peerText, (err as Error).message, err);
  }
}
