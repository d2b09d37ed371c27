// The shape of the small request/answer protocols (enrollment, pairing): one length-prefixed UTF-8 JSON object
// each way on a new stream, then close. Each protocol gives its error class; the caps and timeouts are its own.
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { Multiaddr } from '@multiformats/multiaddr';
import { errorFields, type P2pLogger } from './logger.js';
import { closeQuietly, isTooLarge } from './session.js';

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

/** What a one-frame protocol's answering side is made of: its limits, and the domain's answer. */
export interface OneFrameServerInit {
  protocol: string;
  /** Names the protocol in log messages (`<name> failed`, `<name> request not read`, ...). */
  name: string;
  maxFrameBytes: number;
  timeoutMs: number;
  maxInboundStreams: number;
  maxOutboundStreams: number;
  logger: P2pLogger;
  /** Answers one request (a JSON object, not yet validated) from a noise-proved PeerId. */
  answer: (request: Record<string, unknown>, from: string) => Promise<object>;
}

/**
 * The answering side of a one-frame protocol: reads one request (bounded in size and time), answers it with
 * the domain's answer or an error in the HTTP API's shape (`M_NOT_JSON`, `M_TOO_LARGE`, `M_UNKNOWN` for a
 * throw of the domain), then closes. start() it with the node, stop() it before.
 */
export class OneFrameServer {
  #started = false;

  constructor(
    private readonly components: Pick<Libp2p, 'handle' | 'unhandle'>,
    private readonly init: OneFrameServerInit,
  ) {}

  async start(): Promise<void> {
    if (this.#started) return;
    const { protocol, name, logger } = this.init;
    await this.components.handle(
      protocol,
      (stream, connection) => {
        this.#serve(stream, connection.remotePeer.toString()).catch((err: unknown) => {
          // The answer could not be written (the peer left, or stalled past the timeout).
          logger.debug(
            { ...errorFields(err), peer: connection.remotePeer.toString(), protocol },
            `${name} answer not delivered`,
          );
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        });
      },
      { maxInboundStreams: this.init.maxInboundStreams, maxOutboundStreams: this.init.maxOutboundStreams },
    );
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    try {
      await this.components.unhandle(this.init.protocol);
    } catch (err) {
      // The node may be stopping at the same moment; then there is nothing left to unregister.
      this.init.logger.debug(
        { ...errorFields(err), protocol: this.init.protocol },
        `${this.init.name} handler not unregistered`,
      );
    }
  }

  // One request, one answer, then close; every wait is bounded.
  async #serve(stream: Stream, from: string): Promise<void> {
    const { protocol, name, logger, maxFrameBytes, timeoutMs } = this.init;
    const lp = lpStream(stream, { maxDataLength: maxFrameBytes });
    let answer: object;
    try {
      const frame = await lp.read({ signal: AbortSignal.timeout(timeoutMs) });
      answer = await this.#answer(frame.subarray(), from);
    } catch (err) {
      if (!isTooLarge(err)) {
        logger.debug({ ...errorFields(err), peer: from, protocol }, `${name} request not read`);
        stream.abort(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      answer = { errcode: 'M_TOO_LARGE', error: `The request is larger than ${maxFrameBytes} bytes.` };
    }
    await lp.write(new TextEncoder().encode(JSON.stringify(answer)), { signal: AbortSignal.timeout(timeoutMs) });
    await closeQuietly(stream, timeoutMs);
  }

  async #answer(bytes: Uint8Array, from: string): Promise<object> {
    let request: Record<string, unknown>;
    try {
      request = decodeJsonObject(bytes, (message) => new Error(message));
    } catch (err) {
      return { errcode: 'M_NOT_JSON', error: (err as Error).message };
    }
    try {
      return await this.init.answer(request, from);
    } catch (err) {
      // The domain answers refusals itself; a throw is a failure of the domain (database down, a bug).
      this.init.logger.error(
        { ...errorFields(err), stack: (err as Error).stack, peer: from, protocol: this.init.protocol },
        `${this.init.name} failed`,
      );
      return { errcode: 'M_UNKNOWN', error: 'Internal error.' };
    }
  }
}
