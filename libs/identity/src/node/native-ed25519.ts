// Ed25519 through Node's crypto (OpenSSL): about 14 times faster than pure JS here (FINDINGS.md).
// KeyObjects are cached because importing a key costs nearly as much as a verification.
import type { KeyObject } from 'node:crypto';
import { secretBytes, type SecretKey } from '../secret-key.js';
import { nodeCrypto, type NodeCrypto } from './builtins.js';
import type { Ed25519Backend } from '../ed25519.js';

// RFC 8410 PKCS#8 prefix for an Ed25519 private key; the 32-byte seed follows.
const PKCS8_PREFIX = Uint8Array.of(
  0x30,
  0x2e,
  0x02,
  0x01,
  0x00,
  0x30,
  0x05,
  0x06,
  0x03,
  0x2b,
  0x65,
  0x70,
  0x04,
  0x22,
  0x04,
  0x20,
);
// Enough for every root and home key a busy server verifies against; bounded so hostile keys cannot grow it.
const PUBLIC_KEY_CACHE_SIZE = 1024;

/** Creates the native backend, or returns undefined when the runtime has no usable Ed25519 in node:crypto. */
export function createNativeEd25519(): Ed25519Backend | undefined {
  const crypto = nodeCrypto();
  if (crypto === undefined) return undefined;
  try {
    // Probe: an OpenSSL built without Ed25519 fails here, and the noble path is used instead.
    const der = new Uint8Array(PKCS8_PREFIX.length + 32);
    der.set(PKCS8_PREFIX);
    crypto.sign(
      null,
      new Uint8Array(1),
      crypto.createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' }),
    );
  } catch {
    return undefined;
  }
  return nativeBackend(crypto);
}

function nativeBackend(crypto: NodeCrypto): Ed25519Backend {
  const privateKeys = new WeakMap<SecretKey, KeyObject>();
  const publicKeys = new Map<string, KeyObject>();

  function privateKeyObject(secretKey: SecretKey): KeyObject {
    // Looked up every time so a destroyed key cannot keep signing through the cache.
    const seed = secretBytes(secretKey);
    let keyObject = privateKeys.get(secretKey);
    if (keyObject === undefined) {
      const der = new Uint8Array(PKCS8_PREFIX.length + seed.length);
      der.set(PKCS8_PREFIX);
      der.set(seed, PKCS8_PREFIX.length);
      keyObject = crypto.createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
      der.fill(0);
      privateKeys.set(secretKey, keyObject);
    }
    return keyObject;
  }

  function publicKeyObject(publicKey: Uint8Array): KeyObject {
    const x = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString('base64url');
    let keyObject = publicKeys.get(x);
    if (keyObject === undefined) {
      keyObject = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
      if (publicKeys.size >= PUBLIC_KEY_CACHE_SIZE) {
        const oldest = publicKeys.keys().next();
        if (oldest.done !== true) publicKeys.delete(oldest.value);
      }
      publicKeys.set(x, keyObject);
    }
    return keyObject;
  }

  return {
    name: 'native',
    sign(message, secretKey) {
      return Uint8Array.from(crypto.sign(null, message, privateKeyObject(secretKey)));
    },
    verify(signature, message, publicKey) {
      try {
        return crypto.verify(null, message, publicKeyObject(publicKey), signature);
      } catch {
        // OpenSSL refuses some malformed keys at import or use: that is a failed verification.
        return false;
      }
    },
    verifyAsync(signature, message, publicKey) {
      let key: KeyObject;
      try {
        key = publicKeyObject(publicKey);
      } catch {
        return Promise.resolve(false);
      }
      // With a callback, node:crypto verifies on libuv's thread pool.
      return new Promise((resolve) => {
        try {
          crypto.verify(null, message, key, signature, (error, valid) => resolve(error === null && valid));
        } catch {
          resolve(false);
        }
      });
    },
  };
}
