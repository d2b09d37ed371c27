// /polyhome/federation/1.0.0: the Matrix server-server API between homes, one HTTP/1.1 request and its answer
// per libp2p stream. The caller is the PeerId noise authenticated for the connection (no TLS, no DNS, no
// X-Matrix header); the handler (libs/home) decides what that PeerId may do. This file owns the wire's
// defences, all before the handler runs: concurrency caps (429), `authorize` before the body is read (403),
// the body cap (413), head and read deadlines (408), JSON checks (400), a total deadline (504), and a handler's
// throw answered 500 without its stack.
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { byteStream } from '@libp2p/utils';
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
  BoundedReader,
  BufferOverflowError,
  byteStreamSource,
  encodeRequest,
  encodeResponse,
  HeadTooLargeError,
  jsonDepthExceeds,
  METHOD,
  parseRequestHead,
  PATH,
  parseResponseHead,
  readBody,
  readHead,
  StreamEndedError,
  WireRefusal,
} from './federation-codec.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import { closeQuietly } from './session.js';
import { closeAndLinger, raceSignal, REFUSAL_WRITE_TIMEOUT, send } from './wire-io.js';

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

/** Options of createFederationServer; every cap and timeout defaults to constants.ts. */
export interface FederationServerInit {
  handler: FederationHandler;
  authorize?: FederationAuthorize;
  logger?: P2pLogger;
  /** Largest request body, bytes (default FEDERATION_MAX_BODY_BYTES). */
  maxBodyBytes?: number;
  /** Largest request head, bytes (default FEDERATION_MAX_HEAD_BYTES). */
  maxHeadBytes?: number;
  /** Deepest JSON nesting (default FEDERATION_MAX_JSON_DEPTH). */
  maxJsonDepth?: number;
  /** ms from the stream opening to the end of the head (default FEDERATION_HEAD_TIMEOUT). */
  headTimeout?: number;
  /** ms from the stream opening to the end of the body (default FEDERATION_READ_TIMEOUT). */
  readTimeout?: number;
  /** ms from the stream opening to the answer written (default FEDERATION_REQUEST_TIMEOUT). */
  requestTimeout?: number;
  /** Requests at once per peer (default FEDERATION_MAX_CONCURRENT_PER_PEER). */
  maxConcurrentPerPeer?: number;
  /** Requests at once overall (default FEDERATION_MAX_CONCURRENT). */
  maxConcurrent?: number;
  /** Bytes of request bodies held at once overall (default FEDERATION_MAX_BODY_BYTES_IN_FLIGHT). */
  maxBodyBytesInFlight?: number;
  /** Federation streams per connection each way (default FEDERATION_MAX_STREAMS). */
  maxStreams?: number;
}

/** Requests answered and refused so far, by reason (each request counts once). */
export interface FederationCounts {
  /** Answered by the handler (whatever status it chose). */
  handled: number;
  /** 429: over the per-peer or overall concurrency cap, or the body bytes in flight. */
  limited: number;
  /** 403: authorize said no. */
  forbidden: number;
  /** 413 or 431: body or head over its cap. */
  tooLarge: number;
  /** 400: not an HTTP/1.1 request, not JSON, or JSON nested too deep. */
  malformed: number;
  /** 408 or 504: the request did not arrive, or was not answered, in time. */
  timedOut: number;
  /** 500: the handler (or authorize) threw, or answered something that cannot be sent. */
  failed: number;
  /** The caller went away before the answer (stream closed or reset). */
  dropped: number;
}

/** Serves /polyhome/federation/1.0.0 on a libp2p node. */
export interface FederationServer {
  /** Registers the protocol handler. */
  start(): Promise<void>;
  /** Unregisters it (requests in flight finish); a node already stopping is not an error. */
  stop(): Promise<void>;
  /** Requests in flight now. */
  readonly inFlight: number;
  /** The counts so far (a copy). */
  readonly counts: FederationCounts;
}

/** What the federation server needs from the libp2p node. */
export type FederationServerComponents = Pick<Libp2p, 'handle' | 'unhandle'>;

