import { describe, expect, it } from 'vitest';
import { MatrixError } from '../common/errors.js';
import { parseSyncPosition, parseSyncToken, syncToken } from '../sync/sync-token.js';
import { toClientEvent } from './client-events.js';
import { eventPasses, parseSyncFilter, roomPasses, timelineLimitOf } from './room-filters.js';
import {
  MAX_CONTENT_BYTES,
  checkKnownContent,
  parseContent,
  parseCreateRoom,
  parseDirection,
  parseEventId,
  parseEventType,
  parseLimit,
  parseRoomId,
  parseRoomIdOrAlias,
  parseTargetedMembership,
  parseTxnId,
} from './room-requests.js';
import type { RoomEventView } from './rooms-port.js';

/** The errcode a call throws (fails the test when it throws something else or nothing). */
function errcodeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof MatrixError) return err.errcode;
    throw err;
  }
  throw new Error('expected a MatrixError');
}

describe('POST /createRoom body', () => {
  it('parses every field the spec lists into the port request', () => {
    const request = parseCreateRoom({
      preset: 'private_chat',
      visibility: 'private',
      room_version: '11',
      name: 'Kitchen',
      topic: 'Food',
      invite: ['@bob:b.example', '@bob:b.example', '@carol:c.example'],
      is_direct: true,
      creation_content: { 'm.federate': false },
      initial_state: [{ type: 'm.room.guest_access', content: { guest_access: 'forbidden' } }],
      power_level_content_override: { users: { '@bob:b.example': 50 }, kick: 80 },
      extra_field_clients_send: 1,
    });
    expect(request).toEqual({
      preset: 'private_chat',
      visibility: 'private',
      roomVersion: '11',
      name: 'Kitchen',
      topic: 'Food',
      invite: ['@bob:b.example', '@carol:c.example'],
      isDirect: true,
      creationContent: { 'm.federate': false },
      initialState: [{ type: 'm.room.guest_access', stateKey: '', content: { guest_access: 'forbidden' } }],
      powerLevelOverride: { users: { '@bob:b.example': 50 }, kick: 80 },
    });
  });

  it('takes an empty body as a private room with defaults', () => {
    expect(parseCreateRoom(undefined)).toEqual({ invite: [], isDirect: false, initialState: [] });
  });

  it('refuses bad values with the spec codes', () => {
    expect(errcodeOf(() => parseCreateRoom([]))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseCreateRoom({ room_version: '5' }))).toBe('M_UNSUPPORTED_ROOM_VERSION');
    expect(errcodeOf(() => parseCreateRoom({ preset: 'open' }))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseCreateRoom({ visibility: 'world' }))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseCreateRoom({ invite: ['bob'] }))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseCreateRoom({ invite: '@bob:b' }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseCreateRoom({ is_direct: 'yes' }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseCreateRoom({ name: 5 }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseCreateRoom({ creation_content: [] }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseCreateRoom({ power_level_content_override: { kick: 'high' } }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseCreateRoom({ room_alias_name: 'kitchen' }))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseCreateRoom({ invite_3pid: [{ medium: 'email' }] }))).toBe('M_INVALID_PARAM');
  });

  it('refuses initial_state that cannot be state of a new room', () => {
    expect(errcodeOf(() => parseCreateRoom({ initial_state: [{ type: 'm.room.create', content: {} }] }))).toBe(
      'M_INVALID_ROOM_STATE',
    );
    expect(
      errcodeOf(() =>
        parseCreateRoom({
          initial_state: [{ type: 'm.room.member', state_key: '@a:b', content: { membership: 'join' } }],
        }),
      ),
    ).toBe('M_INVALID_ROOM_STATE');
    expect(
      errcodeOf(() =>
        parseCreateRoom({
          initial_state: [{ type: 'm.room.history_visibility', content: { history_visibility: 'x' } }],
        }),
      ),
    ).toBe('M_INVALID_ROOM_STATE');
    expect(errcodeOf(() => parseCreateRoom({ initial_state: [{ type: 'x.y', content: 'text' }] }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseCreateRoom({ initial_state: [{ type: 'has space', content: {} }] }))).toBe(
      'M_INVALID_PARAM',
    );
  });
});

describe('path parameters and bodies of room events', () => {
  it('accepts identifiers of the grammar and refuses others', () => {
    expect(parseRoomId('!abc:home.example')).toBe('!abc:home.example');
    expect(errcodeOf(() => parseRoomId('abc:home.example'))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseRoomId('!abc'))).toBe('M_INVALID_PARAM');
    expect(parseEventId('$Abc-_1')).toBe('$Abc-_1');
    expect(errcodeOf(() => parseEventId('Abc'))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseRoomIdOrAlias('#kitchen:home.example'))).toBe('M_NOT_FOUND');
    expect(parseRoomIdOrAlias('!r:home.example')).toBe('!r:home.example');
  });

  it('bounds event types and transaction ids', () => {
    expect(parseEventType('m.room.message')).toBe('m.room.message');
    expect(errcodeOf(() => parseEventType(''))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseEventType('x'.repeat(256)))).toBe('M_INVALID_PARAM');
    expect(parseTxnId('m1700000000.1')).toBe('m1700000000.1');
    expect(errcodeOf(() => parseTxnId(''))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseTxnId('a b'))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseTxnId('t'.repeat(256)))).toBe('M_INVALID_PARAM');
  });

  it('takes only object content within the size limit', () => {
    expect(parseContent({ body: 'hi' })).toEqual({ body: 'hi' });
    expect(errcodeOf(() => parseContent(['hi']))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseContent('hi'))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseContent({ body: 'x'.repeat(MAX_CONTENT_BYTES) }))).toBe('M_TOO_LARGE');
  });

  it('checks the content of spec-defined types, as messages or as state', () => {
    expect(() => checkKnownContent('m.room.message', { msgtype: 'm.text', body: 'hi' })).not.toThrow();
    expect(errcodeOf(() => checkKnownContent('m.room.message', { msgtype: 'm.text', body: 5 }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => checkKnownContent('m.room.redaction', { redacts: '$x' }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => checkKnownContent('m.room.name', { name: 5 }, ''))).toBe('M_BAD_JSON');
    // A message event of a state type is not state: its content is opaque.
    expect(() => checkKnownContent('m.room.name', { name: 5 })).not.toThrow();
    expect(errcodeOf(() => checkKnownContent('m.room.member', { membership: 'join' }, 'bob'))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => checkKnownContent('m.room.power_levels', { users: { '@a:b': '100' } }, ''))).toBe(
      'M_BAD_JSON',
    );
  });

  it('parses membership bodies and /messages parameters', () => {
    expect(parseTargetedMembership('kick', { user_id: '@bob:b', reason: 'spam' })).toEqual({
      action: 'kick',
      target: '@bob:b',
      reason: 'spam',
    });
    expect(errcodeOf(() => parseTargetedMembership('ban', {}))).toBe('M_MISSING_PARAM');
    expect(errcodeOf(() => parseTargetedMembership('ban', { user_id: 'bob' }))).toBe('M_INVALID_PARAM');
    expect(parseDirection('f')).toBe('f');
    expect(errcodeOf(() => parseDirection(undefined))).toBe('M_MISSING_PARAM');
    expect(errcodeOf(() => parseDirection('x'))).toBe('M_INVALID_PARAM');
    expect(parseLimit(undefined, 10, 1000)).toBe(10);
    expect(parseLimit('5000', 10, 1000)).toBe(1000);
    expect(errcodeOf(() => parseLimit('-1', 10, 1000))).toBe('M_INVALID_PARAM');
  });
});

