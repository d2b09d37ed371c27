// validatePdu against the PDU format of v10 and v11: required fields and types, size limits, canonical
// JSON integers, where `redacts` lives.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validatePdu } from './format.js';
import { pdu } from './testing/arbitraries.js';
import { TestRoom } from './testing/room.js';
import { LIMITS, type Pdu } from './types.js';

for (const version of ['10', '11'] as const) {
  describe(`room version ${version}`, () => {
    const room = TestRoom.create(version, '@alice:a');
    const message = room.event('@alice:a', 'm.room.message', { body: 'hi' });
    const refused = (json: unknown, code: string) =>
      expect(validatePdu(version, json)).toMatchObject({ ok: false, code });

    it('accepts events the room makes, returning the same object', () => {
      for (const event of room.events.values()) expect(validatePdu(version, event)).toEqual({ ok: true, pdu: event });
      expect(validatePdu(version, message)).toMatchObject({ ok: true });
    });
    it('keeps unknown top-level fields', () => {
      const extra = { ...message, org_example: { x: 1 } };
      expect(validatePdu(version, extra)).toEqual({ ok: true, pdu: extra });
    });
    it('refuses non-objects and non-canonical JSON (floats, unsafe integers)', () => {
      refused([], 'not_an_object');
      refused(null, 'not_an_object');
      refused({ ...message, content: { n: 1.5 } }, 'not_canonical_json');
      refused({ ...message, content: { n: 2 ** 53 } }, 'not_canonical_json');
      expect(validatePdu(version, { ...message, content: { n: 2 ** 53 - 1, m: -(2 ** 53 - 1) } })).toMatchObject({
        ok: true,
      });
    });
    it('refuses each missing required field', () => {
      for (const field of [
        'room_id',
        'sender',
        'type',
        'content',
        'origin_server_ts',
        'depth',
        'prev_events',
        'auth_events',
        'hashes',
        'signatures',
      ]) {
        const copy: Record<string, unknown> = { ...message };
        delete copy[field];
        refused(copy, 'missing_field');
      }
    });
    it('refuses wrong field types', () => {
      refused({ ...message, room_id: 5 }, 'invalid_field');
      refused({ ...message, room_id: 'r:a' }, 'invalid_field');
      refused({ ...message, sender: 'alice' }, 'invalid_field');
      refused({ ...message, content: [] }, 'invalid_field');
      refused({ ...message, depth: -1 }, 'invalid_field');
      refused({ ...message, origin_server_ts: '5' }, 'invalid_field');
      refused({ ...message, prev_events: '$x' }, 'invalid_field');
      refused({ ...message, auth_events: ['x'] }, 'invalid_field');
      refused({ ...message, hashes: {} }, 'invalid_field');
      refused({ ...message, signatures: { a: 'x' } }, 'invalid_field');
      refused({ ...message, unsigned: 1 }, 'invalid_field');
      refused({ ...message, state_key: 1 }, 'invalid_field');
    });
    it('refuses ids, type and state_key longer than 255 bytes (UTF-8, not characters)', () => {
      const long = 'é'.repeat(128); // 256 bytes
      refused({ ...message, type: long }, 'too_long');
      refused({ ...message, state_key: long }, 'too_long');
      refused({ ...message, room_id: `!${long}:a` }, 'too_long');
      refused({ ...message, sender: `@${'u'.repeat(253)}:a` }, 'too_long');
      expect(validatePdu(version, { ...message, sender: `@${'u'.repeat(252)}:a` })).toMatchObject({ ok: true });
      expect(validatePdu(version, { ...message, state_key: 'é'.repeat(127) })).toMatchObject({ ok: true });
    });
    it('refuses more prev_events and auth_events than the limits', () => {
      refused(
        { ...message, prev_events: Array.from({ length: LIMITS.prevEvents + 1 }, (_, i) => `$p${i}`) },
        'too_many_prev_events',
      );
      refused(
        { ...message, auth_events: Array.from({ length: LIMITS.authEvents + 1 }, (_, i) => `$a${i}`) },
        'too_many_auth_events',
      );
      expect(
        validatePdu(version, {
          ...message,
          prev_events: Array.from({ length: LIMITS.prevEvents }, (_, i) => `$p${i}`),
        }),
      ).toMatchObject({ ok: true });
    });
    it('refuses a PDU over 65536 bytes of canonical JSON, accepts one at the limit', () => {
      const size = (p: Pdu) => new TextEncoder().encode(JSON.stringify(p)).length;
      const padding = (p: Pdu, target: number) => ({
        ...p,
        content: { ...p.content, pad: 'x'.repeat(target - size({ ...p, content: { ...p.content, pad: '' } })) },
      });
      expect(validatePdu(version, padding(message, LIMITS.pduBytes))).toMatchObject({ ok: true });
      refused(padding(message, LIMITS.pduBytes + 1), 'too_large');
    });
    it('finds redacts where the version puts it', () => {
      const target = '$target';
      const redaction = room.event('@alice:a', 'm.room.redaction', {}, { redacts: target });
      expect(validatePdu(version, redaction)).toMatchObject({ ok: true });
      if (version === '10') {
        expect(redaction.redacts).toBe(target);
        const { redacts: _r, ...withoutRedacts } = redaction;
        refused(withoutRedacts, 'missing_field');
        refused({ ...redaction, redacts: 'x' }, 'invalid_field');
      } else {
        expect(redaction.content.redacts).toBe(target);
        expect(redaction.redacts).toBeUndefined();
        refused({ ...redaction, content: {}, redacts: target }, 'missing_field');
        refused({ ...redaction, content: { redacts: 5 } }, 'invalid_field');
      }
    });
  });
}

it('refuses room versions it does not implement', () => {
  expect(validatePdu('9' as never, {})).toMatchObject({ ok: false, code: 'unsupported_room_version' });
});

it('answers (never throws) for any JSON, and accepts generated PDUs with valid shapes', () => {
  fc.assert(
    fc.property(fc.anything(), (json) => {
      expect(typeof validatePdu('11', json).ok).toBe('boolean');
    }),
  );
  fc.assert(
    fc.property(pdu, (p) => {
      const result = validatePdu('10', p);
      if (!result.ok) expect(result.code).toMatch(/^(invalid_field|missing_field)$/);
    }),
  );
});
