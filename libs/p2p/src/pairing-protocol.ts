// /polyhome/pairing/1.0.0: a node made with `init --join` holds a short pairing code that its user gives to
// the home adding it. Before the node takes in an account that a home offers it, it opens this protocol to
// that home: one length-prefixed JSON request `{ account, nonce }`, one answer `{ mac }` (an HMAC-SHA256 keyed
// by the code over the account, both PeerIds and the nonce) or `{ errcode, error }`, then close. The code never
// travels; a home that does not hold it can only guess, and the joining node bounds the guesses (libs/home).
import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Connection, Libp2p, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { lpStream } from '@libp2p/utils';
import { PAIRING_MAX_FRAME_BYTES, PAIRING_MAX_STREAMS, PAIRING_PROTOCOL, PAIRING_TIMEOUT_MS } from './constants.js';
import { PairingProtocolError } from './errors.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import { decodeJsonObject, requestOneFrame, type FrameError } from './one-frame.js';
import { closeQuietly } from './session.js';

/** Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or retyped is not misread. */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** Characters of a pairing code: 10 of base32, 50 bits. */
export const PAIRING_CODE_LENGTH = 10;
/** The errcode of a home that holds no pairing code for the asking node and account. */
export const NO_PAIRING = 'NO_PAIRING';
/** Domain separation of the MAC. */
const MAC_CONTEXT = 'polyhome-pairing/1';

/** A new pairing code, shown as two groups of five (`7KQ2M-XW4PD`). */
export function newPairingCode(): string {
  let code = '';
  for (let i = 0; i < PAIRING_CODE_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return `${code.slice(0, 5)}-${code.slice(5)}`;
}

/**
 * The canonical form of a pairing code as typed: upper case, dashes and spaces dropped, O read as 0 and I, L
 * as 1. Undefined when it is not a pairing code (wrong length, a character outside the alphabet).
 */
export function normalizePairingCode(input: string): string | undefined {
  const code = input.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');
  if (code.length !== PAIRING_CODE_LENGTH || [...code].some((c) => !ALPHABET.includes(c))) return undefined;
  return code;
}

/** What the MAC binds: the account offered, the joining node, the home proving the code, the joiner's nonce. */
export interface PairingChallenge {
  account: string;
  joiner: string;
  adder: string;
  nonce: string;
}

/** HMAC-SHA256 keyed by the canonical code over the challenge (NUL-separated), base64url. */
export function pairingProof(code: string, challenge: PairingChallenge): string {
  const key = normalizePairingCode(code);
  if (key === undefined) throw new PairingProtocolError('not a pairing code');
  const { account, joiner, adder, nonce } = challenge;
  return createHmac('sha256', key).update([MAC_CONTEXT, account, joiner, adder, nonce].join('\0')).digest('base64url');
}

/** Whether `mac` is the proof of `code` for the challenge (compared in constant time). */
export function checkPairingProof(code: string, challenge: PairingChallenge, mac: string): boolean {
  const want = Buffer.from(pairingProof(code, challenge));
  const got = Buffer.from(mac);
  return got.length === want.length && timingSafeEqual(got, want);
}

/** A fresh nonce for a pairing request (32 random bytes, base64url). */
export function pairingNonce(): string {
  return randomBytes(32).toString('base64url');
}

const pairingFrameError: FrameError = (message, cause) => new PairingProtocolError(message, { cause });

function encode(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

/** The answer of a home asked for a proof: its MAC, or that it holds no code for this node and account. */
export type PairingAnswer = { mac: string } | { errcode: string; error: string };

/**
 * Asks the connected home `peerId` to prove the pairing code for `account` over `nonce`. Resolves with its
 * answer; throws PairingProtocolError when it does not answer properly. Dial errors are libp2p's own.
 */
export async function requestPairingProof(
  host: Pick<Libp2p, 'dialProtocol'>,
  peerId: string,
  request: { account: string; nonce: string },
  options: { signal?: AbortSignal } = {},
): Promise<PairingAnswer> {
  const answer = await requestOneFrame(host, peerIdFromString(peerId), PAIRING_PROTOCOL, request, {
    maxDataLength: PAIRING_MAX_FRAME_BYTES,
    signal: options.signal ?? AbortSignal.timeout(PAIRING_TIMEOUT_MS),
    closeTimeoutMs: PAIRING_TIMEOUT_MS,
    fail: pairingFrameError,
  });
  if (typeof answer['mac'] === 'string') return { mac: answer['mac'] };
  if (typeof answer['errcode'] === 'string') {
    return { errcode: answer['errcode'], error: typeof answer['error'] === 'string' ? answer['error'] : '' };
  }
  throw new PairingProtocolError('answer is neither a proof nor an error');
}

/** The pairing code this home was given for a joining node and an account, if any. */
export type PairingCodeLookup = (account: string, joiner: string) => string | undefined;

/** The answering side: every home answers, with the codes its user gave it when adding a joining node. */
export class PairingHandler {
  #started = false;

  constructor(
    private readonly components: Pick<Libp2p, 'handle' | 'unhandle'>,
    private readonly localPeer: string,
    private readonly lookup: PairingCodeLookup,
    private readonly log: P2pLogger = silentLogger,
  ) {}

  async start(): Promise<void> {
    if (this.#started) return;
    await this.components.handle(
      PAIRING_PROTOCOL,
      (stream, connection) => {
        this.#serve(stream, connection).catch((err: unknown) => {
          this.log.debug(
            { ...errorFields(err), peer: connection.remotePeer.toString(), protocol: PAIRING_PROTOCOL },
            'pairing answer not delivered',
          );
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        });
      },
      { maxInboundStreams: PAIRING_MAX_STREAMS, maxOutboundStreams: PAIRING_MAX_STREAMS },
    );
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.components.unhandle(PAIRING_PROTOCOL).catch((err: unknown) => {
      this.log.debug({ ...errorFields(err), protocol: PAIRING_PROTOCOL }, 'pairing handler not unregistered');
    });
  }

  async #serve(stream: Stream, connection: Connection): Promise<void> {
    const joiner = connection.remotePeer.toString();
    const lp = lpStream(stream, { maxDataLength: PAIRING_MAX_FRAME_BYTES });
    const frame = await lp.read({ signal: AbortSignal.timeout(PAIRING_TIMEOUT_MS) });
    const answer = this.#answer(frame.subarray(), joiner);
    await lp.write(encode(answer), { signal: AbortSignal.timeout(PAIRING_TIMEOUT_MS) });
    await closeQuietly(stream, PAIRING_TIMEOUT_MS);
  }

  #answer(bytes: Uint8Array, joiner: string): PairingAnswer {
    let request: Record<string, unknown>;
    try {
      request = decodeJsonObject(bytes, pairingFrameError);
    } catch (err) {
      return { errcode: 'M_NOT_JSON', error: (err as Error).message };
    }
    const { account, nonce } = request;
    if (typeof account !== 'string' || typeof nonce !== 'string' || nonce.length < 16) {
      return { errcode: 'M_BAD_JSON', error: 'The request needs `account` and a `nonce` of at least 16 characters.' };
    }
    const code = this.lookup(account, joiner);
    if (code === undefined) {
      return { errcode: NO_PAIRING, error: 'This home was given no pairing code for your node and this account.' };
    }
    return { mac: pairingProof(code, { account, joiner, adder: this.localPeer, nonce }) };
  }
}