describe('filters', () => {
  it('honours types with wildcards, not_types, senders and rooms', () => {
    const filter = parseSyncFilter({
      room: {
        rooms: ['!a:h', '!b:h'],
        not_rooms: ['!b:h'],
        timeline: { limit: 5, types: ['m.room.*'], not_types: ['m.room.member'], senders: ['@a:h'] },
        state: { lazy_load_members: true },
      },
      account_data: { types: ['m.direct'] },
    });
    expect(roomPasses(filter, '!a:h')).toBe(true);
    expect(roomPasses(filter, '!b:h')).toBe(false);
    expect(roomPasses(filter, '!c:h')).toBe(false);
    expect(timelineLimitOf(filter)).toBe(5);
    expect(filter.state.lazyLoadMembers).toBe(true);
    expect(eventPasses(filter.timeline, { type: 'm.room.message', sender: '@a:h' })).toBe(true);
    expect(eventPasses(filter.timeline, { type: 'm.room.member', sender: '@a:h' })).toBe(false);
    expect(eventPasses(filter.timeline, { type: 'm.reaction', sender: '@a:h' })).toBe(false);
    expect(eventPasses(filter.timeline, { type: 'm.room.message', sender: '@b:h' })).toBe(false);
    expect(eventPasses(filter.accountData, { type: 'm.push_rules' })).toBe(false);
    expect(eventPasses(filter.accountData, { type: 'm.direct' })).toBe(true);
  });

  it('defaults and caps the timeline limit, and refuses wrongly typed fields', () => {
    expect(timelineLimitOf(parseSyncFilter(undefined))).toBe(10);
    expect(timelineLimitOf(parseSyncFilter({ room: { timeline: { limit: 1e6 } } }))).toBe(1000);
    expect(errcodeOf(() => parseSyncFilter({ room: { timeline: { types: 'm.room.message' } } }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseSyncFilter({ room: { state: { lazy_load_members: 'yes' } } }))).toBe('M_BAD_JSON');
    expect(errcodeOf(() => parseSyncFilter({ room: [] }))).toBe('M_BAD_JSON');
  });
});

describe('sync tokens', () => {
  it('carries both stream positions and still reads the tokens of before', () => {
    expect(syncToken({ change: 12, room: 340 })).toBe('s12_340');
    expect(parseSyncPosition('s12_340', 'since')).toEqual({ change: 12, room: 340 });
    expect(parseSyncPosition('s12', 'since')).toEqual({ change: 12 });
    expect(syncToken({ change: 12 })).toBe('s12');
    expect(parseSyncToken('s12_340', 'from')).toBe(12);
    expect(errcodeOf(() => parseSyncPosition('s12_', 'since'))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseSyncPosition('t1', 'since'))).toBe('M_INVALID_PARAM');
  });

  it('carries the receipt and in-memory ephemeral positions after the room one', () => {
    const position = { change: 12, room: 340, ephemeral: { receipt: 7, memory: 1796082975291 } };
    expect(syncToken(position)).toBe('s12_340_7_1796082975291');
    expect(parseSyncPosition('s12_340_7_1796082975291', 'since')).toEqual(position);
    expect(parseSyncToken('s12_340_7_1796082975291', 'from')).toBe(12);
    // Both ephemeral parts or neither.
    expect(errcodeOf(() => parseSyncPosition('s12_340_7', 'since'))).toBe('M_INVALID_PARAM');
    expect(errcodeOf(() => parseSyncPosition('s12_340_7_', 'since'))).toBe('M_INVALID_PARAM');
  });
});

