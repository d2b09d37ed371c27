// /polyhome/client/1.0.0: the Matrix client API over libp2p, for `polyhome proxy`. One HTTP/1.1 request and its
// answer per stream (the federation codec's framing: Content-Length bodies, no chunking, no keep-alive), with
// binary bodies and a whitelist of headers. The home forwards each request to its own Matrix client API (the
// `forward` function), which checks the access token as for any client: the PeerId of the caller grants nothing.
// This file owns the wire's defences, all before `forward` runs: concurrency caps (429), the path whitelist
// (403, so `/admin/...` is never reached), methods (405), the body cap (413), head and read deadlines (408), a
// total deadline long enough for /sync long polls (504), a failed forward answered 502.
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import { byteStream } from '@libp2p/utils';
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
import {
  BoundedReader,
  BufferOverflowError,
  byteStreamSource,
  encodeMessage,
  HeadTooLargeError,
  parseRequestHead,
  parseResponseHead,
  readBody,
  readHead,
  StreamEndedError,
  statusLine,
  WireRefusal,
} from './federation-codec.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import { closeQuietly } from './session.js';
import { closeAndLinger, raceSignal, REFUSAL_WRITE_TIMEOUT, send } from './wire-io.js';

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

/** Options of createClientApiServer; every cap and timeout defaults to constants.ts. */
export interface ClientApiServerInit {
  forward: ClientApiForward;
  logger?: P2pLogger;
  /** Largest request body, bytes (default CLIENT_API_MAX_BODY_BYTES; the apps pass their media cap). */
  maxBodyBytes?: number;
  /** Largest answer body, bytes (default CLIENT_API_MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
  /** ms from the stream opening to the end of the head (default CLIENT_API_HEAD_TIMEOUT). */
  headTimeout?: number;
  /** ms from the stream opening to the end of the body (default CLIENT_API_READ_TIMEOUT). */
  readTimeout?: number;
  /** ms from the stream opening to the answer written (default CLIENT_API_REQUEST_TIMEOUT). */
  requestTimeout?: number;
  /** Requests at once per peer (default CLIENT_API_MAX_CONCURRENT_PER_PEER). */
  maxConcurrentPerPeer?: number;
  /** Requests at once overall (default CLIENT_API_MAX_CONCURRENT). */
  maxConcurrent?: number;
  /** Bytes of request bodies held at once overall (default CLIENT_API_MAX_BODY_BYTES_IN_FLIGHT). */
  maxBodyBytesInFlight?: number;
}

/** Requests answered and refused so far, by reason. */
export interface ClientApiCounts {
  forwarded: number;
  /** 429: a concurrency cap or the body bytes in flight. */
  limited: number;
  /** 403 or 405: a path or method not served. */
  forbidden: number;
  /** 413 or 431. */
  tooLarge: number;
  /** 400. */
  malformed: number;
  /** 408 or 504. */
  timedOut: number;
  /** 502: the forward failed. */
  failed: number;
  /** The caller went away before the answer. */
  dropped: number;
}

/** Serves /polyhome/client/1.0.0 on a libp2p node. */
export interface ClientApiServer {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly inFlight: number;
  readonly counts: ClientApiCounts;
}

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

interface Refusal {
  count: keyof ClientApiCounts;
  status: number;
  errcode: string;
  error: string;
}

class ClientApiService implements ClientApiServer {
  readonly #components: Pick<Libp2p, 'handle' | 'unhandle'>;
  readonly #forward: ClientApiForward;
  readonly #log: P2pLogger;
  readonly #maxBodyBytes: number;
  readonly #maxResponseBytes: number;
  readonly #headTimeout: number;
  readonly #readTimeout: number;
  readonly #requestTimeout: number;
  readonly #maxPerPeer: number;
  readonly #maxConcurrent: number;
  readonly #maxBodyBytesInFlight: number;
  readonly #perPeer = new Map<string, number>();
  readonly #counts: ClientApiCounts = {
    forwarded: 0,
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

