// Raw frames on a libp2p protocol of a real server, from a real libp2p peer: what hostile-peer tests send
// instead of running a sync service (length-prefixed JSON frames, as the sync and enrollment protocols use).
import { lpStream } from '@libp2p/utils';
import type { Stream } from '@libp2p/interface';
import { multiaddr } from '@multiformats/multiaddr';
import { MAX_FRAME_BYTES, type PolyhomeHost } from '@polyhome/p2p';

export const encoder = new TextEncoder();

/** An unsigned varint, as length-prefixed streams write lengths. */
export function varint(value: number): Uint8Array {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Uint8Array.from(out);
}

/** One length-prefixed frame of raw bytes. */
export function frame(bytes: Uint8Array): Uint8Array {
  const prefix = varint(bytes.length);
  const out = new Uint8Array(prefix.length + bytes.length);
  out.set(prefix);
  out.set(bytes, prefix.length);
  return out;
}

/** One frame of a JSON value. */
export function jsonFrame(value: unknown): Uint8Array {
  return frame(encoder.encode(JSON.stringify(value) ?? 'null'));
}

/** What came back on a stream: the frames (parsed as JSON where they are JSON) and how it ended. */
export interface Reply {
  frames: unknown[];
  ended: 'closed' | 'reset';
}

/**
 * Opens `protocol` on the open connection, writes `chunks` as they are, closes the writing side, and reads
 * until the server closes or resets the stream. Throws if the server neither answers nor closes in time.
 */
export async function exchange(
  host: PolyhomeHost,
  addr: string,
  protocol: string,
  chunks: readonly Uint8Array[],
): Promise<Reply> {
  const stream: Stream = await host.dialProtocol(multiaddr(addr), protocol, { signal: AbortSignal.timeout(10_000) });
  const lp = lpStream(stream, { maxDataLength: 4 * MAX_FRAME_BYTES });
  const frames: unknown[] = [];
  try {
    for (const chunk of chunks) {
      if (!stream.send(chunk)) await stream.onDrain({ signal: AbortSignal.timeout(10_000) });
    }
    await stream.close({ signal: AbortSignal.timeout(10_000) });
  } catch {
    // The server may close or reset first (it refused the first frame): what it sent is still read below.
  }
  const deadline = AbortSignal.timeout(15_000);
  for (;;) {
    try {
      const bytes = (await lp.read({ signal: deadline })).subarray();
      const text = new TextDecoder().decode(bytes);
      try {
        frames.push(JSON.parse(text));
      } catch {
        frames.push(text);
      }
    } catch (error) {
      const name = (error as Error).name;
      if (name === 'UnexpectedEOFError') return { frames, ended: 'closed' };
      if (name === 'StreamResetError' || name === 'StreamAbortedError' || name === 'StreamStateError') {
        return { frames, ended: 'reset' };
      }
      stream.abort(error as Error);
      throw new Error(`the server neither answered nor closed the stream: ${name}: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
}

/** How often `sendSyncFrames` sends a stream the server closed without a frame (see there). */
const SYNC_SEND_ATTEMPTS = 5;

/**
 * Sends a hand-played home's sync frames (after its `hello`) on a new sync stream of `addr`, and returns the reply.
 * The server keeps one session per home and account. When a session it opened itself to this home is open at that
 * moment (it reopens one after each session ends) and its PeerId is the lower, it closes this stream without a
 * frame, not even its hello, and would take the frames over its own session; a hand-played home has no sync
 * service to answer that one. Such a stream is sent again, as a home resends what was not acknowledged.
 */
export async function sendSyncFrames(
  host: PolyhomeHost,
  addr: string,
  protocol: string,
  hello: unknown,
  frames: readonly unknown[],
): Promise<Reply> {
  for (let attempt = 1; ; attempt++) {
    const reply = await exchange(host, addr, protocol, [jsonFrame(hello), ...frames.map(jsonFrame)]);
    if (reply.frames.length > 0 || attempt >= SYNC_SEND_ATTEMPTS) return reply;
    await new Promise((resolve) => setTimeout(resolve, 250 * attempt));
  }
}