/** Creates the federation server on a libp2p node; start() it with the node, stop() it before. */
export function createFederationServer(
  components: FederationServerComponents,
  init: FederationServerInit,
): FederationServer {
  return new FederationHandlerService(components, init);
}

/** A request refused before the handler: the count it goes to, and the answer. */
interface Refusal {
  count: keyof FederationCounts;
  status: number;
  body: Record<string, unknown>;
}

class FederationHandlerService implements FederationServer {
  readonly #components: FederationServerComponents;
  readonly #handler: FederationHandler;
  readonly #authorize: FederationAuthorize | undefined;
  readonly #log: P2pLogger;
  readonly #maxBodyBytes: number;
  readonly #maxHeadBytes: number;
  readonly #maxJsonDepth: number;
  readonly #headTimeout: number;
  readonly #readTimeout: number;
  readonly #requestTimeout: number;
  readonly #maxPerPeer: number;
  readonly #maxConcurrent: number;
  readonly #maxBodyBytesInFlight: number;
  readonly #maxStreams: number;
  readonly #perPeer = new Map<string, number>();
  readonly #counts: FederationCounts = {
    handled: 0,
    limited: 0,
    forbidden: 0,
    tooLarge: 0,
    malformed: 0,
    timedOut: 0,
    failed: 0,
    dropped: 0,
  };
  #inFlight = 0;
  #bodyBytesInFlight = 0;
  #started = false;

  constructor(components: FederationServerComponents, init: FederationServerInit) {
    this.#components = components;
    this.#handler = init.handler;
    this.#authorize = init.authorize;
    this.#log = init.logger ?? silentLogger;
    this.#maxBodyBytes = init.maxBodyBytes ?? FEDERATION_MAX_BODY_BYTES;
    this.#maxHeadBytes = init.maxHeadBytes ?? FEDERATION_MAX_HEAD_BYTES;
    this.#maxJsonDepth = init.maxJsonDepth ?? FEDERATION_MAX_JSON_DEPTH;
    this.#headTimeout = init.headTimeout ?? FEDERATION_HEAD_TIMEOUT;
    this.#readTimeout = init.readTimeout ?? FEDERATION_READ_TIMEOUT;
    this.#requestTimeout = init.requestTimeout ?? FEDERATION_REQUEST_TIMEOUT;
    this.#maxPerPeer = init.maxConcurrentPerPeer ?? FEDERATION_MAX_CONCURRENT_PER_PEER;
    this.#maxConcurrent = init.maxConcurrent ?? FEDERATION_MAX_CONCURRENT;
    this.#maxBodyBytesInFlight = init.maxBodyBytesInFlight ?? FEDERATION_MAX_BODY_BYTES_IN_FLIGHT;
    this.#maxStreams = init.maxStreams ?? FEDERATION_MAX_STREAMS;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get counts(): FederationCounts {
    return { ...this.#counts };
  }

  async start(): Promise<void> {
    if (this.#started) return;
    await this.#components.handle(FEDERATION_PROTOCOL, (stream, connection) => this.#accept(stream, connection), {
      maxInboundStreams: this.#maxStreams,
      maxOutboundStreams: this.#maxStreams,
      // A laptop behind NAT is reached through its server home's relay ("limited" connections); federation runs
      // there as sync does. The relay's own limits (data, duration) bound what it carries.
      runOnLimitedConnection: true,
    });
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    try {
      await this.#components.unhandle(FEDERATION_PROTOCOL);
    } catch (err) {
      this.#log.debug({ ...errorFields(err), protocol: FEDERATION_PROTOCOL }, 'federation handler not unregistered');
    }
  }

  // The concurrency slot is taken before a byte is read, so a peer opening many streams costs one 429 each.
  #accept(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString();
    const held = this.#perPeer.get(peer) ?? 0;
    if (held >= this.#maxPerPeer || this.#inFlight >= this.#maxConcurrent) {
      this.#counts.limited++;
      this.#log.debug(
        { peer, protocol: FEDERATION_PROTOCOL, perPeer: held, inFlight: this.#inFlight },
        'federation request refused: too many at once',
      );
      void this.#refuse(stream, peer, 429, limitExceeded('Too many federation requests at once.'));
      return;
    }
    this.#perPeer.set(peer, held + 1);
    this.#inFlight++;
    this.#serve(stream, connection.remotePeer)
      .catch((err: unknown) => {
        // Only a failed write of the answer gets here (the caller left or stopped reading).
        this.#counts.dropped++;
        this.#log.debug(
          { ...errorFields(err), peer, protocol: FEDERATION_PROTOCOL },
          'federation answer not delivered',
        );
        stream.abort(err instanceof Error ? err : new Error(String(err)));
      })
      .finally(() => {
        this.#inFlight--;
        const left = (this.#perPeer.get(peer) ?? 1) - 1;
        if (left === 0) this.#perPeer.delete(peer);
        else this.#perPeer.set(peer, left);
      });
  }

  async #serve(stream: Stream, peerId: PeerId): Promise<void> {
    const peer = peerId.toString();
    const bytes = new BoundedReader(stream, this.#maxHeadBytes + this.#maxBodyBytes);
    // Aborted by the total deadline or by the caller closing or resetting the stream.
    const gone = new AbortController();
    const onClose = (): void => gone.abort(new Error('the caller closed the stream'));
    stream.addEventListener('close', onClose, { once: true });
    const total = AbortSignal.timeout(this.#requestTimeout);
    const signal = AbortSignal.any([total, gone.signal]);
    let held = 0;
    try {
      const prepared = await this.#read(bytes, peerId, signal, (n) => (held = n));
      if ('refusal' in prepared) {
        // Whatever body follows is not read: stop buffering it (it would overflow the buffer and reset the
        // stream before the caller reads the refusal).
        bytes.discard();
        const { count, status, body } = prepared.refusal;
        if (gone.signal.aborted) {
          this.#counts.dropped++;
          this.#log.debug({ peer, protocol: FEDERATION_PROTOCOL }, 'federation caller left before the answer');
          return;
        }
        this.#counts[count]++;
        this.#log.debug(
          { peer, protocol: FEDERATION_PROTOCOL, status, errcode: body.errcode, err: body.error },
          'federation request refused',
        );
        await this.#refuse(stream, peer, status, body, status === 408);
        return;
      }
      const answer = await this.#handle(prepared.request, signal, total);
      if (gone.signal.aborted) {
        this.#counts.dropped++;
        this.#log.debug({ peer, protocol: FEDERATION_PROTOCOL }, 'federation caller left before the answer');
        return;
      }
      bytes.discard();
      await send(stream, answer, signal);
      await closeAndLinger(stream, FEDERATION_LINGER_TIMEOUT);
    } finally {
      this.#bodyBytesInFlight -= held;
      stream.removeEventListener('close', onClose);
    }
  }

  // Reads and checks the request in order of cost: head (deadline, cap), authorize, body cap, body, JSON.
  async #read(
    bytes: BoundedReader,
    peerId: PeerId,
    signal: AbortSignal,
    reserved: (bytes: number) => void,
  ): Promise<{ request: FederationRequest } | { refusal: Refusal }> {
    const peer = peerId.toString();
    const refuse = (
      count: keyof FederationCounts,
      status: number,
      errcode: string,
      error: string,
    ): { refusal: Refusal } => ({ refusal: { count, status, body: { errcode, error } } });
    const headDeadline = AbortSignal.any([signal, AbortSignal.timeout(this.#headTimeout)]);
    let head: { head: string; rest: Uint8Array };
    try {
      head = await readHead(bytes, this.#maxHeadBytes, headDeadline);
    } catch (err) {
      if (err instanceof HeadTooLargeError) {
        return refuse('tooLarge', 431, 'M_TOO_LARGE', `The request head is longer than ${this.#maxHeadBytes} bytes.`);
      }
      if (headDeadline.aborted) {
        return refuse('timedOut', 408, 'M_UNKNOWN', `The request head did not arrive within ${this.#headTimeout} ms.`);
      }
      return refuse('malformed', 400, 'M_UNRECOGNIZED', `The request ended early: ${(err as Error).message}.`);
    }
    let parsed;
    try {
      parsed = parseRequestHead(head.head);
    } catch (err) {
      if (!(err instanceof WireRefusal)) throw err;
      return refuse('malformed', err.status, err.errcode, err.message);
    }
    const { path, query } = splitTarget(parsed.target);
    if (this.#authorize !== undefined) {
      const authorize = this.#authorize;
      let allowed: boolean;
      try {
        allowed = await raceSignal(
          Promise.resolve().then(() => authorize(peerId, { method: parsed.method, path, query })),
          signal,
        );
      } catch (err) {
        if (signal.aborted) {
          return refuse(
            'timedOut',
            504,
            'M_UNKNOWN',
            `The request was not answered within ${this.#requestTimeout} ms.`,
          );
        }
        this.#log.error(
          { ...errorFields(err), stack: (err as Error).stack, peer, protocol: FEDERATION_PROTOCOL },
          'federation authorize threw',
        );
        return refuse('failed', 500, 'M_UNKNOWN', 'Internal server error.');
      }
      if (!allowed) return refuse('forbidden', 403, 'M_FORBIDDEN', 'This peer may not make this request.');
    }
    if (parsed.contentLength > this.#maxBodyBytes) {
      return refuse('tooLarge', 413, 'M_TOO_LARGE', `The request body is larger than ${this.#maxBodyBytes} bytes.`);
    }
    if (this.#bodyBytesInFlight + parsed.contentLength > this.#maxBodyBytesInFlight) {
      return { refusal: { count: 'limited', status: 429, body: limitExceeded('Too much federation data in flight.') } };
    }
    // Held until the request is answered (the body is referenced by the handler's request until then).
    this.#bodyBytesInFlight += parsed.contentLength;
    reserved(parsed.contentLength);
    const readDeadline = AbortSignal.any([signal, AbortSignal.timeout(this.#readTimeout)]);
    let raw: Uint8Array;
    try {
      raw = await readBody(bytes, head.rest, parsed.contentLength, readDeadline);
    } catch (err) {
      if (readDeadline.aborted) {
        return refuse('timedOut', 408, 'M_UNKNOWN', `The request body did not arrive within ${this.#readTimeout} ms.`);
      }
      if (err instanceof StreamEndedError) return refuse('malformed', 400, 'M_UNRECOGNIZED', `${err.message}.`);
      if (err instanceof BufferOverflowError) {
        return refuse('malformed', 400, 'M_UNRECOGNIZED', 'More bytes came than the Content-Length announced.');
      }
      throw err;
    }
    const body = parseJsonBody(raw, this.#maxJsonDepth);
    if (body instanceof WireRefusal) return refuse('malformed', body.status, body.errcode, body.message);
    return { request: { method: parsed.method, path, query, body, peerId, signal } };
  }

  // Runs the handler against the total deadline; whatever it does, the result is bytes of one answer.
  async #handle(request: FederationRequest, signal: AbortSignal, total: AbortSignal): Promise<Uint8Array> {
    const peer = request.peerId.toString();
    let answer: FederationResponse;
    try {
      answer = await raceSignal(
        Promise.resolve().then(() => this.#handler(request)),
        signal,
      );
    } catch (err) {
      if (total.aborted) {
        this.#counts.timedOut++;
        this.#log.info(
          { peer, protocol: FEDERATION_PROTOCOL, method: request.method, path: request.path },
          'federation handler did not answer in time',
        );
        return jsonAnswer(504, {
          errcode: 'M_UNKNOWN',
          error: `The request was not answered within ${this.#requestTimeout} ms.`,
        });
      }
      if (signal.aborted) return jsonAnswer(500, {}); // the caller left; nothing will be written
      this.#counts.failed++;
      this.#log.error(
        { ...errorFields(err), stack: (err as Error).stack, peer, protocol: FEDERATION_PROTOCOL, path: request.path },
        'federation handler threw',
      );
      return jsonAnswer(500, { errcode: 'M_UNKNOWN', error: 'Internal server error.' });
    }
    const status = answer.status;
    let text: string | undefined;
    try {
      text = JSON.stringify(answer.body ?? {});
    } catch {
      text = undefined;
    }
    if (!Number.isInteger(status) || status < 200 || status > 599 || text === undefined) {
      this.#counts.failed++;
      this.#log.error(
        { peer, protocol: FEDERATION_PROTOCOL, path: request.path, status },
        'federation handler answered something that cannot be sent (status 200-599, a JSON body)',
      );
      return jsonAnswer(500, { errcode: 'M_UNKNOWN', error: 'Internal server error.' });
    }
    this.#counts.handled++;
    return encodeResponse(status, new TextEncoder().encode(text));
  }

  // A refusal before the handler: written with a short deadline, then the stream closed (aborted if it hangs).
  // A late caller's stream is aborted right after the 408: it is not waited on to close its end.
  async #refuse(
    stream: Stream,
    peer: string,
    status: number,
    body: Record<string, unknown>,
    abort = false,
  ): Promise<void> {
    try {
      await send(stream, jsonAnswer(status, body), AbortSignal.timeout(REFUSAL_WRITE_TIMEOUT));
      if (abort) stream.abort(new Error(`federation request refused with ${status}`));
      else await closeAndLinger(stream, FEDERATION_LINGER_TIMEOUT);
    } catch (err) {
      this.#log.debug(
        { ...errorFields(err), peer, protocol: FEDERATION_PROTOCOL, status },
        'federation refusal not delivered',
      );
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
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
  let stream: Stream;
  try {
    stream = await host.dialProtocol(peer, FEDERATION_PROTOCOL, { signal, runOnLimitedConnection: true });
  } catch (err) {
    throw stopped(err) ?? new FederationUnreachableError(peerText, (err as Error).message, { cause: err });
  }
  try {
    const bytes = byteStream(stream, { maxBufferSize: FEDERATION_MAX_HEAD_BYTES + maxResponseBytes });
    try {
      await bytes.write(request, { signal });
    } catch (err) {
      // The server may answer (429, 403, 413) and close before the whole body is written: read the answer.
      if (signal.aborted) throw err;
    }
    const source = byteStreamSource(bytes);
    const head = await readHead(source, FEDERATION_MAX_HEAD_BYTES, signal);
    const parsed = parseResponseHead(head.head, (reason) => new FederationBadResponseError(peerText, reason));
    if (parsed.contentLength > maxResponseBytes) throw new FederationResponseTooLargeError(peerText, maxResponseBytes);
    const raw = await readBody(source, head.rest, parsed.contentLength, signal);
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch (err) {
      throw new FederationBadResponseError(peerText, 'the body is not UTF-8 JSON', { cause: err });
    }
    await closeQuietly(stream, Math.min(timeoutMs, REFUSAL_WRITE_TIMEOUT));
    return { status: parsed.status, body };
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    const stop = stopped(err);
    if (stop !== undefined) throw stop;
    if (err instanceof HeadTooLargeError) {
      throw new FederationBadResponseError(
        peerText,
        `the answer's head is longer than ${FEDERATION_MAX_HEAD_BYTES} bytes`,
      );
    }
    if (err instanceof StreamEndedError) throw new FederationBadResponseError(peerText, err.message, { cause: err });
    if (err instanceof Error && err.name === 'StreamBufferError') {
      throw new FederationResponseTooLargeError(peerText, maxResponseBytes);
    }
    if (err instanceof FederationBadResponseError || err instanceof FederationResponseTooLargeError) throw err;
    throw new FederationBadResponseError(peerText, (err as Error).message, { cause: err });
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

function splitTarget(target: string): { path: string; query: URLSearchParams } {
  const at = target.indexOf('?');
  if (at < 0) return { path: target, query: new URLSearchParams() };
  return { path: target.slice(0, at), query: new URLSearchParams(target.slice(at + 1)) };
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

function limitExceeded(error: string): Record<string, unknown> {
  return { errcode: 'M_LIMIT_EXCEEDED', error, retry_after_ms: FEDERATION_RETRY_AFTER_MS };
}

function jsonAnswer(status: number, body: Record<string, unknown>): Uint8Array {
  return encodeResponse(status, new TextEncoder().encode(JSON.stringify(body)));
}
