// The server side shared by the HTTP-over-libp2p protocols (federation, client API): one HTTP/1.1 request and its
// answer per stream. It owns the defences every such protocol needs, in order of cost: concurrency caps per peer
// and overall (429, before a byte is read), the head's cap and deadline (431, 408), the protocol's own check of
// the head (`admit`: authorize, a path whitelist), the body cap (413) and the bytes of bodies held at once (429),
// the body's deadline (408), then `respond` against the total deadline; refusals are Matrix errors.
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface';
import {
  BoundedReader,
  BufferOverflowError,
  HeadTooLargeError,
  parseRequestHead,
  readBody,
  readHead,
  StreamEndedError,
  WireRefusal,
  encodeResponse,
} from './federation-codec.js';
import { errorFields, type P2pLogger } from './logger.js';
import { closeAndLinger, raceSignal, REFUSAL_WRITE_TIMEOUT, send } from './wire-io.js';

/** A request refused before it is answered: the count it goes to, the status and the Matrix error body. */
export interface StreamRefusal {
  count: string;
  status: number;
  body: Record<string, unknown>;
}

/** A request whose head and body arrived and passed the checks. */
export interface StreamRequest {
  method: string;
  /** Path and query as sent. */
  target: string;
  /** The path as sent, still percent-encoded. */
  path: string;
  query: URLSearchParams;
  /** Every header, names lower-cased. */
  headers: Map<string, string>;
  /** The body (empty when none). */
  body: Uint8Array;
  peerId: PeerId;
}

/** Caps and deadlines of a stream server. */
export interface StreamServerLimits {
  maxHeadBytes: number;
  maxBodyBytes: number;
  headTimeout: number;
  readTimeout: number;
  requestTimeout: number;
  maxConcurrentPerPeer: number;
  maxConcurrent: number;
  maxBodyBytesInFlight: number;
  maxStreams: number;
  lingerMs: number;
  retryAfterMs: number;
}

/** Requests refused or lost so far, by reason (each request counts once); each protocol adds its answered count. */
export interface WireCounts {
  /** 429: over the per-peer or overall concurrency cap, or the body bytes in flight. */
  limited: number;
  /** 403 (or 405): the protocol's check of the head said no. */
  forbidden: number;
  /** 413 or 431: body or head over its cap. */
  tooLarge: number;
  /** 400: not an HTTP/1.1 request, or a body that does not parse. */
  malformed: number;
  /** 408 or 504: the request did not arrive, or was not answered, in time. */
  timedOut: number;
  /** 500 or 502: the handler threw, or answered something that cannot be sent. */
  failed: number;
  /** The caller went away before the answer (stream closed or reset). */
  dropped: number;
}

/** A protocol's server on a libp2p node. */
export interface StreamServer<Counts extends WireCounts> {
  /** Registers the protocol handler. */
  start(): Promise<void>;
  /** Unregisters it (requests in flight finish); a node already stopping is not an error. */
  stop(): Promise<void>;
  /** Requests in flight now. */
  readonly inFlight: number;
  /** The counts so far (a copy). */
  readonly counts: Counts;
}

/** The caps and deadlines a caller of a protocol's server may set; each defaults to the protocol's constant. */
export interface StreamServerOptions {
  logger?: P2pLogger;
  /** Largest request body, bytes. */
  maxBodyBytes?: number;
  /** ms from the stream opening to the end of the head. */
  headTimeout?: number;
  /** ms from the stream opening to the end of the body. */
  readTimeout?: number;
  /** ms from the stream opening to the answer written. */
  requestTimeout?: number;
  /** Requests at once per peer (all its connections); more are answered 429. */
  maxConcurrentPerPeer?: number;
  /** Requests at once overall; more are answered 429. */
  maxConcurrent?: number;
  /** Bytes of request bodies held at once overall; a request over it is answered 429. */
  maxBodyBytesInFlight?: number;
}

/** A refusal with a Matrix error body. */
export function refusal(count: string, status: number, errcode: string, error: string): StreamRefusal {
  return { count, status, body: { errcode, error } };
}

/** The base of a protocol's server: subclasses decide what a head may ask (`admit`) and answer (`respond`). */
export abstract class HttpStreamServer {
  readonly #components: Pick<Libp2p, 'handle' | 'unhandle'>;
  readonly #perPeer = new Map<string, number>();
  protected readonly counters: Record<string, number>;
  #inFlight = 0;
  #bodyBytesInFlight = 0;
  #started = false;

