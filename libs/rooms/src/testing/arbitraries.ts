// fast-check generators of PDU-shaped objects whose types and content keys hit the redaction rules.
import fc from 'fast-check';
import type { JsonObject, Pdu } from '../types.js';

const TYPES = [
  'm.room.member',
  'm.room.create',
  'm.room.join_rules',
  'm.room.power_levels',
  'm.room.history_visibility',
  'm.room.redaction',
  'm.room.aliases',
  'm.room.message',
  'org.example.custom',
];

const CONTENT_KEYS = [
  'membership',
  'join_authorised_via_users_server',
  'third_party_invite',
  'creator',
  'room_version',
  'm.federate',
  'join_rule',
  'allow',
  'ban',
  'events',
  'events_default',
  'invite',
  'kick',
  'redact',
  'state_default',
  'users',
  'users_default',
  'notifications',
  'history_visibility',
  'redacts',
  'aliases',
  'body',
  'displayname',
];

const TOP_LEVEL_EXTRAS = ['origin', 'membership', 'prev_state', 'redacts', 'unsigned', 'x_custom', 'event_id'];

/** JSON values canonical JSON accepts (no floats), shallow. */
export const jsonValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.string({ maxLength: 8 }),
    fc.integer({ min: -1000, max: 1000 }),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 3 }),
  ),
})).value;

/** Content with keys the redaction rules look at, and a `signed` third-party invite sometimes. */
export const content: fc.Arbitrary<JsonObject> = fc
  .tuple(
    fc.dictionary(fc.constantFrom(...CONTENT_KEYS), jsonValue, { maxKeys: 6 }),
    fc.option(fc.record({ signed: jsonValue, display_name: fc.string({ maxLength: 5 }) }), { nil: undefined }),
  )
  .map(([c, invite]) => (invite === undefined ? c : { ...c, third_party_invite: invite }));

/** A PDU-shaped object (valid types, any hashes and signatures) with some of the keys older versions kept. */
export const pdu: fc.Arbitrary<Pdu> = fc
  .record({
    type: fc.constantFrom(...TYPES),
    state: fc.option(fc.string({ maxLength: 6 }), { nil: undefined }),
    content,
    depth: fc.integer({ min: 1, max: 1_000_000 }),
    ts: fc.integer({ min: 0, max: 2 ** 42 }),
    extras: fc.dictionary(fc.constantFrom(...TOP_LEVEL_EXTRAS), jsonValue, { maxKeys: 4 }),
    unsigned: fc.option(fc.dictionary(fc.string({ maxLength: 5 }), jsonValue, { maxKeys: 2 }), { nil: undefined }),
  })
  .map(({ type, state, content: c, depth, ts, extras, unsigned }) => {
    const out: JsonObject = {
      ...extras,
      room_id: '!r:a',
      sender: '@u:a',
      type,
      content: c,
      origin_server_ts: ts,
      depth,
      prev_events: ['$p'],
      auth_events: ['$a'],
      hashes: { sha256: 'AAAA' },
      signatures: { a: { 'ed25519:x': 'sig' } },
    };
    if (state !== undefined) out.state_key = state;
    if (unsigned !== undefined) out.unsigned = unsigned;
    else delete out.unsigned;
    return out as Pdu;
  });
