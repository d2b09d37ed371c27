import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, type JsonObject } from './canonical-json.js';
import { nativeEd25519, nobleEd25519, type Ed25519Backend } from './ed25519.js';
import { decodeBase64, encodeBase64 } from './encoding.js';
import {
  CanonicalJsonError,
  InvalidBase64Error,
  InvalidKeyIdError,
  InvalidKeyLengthError,
  InvalidServerNameError,
  SignatureInvalidError,
  SignatureMissingError,
  WrongTypeError,
} from './errors.js';
import { generateKeyPair, keyPairFromSeed } from './keys.js';
import { signedBytes, signJson, signTyped, verifyJson, verifyTyped, type Signed } from './signing.js';
import { canonicalObject } from './testing/arbitraries.js';

const backends: Ed25519Backend[] = [nobleEd25519, ...(nativeEd25519 === undefined ? [] : [nativeEd25519])];
const alice = generateKeyPair();
const mallory = generateKeyPair();
const SERVER = 'a'.repeat(64);
const KEY = 'ed25519:root';
// Pure-JS verification costs ~1.5 ms; keep the property runs small enough for CI on 2 cores.
const runs = { numRuns: 60 };
// `signatures` must be an object of objects of strings; arbitrary values there are refused (tested below).
const signable = canonicalObject.map((o) => {
  const { signatures: _signatures, ...rest } = o;
  return rest as JsonObject;
});

function signatureOf(signed: Signed<object>): string {
  return signed.signatures[SERVER]![KEY]!;
}

describe.each(backends.map((b) => [b.name, b] as const))('signJson and verifyJson on %s', (_name, backend) => {
  const options = { backend };

  it('sign then verify holds for any canonical JSON object', () => {
    fc.assert(
      fc.property(signable, (object) => {
        const signed = signJson(object, SERVER, KEY, alice.secretKey, options);
        verifyJson(signed, SERVER, KEY, alice.publicKey, options);
      }),
      runs,
    );
  });

  it('fails when any byte of the signed content changes', () => {
    fc.assert(
      fc.property(signable, fc.nat(), fc.integer({ min: 1, max: 255 }), (object, at, delta) => {
        const signed = signJson(object, SERVER, KEY, alice.secretKey, options);
        const bytes = signedBytes(signed);
        const mutated = Uint8Array.from(bytes);
        const index = at % mutated.length;
        mutated[index] = (mutated[index]! + delta) % 256;
        let changed: JsonObject;
        try {
          const parsed: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(mutated));
          fc.pre(typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed));
          changed = parsed as JsonObject;
          // A change that decodes to the same canonical value (\u001f vs \u001F) signs the same bytes.
          fc.pre(canonicalJson(changed) !== canonicalJson(object));
        } catch (error) {
          if (error instanceof SyntaxError || error instanceof TypeError || error instanceof CanonicalJsonError) return;
          throw error;
        }
        const forged = { ...changed, signatures: signed.signatures };
        expect(() => verifyJson(forged, SERVER, KEY, alice.publicKey, options)).toThrow(SignatureInvalidError);
      }),
      runs,
    );
  });

  it('fails when any byte of the signature, the key, the key id or the server name changes', () => {
    fc.assert(
      fc.property(signable, fc.nat(63), fc.integer({ min: 1, max: 255 }), (object, at, delta) => {
        const signed = signJson(object, SERVER, KEY, alice.secretKey, options);
        const signature = decodeBase64(signatureOf(signed));
        signature[at] = (signature[at]! + delta) % 256;
        const badSignature = { ...signed, signatures: { [SERVER]: { [KEY]: encodeBase64(signature) } } };
        expect(() => verifyJson(badSignature, SERVER, KEY, alice.publicKey, options)).toThrow(SignatureInvalidError);
        expect(() => verifyJson(signed, SERVER, KEY, mallory.publicKey, options)).toThrow(SignatureInvalidError);
        // The signature stays where it was; looking under another key id or server finds nothing.
        expect(() => verifyJson(signed, SERVER, 'ed25519:other', alice.publicKey, options)).toThrow(
          SignatureMissingError,
        );
        expect(() => verifyJson(signed, 'b'.repeat(64), KEY, alice.publicKey, options)).toThrow(SignatureMissingError);
        // Moved under another key id or server name, it does not verify for the wrong key.
        const moved = { ...signed, signatures: { [SERVER]: { 'ed25519:other': signatureOf(signed) } } };
        expect(() => verifyJson(moved, SERVER, 'ed25519:other', mallory.publicKey, options)).toThrow(
          SignatureInvalidError,
        );
      }),
      { numRuns: 20 },
    );
  });
});

