// The redaction algorithms of v10 and v11 against the key lists of the spec ("Room versions" v10/v9 and
// v11, "Redactions"), and their properties.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redactPdu } from './redaction.js';
import { pdu } from './testing/arbitraries.js';
import type { Pdu } from './types.js';

const base = {
  event_id: '$e',
  room_id: '!r:a',
  sender: '@u:a',
  origin: 'a',
  origin_server_ts: 5,
  membership: 'join',
  prev_state: [],
  depth: 3,
  prev_events: ['$p'],
  auth_events: ['$a'],
  hashes: { sha256: 'h' },
  signatures: { a: { 'ed25519:1': 's' } },
  unsigned: { age: 1 },
  redacts: '$t',
  custom: 1,
};
const kept = [
  'event_id',
  'type',
  'room_id',
  'sender',
  'content',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'auth_events',
  'origin_server_ts',
  'state_key',
];

function event(type: string, content: Record<string, unknown>, stateKey?: string): Pdu {
  return { ...base, type, content, ...(stateKey === undefined ? {} : { state_key: stateKey }) } as unknown as Pdu;
}

describe('top-level keys', () => {
  it('v10 keeps the v1 list, origin, membership and prev_state included; drops unsigned, redacts and unknown keys', () => {
    const out = redactPdu('10', event('m.room.message', { body: 'x' }, ''));
    expect(Object.keys(out).sort()).toEqual([...kept, 'origin', 'membership', 'prev_state'].sort());
  });
  it('v11 no longer keeps origin, membership and prev_state', () => {
    const out = redactPdu('11', event('m.room.message', { body: 'x' }, ''));
    expect(Object.keys(out).sort()).toEqual([...kept].sort());
  });
});

describe('content per event type', () => {
  const powerLevels = {
    ban: 50,
    events: { a: 1 },
    events_default: 0,
    invite: 0,
    kick: 50,
    redact: 50,
    state_default: 50,
    users: { '@u:a': 100 },
    users_default: 0,
    notifications: { room: 50 },
  };
  const { invite: _invite, notifications: _notifications, ...v10PowerLevels } = powerLevels;
  const cases: [string, Record<string, unknown>, Record<string, unknown>, Record<string, unknown>][] = [
    [
      'm.room.member',
      {
        membership: 'join',
        displayname: 'U',
        join_authorised_via_users_server: '@v:b',
        third_party_invite: { display_name: 'd', signed: { mxid: '@u:a', token: 't' } },
      },
      { membership: 'join', join_authorised_via_users_server: '@v:b' },
      {
        membership: 'join',
        join_authorised_via_users_server: '@v:b',
        third_party_invite: { signed: { mxid: '@u:a', token: 't' } },
      },
    ],
    [
      'm.room.create',
      { creator: '@u:a', room_version: '11', 'm.federate': false, predecessor: {} },
      { creator: '@u:a' },
      { creator: '@u:a', room_version: '11', 'm.federate': false, predecessor: {} },
    ],
    [
      'm.room.join_rules',
      { join_rule: 'restricted', allow: [{ type: 'm.room_membership' }], other: 1 },
      { join_rule: 'restricted', allow: [{ type: 'm.room_membership' }] },
      { join_rule: 'restricted', allow: [{ type: 'm.room_membership' }] },
    ],
    ['m.room.power_levels', powerLevels, v10PowerLevels, { ...v10PowerLevels, invite: 0 }],
    [
      'm.room.history_visibility',
      { history_visibility: 'shared', x: 1 },
      { history_visibility: 'shared' },
      { history_visibility: 'shared' },
    ],
    ['m.room.redaction', { redacts: '$t', reason: 'spam' }, {}, { redacts: '$t' }],
    ['m.room.aliases', { aliases: ['#a:a'] }, {}, {}],
    ['m.room.message', { body: 'secret', msgtype: 'm.text' }, {}, {}],
  ];
  it.each(cases)('%s', (type, content, v10, v11) => {
    expect(redactPdu('10', event(type, content, '')).content).toEqual(v10);
    expect(redactPdu('11', event(type, content, '')).content).toEqual(v11);
  });
  it('v11 keeps no third_party_invite when it has no signed key', () => {
    const out = redactPdu(
      '11',
      event('m.room.member', { membership: 'invite', third_party_invite: { display_name: 'd' } }, '@u:a'),
    );
    expect(out.content).toEqual({ membership: 'invite' });
  });
  it('does not change its input', () => {
    const input = event('m.room.member', { membership: 'join', displayname: 'U' }, '@u:a');
    const copy = structuredClone(input);
    redactPdu('11', input);
    expect(input).toEqual(copy);
  });
});

describe('properties', () => {
  it('is idempotent in both versions', () => {
    fc.assert(
      fc.property(pdu, fc.constantFrom('10' as const, '11' as const), (p, v) => {
        const once = redactPdu(v, p);
        expect(redactPdu(v, once)).toEqual(once);
      }),
    );
  });
  it('v11 redaction keeps a subset of the top-level keys v10 keeps, and never unsigned', () => {
    fc.assert(
      fc.property(pdu, (p) => {
        const v10 = Object.keys(redactPdu('10', p));
        for (const key of Object.keys(redactPdu('11', p))) expect(v10).toContain(key);
        expect(v10).not.toContain('unsigned');
      }),
    );
  });
});