  constructor(components: Pick<Libp2p, 'handle' | 'unhandle'>, init: ClientApiServerInit) {
    this.#components = components;
    this.#forward = init.forward;
    this.#log = init.logger ?? silentLogger;
    this.#maxBodyBytes = init.maxBodyBytes ?? CLIENT_API_MAX_BODY_BYTES;
    this.#maxResponseBytes = init.maxResponseBytes ?? CLIENT_API_MAX_RESPONSE_BYTES;
    this.#headTimeout = init.headTimeout ?? CLIENT_API_HEAD_TIMEOUT;
    this.#readTimeout = init.readTimeout ?? CLIENT_API_READ_TIMEOUT;
    this.#requestTimeout = init.requestTimeout ?? CLIENT_API_REQUEST_TIMEOUT;
    this.#maxPerPeer = init.maxConcurrentPerPeer ?? CLIENT_API_MAX_CONCURRENT_PER_PEER;
    this.#maxConcurrent = init.maxConcurrent ?? CLIENT_API_MAX_CONCURRENT;
    this.#maxBodyBytesInFlight = init.maxBodyBytesInFlight ?? CLIENT_API_MAX_BODY_BYTES_IN_FLIGHT;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get counts(): ClientApiCounts {
    return { ...this.#counts };
  }

  async start(): Promise<void> {
    if (this.#started) return;
    await this.#components.handle(CLIENT_API_PROTOCOL, (stream, connection) => this.#accept(stream, connection), {
      maxInboundStreams: CLIENT_API_MAX_STREAMS,
      maxOutboundStreams: CLIENT_API_MAX_STREAMS,
      // A laptop home behind NAT is reached through its server home's relay, whose own limits bound the traffic.
      runOnLimitedConnection: true,
    });
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#components.unhandle(CLIENT_API_PROTOCOL).catch((err: unknown) => {
      this.#log.debug({ ...errorFields(err), protocol: CLIENT_API_PROTOCOL }, 'client API handler not unregistered');
    });
  }

  // The concurrency slot is taken before a byte is read: a flood of streams costs one 429 each.
  #accept(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString();
    const held = this.#perPeer.get(peer) ?? 0;
    if (held >= this.#maxPerPeer || this.#inFlight >= this.#maxConcurrent) {
      this.#counts.limited++;
      void this.#refuse(stream, peer, {
        count: 'limited',
        status: 429,
        errcode: 'M_LIMIT_EXCEEDED',
        error: 'Too many client API requests at once over libp2p; retry later.',
      });
      return;
    }
    this.#perPeer.set(peer, held + 1);
    this.#inFlight++;
    this.#serve(stream, connection.remotePeer)
      .catch((err: unknown) => {
        this.#counts.dropped++;
        this.#log.debug(
          { ...errorFields(err), peer, protocol: CLIENT_API_PROTOCOL },
          'client API answer not delivered',
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
    const reader = new BoundedReader(stream, FEDERATION_MAX_HEAD_BYTES + this.#maxBodyBytes);
    const gone = new AbortController();
    const onClose = (): void => gone.abort(new Error('the caller closed the stream'));
    stream.addEventListener('close', onClose, { once: true });
    const total = AbortSignal.timeout(this.#requestTimeout);
    const signal = AbortSignal.any([total, gone.signal]);
    let held = 0;
    try {
      const read = await this.#read(reader, peerId, signal, (n) => (held = n));
      if ('refusal' in read) {
        reader.discard();
        if (gone.signal.aborted) {
          this.#counts.dropped++;
          return;
        }
        this.#counts[read.refusal.count]++;
        this.#log.debug(
          { peer, protocol: CLIENT_API_PROTOCOL, status: read.refusal.status, err: read.refusal.error },
          'client API request refused',
        );
        await this.#refuse(stream, peer, read.refusal, read.refusal.status === 408);
        return;
      }
      reader.discard();
      const answer = await this.#forwarded(read.request, signal, total);
      if (gone.signal.aborted) {
        this.#counts.dropped++;
        return;
      }
      await send(stream, answer, signal);
      await closeAndLinger(stream, FEDERATION_LINGER_TIMEOUT);
    } finally {
      this.#bodyBytesInFlight -= held;
      stream.removeEventListener('close', onClose);
    }
  }

  // Head (deadline, cap), method and path, body cap and budget, body.
  async #read(
    reader: BoundedReader,
    peerId: PeerId,
    signal: AbortSignal,
    reserved: (bytes: number) => void,
  ): Promise<{ request: ClientApiRequest } | { refusal: Refusal }> {
    const refuse = (count: keyof ClientApiCounts, status: number, errcode: string, error: string) => ({
      refusal: { count, status, errcode, error },
    });
    const headDeadline = AbortSignal.any([signal, AbortSignal.timeout(this.#headTimeout)]);
    let head: { head: string; rest: Uint8Array };
    try {
      head = await readHead(reader, FEDERATION_MAX_HEAD_BYTES, headDeadline);
    } catch (err) {
      if (err instanceof HeadTooLargeError) {
        return refuse(
          'tooLarge',
          431,
          'M_TOO_LARGE',
          `The request head is longer than ${FEDERATION_MAX_HEAD_BYTES} bytes.`,
        );
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
    const at = parsed.target.indexOf('?');
    const pathRefusal = clientApiPathRefusal(at < 0 ? parsed.target : parsed.target.slice(0, at));
    if (pathRefusal !== undefined) return refuse('forbidden', 403, 'M_FORBIDDEN', pathRefusal);
    if (!CLIENT_API_METHODS.includes(parsed.method)) {
      return refuse('forbidden', 405, 'M_UNRECOGNIZED', `Method ${parsed.method} is not served over the client API.`);
    }
    if (parsed.contentLength > this.#maxBodyBytes) {
      return refuse('tooLarge', 413, 'M_TOO_LARGE', `The request body is larger than ${this.#maxBodyBytes} bytes.`);
    }
    if (this.#bodyBytesInFlight + parsed.contentLength > this.#maxBodyBytesInFlight) {
      return refuse('limited', 429, 'M_LIMIT_EXCEEDED', 'Too much client API data in flight over libp2p; retry later.');
    }
    this.#bodyBytesInFlight += parsed.contentLength;
    reserved(parsed.contentLength);
    const readDeadline = AbortSignal.any([signal, AbortSignal.timeout(this.#readTimeout)]);
    let body: Uint8Array;
    try {
      body = await readBody(reader, head.rest, parsed.contentLength, readDeadline);
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
    const headers = pickHeaders(parsed.headers, CLIENT_API_REQUEST_HEADERS);
    return {
      request: {
        method: parsed.method,
        target: parsed.target,
        headers,
        body: parsed.contentLength === 0 ? undefined : body,
        peerId,
        signal,
      },
    };
  }

  async #forwarded(request: ClientApiRequest, signal: AbortSignal, total: AbortSignal): Promise<Uint8Array> {
    const peer = request.peerId.toString();
    let answer: ClientApiResponse;
    try {
      answer = await raceSignal(
        Promise.resolve().then(() => this.#forward(request)),
        signal,
      );
    } catch (err) {
      if (total.aborted) {
        this.#counts.timedOut++;
        return matrixError(504, 'M_UNKNOWN', `The home did not answer within ${this.#requestTimeout} ms.`);
      }
      if (signal.aborted) return new Uint8Array(0); // the caller left; nothing is written
      this.#counts.failed++;
      this.#log.error(
        { ...errorFields(err), peer, protocol: CLIENT_API_PROTOCOL, method: request.method },
        'client API forward failed',
      );
      return matrixError(502, 'M_UNKNOWN', "The home's Matrix client API did not answer; try again later.");
    }
    if (answer.body.byteLength > this.#maxResponseBytes) {
      this.#counts.failed++;
      return matrixError(502, 'M_TOO_LARGE', `The answer is larger than ${this.#maxResponseBytes} bytes.`);
    }
    this.#counts.forwarded++;
    return encodeMessage(statusLine(answer.status), filterResponseHeaders(answer.headers), answer.body);
  }

  async #refuse(stream: Stream, peer: string, refusal: Refusal, abort = false): Promise<void> {
    try {
      const extra = refusal.status === 429 ? { retry_after_ms: FEDERATION_RETRY_AFTER_MS } : {};
      await send(
        stream,
        matrixError(refusal.status, refusal.errcode, refusal.error, extra),
        AbortSignal.timeout(REFUSAL_WRITE_TIMEOUT),
      );
      if (abort) stream.abort(new Error(`client API request refused with ${refusal.status}`));
      else await closeAndLinger(stream, FEDERATION_LINGER_TIMEOUT);
    } catch (err) {
      this.#log.debug({ ...errorFields(err), peer, protocol: CLIENT_API_PROTOCOL }, 'client API refusal not delivered');
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/** The bytes of an answer with a Matrix error body. */
function matrixError(status: number, errcode: string, error: string, extra: Record<string, unknown> = {}): Uint8Array {
  return encodeMessage(
    statusLine(status),
    [['content-type', 'application/json']],
    new TextEncoder().encode(JSON.stringify({ errcode, error, ...extra })),
  );
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
  let stream: Stream;
  try {
    stream = await host.dialProtocol(peer, CLIENT_API_PROTOCOL, { signal, runOnLimitedConnection: true });
  } catch (err) {
    throw stopped(err) ?? new ClientApiError('unreachable', peerText, (err as Error).message, err);
  }
  try {
    const bytes = byteStream(stream, { maxBufferSize: FEDERATION_MAX_HEAD_BYTES + maxResponseBytes });
    try {
      await bytes.write(request, { signal });
    } catch (err) {
      // The home may refuse (413, 429, 403) and close before the whole body is written: read its answer.
      if (signal.aborted) throw err;
    }
    const source = byteStreamSource(bytes);
    const head = await readHead(source, FEDERATION_MAX_HEAD_BYTES, signal);
    const parsed = parseResponseHead(head.head, (reason) => new ClientApiError('bad-response', peerText, reason));
    if (parsed.contentLength > maxResponseBytes) {
      throw new ClientApiError('bad-response', peerText, `the answer is larger than ${maxResponseBytes} bytes`);
    }
    const body = await readBody(source, head.rest, parsed.contentLength, signal);
    await closeQuietly(stream, REFUSAL_WRITE_TIMEOUT);
    return { status: parsed.status, headers: filterResponseHeaders(parsed.headers), body };
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    const stop = stopped(err);
    if (stop !== undefined) throw stop;
    if (err instanceof ClientApiError) throw err;
    if (err instanceof Error && err.name === 'StreamBufferError') {
      throw new ClientApiError('bad-response', peerText, `the answer is larger than ${maxResponseBytes} bytes`);
    }
    throw new ClientApiError('bad-response', peerText, (err as Error).message, err);
  }
}
