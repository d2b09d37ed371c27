import { describe, expect, it } from 'vitest';
import { OpRejectedError } from './errors.js';
import { OP_KINDS } from './kinds.js';
import {
  compareVersionIds,
  isBetterRoomKey,
  parseVersionId,
  roomKeyKey,
  roomKeyPrefix,
  validateRoomKeyBody,
  validateRoomKeyDeleteBody,
  validateRoomKeyVersionBody,
} from './room-keys.js';

const VERSION = '3-0a1b2c3d';
const ROOM = '!room:example';

function keyBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: VERSION,
    room_id: ROOM,
    session_id: 'sess',
    first_message_index: 0,
    forwarded_count: 0,
    is_verified: false,
    session_data_json: '{"ciphertext":"c","ephemeral":"e","mac":"m"}',
    ...overrides,
  };
}

describe('key backup op kinds', () => {
  it('orders version ids by counter, then home tag, whatever their text order', () => {
    expect(parseVersionId('12-00000000')).toEqual({ n: 12, tag: '00000000' });
    for (const bad of ['0-00000000', '01-00000000', '1-0000000', '1-ABCDEF00', '1', 'x-00000000', '']) {
      expect(parseVersionId(bad)).toBeUndefined();
    }
    const ids = ['10-00000000', '9-ffffffff', '10-0000000f', '2-00000001'];
    expect([...ids].sort(compareVersionIds)).toEqual(['2-00000001', '9-ffffffff', '10-00000000', '10-0000000f']);
  });

  it('applies the spec replacement rule: verified, then lower first index, then fewer forwards', () => {
    const key = (is_verified: boolean, first_message_index: number, forwarded_count: number) => ({
      is_verified,
      first_message_index,
      forwarded_count,
    });
    expect(isBetterRoomKey(key(true, 9, 9), key(false, 0, 0))).toBe(true);
    expect(isBetterRoomKey(key(false, 0, 0), key(true, 9, 9))).toBe(false);
    expect(isBetterRoomKey(key(false, 1, 9), key(false, 2, 0))).toBe(true);
    expect(isBetterRoomKey(key(false, 2, 0), key(false, 1, 9))).toBe(false);
    expect(isBetterRoomKey(key(false, 2, 0), key(false, 2, 1))).toBe(true);
    expect(isBetterRoomKey(key(false, 2, 1), key(false, 2, 1))).toBe(false);
  });

  it('reads keys of a version or room by a prefix no other version or room shares', () => {
    const key = roomKeyKey(VERSION, ROOM, 'sess');
    expect(key.startsWith(roomKeyPrefix(VERSION))).toBe(true);
    expect(key.startsWith(roomKeyPrefix(VERSION, ROOM))).toBe(true);
    expect(roomKeyKey('3-0a1b2c3d0', ROOM, 's').startsWith(roomKeyPrefix(VERSION))).toBe(false);
    expect(roomKeyKey(VERSION, `${ROOM}x`, 's').startsWith(roomKeyPrefix(VERSION, ROOM))).toBe(false);
  });

  it('accepts well-formed bodies and refuses keys and bodies that do not match', () => {
    const key = roomKeyKey(VERSION, ROOM, 'sess');
    expect(validateRoomKeyBody(keyBody(), key, undefined)).toEqual(keyBody());
    const refused: Array<[Record<string, unknown>, string]> = [
      [keyBody({ session_id: 'other' }), key],
      [keyBody({ first_message_index: -1 }), key],
      [keyBody({ forwarded_count: 1.5 }), key],
      [keyBody({ is_verified: 'yes' }), key],
      [keyBody({ session_data_json: '[1]' }), key],
      [keyBody({ session_data_json: 'not json' }), key],
      [{ ...keyBody(), extra: 1 }, key],
      [keyBody({ version: 'v1' }), roomKeyKey('v1', ROOM, 'sess')],
      [keyBody({ room_id: 'room' }), roomKeyKey(VERSION, 'room', 'sess')],
      [keyBody(), `[${JSON.stringify(VERSION)}, "${ROOM}", "sess"]`],
    ];
    for (const [body, k] of refused) expect(() => validateRoomKeyBody(body, k, undefined)).toThrow(OpRejectedError);
    expect(() => validateRoomKeyDeleteBody({}, 'not a key', undefined)).toThrow(OpRejectedError);
    expect(validateRoomKeyDeleteBody({}, key, undefined)).toEqual({});
    const version = { algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2', auth_data_json: '{"public_key":"k"}' };
    expect(validateRoomKeyVersionBody(version, VERSION, undefined)).toEqual(version);
    expect(() => validateRoomKeyVersionBody(version, '3', undefined)).toThrow(OpRejectedError);
    expect(() => validateRoomKeyVersionBody({ ...version, algorithm: '' }, VERSION, undefined)).toThrow(
      OpRejectedError,
    );
    expect(() => validateRoomKeyVersionBody({ algorithm: 'a' }, VERSION, undefined)).toThrow(OpRejectedError);
  });

  it('marks both namespaces lazy', () => {
    expect(OP_KINDS['room_keys.key.put'].lazy).toBe(true);
    expect(OP_KINDS['room_keys.version.delete'].lazy).toBe(true);
  });
});
