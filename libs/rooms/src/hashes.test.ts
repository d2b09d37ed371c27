// Content hashes against the spec's event vectors (appendix "Cryptographic test vectors"), event ids
// re-derived independently with node:crypto, and the properties the spec promises of reference hashes.
import { createHash } from 'node:crypto';
import { canonicalJson } from '@polyhome/identity';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkContentHash, contentHashOf, eventIdOf } from './hashes.js';
import { redactPdu } from './redaction.js';
import { pdu } from './testing/arbitraries.js';
import { SPEC_EVENT_VECTORS } from './testing/spec-vectors.js';
import type { JsonObject, Pdu } from './types.js';

const [MINIMAL, MESSAGE] = SPEC_EVENT_VECTORS;
const SPEC_MINIMAL = MINIMAL!.event;
const SPEC_MESSAGE = MESSAGE!.event;

describe('content hash', () => {
  it('reproduces the spec vectors', () => {
    for (const vector of SPEC_EVENT_VECTORS) {
      // The spec prints the events with empty `signatures` and `hashes`; neither is hashed.
      expect(contentHashOf(vector.event)).toBe(vector.sha256);
      expect(contentHashOf({ ...vector.event, signatures: {}, hashes: {} })).toBe(vector.sha256);
    }
  });
  it('checkContentHash accepts the right hash and says to redact on a wrong one', () => {
    const good = { ...SPEC_MESSAGE, hashes: { sha256: MESSAGE!.sha256 } };
    expect(checkContentHash(good)).toEqual({ ok: true });
    expect(checkContentHash({ ...good, content: { body: 'changed' } })).toMatchObject({
      ok: false,
      code: 'content_hash_mismatch',
    });
    expect(checkContentHash(SPEC_MESSAGE)).toMatchObject({ ok: false, code: 'content_hash_missing' });
    expect(checkContentHash({ ...good, content: { n: 1.5 } })).toMatchObject({ ok: false, code: 'not_canonical_json' });
  });
  it('ignores unsigned and signatures, covers everything else', () => {
    fc.assert(
      fc.property(pdu, fc.string({ maxLength: 5 }), (p, extra) => {
        const hash = contentHashOf(p);
        expect(contentHashOf({ ...p, unsigned: { extra }, signatures: { z: { 'ed25519:z': extra } } })).toBe(hash);
        expect(contentHashOf({ ...p, content: { ...p.content, __added: extra } })).not.toBe(hash);
      }),
    );
  });
});

/** The reference hash as the spec words it, computed without hashes.ts: redact, drop signatures and unsigned, sha256, URL-safe base64. */
function independentEventId(version: '10' | '11', event: JsonObject): string {
  const { signatures: _s, unsigned: _u, ...rest } = redactPdu(version, event);
  const digest = createHash('sha256').update(canonicalJson(rest), 'utf8').digest('base64url');
  return '$' + digest;
}

describe('event id', () => {
  it('is $ and the URL-safe unpadded sha256 of the redacted event', () => {
    for (const version of ['10', '11'] as const) {
      const id = eventIdOf(version, SPEC_MINIMAL);
      expect(id).toMatch(/^\$[A-Za-z0-9_-]{43}$/);
      expect(id).toBe(independentEventId(version, SPEC_MINIMAL));
    }
    // v11 drops `origin` before hashing, v10 keeps it: the same JSON has two ids.
    expect(eventIdOf('10', SPEC_MINIMAL)).not.toBe(eventIdOf('11', SPEC_MINIMAL));
    const { origin: _o, ...withoutOrigin } = SPEC_MINIMAL;
    expect(eventIdOf('10', withoutOrigin)).toBe(eventIdOf('11', withoutOrigin));
  });
  it('matches the independent derivation for any event', () => {
    fc.assert(
      fc.property(pdu, fc.constantFrom('10' as const, '11' as const), (p, v) => {
        expect(eventIdOf(v, p)).toBe(independentEventId(v, p));
      }),
    );
  });
  it('is stable under unsigned, signatures and redaction; changes with the hashes', () => {
    fc.assert(
      fc.property(pdu, fc.constantFrom('10' as const, '11' as const), fc.string({ maxLength: 5 }), (p, v, s) => {
        const id = eventIdOf(v, p);
        expect(eventIdOf(v, { ...p, unsigned: { s } })).toBe(id);
        expect(eventIdOf(v, { ...p, signatures: { b: { 'ed25519:b': s } } })).toBe(id);
        expect(eventIdOf(v, redactPdu(v, p))).toBe(id);
        expect(eventIdOf(v, { ...p, hashes: { sha256: p.hashes.sha256 + 'x' } } as Pdu)).not.toBe(id);
      }),
    );
  });
  it('changes with a kept field', () => {
    fc.assert(
      fc.property(pdu, fc.constantFrom('10' as const, '11' as const), (p, v) => {
        expect(eventIdOf(v, { ...p, depth: p.depth + 1 })).not.toBe(eventIdOf(v, p));
      }),
    );
  });
});
