// Stream helpers shared by the HTTP-over-libp2p protocols (federation, client API): writing an answer without a
// byte stream, closing after it, racing a handler against a deadline.
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { byteStream } from '@libp2p/utils';
import { FEDERATION_MAX_HEAD_BYTES } from './constants.js';
import { byteStreamSource, parseResponseHead, readBody, readHead, type ResponseHead } from './federation-codec.js';
import { closeQuietly } from './session.js';

/** Time allowed for writing a refusal that comes before the handler (the caller may not be reading), ms. */
export const REFUSAL_WRITE_TIMEOUT = 2_000;

// Writes without a byte stream (which would start buffering what the caller sends): waits for drain if needed.
export async function send(stream: Stream, data: Uint8Array, signal: AbortSignal): Promise<void> {
  if (stream.send(data)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.removeEventListener('drain', onDrain);
      stream.removeEventListener('close', onClose);
      signal.removeEventListener('abort', onAbort);
      if (err === undefined) resolve();
      else reject(err);
    };
    const onDrain = (): void => done();
    const onClose = (): void => done(new Error('the stream closed before the answer was sent'));
    const onAbort = (): void => done(signal.reason instanceof Error ? signal.reason : new Error('send timed out'));
    stream.addEventListener('drain', onDrain);
    stream.addEventListener('close', onClose);
    signal.addEventListener('abort', onAbort);
  });
}

// Closes this end after the answer; a caller that keeps its end open (and may still be sending a body nobody
// reads) is aborted after `lingerMs`, so an answered request holds no stream or buffer.
export async function closeAndLinger(stream: Stream, lingerMs: number): Promise<void> {
  await closeQuietly(stream, REFUSAL_WRITE_TIMEOUT);
  if (stream.status !== 'open') return;
  const timer = setTimeout(() => {
    if (stream.status === 'open') stream.abort(new Error('the caller did not close its end after the answer'));
  }, lingerMs);
  timer.unref?.();
  stream.addEventListener('close', () => clearTimeout(timer), { once: true });
}

// Settles with the promise, or rejects with the signal's reason once it aborts (the promise is left to itself).
export async function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) throw signal.reason;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, aborted]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

/** Thrown by exchange when the peer could not be dialled or does not speak the protocol. */
export class DialFailedError extends Error {
  constructor(cause: unknown) {
    super((cause as Error).message ?? String(cause), { cause });
    this.name = 'DialFailedError';
  }
}

/** Options of exchange. */
export interface ExchangeInit {
  signal: AbortSignal;
  /** Largest answer body read, bytes; a larger one throws `tooLarge()`. */
  maxResponseBytes: number;
  /** Time allowed to close the stream after the answer, ms. */
  closeTimeout: number;
  tooLarge: () => Error;
  /** The error for an answer that is not HTTP/1.1 with a Content-Length. */
  bad: (reason: string) => Error;
}

/**
 * The caller's side of one HTTP-over-libp2p request: dials `protocol`, writes the request's bytes, reads the
 * answer's head and body within the caps, closes. Throws DialFailedError before the stream opens; after it, the
 * stream is aborted and the error thrown as it came (HeadTooLargeError, StreamEndedError, a stream error, the
 * signal's reason, `tooLarge()`, `bad(reason)`).
 */
export async function exchange(
  host: Pick<Libp2p, 'dialProtocol'>,
  peer: PeerId,
  protocol: string,
  request: Uint8Array,
  init: ExchangeInit,
): Promise<ResponseHead & { body: Uint8Array }> {
  const { signal, maxResponseBytes } = init;
  let stream: Stream;
  try {
    stream = await host.dialProtocol(peer, protocol, { signal, runOnLimitedConnection: true });
  } catch (err) {
    throw new DialFailedError(err);
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
    const parsed = parseResponseHead(head.head, init.bad);
    if (parsed.contentLength > maxResponseBytes) throw init.tooLarge();
    const body = await readBody(source, head.rest, parsed.contentLength, signal);
    await closeQuietly(stream, init.closeTimeout);
    return { ...parsed, body };
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    if (err instanceof Error && err.name === 'StreamBufferError') throw init.tooLarge();
    throw err;
  }
}