  protected constructor(
    components: Pick<Libp2p, 'handle' | 'unhandle'>,
    protected readonly protocol: string,
    /** Names the protocol in log lines ("federation", "client API"). */
    protected readonly what: string,
    protected readonly limits: StreamServerLimits,
    protected readonly log: P2pLogger,
    counts: readonly string[],
  ) {
    this.#components = components;
    this.counters = Object.fromEntries(counts.map((name) => [name, 0]));
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Registers the protocol handler. */
  async start(): Promise<void> {
    if (this.#started) return;
    await this.#components.handle(this.protocol, (stream, connection) => this.#accept(stream, connection), {
      maxInboundStreams: this.limits.maxStreams,
      maxOutboundStreams: this.limits.maxStreams,
      // A laptop behind NAT is reached through its server home's relay ("limited" connections); the relay's own
      // limits (data, duration) bound what it carries.
      runOnLimitedConnection: true,
    });
    this.#started = true;
  }

  /** Unregisters it (requests in flight finish); a node already stopping is not an error. */
  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    try {
      await this.#components.unhandle(this.protocol);
    } catch (err) {
      this.log.debug({ ...errorFields(err), protocol: this.protocol }, `${this.what} handler not unregistered`);
    }
  }

  /** Whether the head may go on (undefined) or its refusal; the body is not read yet. */
  protected abstract admit(
    request: Omit<StreamRequest, 'body'>,
    signal: AbortSignal,
  ): Promise<StreamRefusal | undefined>;

  /** The answer's bytes, or a refusal (a body that does not parse). */
  protected abstract respond(
    request: StreamRequest,
    signal: AbortSignal,
    total: AbortSignal,
  ): Promise<Uint8Array | StreamRefusal>;

  /**
   * Runs the protocol's handler against the request's deadlines: its result, or the answer's bytes when it gave
   * none (504 past the total deadline; nothing when the caller left; `failure` when it threw, counted `failed`
   * and logged with `context`).
   */
  protected async runHandler<T>(
    run: () => Promise<T> | T,
    signal: AbortSignal,
    total: AbortSignal,
    failure: { status: number; errcode: string; error: string },
    context: Record<string, unknown>,
  ): Promise<{ value: T } | { answer: Uint8Array }> {
    try {
      return { value: await raceSignal(Promise.resolve().then(run), signal) };
    } catch (err) {
      if (total.aborted) {
        this.counters['timedOut']!++;
        this.log.info({ ...context, protocol: this.protocol }, `${this.what} handler did not answer in time`);
        const error = `The request was not answered within ${this.limits.requestTimeout} ms.`;
        return { answer: this.refusalBytes(504, { errcode: 'M_UNKNOWN', error }) };
      }
      if (signal.aborted) return { answer: new Uint8Array(0) }; // the caller left; nothing will be written
      this.counters['failed']!++;
      this.log.error(
        { ...errorFields(err), stack: (err as Error).stack, ...context, protocol: this.protocol },
        `${this.what} handler threw`,
      );
      return { answer: this.refusalBytes(failure.status, { errcode: failure.errcode, error: failure.error }) };
    }
  }

  /** The bytes of a refusal's answer. */
  protected refusalBytes(status: number, body: Record<string, unknown>): Uint8Array {
    return encodeResponse(status, new TextEncoder().encode(JSON.stringify(body)));
  }

  // The concurrency slot is taken before a byte is read, so a peer opening many streams costs one 429 each.
  #accept(stream: Stream, connection: Connection): void {
    const peer = connection.remotePeer.toString();
    const held = this.#perPeer.get(peer) ?? 0;
    if (held >= this.limits.maxConcurrentPerPeer || this.#inFlight >= this.limits.maxConcurrent) {
      this.counters['limited']!++;
      this.log.debug(
        { peer, protocol: this.protocol, perPeer: held, inFlight: this.#inFlight },
        `${this.what} request refused: too many at once`,
      );
      void this.#refuse(stream, peer, 429, this.#limitExceeded(`Too many ${this.what} requests at once.`));
      return;
    }
    this.#perPeer.set(peer, held + 1);
    this.#inFlight++;
    this.#serve(stream, connection.remotePeer)
      .catch((err: unknown) => {
        // Only a failed write of the answer gets here (the caller left or stopped reading).
        this.counters['dropped']!++;
        this.log.debug({ ...errorFields(err), peer, protocol: this.protocol }, `${this.what} answer not delivered`);
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
    const bytes = new BoundedReader(stream, this.limits.maxHeadBytes + this.limits.maxBodyBytes);
    // Aborted by the total deadline or by the caller closing or resetting the stream.
    const gone = new AbortController();
    const onClose = (): void => gone.abort(new Error('the caller closed the stream'));
    stream.addEventListener('close', onClose, { once: true });
    const total = AbortSignal.timeout(this.limits.requestTimeout);
    const signal = AbortSignal.any([total, gone.signal]);
    let held = 0;
    try {
      const read = await this.#read(bytes, peerId, signal, (n) => (held = n));
      // Whatever body follows is not read: stop buffering it (it would overflow the buffer and reset the stream
      // before the caller reads the answer).
      bytes.discard();
      const answer = 'refusal' in read ? read.refusal : await this.respond(read.request, signal, total);
      if (gone.signal.aborted) {
        this.counters['dropped']!++;
        this.log.debug({ peer, protocol: this.protocol }, `${this.what} caller left before the answer`);
        return;
      }
      if (!(answer instanceof Uint8Array)) {
        const { count, status, body } = answer;
        this.counters[count]!++;
        this.log.debug(
          { peer, protocol: this.protocol, status, errcode: body['errcode'], err: body['error'] },
          `${this.what} request refused`,
        );
        await this.#refuse(stream, peer, status, body, status === 408);
        return;
      }
      await send(stream, answer, signal);
      await closeAndLinger(stream, this.limits.lingerMs);
    } finally {
      this.#bodyBytesInFlight -= held;
      stream.removeEventListener('close', onClose);
    }
  }

  // Reads and checks the request in order of cost: head (deadline, cap), admit, body cap and budget, body.
  async #read(
    bytes: BoundedReader,
    peerId: PeerId,
    signal: AbortSignal,
    reserved: (bytes: number) => void,
  ): Promise<{ request: StreamRequest } | { refusal: StreamRefusal }> {
    const refuse = (count: string, status: number, errcode: string, error: string) => ({
      refusal: refusal(count, status, errcode, error),
    });
    const { maxHeadBytes, maxBodyBytes, headTimeout, readTimeout } = this.limits;
    const headDeadline = AbortSignal.any([signal, AbortSignal.timeout(headTimeout)]);
    let head: { head: string; rest: Uint8Array };
    try {
      head = await readHead(bytes, maxHeadBytes, headDeadline);
    } catch (err) {
      if (err instanceof HeadTooLargeError) {
        return refuse('tooLarge', 431, 'M_TOO_LARGE', `The request head is longer than ${maxHeadBytes} bytes.`);
      }
      if (headDeadline.aborted) {
        return refuse('timedOut', 408, 'M_UNKNOWN', `The request head did not arrive within ${headTimeout} ms.`);
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
    const request = {
      method: parsed.method,
      target: parsed.target,
      path: at < 0 ? parsed.target : parsed.target.slice(0, at),
      query: new URLSearchParams(at < 0 ? '' : parsed.target.slice(at + 1)),
      headers: parsed.headers,
      peerId,
    };
    const denied = await this.admit(request, signal);
    if (denied !== undefined) return { refusal: denied };
    if (parsed.contentLength > maxBodyBytes) {
      return refuse('tooLarge', 413, 'M_TOO_LARGE', `The request body is larger than ${maxBodyBytes} bytes.`);
    }
    if (this.#bodyBytesInFlight + parsed.contentLength > this.limits.maxBodyBytesInFlight) {
      return {
        refusal: {
          count: 'limited',
          status: 429,
          body: this.#limitExceeded(`Too much ${this.what} data in flight.`),
        },
      };
    }
    // Held until the request is answered (the body is referenced by the request until then).
    this.#bodyBytesInFlight += parsed.contentLength;
    reserved(parsed.contentLength);
    const readDeadline = AbortSignal.any([signal, AbortSignal.timeout(readTimeout)]);
    try {
      return { request: { ...request, body: await readBody(bytes, head.rest, parsed.contentLength, readDeadline) } };
    } catch (err) {
      if (readDeadline.aborted) {
        return refuse('timedOut', 408, 'M_UNKNOWN', `The request body did not arrive within ${readTimeout} ms.`);
      }
      if (err instanceof StreamEndedError) return refuse('malformed', 400, 'M_UNRECOGNIZED', `${err.message}.`);
      if (err instanceof BufferOverflowError) {
        return refuse('malformed', 400, 'M_UNRECOGNIZED', 'More bytes came than the Content-Length announced.');
      }
      throw err;
    }
  }

  #limitExceeded(error: string): Record<string, unknown> {
    return { errcode: 'M_LIMIT_EXCEEDED', error, retry_after_ms: this.limits.retryAfterMs };
  }

  // A refusal: written with a short deadline, then the stream closed (aborted if it hangs). A late caller's
  // stream is aborted right after the 408: it is not waited on to close its end.
  async #refuse(
    stream: Stream,
    peer: string,
    status: number,
    body: Record<string, unknown>,
    abort = false,
  ): Promise<void> {
    try {
      await send(stream, this.refusalBytes(status, body), AbortSignal.timeout(REFUSAL_WRITE_TIMEOUT));
      if (abort) stream.abort(new Error(`${this.what} request refused with ${status}`));
      else await closeAndLinger(stream, this.limits.lingerMs);
    } catch (err) {
      this.log.debug(
        { ...errorFields(err), peer, protocol: this.protocol, status },
        `${this.what} refusal not delivered`,
      );
      stream.abort(err instanceof Error ? err : new Error(String(err)));
    }
  }
}