describe('native and noble agree', () => {
  it.skipIf(nativeEd25519 === undefined)(
    'byte for byte on signatures, and on verification of altered signatures',
    () => {
      const native = nativeEd25519!;
      fc.assert(
        fc.property(
          fc.uint8Array({ minLength: 32, maxLength: 32 }),
          fc.uint8Array({ maxLength: 200 }),
          fc.nat(63),
          fc.integer({ min: 1, max: 255 }),
          (seed, message, at, delta) => {
            const { secretKey, publicKey } = keyPairFromSeed(seed);
            const a = native.sign(message, secretKey);
            const b = nobleEd25519.sign(message, secretKey);
            expect(a).toEqual(b);
            expect(native.verify(a, message, publicKey)).toBe(true);
            expect(nobleEd25519.verify(a, message, publicKey)).toBe(true);
            const altered = Uint8Array.from(a);
            altered[at] = (altered[at]! + delta) % 256;
            expect(native.verify(altered, message, publicKey)).toBe(nobleEd25519.verify(altered, message, publicKey));
          },
        ),
        runs,
      );
    },
  );

  it.skipIf(nativeEd25519 === undefined)('on non-canonical S (S + L) and the identity public key', () => {
    const native = nativeEd25519!;
    const message = new TextEncoder().encode('malleable');
    const { secretKey, publicKey } = generateKeyPair();
    const signature = native.sign(message, secretKey);
    // Add the group order L to S: the same point equation holds, RFC 8032 requires refusing it.
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i]!);
    s += L;
    const malleated = Uint8Array.from(signature);
    for (let i = 32; i < 64; i++) {
      malleated[i] = Number(s & 0xffn);
      s >>= 8n;
    }
    expect(native.verify(malleated, message, publicKey)).toBe(false);
    expect(nobleEd25519.verify(malleated, message, publicKey)).toBe(false);
    const identity = new Uint8Array(32);
    identity[0] = 1;
    expect(native.verify(signature, message, identity)).toBe(nobleEd25519.verify(signature, message, identity));
  });
});

describe('signJson details', () => {
  it('leaves signatures and unsigned out of what is signed, and keeps both', () => {
    const object = { a: 1, unsigned: { age: 5 }, signatures: { 'other.example': { 'ed25519:x': 'sig' } } };
    const signed = signJson(object, SERVER, KEY, alice.secretKey);
    expect(signed.unsigned).toEqual({ age: 5 });
    expect(signed.signatures['other.example']).toEqual({ 'ed25519:x': 'sig' });
    expect(object.signatures).toEqual({ 'other.example': { 'ed25519:x': 'sig' } });
    const plain = signJson({ a: 1 }, SERVER, KEY, alice.secretKey);
    expect(signatureOf(signed)).toBe(signatureOf(plain));
    verifyJson({ ...signed, unsigned: { age: 99 } }, SERVER, KEY, alice.publicKey);
  });

  it('adds a second signer without disturbing the first', () => {
    const once = signJson({ a: 1 }, SERVER, KEY, alice.secretKey);
    const twice = signJson(once, SERVER, 'ed25519:second', mallory.secretKey);
    verifyJson(twice, SERVER, KEY, alice.publicKey);
    verifyJson(twice, SERVER, 'ed25519:second', mallory.publicKey);
  });

  it('writes unpadded standard base64 of 64 bytes', () => {
    const signature = signatureOf(signJson({ a: 1 }, SERVER, KEY, alice.secretKey));
    expect(signature).toMatch(/^[A-Za-z0-9+/]{86}$/);
  });

  it('refuses what is not canonical JSON, and bad key ids', () => {
    expect(() => signJson({ a: 0.5 }, SERVER, KEY, alice.secretKey)).toThrow(CanonicalJsonError);
    expect(() => signJson({ a: 1 }, SERVER, 'rsa:1', alice.secretKey)).toThrow(InvalidKeyIdError);
    expect(() => signJson([1] as unknown as object, SERVER, KEY, alice.secretKey)).toThrow(CanonicalJsonError);
    expect(() => signJson({ a: 1 }, '', KEY, alice.secretKey)).toThrow(InvalidServerNameError);
  });
});

