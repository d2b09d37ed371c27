// The client side of /polyhome/enroll/1.0.0 (server side: apps/server/src/enrollment/): one length-prefixed
// JSON request `{ document, token }`, one length-prefixed JSON answer, then close. Written here rather than
// imported because apps/node must not depend on apps/server; it is the same wire format, about 60 lines.
import type { Libp2p } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import { multiaddr as parseMultiaddr } from '@multiformats/multiaddr';
import type { AccountDocument } from '@polyhome/identity';

/** Protocol id of enrollment over libp2p. */
export const ENROLL_PROTOCOL = '/polyhome/enroll/1.0.0';

/** Largest frame either way (the server's ENROLL_MAX_FRAME_BYTES). */
const MAX_FRAME_BYTES = 128 * 1024;

/** Time allowed for the whole exchange (the server's ENROLL_TIMEOUT_MS). */
const TIMEOUT_MS = 10_000;

/** What an enrolled server answers. */
export interface EnrollAnswer {
  user_id: string;
  peer_id: string;
  addrs: string[];
}

/** Thrown when the server refuses (errcode from the server, e.g. M_FORBIDDEN for a bad token) or answers badly. */
export class EnrollError extends Error {
  constructor(
    readonly errcode: string,
    message: string,
  ) {
    super(message);
    this.name = 'EnrollError';
  }
}

/** Asks the server at `address` (ending in /p2p/<PeerId>) to host the account its signed next document names it in. */
export async function enroll(
  host: Pick<Libp2p, 'dialProtocol'>,
  address: string,
  document: AccountDocument,
  token: string | undefined,
): Promise<EnrollAnswer> {
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const stream = await host.dialProtocol(parseMultiaddr(address), ENROLL_PROTOCOL, { signal });
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
    const request = token === undefined ? { document } : { document, token };
    await lp.write(new TextEncoder().encode(JSON.stringify(request)), { signal });
    const frame = await lp.read({ signal });
    let answer: unknown;
    try {
      answer = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(frame.subarray()));
    } catch {
      throw new EnrollError('M_UNKNOWN', 'the server answered with something that is not JSON');
    }
    await stream.close({ signal }).catch(() => undefined);
    return parseAnswer(answer);
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

function parseAnswer(answer: unknown): EnrollAnswer {
  if (typeof answer !== 'object' || answer === null) throw new EnrollError('M_UNKNOWN', 'the answer is not an object');
  const { errcode, error, user_id, peer_id, addrs } = answer as Record<string, unknown>;
  if (typeof errcode === 'string') throw new EnrollError(errcode, typeof error === 'string' ? error : errcode);
  if (
    typeof user_id !== 'string' ||
    typeof peer_id !== 'string' ||
    !Array.isArray(addrs) ||
    !addrs.every((a): a is string => typeof a === 'string')
  ) {
    throw new EnrollError('M_UNKNOWN', 'the answer is neither an enrollment nor an error');
  }
  return { user_id, peer_id, addrs };
}
