// The spec's signed-event test vectors (appendix "Cryptographic test vectors"), as printed there. They
// were made with the room version 1 redaction algorithm, whose top-level key list v10 shares; the event
// types they use keep no content in any version, so v10 reproduces them exactly.
import { decodeBase64, keyPairFromSeed } from '@polyhome/identity';
import type { JsonObject } from '../types.js';

/** The spec's signing key (seed in its canonical unpadded spelling), server `domain`, key `ed25519:1`. */
export const SPEC_KEY = keyPairFromSeed(decodeBase64('YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA0'));
export const SPEC_IDENTITY = { serverName: 'domain', keyId: 'ed25519:1', secretKey: SPEC_KEY.secretKey };

/** One vector: the event without hashes and signatures, the content hash and the signature the spec prints. */
export interface SpecEventVector {
  name: string;
  event: JsonObject;
  sha256: string;
  signature: string;
}

export const SPEC_EVENT_VECTORS: readonly SpecEventVector[] = [
  {
    name: 'minimal event',
    event: {
      room_id: '!x:domain',
      sender: '@a:domain',
      origin: 'domain',
      origin_server_ts: 1000000,
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
    event: {
      content: { body: 'Here is the message content' },
      event_id: '$0:domain',
      origin: 'domain',
      origin_server_ts: 1000000,
      type: 'm.room.message',
      room_id: '!r:domain',
      sender: '@u:domain',
      unsigned: { age_ts: 1000000 },
    },
    sha256: 'onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g',
    signature: 'Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA',
  },
];
