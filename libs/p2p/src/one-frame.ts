// The shape of the small request/answer protocols (enrollment, pairing): one length-prefixed UTF-8 JSON object
// each way on a new stream, then close. Each protocol gives its error class; the caps and timeouts are its own.
import type { Libp2p, PeerId } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';
import { closeQuietly } from './session.js';

/** Makes a protocol's error for a bad or missing frame. */
export type FrameError = (message: string, cause?: unknown) => Error;

/** Decodes a frame as a UTF-8 JSON object; throws `fail`'s error when it is not one. */
export function decodeJsonObject(bytes: Uint8Array, fail: FrameError): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw fail('frame is not UTF-8 JSON', err);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('frame is not a JSON object');
  return value as Record<string, unknown>;
}

/** Options of requestOneFrame. */
export interface OneFrameOptions {
  maxDataLength: number;
  /** Aborts the whole exchange. */
  signal: AbortSignal;
  /** Time allowed to close the stream after the answer, ms. */
  closeTimeoutMs: number;
  fail: FrameError;
}

/**
 * Opens `protocol` to `target`, writes `request`, reads one answer frame and closes; resolves with the answer
 * decoded as a JSON object. A missing or malformed answer throws `fail`'s error; dial errors are libp2p's own.
 */
export async function requestOneFrame(
  host: Pick<Libp2p, 'dialProtocol'>,
  target: PeerId | Multiaddr,
  protocol: string,
  request: unknown,
  options: OneFrameOptions,
): Promise<Record<string, unknown>> {
  const { signal, fail } = options;
  const stream = await host.dialProtocol(target, protocol, { signal });
  try {
    const lp = lpStream(stream, { maxDataLength: options.maxDataLength });
    await lp.write(new TextEncoder().encode(JSON.stringify(request)), { signal });
    let frame;
    try {
      frame = await lp.read({ signal });
    } catch (err) {
      throw fail(`no answer: ${(err as Error).message}`, err);
    }
    const answer = decodeJsonObject(frame.subarray(), fail);
    await closeQuietly(stream, options.closeTimeoutMs);
    return answer;
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}
