import { generateKeyPair, generateKeyPairFromSeed, publicKeyFromRaw } from '@libp2p/crypto/keys';
import {
  peerIdFromPrivateKey,
  peerIdFromPublicKey as libp2pPeerIdFromPublicKey,
  peerIdFromString,
} from '@libp2p/peer-id';
import { base58btc } from 'multiformats/bases/base58';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidKeyIdError, InvalidPeerIdError, InvalidServerNameError, InvalidUserIdError } from './errors.js';
import {
  formatUserId,
  homeKeyId,
  isPeerId,
  isServerName,
  parseKeyId,
  parseUserId,
  peerIdFromKeyId,
  peerIdFromPublicKey,
  publicKeyFromPeerId,
  publicKeyFromServerName,
  ROOT_KEY_ID,
  serverNameFromPublicKey,
} from './ids.js';
import { generateKeyPair as generateOurKeyPair, publicKeyPointChecks } from './keys.js';
import { SecretKey } from './secret-key.js';

const { publicKey } = generateOurKeyPair();
const serverName = serverNameFromPublicKey(publicKey);

describe('server names', () => {
  it('are the lowercase hex of the public key and lead back to it', () => {
    expect(serverName).toMatch(/^[0-9a-f]{64}$/);
    expect(publicKeyFromServerName(serverName)).toEqual(publicKey);
    expect(isServerName(serverName)).toBe(true);
  });

  it.each([
    ['uppercase', () => serverName.toUpperCase()],
    ['too short', () => serverName.slice(2)],
    ['too long', () => serverName + '00'],
    ['not hex', () => 'g' + serverName.slice(1)],
    ['a DNS name', () => 'example.org'],
    ['not a curve point', () => '02' + '00'.repeat(31)],
  ])('refuse %s', (_what, make) => {
    expect(() => publicKeyFromServerName(make())).toThrow(InvalidServerNameError);
  });
});

describe('user IDs', () => {
  it('format and parse', () => {
    const userId = formatUserId('alice', serverName);
    expect(userId).toBe(`@alice:${serverName}`);
    const parts = parseUserId(userId);
    expect(parts.localpart).toBe('alice');
    expect(parts.serverName).toBe(serverName);
    expect(parts.publicKey).toEqual(publicKey);
  });

  it('accept every character of the localpart grammar', () => {
    expect(parseUserId(`@a.b_c=d/e-f0:${serverName}`).localpart).toBe('a.b_c=d/e-f0');
    expect(parseUserId(`@${'x'.repeat(64)}:${serverName}`).localpart).toHaveLength(64);
  });

  it.each([
    ['no sigil', `alice:${serverName}`, 'must start with "@"'],
    ['no colon', '@alice', 'missing ":"'],
    ['empty localpart', `@:${serverName}`, 'localpart is empty'],
    ['long localpart', `@${'x'.repeat(65)}:${serverName}`, 'at most 64'],
    ['uppercase localpart', `@Alice:${serverName}`, 'index 0'],
    ['space in localpart', `@al ice:${serverName}`, 'index 2'],
    ['colon in the server name part', `@alice:${serverName}:8448`, 'server name'],
    ['DNS server name', '@alice:example.org', 'server name'],
    ['uppercase server name', `@alice:${serverName.toUpperCase()}`, 'server name'],
  ])('refuse %s with a reason', (_what, userId, reason) => {
    expect(() => parseUserId(userId)).toThrow(InvalidUserIdError);
    expect(() => parseUserId(userId)).toThrow(reason);
  });

  it('are refused for any localpart outside the grammar', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 70 }), (localpart) => {
        const valid = /^[a-z0-9._=/-]{1,64}$/.test(localpart);
        if (valid) expect(parseUserId(`@${localpart}:${serverName}`).localpart).toBe(localpart);
        else expect(() => formatUserId(localpart, serverName)).toThrow(InvalidUserIdError);
      }),
    );
  });
});