describe('verifyJson errors', () => {
  const signed = signJson({ a: 1 }, SERVER, KEY, alice.secretKey);

  it('missing signature', () => {
    expect(() => verifyJson({ a: 1 }, SERVER, KEY, alice.publicKey)).toThrow(SignatureMissingError);
    expect(() => verifyJson(signed, '__proto__', KEY, alice.publicKey)).toThrow(SignatureMissingError);
    expect(() => verifyJson(signed, SERVER, 'ed25519:constructor', alice.publicKey)).toThrow(SignatureMissingError);
  });

  it('malformed base64', () => {
    const bad = { ...signed, signatures: { [SERVER]: { [KEY]: signatureOf(signed).replace(/.$/, '!') } } };
    expect(() => verifyJson(bad, SERVER, KEY, alice.publicKey)).toThrow(InvalidBase64Error);
  });

  it('wrong signature length', () => {
    const short = { ...signed, signatures: { [SERVER]: { [KEY]: signatureOf(signed).slice(0, 84) } } };
    expect(() => verifyJson(short, SERVER, KEY, alice.publicKey)).toThrow(SignatureInvalidError);
  });

  it('wrong public key length', () => {
    expect(() => verifyJson(signed, SERVER, KEY, new Uint8Array(31))).toThrow(InvalidKeyLengthError);
  });

  it('malformed signatures object', () => {
    expect(() => verifyJson({ a: 1, signatures: [] }, SERVER, KEY, alice.publicKey)).toThrow(CanonicalJsonError);
    expect(() => verifyJson({ a: 1, signatures: { [SERVER]: { [KEY]: 5 } } }, SERVER, KEY, alice.publicKey)).toThrow(
      CanonicalJsonError,
    );
  });
});

describe('typed signing', () => {
  const op = signTyped({ type: 'polyhome.op', seq: 1 }, 'polyhome.op', SERVER, KEY, alice.secretKey);

  it('verifies as its own type', () => {
    verifyTyped(op, 'polyhome.op', SERVER, KEY, alice.publicKey);
  });

  it('never verifies as another type', () => {
    expect(() => verifyTyped(op, 'polyhome.account', SERVER, KEY, alice.publicKey)).toThrow(WrongTypeError);
    // Relabelling changes the signed bytes, so it fails the signature instead.
    const relabelled = { ...op, type: 'polyhome.account' };
    expect(() => verifyTyped(relabelled, 'polyhome.account', SERVER, KEY, alice.publicKey)).toThrow(
      SignatureInvalidError,
    );
    expect(() => verifyTyped({ seq: 1 }, 'polyhome.op', SERVER, KEY, alice.publicKey)).toThrow(WrongTypeError);
  });

  it('refuses to sign an object whose type is not the one named', () => {
    expect(() => signTyped({ type: 'polyhome.op' }, 'polyhome.account', SERVER, KEY, alice.secretKey)).toThrow(
      WrongTypeError,
    );
  });
});
