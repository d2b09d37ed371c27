// Signing reproduces the spec's signed-event vectors where the v10 redaction equals the v1 one they were
// made with; verification refuses what the spec says to refuse.
import { generateKeyPair } from '@polyhome/identity';
import { describe, expect, it } from 'vitest';
import { checkContentHash } from './hashes.js';
import { redactPdu } from './redaction.js';
import { addSignature, requiredSigners, signPdu, verifyPduSignatures, type UnsignedPdu } from './signing.js';
import { TEST_KEY_ID, TestRoom } from './testing/room.js';
import { SPEC_EVENT_VECTORS, SPEC_IDENTITY, SPEC_KEY } from './testing/spec-vectors.js';
import type { Pdu } from './types.js';

describe('signPdu against the spec vectors', () => {
  it.each(SPEC_EVENT_VECTORS)('signs the $name exactly as the spec (v10 redaction keeps what v1 kept)', (vector) => {
    const signed = signPdu('10', vector.event as UnsignedPdu, SPEC_IDENTITY);
    expect(signed.hashes).toEqual({ sha256: vector.sha256 });
    expect(signed.signatures).toEqual({ domain: { 'ed25519:1': vector.signature } });
    expect(signed.unsigned).toEqual({ age_ts: 1000000 });
    expect(signed.content).toEqual(vector.event.content);
    expect(verifyPduSignatures('10', signed, () => SPEC_KEY.publicKey)).toEqual({ ok: true });
  });
});

describe('verifyPduSignatures', () => {
  for (const version of ['10', '11'] as const) {
    describe(`room version ${version}`, () => {
      const room = TestRoom.create(version, '@alice:a');
      const message = room.event('@alice:a', 'm.room.message', { body: 'hi' });

      it('accepts a signed event, after redaction too, and the hash check passes', () => {
        expect(verifyPduSignatures(version, message, room.resolveKey)).toEqual({ ok: true });
        expect(verifyPduSignatures(version, redactPdu(version, message) as Pdu, room.resolveKey)).toEqual({ ok: true });
        expect(checkContentHash(message)).toEqual({ ok: true });
      });
      it('does not care about unsigned; refuses a change to a kept field', () => {
        expect(verifyPduSignatures(version, { ...message, unsigned: { age: 5 } }, room.resolveKey)).toEqual({
          ok: true,
        });
        expect(verifyPduSignatures(version, { ...message, depth: message.depth + 1 }, room.resolveKey)).toMatchObject({
          ok: false,
          code: 'signature_invalid',
        });
      });
      it('a content change keeps the signature valid but fails the hash check (the spec says: redact)', () => {
        const changed = { ...message, content: { body: 'forged' } };
        expect(verifyPduSignatures(version, changed, room.resolveKey)).toEqual({ ok: true });
        expect(checkContentHash(changed)).toMatchObject({ ok: false, code: 'content_hash_mismatch' });
      });
      it('refuses unknown keys and missing signatures with a reason', () => {
        expect(verifyPduSignatures(version, message, () => undefined)).toMatchObject({
          ok: false,
          code: 'unknown_key',
        });
        expect(verifyPduSignatures(version, { ...message, signatures: {} }, room.resolveKey)).toMatchObject({
          ok: false,
          code: 'signature_missing',
        });
        const other = generateKeyPair();
        expect(verifyPduSignatures(version, message, () => other.publicKey)).toMatchObject({
          ok: false,
          code: 'signature_invalid',
        });
      });
      it('requires the authorising server to sign a restricted join', () => {
        const join = room.event(
          '@dave:d',
          'm.room.member',
          { membership: 'join', join_authorised_via_users_server: '@alice:a' },
          { stateKey: '@dave:d' },
        );
        expect(requiredSigners(version, join)).toEqual(['d', 'a']);
        expect(verifyPduSignatures(version, join, room.resolveKey)).toMatchObject({
          ok: false,
          code: 'signature_missing',
        });
        const both = addSignature(version, join, {
          serverName: 'a',
          keyId: TEST_KEY_ID,
          secretKey: room.keyOf('a').secretKey,
        });
        expect(verifyPduSignatures(version, both, room.resolveKey)).toEqual({ ok: true });
        expect(Object.keys(both.signatures).sort()).toEqual(['a', 'd']);
      });
      it('lets the resolver decide which key ids exist (polyhome names: 64-hex server, ed25519:root)', () => {
        const server = 'ab'.repeat(32);
        const key = generateKeyPair();
        const template = { ...message, sender: `@u:${server}` } as Record<string, unknown>;
        delete template.hashes;
        delete template.signatures;
        const signed = signPdu(version, template as UnsignedPdu, {
          serverName: server,
          keyId: 'ed25519:root',
          secretKey: key.secretKey,
        });
        expect(
          verifyPduSignatures(version, signed, (s, id) =>
            s === server && id === 'ed25519:root' ? key.publicKey : undefined,
          ),
        ).toEqual({ ok: true });
      });
    });
  }
});
