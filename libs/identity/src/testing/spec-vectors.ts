// The Matrix specification's cryptographic test vectors (appendix "Cryptographic test vectors"),
// copied from the spec text; shared by the tests of both Ed25519 backends.
import { Buffer } from 'node:buffer';

/** The spec's seed exactly as printed. Its last character leaves non-zero trailing bits. */
export const SPEC_SEED_TEXT = 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1';

/**
 * The seed bytes, decoded with Node's lenient base64 decoder, which ignores the non-zero trailing
 * bits as Python's and Go's decoders do. Only test code decodes it this way; the library's own
 * decoder refuses the printed form (a test checks that) and accepts its canonical spelling `...XA0`.
 */
export const SPEC_SEED = new Uint8Array(Buffer.from(SPEC_SEED_TEXT, 'base64'));

/** The spec's canonical spelling of the same 32 bytes. */
export const SPEC_SEED_CANONICAL_TEXT = 'YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0';

/** Server name used by every spec vector. */
export const SPEC_SERVER_NAME = 'domain';
/** Key id used by every spec vector. */
export const SPEC_KEY_ID = 'ed25519:1';

/** JSON signing vectors: input and the expected `signatures.domain["ed25519:1"]`. */
export const SPEC_JSON_VECTORS = [
  {
    input: {},
    signature: 'K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ',
  },
  {
    input: { one: 1, two: 'Two' },
    signature: 'KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw',
  },
] as const;

/** Event signing vectors: input event, expected content hash and signature (room version 1 redaction). */
export const SPEC_EVENT_VECTORS = [
  {
    name: 'minimal event',
    input: {
      room_id: '!x:domain',
      sender: '@a:domain',
      origin: 'domain',
      origin_server_ts: 1000000,
      signatures: {},
      hashes: {},
      type: 'X',
      content: {},
      prev_events: [],
      auth_events: [],
      depth: 3,
      unsigned: { age_ts: 1000000 },
    },
    sha256: '5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos',
    signature: 'KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg',
  },
  {
    name: 'event with redactable content',
    input: {
      content: { body: 'Here is the message content' },
      event_id: '$0:domain',
      origin: 'domain',
      origin_server_ts: 1000000,
      type: 'm.room.message',
      room_id: '!r:domain',
      sender: '@u:domain',
      signatures: {},
      unsigned: { age_ts: 1000000 },
    },
    sha256: 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g',
    signature: 'Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA',
  },
] as const;