describe('PeerIds', () => {
  it('match libp2p for the same key, and a libp2p key from the same seed', async () => {
    for (let i = 0; i < 10; i++) {
      const secretKey = SecretKey.generate();
      const ours = peerIdFromPublicKey(secretKey.publicKey);
      expect(ours).toBe(libp2pPeerIdFromPublicKey(publicKeyFromRaw(secretKey.publicKey)).toString());
      const libp2pKey = await generateKeyPairFromSeed('Ed25519', secretKey.revealSeed());
      expect(ours).toBe(peerIdFromPrivateKey(libp2pKey).toString());
      expect(ours.startsWith('12D3KooW')).toBe(true);
      expect(publicKeyFromPeerId(ours)).toEqual(secretKey.publicKey);
      expect(peerIdFromString(ours).type).toBe('Ed25519');
    }
  });

  it.each([
    ['empty', ''],
    ['not base58', '12D3KooW0OIl'],
    ['a sha256 multihash (RSA-style)', 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'],
    ['too long', '12D3KooW' + 'A'.repeat(60)],
  ])('refuse %s', (_what, text) => {
    expect(() => publicKeyFromPeerId(text)).toThrow(InvalidPeerIdError);
    expect(isPeerId(text)).toBe(false);
  });

  it('refuse other key types and the CID form of a valid PeerId', async () => {
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString();
    expect(() => publicKeyFromPeerId(secp)).toThrow(InvalidPeerIdError);
    const cid = peerIdFromString(peerIdFromPublicKey(publicKey)).toCID().toString();
    expect(() => publicKeyFromPeerId(cid)).toThrow(InvalidPeerIdError);
  });

  it('refuse a truncated or altered PeerId', () => {
    const peerId = peerIdFromPublicKey(publicKey);
    expect(() => publicKeyFromPeerId(peerId.slice(0, -1))).toThrow(InvalidPeerIdError);
    const bytes = base58btc.baseDecode(peerId);
    bytes[3] = 0x02; // key type secp256k1
    expect(() => publicKeyFromPeerId(base58btc.baseEncode(bytes))).toThrow(InvalidPeerIdError);
  });
});

describe('PeerIds parsed once (the bounded PeerId key cache)', () => {
  // The PEER_ID_PREFIX of ids.ts, to build PeerIds around any 32 bytes.
  const prefix = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20);
  const peerIdOf = (key: Uint8Array) => base58btc.baseEncode(Uint8Array.from([...prefix, ...key]));

  it('checks a fresh key as a curve point once, then answers from the cache', () => {
    const peerId = peerIdOf(SecretKey.generate().publicKey);
    const before = publicKeyPointChecks();
    expect(isPeerId(peerId)).toBe(true);
    expect(publicKeyPointChecks()).toBe(before + 1);
    for (let i = 0; i < 5; i++) {
      expect(isPeerId(peerId)).toBe(true);
      expect(homeKeyId(peerId)).toBe(`ed25519:${peerId}`);
      expect(peerIdFromKeyId(`ed25519:${peerId}`)).toBe(peerId);
      publicKeyFromPeerId(peerId);
    }
    expect(publicKeyPointChecks()).toBe(before + 1);
  });

  it('hands out copies: a caller writing into the key it got cannot change the cached one', () => {
    const secretKey = SecretKey.generate();
    const peerId = peerIdFromPublicKey(secretKey.publicKey);
    publicKeyFromPeerId(peerId).fill(0);
    expect(publicKeyFromPeerId(peerId)).toEqual(secretKey.publicKey);
  });

  it('keeps no refused PeerId: a key off the curve is checked, and refused, every time', () => {
    const offCurve = new Uint8Array(32).fill(0xff);
    const peerId = peerIdOf(offCurve);
    for (let i = 0; i < 3; i++) {
      const before = publicKeyPointChecks();
      expect(() => publicKeyFromPeerId(peerId)).toThrow(InvalidPeerIdError);
      expect(isPeerId(peerId)).toBe(false);
      expect(publicKeyPointChecks()).toBe(before + 2);
    }
  });
});

describe('key ids', () => {
  it('name the root and homes', () => {
    const peerId = peerIdFromPublicKey(publicKey);
    expect(ROOT_KEY_ID).toBe('ed25519:root');
    expect(homeKeyId(peerId)).toBe(`ed25519:${peerId}`);
    expect(peerIdFromKeyId(homeKeyId(peerId))).toBe(peerId);
    expect(parseKeyId('ed25519:1')).toEqual({ algorithm: 'ed25519', version: '1' });
    expect(() => peerIdFromKeyId(ROOT_KEY_ID)).toThrow(InvalidPeerIdError);
    expect(() => homeKeyId('nope')).toThrow(InvalidPeerIdError);
  });

  it.each(['ed25519', 'curve25519:1', 'ed25519:', 'ed25519:a-b', 'ed25519:a:b', ''])('refuse %j', (keyId) => {
    expect(() => parseKeyId(keyId)).toThrow(InvalidKeyIdError);
  });
});