describe('client events', () => {
  const view = (pdu: Partial<RoomEventView['pdu']>, extra: Partial<RoomEventView> = {}): RoomEventView => ({
    eventId: '$e',
    streamOrdering: 1,
    pdu: {
      room_id: '!r:h',
      sender: '@a:h',
      type: 'm.room.message',
      content: {},
      origin_server_ts: 1000,
      depth: 3,
      prev_events: ['$p'],
      auth_events: ['$c'],
      hashes: { sha256: 'x' },
      signatures: { h: { 'ed25519:k': 'sig' } },
      ...pdu,
    },
    ...extra,
  });

  it('leaves federation fields out and adds age', () => {
    const event = toClientEvent(view({ content: { body: 'hi' } }), { now: 1500 });
    expect(event).toEqual({
      event_id: '$e',
      type: 'm.room.message',
      sender: '@a:h',
      content: { body: 'hi' },
      origin_server_ts: 1000,
      room_id: '!r:h',
      unsigned: { age: 500 },
    });
  });

  it('gives state_key, prev_content, redacts and redacted_because', () => {
    const state = toClientEvent(
      view({ type: 'm.room.name', state_key: '', unsigned: { prev_content: { name: 'A' }, hashes: 'no' } }),
      { now: 1000 },
    );
    expect(state['state_key']).toBe('');
    expect(state['unsigned']).toEqual({ age: 0, prev_content: { name: 'A' } });
    const redaction = view({ type: 'm.room.redaction', content: { redacts: '$t' } }, { eventId: '$red' });
    expect(toClientEvent(redaction, { now: 1000 })['redacts']).toBe('$t');
    const redacted = toClientEvent(view({}, { redactedBy: '$red' }), {
      now: 1000,
      redactions: new Map([['$red', redaction]]),
    });
    expect((redacted['unsigned'] as Record<string, unknown>)['redacted_because']).toMatchObject({
      event_id: '$red',
      redacts: '$t',
    });
  });
});
