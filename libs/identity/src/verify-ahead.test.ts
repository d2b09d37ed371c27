import { describe, expect, it } from 'vitest';
import { nativeEd25519, signBytes, verifyBytes, type Ed25519Backend } from './ed25519.js';
import { generateKeyPair } from './keys.js';
import { SignatureMemo, signatureMemo } from './signature-memo.js';
import { verifyAhead } from './verify-ahead.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function signed(message: string) {
  const pair = generateKeyPair();
  const bytes = text(message);
  return { signature: signBytes(bytes, pair.secretKey), message: bytes, publicKey: pair.publicKey };
}

describe('verifyAhead and the signature memo', () => {
  it('remembers signatures that verify and nothing else', async () => {
    const memo = new SignatureMemo();
    const good = signed('a message');
    const bad = { ...signed('another'), message: text('altered') };
    expect(await verifyAhead([good, bad], { memo })).toBe(1);
    expect(memo.size).toBe(1);
    expect(memo.has(good)).toBe(true);
    expect(memo.has(bad)).toBe(false);
  });

  it('says yes only to the exact signature, message and key that verified', async () => {
    const memo = new SignatureMemo();
    const good = signed('the message');
    await verifyAhead([good], { memo });
    expect(memo.has({ ...good, message: text('the messagf') })).toBe(false);
    expect(memo.has({ ...good, message: text('the message ') })).toBe(false);
    expect(memo.has({ ...good, publicKey: generateKeyPair().publicKey })).toBe(false);
    const other = Uint8Array.from(good.signature);
    other[63] = other[63]! ^ 1;
    expect(memo.has({ ...good, signature: other })).toBe(false);
    expect(memo.has({ ...good, message: Uint8Array.from(good.message) })).toBe(true);
  });

  it('keeps copies: a caller reusing its buffers cannot change what was remembered', async () => {
    const memo = new SignatureMemo();
    const good = signed('reused buffer');
    await verifyAhead([good], { memo });
    const forged = good.message;
    forged[0] = 0x58;
    expect(memo.has({ ...good, message: forged })).toBe(false);
  });

  it('verifyBytes on the default backend answers from the process memo, and still refuses anything else', async () => {
    signatureMemo.clear();
    const good = signed('memo path');
    await verifyAhead([good]);
    const hits = signatureMemo.hits;
    expect(verifyBytes(good.signature, good.message, good.publicKey)).toBe(true);
    expect(signatureMemo.hits).toBe(hits + 1);
    expect(verifyBytes(good.signature, text('memo patH'), good.publicKey)).toBe(false);
    // A pinned backend always verifies for itself.
    expect(verifyBytes(good.signature, good.message, good.publicKey, { backend: nativeEd25519! })).toBe(true);
    expect(signatureMemo.hits).toBe(hits + 1);
    signatureMemo.clear();
  });

  it('verifies on the thread pool when the backend can, and falls back to verify when it cannot', async () => {
    const calls: string[] = [];
    const syncOnly: Ed25519Backend = {
      name: 'native',
      sign: nativeEd25519!.sign,
      verify: (s, m, k) => {
        calls.push('verify');
        return nativeEd25519!.verify(s, m, k);
      },
    };
    const memo = new SignatureMemo();
    expect(await verifyAhead([signed('x'), signed('y')], { memo, backend: syncOnly })).toBe(2);
    expect(calls).toEqual(['verify', 'verify']);
    expect(await nativeEd25519!.verifyAsync!(signed('z').signature, text('z'), generateKeyPair().publicKey)).toBe(
      false,
    );
  });

  it('refuses malformed checks without throwing', async () => {
    const memo = new SignatureMemo();
    const good = signed('shape');
    const checks = [
      { ...good, signature: good.signature.subarray(0, 63) },
      { ...good, publicKey: good.publicKey.subarray(0, 31) },
    ];
    expect(await verifyAhead(checks, { memo })).toBe(0);
    expect(memo.size).toBe(0);
  });

  it('stays within its bounds, dropping the oldest first', async () => {
    const memo = new SignatureMemo({ entries: 3, bytes: 1000 });
    const checks = ['a', 'b', 'c', 'd'].map((m) => signed(m));
    // One at a time: checks of one call finish on the thread pool in any order.
    for (const check of checks) await verifyAhead([check], { memo });
    expect(memo.size).toBe(3);
    expect(memo.has(checks[0]!)).toBe(false);
    expect(memo.has(checks[3]!)).toBe(true);
    const big = [signed('x'.repeat(600)), signed('y'.repeat(600))];
    for (const check of big) await verifyAhead([check], { memo });
    expect(memo.has(big[1]!)).toBe(true);
    expect(memo.has(big[0]!)).toBe(false);
    expect(memo.size).toBe(1);
  });
});
