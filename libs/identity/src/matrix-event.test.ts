import { describe, expect, it } from 'vitest';
import { UnsupportedRoomVersionError, SignatureInvalidError } from './errors.js';
import { generateKeyPair } from './keys.js';
import {
  checkContentHash,
  hashAndSignEvent,
  redactEvent,
  verifyEventSignature,
  type RedactionRoomVersion,
} from './matrix-event.js';

describe('redaction (room versions 1 to 5)', () => {
  it('keeps only the listed top-level keys and drops unsigned', () => {
    const redacted = redactEvent({
      event_id: '$e',
      type: 'm.room.message',
      room_id: '!r',
      sender: '@u',
      content: { body: 'secret', msgtype: 'm.text' },
      unsigned: { age: 1 },
      custom: 1,
      origin: 'o',
      membership: 'join',
      prev_state: [],
    });
    expect(redacted).toEqual({
      event_id: '$e',
      type: 'm.room.message',
      room_id: '!r',
      sender: '@u',
      content: {},
      origin: 'o',
      membership: 'join',
      prev_state: [],
    });
  });

  it.each([
    ['m.room.member', { membership: 'join', displayname: 'x' }, { membership: 'join' }],
    ['m.room.create', { creator: '@u', 'm.federate': false }, { creator: '@u' }],
    ['m.room.join_rules', { join_rule: 'public', allow: [] }, { join_rule: 'public' }],
    ['m.room.aliases', { aliases: ['#a'], x: 1 }, { aliases: ['#a'] }],
    ['m.room.history_visibility', { history_visibility: 'shared', x: 1 }, { history_visibility: 'shared' }],
    [
      'm.room.power_levels',
      {
        ban: 50,
        events: {},
        events_default: 0,
        kick: 50,
        redact: 50,
        state_default: 50,
        users: {},
        users_default: 0,
        invite: 0,
        notifications: {},
      },
      { ban: 50, events: {}, events_default: 0, kick: 50, redact: 50, state_default: 50, users: {}, users_default: 0 },
    ],
  ])('keeps the %s content keys', (type, content, kept) => {
    expect(redactEvent({ type, content }).content).toEqual(kept);
  });

  it('refuses room versions with other rules', () => {
    expect(() => redactEvent({}, '11' as RedactionRoomVersion)).toThrow(UnsupportedRoomVersionError);
  });

  it('signatures survive redaction; content changes break the hash, not the signature', () => {
    const { secretKey, publicKey } = generateKeyPair();
    const event = hashAndSignEvent(
      { type: 'm.room.message', content: { body: 'hi' }, room_id: '!r' },
      'srv',
      'ed25519:1',
      secretKey,
    );
    verifyEventSignature(redactEvent(event), 'srv', 'ed25519:1', publicKey);
    const edited = { ...event, content: { body: 'bye' } };
    verifyEventSignature(edited, 'srv', 'ed25519:1', publicKey);
    expect(checkContentHash(edited)).toBe(false);
    expect(() => verifyEventSignature({ ...event, room_id: '!other' }, 'srv', 'ed25519:1', publicKey)).toThrow(
      SignatureInvalidError,
    );
  });
});
