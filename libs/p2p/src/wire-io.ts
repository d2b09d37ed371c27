// Stream helpers shared by the HTTP-over-libp2p protocols (federation, client API): writing an answer without a
// byte stream, closing after it, racing a handler against a deadline.
import type { Stream } from '@libp2p/interface';
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
