// /polyhome/federation/1.0.0: the Matrix server-server API between homes, one HTTP/1.1 request and its answer
// per libp2p stream. The caller is the PeerId noise authenticated for the connection (no TLS, no DNS, no
// X-Matrix header); the handler (libs/home) decides what that PeerId may do. This file owns the wire's
// defences, all before the handler runs: concurrency caps (429), `authorize` before the body is read (403),
// the body cap (413), head and read deadlines (408), JSON checks (400), a total deadline (504), and a handler's
// throw answered 500 without its stack.
import type { Libp2p, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import {
  FEDERATION_CLIENT_TIMEOUT,
  FEDERATION_HEAD_TIMEOUT,
  FEDERATION_LINGER_TIMEOUT,
  FEDERATION_MAX_BODY_BYTES,
  FEDERATION_MAX_BODY_BYTES_IN_FLIGHT,
  FEDERATION_MAX_CONCURRENT,
  FEDERATION_MAX_CONCURRENT_PER_PEER,
  FEDERATION_MAX_HEAD_BYTES,
  FEDERATION_MAX_JSON_DEPTH,
  FEDERATION_MAX_RESPONSE_BYTES,
  FEDERATION_MAX_STREAMS,
  FEDERATION_PROTOCOL,
  FEDERATION_READ_TIMEOUT,
  FEDERATION_REQUEST_TIMEOUT,
  FEDERATION_RETRY_AFTER_MS,
} from './constants.js';
import {
  FederationAbortedError,
  FederationBadResponseError,
  FederationResponseTooLargeError,
  FederationTimeoutError,
  FederationUnreachableError,
  InvalidFederationRequestError,
} from './errors.js';
import {
  encodeRequest,
  encodeResponse,
  HeadTooLargeError,
  jsonDepthExceeds,
  METHOD,
  PATH,
  StreamEndedError,
  WireRefusal,
  type ResponseHead,
} from './federation-codec.js';
import {
  HttpStreamServer,
  refusal,
  type StreamRefusal,
  type StreamRequest,
  type StreamServer,
  type StreamServerOptions,
  type WireCounts,
} from './http-stream-server.js';
import { errorFields, silentLogger } from './logger.js';
import { DialFailedError, exchange, raceSignal, REFUSAL_WRITE_TIMEOUT } from './wire-io.js';

/** A request as the handler sees it, after every wire check passed. */
export interface FederationRequest {
  method: string;
  /** The path as sent, still percent-encoded (split on '/' first, then decode each segment). */
  path: string;
  query: URLSearchParams;
  /** The parsed JSON body (always an object), or undefined when the request had none. */
  body: Record<string, unknown> | undefined;
  /** The caller: the PeerId noise authenticated for the connection. */
  peerId: PeerId;
  /** Aborted when the caller goes away or the request's time is up: stop working then. */
  signal: AbortSignal;
}

/** What authorize sees: the request before its body is read. */
export type FederationRequestHead = Pick<FederationRequest, 'method' | 'path' | 'query'>;

/** An answer: a status and a JSON body (`{ errcode, error }` for errors, as the spec has them). */
export interface FederationResponse {
  status: number;
  body: unknown;
}

/** Answers one request; unknown paths are its to answer (404 M_UNRECOGNIZED). A throw is answered 500. */
export type FederationHandler = (request: FederationRequest) => Promise<FederationResponse> | FederationResponse;

/** Decides from the caller and the request head alone whether the body is read at all; false is answered 403. */
export type FederationAuthorize = (peerId: PeerId, request: FederationRequestHead) => boolean | Promise<boolean>;

/** Options of createFederationServer; every cap and timeout defaults to the FEDERATION_* constants. */
export interface FederationServerInit extends StreamServerOptions {
  handler: FederationHandler;
  authorize?: FederationAuthorize;
  /** Largest request head, bytes (default FEDERATION_MAX_HEAD_BYTES). */
  maxHeadBytes?: number;
  /** Deepest JSON nesting (default FEDERATION_MAX_JSON_DEPTH). */
  maxJsonDepth?: number;
  /** Federation streams per connection each way (default FEDERATION_MAX_STREAMS). */
  maxStreams?: number;
}

/** Requests answered and refused so far, by reason (each request counts once). */
export interface FederationCounts extends WireCounts {
  /** Answered by the handler (whatever status it chose). */
  handled: number;
}

/** Serves /polyhome/federation/1.0.0 on a libp2p node. */
export type FederationServer = StreamServer<FederationCounts>;

/** What the federation server needs from the libp2p node. */
export type FederationServerComponents = Pick<Libp2p, 'handle' | 'unhandle'>;

/** Creates the federation server on a libp2p node; start() it with the node, stop() it before. */
export function createFederationServer(
  components: FederationServerComponents,
  init: FederationServerInit,
): FederationServer {
  return new FederationHandlerService(components, init);
}

class FederationHandlerService extends HttpStreamServer implements FederationServer {
  readonly #handler: FederationHandler;
  readonly #authorize: FederationAuthorize | undefined;
  readonly #maxJsonDepth: number;

  constructor(components: FederationServerComponents, init: FederationServerInit) {
    super(
      components,
      FEDERATION_PROTOCOL,
      'federation',
      {
        maxHeadBytes: init.maxHeadBytes ?? FEDERATION_MAX_HEAD_BYTES,
        maxBodyBytes: init.maxBodyBytes ?? FEDERATION_MAX_BODY_BYTES,
        headTimeout: init.headTimeout ?? FEDERATION_HEAD_TIMEOUT,
        readTimeout: init.readTimeout ?? FEDERATION_READ_TIMEOUT,
        requestTimeout: init.requestTimeout ?? FEDERATION_REQUEST_TIMEOUT,
        maxConcurrentPerPeer: init.maxConcurrentPerPeer ?? FEDERATION_MAX_CONCURRENT_PER_PEER,
        maxConcurrent: init.maxConcurrent ?? FEDERATION_MAX_CONCURRENT,
        maxBodyBytesInFlight: init.maxBodyBytesInFlight ?? FEDERATION_MAX_BODY_BYTES_IN_FLIGHT,
        maxStreams: init.maxStreams ?? FEDERATION_MAX_STREAMS,
        lingerMs: FEDERATION_LINGER_TIMEOUT,
        retryAfterMs: FEDERATION_RETRY_AFTER_MS,
      },
      init.logger ?? silentLogger,
      ['handled', 'limited', 'forbidden', 'tooLarge', 'malformed', 'timedOut', 'failed', 'dropped'],
    );
    this.#handler = init.handler;
    this.#authorize = init.authorize;
    this.#maxJsonDepth = init.maxJsonDepth ?? FEDERATION_MAX_JSON_DEPTH;
  }

  get counts(): FederationCounts {
    return { ...this.counters } as unknown as FederationCounts;
  }

  // authorize, from the caller and the head alone: before the body is read.
  protected async admit(head: Omit<StreamRequest, 'body'>, signal: AbortSignal): Promise<StreamRefusal | undefined> {
    const authorize = this.#authorize;
    if (authorize === undefined) return undefined;
    let allowed: boolean;
    try {
      allowed = await raceSignal(
        Promise.resolve().then(() =>
          authorize(head.peerId, { method: head.method, path: head.path, query: head.query }),
        ),
        signal,
      );
    } catch (err) {
      if (signal.aborted) {
        return refusal(
          'timedOut',
          504,
          'M_UNKNOWN',
          `The request was not answered within ${this.limits.requestTimeout} ms.`,
        );
      }
      this.log.error(
        {
          ...errorFields(err),
          stack: (err as Error).stack,
          peer: head.peerId.toString(),
          protocol: FEDERATION_PROTOCOL,
        },
        'federation authorize threw',
      );
      return refusal('failed', 500, 'M_UNKNOWN', 'Internal server error.');
    }
    return allowed ? undefined : refusal('forbidden', 403, 'M_FORBIDDEN', 'This peer may not make this request.');
  }

  // JSON checks, then the handler against the total deadline; whatever it does, the result is one answer.
  protected async respond(
    raw: StreamRequest,
    signal: AbortSignal,
    total: AbortSignal,
  ): Promise<Uint8Array | StreamRefusal> {
    const body = parseJsonBody(raw.body, this.#maxJsonDepth);
    if (body instanceof WireRefusal) return refusal('malformed', body.status, body.errcode, body.message);
    const request: FederationRequest = {
      method: raw.method,
      path: raw.path,
      query: raw.query,
      body,
      peerId: raw.peerId,
      signal,
    };
    const peer = request.peerId.toString();
    const ran = await this.runHandler(
      () => this.#handler(request),
      signal,
      total,
      { status: 500, errcode: 'M_UNKNOWN', error: 'Internal server error.' },
      { peer, method: request.method, path: request.path },
    );
    if ('answer' in ran) return ran.answer;
    const answer = ran.value;
    const status = answer.status;
    let text: string | undefined;
    try {
      text = JSON.stringify(answer.body ?? {});
    } catch {
      text = undefined;
    }
    if (!Number.isInteger(status) || status < 200 || status > 599 || text === undefined) {
      this.counters['failed']!++;
      this.log.error(
        { peer, protocol: FEDERATION_PROTOCOL, path: request.path, status },
        'federation handler answered something that cannot be sent (status 200-599, a JSON body)',
      );
      return jsonAnswer(500, { errcode: 'M_UNKNOWN', error: 'Internal server error.' });
    }
    this.counters['handled']!++;
    return encodeResponse(status, new TextEncoder().encode(text));
  }
}

/** Options of federationRequest. */
export interface FederationRequestInit {
  method: string;
  /** A path from '/', percent-encoded by the caller (e.g. `/_matrix/federation/v1/send/${encodeURIComponent(txn)}`). */
  path: string;
  query?: URLSearchParams | Record<string, string | readonly string[]>;
  /** Sent as JSON. */
  body?: unknown;
  signal?: AbortSignal;
  /** The whole exchange, ms (default FEDERATION_CLIENT_TIMEOUT). */
  timeoutMs?: number;
  /** Largest answer body read, bytes (default FEDERATION_MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
}

/** What federationRequest needs from the libp2p node: dialling a protocol (known addresses of the peer). */
export type FederationClientHost = Pick<Libp2p, 'dialProtocol'>;

/**
 * Sends one federation request to `peer` and resolves with its answer (any status: a 4xx is an answer, not a
 * throw). Throws FederationUnreachableError (dial or protocol negotiation failed), FederationTimeoutError,
 * FederationAbortedError (the caller's signal), FederationResponseTooLargeError, FederationBadResponseError;
 * InvalidFederationRequestError before dialling when the method or path cannot be sent.
 */
export async function federationRequest(
  host: FederationClientHost,
  to: PeerId | string,
  init: FederationRequestInit,
): Promise<FederationResponse> {
  const peer = typeof to === 'string' ? peerIdFromString(to) : to;
  if (!METHOD.test(init.method)) {
    throw new InvalidFederationRequestError(`method ${init.method} is not upper-case letters`);
  }
  if (!PATH.test(init.path)) {
    throw new InvalidFederationRequestError(
      'the path must start with / and be percent-encoded printable ASCII without ? or # (pass the query apart)',
    );
  }
  const peerText = peer.toString();
  const timeoutMs = init.timeoutMs ?? FEDERATION_CLIENT_TIMEOUT;
  const maxResponseBytes = init.maxResponseBytes ?? FEDERATION_MAX_RESPONSE_BYTES;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = init.signal === undefined ? timeout : AbortSignal.any([timeout, init.signal]);
  const request = encodeRequest(
    init.method,
    `${init.path}${queryString(init.query)}`,
    init.body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(init.body)),
  );
  const stopped = (err: unknown): Error | undefined => {
    if (init.signal?.aborted === true) return new FederationAbortedError(peerText, { cause: err });
    if (timeout.aborted) return new FederationTimeoutError(peerText, timeoutMs);
    return undefined;
  };
  let answer: ResponseHead & { body: Uint8Array };
  try {
    answer = await exchange(host, peer, FEDERATION_PROTOCOL, request, {
      signal,
      maxResponseBytes,
      closeTimeout: Math.min(timeoutMs, REFUSAL_WRITE_TIMEOUT),
      tooLarge: () => new FederationResponseTooLargeError(peerText, maxResponseBytes),
      bad: (reason) => new FederationBadResponseError(peerText, reason),
    });
  } catch (err) {
    const stop = stopped(err);
    if (stop !== undefined) throw stop;
    if (err instanceof DialFailedError)
      throw new FederationUnreachableError(peerText, err.message, { cause: err.cause });
    if (err instanceof HeadTooLargeError) {
      throw new FederationBadResponseError(
        peerText,
        `the answer's head is longer than ${FEDERATION_MAX_HEAD_BYTES} bytes`,
      );
    }
    if (err instanceof StreamEndedError) throw new FederationBadResponseError(peerText, err.message, { cause: err });
    if (err instanceof FederationBadResponseError || err instanceof FederationResponseTooLargeError) throw err;
    throw new FederationBadResponseError(peerText, (err as Error).message, { cause: err });
  }
  try {
    return { status: answer.status, body: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(answer.body)) };
  } catch (err) {
    throw new FederationBadResponseError(peerText, 'the body is not UTF-8 JSON', { cause: err });
  }
}

function queryString(query: FederationRequestInit['query']): string {
  if (query === undefined) return '';
  let params: URLSearchParams;
  if (query instanceof URLSearchParams) params = query;
  else {
    params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      for (const one of typeof value === 'string' ? [value] : value) params.append(key, one);
    }
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

// Empty body: none. Otherwise UTF-8, nested at most maxDepth, JSON, an object (every federation body is one).
function parseJsonBody(raw: Uint8Array, maxDepth: number): Record<string, unknown> | undefined | WireRefusal {
  if (raw.byteLength === 0) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch {
    return new WireRefusal(400, 'M_NOT_JSON', 'The request body is not UTF-8.');
  }
  if (jsonDepthExceeds(text, maxDepth)) {
    return new WireRefusal(400, 'M_BAD_JSON', `The request body nests arrays and objects deeper than ${maxDepth}.`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return new WireRefusal(400, 'M_NOT_JSON', 'The request body is not JSON.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new WireRefusal(400, 'M_BAD_JSON', 'The request body is not a JSON object.');
  }
  return value as Record<string, unknown>;
}

function jsonAnswer(status: number, body: Record<string, unknown>): Uint8Array {
  return encodeResponse(status, new TextEncoder().encode(JSON.stringify(body)));
}
