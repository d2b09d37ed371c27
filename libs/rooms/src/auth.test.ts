// Every authorization rule of room versions 10 and 11 with an accepted and a refused case, built by
// hand on TestRoom. Rule numbers are the spec's ("Room versions" v11, "Authorization rules").
import { encodeBase64, generateKeyPair, signJson } from '@polyhome/identity';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authStateOf, authTypesFor, checkAuth, checkAuthEvents, redactionAllowed } from './auth.js';
import { addSignature } from './signing.js';
import { jsonValue, pdu } from './testing/arbitraries.js';
import { TEST_KEY_ID, TestRoom } from './testing/room.js';
import { stateKeyOf, type CheckResult, type Pdu, type RoomVersionId } from './types.js';

const ALICE = '@alice:a';
const BOB = '@bob:b';
const CAROL = '@carol:c';

function expectRefused(result: CheckResult, code: string): void {
  expect(result).toMatchObject({ ok: false, code });
  if (!result.ok) expect(result.message.length).toBeGreaterThan(10);
}

/** Bob and Carol joined a public room of Alice's, Alice at 100. */
function roomWithMembers(version: RoomVersionId, joinRule = 'public'): TestRoom {
  const room = TestRoom.create(version, ALICE, { joinRule: 'public' });
  room.join(BOB);
  room.join(CAROL);
  if (joinRule !== 'public') room.put(ALICE, 'm.room.join_rules', { join_rule: joinRule }, { stateKey: '' });
  return room;
}

describe.each(['10', '11'] as const)('room version %s', (version) => {
  describe('rule 1: m.room.create', () => {
    const room = TestRoom.create(version, ALICE);
    const create = room.events.get(room.createId)!;

    it('accepts a create event without prev_events on the room id server', () => {
      expect(checkAuth(version, create, new Map())).toEqual({ ok: true });
    });
    it('1.1 refuses prev_events', () => {
      const pdu = { ...create, prev_events: [room.createId] };
      expectRefused(checkAuth(version, pdu, new Map()), 'create_has_prev_events');
    });
    it('1.2 refuses a room id on another server than the sender', () => {
      expectRefused(checkAuth(version, { ...create, sender: BOB }, new Map()), 'create_room_domain_mismatch');
    });
    it('1.3 refuses an unknown or missing room_version', () => {
      const wrong = { ...create, content: { ...create.content, room_version: '99' } };
      expectRefused(checkAuth(version, wrong, new Map()), 'unsupported_room_version');
      const { room_version: _v, ...rest } = create.content;
      expectRefused(checkAuth(version, { ...create, content: rest }, new Map()), 'unsupported_room_version');
    });
    it(version === '10' ? '1.4 refuses a missing creator' : 'accepts a create event without creator', () => {
      const { creator: _c, ...rest } = create.content;
      const result = checkAuth(version, { ...create, content: rest }, new Map());
      if (version === '10') expectRefused(result, 'create_missing_creator');
      else expect(result).toEqual({ ok: true });
    });
  });

  describe('rule 2: auth_events', () => {
    const room = roomWithMembers(version);
    const message = room.event(BOB, 'm.room.message', { body: 'hi' });
    const authEvents = message.auth_events.map((id) => room.events.get(id)!);

    it('accepts the selected auth events', () => {
      expect(checkAuthEvents(version, message, authEvents)).toEqual({ ok: true });
    });
    it('2.1 refuses two entries for one (type, state_key)', () => {
      const older = [...room.events.values()].find(
        (e) => e.type === 'm.room.join_rules' || e.type === 'm.room.power_levels',
      )!;
      const twice = [...authEvents, older, older];
      expectRefused(checkAuthEvents(version, message, twice), 'duplicate_auth_event');
    });
    it('2.2 refuses entries the selection does not pick', () => {
      const joinRules = room.stateEvent('m.room.join_rules', '')!;
      expectRefused(checkAuthEvents(version, message, [...authEvents, joinRules]), 'unexpected_auth_event');
      const carol = room.stateEvent('m.room.member', CAROL)!;
      expectRefused(checkAuthEvents(version, message, [...authEvents, carol]), 'unexpected_auth_event');
    });
    it('2.4 refuses auth events without the create event', () => {
      const noCreate = authEvents.filter((e) => e.type !== 'm.room.create');
      expectRefused(checkAuthEvents(version, message, noCreate), 'missing_create');
      expectRefused(checkAuth(version, message, authStateOf(noCreate)), 'missing_create');
    });
    it('refuses a create event with auth events', () => {
      const create = room.events.get(room.createId)!;
      expect(checkAuthEvents(version, create, [])).toEqual({ ok: true });
      expectRefused(checkAuthEvents(version, create, [create]), 'create_has_auth_events');
    });
    it('refuses auth events of another room', () => {
      const other = TestRoom.create(version, '@dave:d');
      const foreign = other.stateEvent('m.room.power_levels', '')!;
      const mixed = [...authEvents.filter((e) => e.type !== 'm.room.power_levels'), foreign];
      expectRefused(checkAuthEvents(version, message, mixed), 'wrong_room');
    });
    it('refuses auth state of another room', () => {
      const other = TestRoom.create(version, '@dave:d');
      const otherState = authStateOf([...other.events.values()]);
      expectRefused(checkAuth(version, message, otherState), 'wrong_room');
    });
  });

  describe('auth events selection', () => {
    it('picks create, power levels and the sender for a message', () => {
      const room = roomWithMembers(version);
      expect(authTypesFor(version, room.event(BOB, 'm.room.message', {}))).toEqual([
        stateKeyOf('m.room.create', ''),
        stateKeyOf('m.room.power_levels', ''),
        stateKeyOf('m.room.member', BOB),
      ]);
    });
    it('adds target, join rules, third-party invite (invites) and authoriser (joins) for membership events', () => {
      const room = roomWithMembers(version);
      const content = {
        third_party_invite: { signed: { token: 'tok', mxid: '@dave:d' } },
        join_authorised_via_users_server: CAROL,
      };
      const invite = room.event(ALICE, 'm.room.member', { membership: 'invite', ...content }, { stateKey: '@dave:d' });
      const common = [
        stateKeyOf('m.room.create', ''),
        stateKeyOf('m.room.power_levels', ''),
        stateKeyOf('m.room.member', ALICE),
        stateKeyOf('m.room.member', '@dave:d'),
        stateKeyOf('m.room.join_rules', ''),
      ];
      expect(authTypesFor(version, invite)).toEqual([...common, stateKeyOf('m.room.third_party_invite', 'tok')]);
      const join = room.event(ALICE, 'm.room.member', { membership: 'join', ...content }, { stateKey: '@dave:d' });
      expect(authTypesFor(version, join)).toEqual([...common, stateKeyOf('m.room.member', CAROL)]);
      const leave = room.event(BOB, 'm.room.member', { membership: 'leave' }, { stateKey: BOB });
      expect(authTypesFor(version, leave)).not.toContain(stateKeyOf('m.room.join_rules', ''));
    });
    it('picks nothing for the create event', () => {
      const room = TestRoom.create(version, ALICE);
      expect(authTypesFor(version, room.events.get(room.createId)!)).toEqual([]);
    });
  });

  describe('rule 3: m.federate', () => {
    it('refuses senders of other servers when m.federate is false, accepts the creator server', () => {
      const room = TestRoom.create(version, ALICE, { createContent: { 'm.federate': false } });
      expectRefused(
        room.send(room.event(BOB, 'm.room.member', { membership: 'join' }, { stateKey: BOB })),
        'not_federated',
      );
      expect(
        room.send(room.event('@alex:a', 'm.room.member', { membership: 'join' }, { stateKey: '@alex:a' })),
      ).toEqual({ ok: true });
    });
  });

  describe('rule 4: m.room.member', () => {
    it('4.1 refuses a membership event without membership', () => {
      const room = roomWithMembers(version);
      expectRefused(
        room.send(room.event(BOB, 'm.room.member', { displayname: 'b' }, { stateKey: BOB })),
        'invalid_membership_event',
      );
      expectRefused(
        checkAuth(
          version,
          { ...room.event(BOB, 'm.room.member', { membership: 'join' }, { stateKey: BOB }), state_key: undefined },
          authStateOf(room.events.values()),
        ),
        'invalid_membership_event',
      );
    });

    it('4.2 refuses a join_authorised_via_users_server event the authorising server did not sign', () => {
      const room = roomWithMembers(version, 'restricted');
      const pdu = room.event(
        '@dave:d',
        'm.room.member',
        { membership: 'join', join_authorised_via_users_server: ALICE },
        { stateKey: '@dave:d' },
      );
      expectRefused(room.check(pdu), 'authoriser_not_signed');
      const countersigned = addSignature(version, pdu, {
        serverName: 'a',
        keyId: TEST_KEY_ID,
        secretKey: room.keyOf('a').secretKey,
      });
      expect(room.check(countersigned)).toEqual({ ok: true });
      const notUser = room.event(
        '@dave:d',
        'm.room.member',
        { membership: 'join', join_authorised_via_users_server: 'alice' },
        { stateKey: '@dave:d' },
      );
      expectRefused(room.check(notUser), 'authoriser_invalid');
    });

    describe('4.3 join', () => {
      it('4.3.1 lets the creator join right after the create event, nobody else', () => {
        const room = TestRoom.create(version, ALICE, { powerLevels: null });
        expect(room.check(room.events.get([...room.events.keys()][1]!)!)).toEqual({ ok: true });
        const after = TestRoom.create(version, ALICE, { powerLevels: null });
        const early = after.event(
          BOB,
          'm.room.member',
          { membership: 'join' },
          { stateKey: BOB, prevEvents: [after.createId] },
        );
        expectRefused(after.check(early), 'join_not_allowed');
      });
      it('4.3.2 refuses a join for somebody else', () => {
        const room = roomWithMembers(version);
        expectRefused(
          room.send(room.event(BOB, 'm.room.member', { membership: 'join' }, { stateKey: '@dave:d' })),
          'join_sender_mismatch',
        );
      });
      it('4.3.3 refuses a banned user', () => {
        const room = roomWithMembers(version);
        room.put(ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: BOB });
        expectRefused(room.send(room.event(BOB, 'm.room.member', { membership: 'join' }, { stateKey: BOB })), 'banned');
      });
      it('4.3.4 invite and knock rooms: invited users join, others do not', () => {
        for (const rule of ['invite', 'knock']) {
          const room = roomWithMembers(version, rule);
          expectRefused(
            room.send(room.event('@dave:d', 'm.room.member', { membership: 'join' }, { stateKey: '@dave:d' })),
            'join_not_allowed',
          );
          room.put(ALICE, 'm.room.member', { membership: 'invite' }, { stateKey: '@dave:d' });
          expect(
            room.send(room.event('@dave:d', 'm.room.member', { membership: 'join' }, { stateKey: '@dave:d' })),
          ).toEqual({ ok: true });
          // Already joined: a join again (profile change) is allowed.
          expect(
            room.send(
              room.event('@dave:d', 'm.room.member', { membership: 'join', displayname: 'D' }, { stateKey: '@dave:d' }),
            ),
          ).toEqual({ ok: true });
        }
      });
      it('4.3.5 restricted rooms: an authorising member with invite power lets a user join', () => {
        for (const rule of ['restricted', 'knock_restricted']) {
          const room = roomWithMembers(version, rule);
          const sign = (pdu: Pdu, server: string): Pdu =>
            addSignature(version, pdu, {
              serverName: server,
              keyId: TEST_KEY_ID,
              secretKey: room.keyOf(server).secretKey,
            });
          expectRefused(
            room.check(room.event('@dave:d', 'm.room.member', { membership: 'join' }, { stateKey: '@dave:d' })),
            'join_not_allowed',
          );
          const viaAlice = room.event(
            '@dave:d',
            'm.room.member',
            { membership: 'join', join_authorised_via_users_server: ALICE },
            { stateKey: '@dave:d' },
          );
          expect(room.check(sign(viaAlice, 'a'))).toEqual({ ok: true });
          // Invite level raised above Bob's 0.
          room.put(ALICE, 'm.room.power_levels', { users: { [ALICE]: 100 }, invite: 50 }, { stateKey: '' });
          const viaBob = room.event(
            '@dave:d',
            'm.room.member',
            { membership: 'join', join_authorised_via_users_server: BOB },
            { stateKey: '@dave:d' },
          );
          expectRefused(room.check(sign(viaBob, 'b')), 'insufficient_power');
          const viaStranger = room.event(
            '@dave:d',
            'm.room.member',
            { membership: 'join', join_authorised_via_users_server: '@eve:e' },
            { stateKey: '@dave:d' },
          );
          expectRefused(room.check(sign(viaStranger, 'e')), 'join_not_allowed');
          room.put(ALICE, 'm.room.member', { membership: 'invite' }, { stateKey: '@dave:d' });
          expect(
            room.send(room.event('@dave:d', 'm.room.member', { membership: 'join' }, { stateKey: '@dave:d' })),
          ).toEqual({ ok: true });
        }
      });
      it('4.3.6 public rooms let anybody join; 4.3.7 other join rules refuse', () => {
        const room = roomWithMembers(version);
        expect(
          room.send(room.event('@dave:d', 'm.room.member', { membership: 'join' }, { stateKey: '@dave:d' })),
        ).toEqual({ ok: true });
        room.put(ALICE, 'm.room.join_rules', { join_rule: 'private' }, { stateKey: '' });
        expectRefused(
          room.send(room.event('@eve:e', 'm.room.member', { membership: 'join' }, { stateKey: '@eve:e' })),
          'join_not_allowed',
        );
      });
    });

    describe('4.4 invite', () => {
      function thirdPartyRoom() {
        const room = roomWithMembers(version);
        const idServer = generateKeyPair();
        room.put(
          BOB,
          'm.room.third_party_invite',
          { display_name: 'd…', key_validity_url: 'https://id/valid', public_key: encodeBase64(idServer.publicKey) },
          { stateKey: 'tok' },
        );
        const signed = (mxid: string, token = 'tok', key = idServer) =>
          signJson({ mxid, token, sender: BOB }, 'id.example', 'ed25519:0', key.secretKey);
        const invite = (content: Record<string, unknown>, sender = BOB, target = '@dave:d') =>
          room.event(sender, 'm.room.member', { membership: 'invite', ...content }, { stateKey: target });
        return { room, idServer, signed, invite };
      }

      it('4.4.1.7 accepts a third-party invite signed by a key of the m.room.third_party_invite', () => {
        const { room, signed, invite } = thirdPartyRoom();
        expect(room.check(invite({ third_party_invite: { display_name: 'd', signed: signed('@dave:d') } }))).toEqual({
          ok: true,
        });
      });
      it('4.4.1.7 accepts a key from public_keys, URL-safe spelled', () => {
        const { room, invite } = thirdPartyRoom();
        const other = generateKeyPair();
        const urlSafe = encodeBase64(other.publicKey).replaceAll('+', '-').replaceAll('/', '_');
        room.put(
          BOB,
          'm.room.third_party_invite',
          { public_key: 'AAAA', public_keys: [{ public_key: urlSafe }] },
          { stateKey: 'tok2' },
        );
        const signed = signJson({ mxid: '@dave:d', token: 'tok2' }, 'id.example', 'ed25519:0', other.secretKey);
        expect(room.check(invite({ third_party_invite: { signed } }))).toEqual({ ok: true });
      });
      it('4.4.1.1 to 4.4.1.8 refuse broken third-party invites', () => {
        const { room, signed, invite } = thirdPartyRoom();
        const stranger = generateKeyPair();
        expectRefused(
          room.check(invite({ third_party_invite: { signed: signed('@dave:d', 'tok', stranger) } })),
          'third_party_invite_not_signed',
        );
        expectRefused(room.check(invite({ third_party_invite: {} })), 'third_party_invite_invalid');
        expectRefused(
          room.check(invite({ third_party_invite: { signed: { mxid: '@dave:d' } } })),
          'third_party_invite_invalid',
        );
        expectRefused(
          room.check(invite({ third_party_invite: { signed: signed('@eve:e') } })),
          'third_party_invite_invalid',
        );
        expectRefused(
          room.check(invite({ third_party_invite: { signed: signed('@dave:d', 'nope') } })),
          'third_party_invite_invalid',
        );
        expectRefused(
          room.check(invite({ third_party_invite: { signed: signed('@dave:d') } }, CAROL)),
          'third_party_invite_invalid',
        );
        const tampered = { ...signed('@dave:d'), extra: 1 };
        expectRefused(
          room.check(invite({ third_party_invite: { signed: tampered } })),
          'third_party_invite_not_signed',
        );
        room.put(ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: '@dave:d' });
        expectRefused(room.check(invite({ third_party_invite: { signed: signed('@dave:d') } })), 'banned');
      });
      it('4.4.2 refuses an inviter who is not joined', () => {
        const room = roomWithMembers(version);
        expectRefused(
          room.send(room.event('@eve:e', 'm.room.member', { membership: 'invite' }, { stateKey: '@dave:d' })),
          'not_in_room',
        );
      });
      it('4.4.3 refuses inviting a joined or banned user', () => {
        const room = roomWithMembers(version);
        expectRefused(
          room.send(room.event(ALICE, 'm.room.member', { membership: 'invite' }, { stateKey: BOB })),
          'target_in_room_or_banned',
        );
        room.put(ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: '@dave:d' });
        expectRefused(
          room.send(room.event(ALICE, 'm.room.member', { membership: 'invite' }, { stateKey: '@dave:d' })),
          'target_in_room_or_banned',
        );
      });
      it('4.4.4 accepts an inviter at the invite level; 4.4.5 refuses below it', () => {
        const room = roomWithMembers(version);
        expect(room.send(room.event(BOB, 'm.room.member', { membership: 'invite' }, { stateKey: '@dave:d' }))).toEqual({
          ok: true,
        });
        room.put(ALICE, 'm.room.power_levels', { users: { [ALICE]: 100 }, invite: 50 }, { stateKey: '' });
        expectRefused(
          room.send(room.event(BOB, 'm.room.member', { membership: 'invite' }, { stateKey: '@eve:e' })),
          'insufficient_power',
        );
      });
    });

    describe('4.5 leave', () => {
      it('4.5.1 a user leaves when joined, invited or knocking, not otherwise', () => {
        const room = roomWithMembers(version);
        expect(room.send(room.event(BOB, 'm.room.member', { membership: 'leave' }, { stateKey: BOB }))).toEqual({
          ok: true,
        });
        expectRefused(
          room.send(room.event(BOB, 'm.room.member', { membership: 'leave' }, { stateKey: BOB })),
          'leave_not_allowed',
        );
        room.put(ALICE, 'm.room.member', { membership: 'invite' }, { stateKey: '@dave:d' });
        expect(
          room.send(room.event('@dave:d', 'm.room.member', { membership: 'leave' }, { stateKey: '@dave:d' })),
        ).toEqual({ ok: true });
      });
      it('4.5.2 refuses a kick by a non-member', () => {
        const room = roomWithMembers(version);
        expectRefused(
          room.send(room.event('@eve:e', 'm.room.member', { membership: 'leave' }, { stateKey: BOB })),
          'not_in_room',
        );
      });
      it('4.5.3 refuses an unban below the ban level, accepts one at it', () => {
        const room = roomWithMembers(version);
        room.put(
          ALICE,
          'm.room.power_levels',
          { users: { [ALICE]: 100, [BOB]: 50 }, ban: 60, kick: 50 },
          { stateKey: '' },
        );
        room.put(ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: '@dave:d' });
        expectRefused(
          room.send(room.event(BOB, 'm.room.member', { membership: 'leave' }, { stateKey: '@dave:d' })),
          'insufficient_power',
        );
        expect(room.send(room.event(ALICE, 'm.room.member', { membership: 'leave' }, { stateKey: '@dave:d' }))).toEqual(
          { ok: true },
        );
      });
      it('4.5.4 accepts a kick above the target; 4.5.5 refuses an equal or lower kicker', () => {
        const room = roomWithMembers(version);
        room.put(ALICE, 'm.room.power_levels', { users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 50 } }, { stateKey: '' });
        expectRefused(
          room.send(room.event(BOB, 'm.room.member', { membership: 'leave' }, { stateKey: CAROL })),
          'insufficient_power',
        );
        expect(room.send(room.event(ALICE, 'm.room.member', { membership: 'leave' }, { stateKey: CAROL }))).toEqual({
          ok: true,
        });
      });
    });

    describe('4.6 ban', () => {
      it('refuses a non-member, a weak banner, a stronger target; accepts a strong banner', () => {
        const room = roomWithMembers(version);
        expectRefused(
          room.send(room.event('@eve:e', 'm.room.member', { membership: 'ban' }, { stateKey: BOB })),
          'not_in_room',
        );
        expectRefused(
          room.send(room.event(BOB, 'm.room.member', { membership: 'ban' }, { stateKey: CAROL })),
          'insufficient_power',
        );
        room.put(ALICE, 'm.room.power_levels', { users: { [ALICE]: 100, [BOB]: 60 } }, { stateKey: '' });
        expectRefused(
          room.send(room.event(BOB, 'm.room.member', { membership: 'ban' }, { stateKey: ALICE })),
          'insufficient_power',
        );
        expect(room.send(room.event(BOB, 'm.room.member', { membership: 'ban' }, { stateKey: CAROL }))).toEqual({
          ok: true,
        });
      });
    });

    describe('4.7 knock', () => {
      it('accepts a knock in knock rooms, refuses in others, for others, when joined or banned', () => {
        const pub = roomWithMembers(version);
        expectRefused(
          pub.send(pub.event('@dave:d', 'm.room.member', { membership: 'knock' }, { stateKey: '@dave:d' })),
          'knock_not_allowed',
        );
        for (const rule of ['knock', 'knock_restricted']) {
          const room = roomWithMembers(version, rule);
          expectRefused(
            room.send(room.event('@dave:d', 'm.room.member', { membership: 'knock' }, { stateKey: '@eve:e' })),
            'knock_not_allowed',
          );
          expectRefused(
            room.send(room.event(BOB, 'm.room.member', { membership: 'knock' }, { stateKey: BOB })),
            'knock_not_allowed',
          );
          expect(
            room.send(room.event('@dave:d', 'm.room.member', { membership: 'knock' }, { stateKey: '@dave:d' })),
          ).toEqual({ ok: true });
          room.put(ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: '@eve:e' });
          expectRefused(
            room.send(room.event('@eve:e', 'm.room.member', { membership: 'knock' }, { stateKey: '@eve:e' })),
            'banned',
          );
        }
      });
    });

    it('4.8 refuses an unknown membership', () => {
      const room = roomWithMembers(version);
      expectRefused(
        room.send(room.event(BOB, 'm.room.member', { membership: 'lurk' }, { stateKey: BOB })),
        'unknown_membership',
      );
    });
  });

  describe('rules 5 to 8', () => {
    it('5 refuses events of users who are not joined', () => {
      const room = roomWithMembers(version);
      expect(room.send(room.event(BOB, 'm.room.message', { body: 'hi' }))).toEqual({ ok: true });
      expectRefused(room.send(room.event('@eve:e', 'm.room.message', { body: 'hi' })), 'not_in_room');
    });
    it('6 m.room.third_party_invite needs the invite level', () => {
      const room = roomWithMembers(version);
      room.put(
        ALICE,
        'm.room.power_levels',
        { users: { [ALICE]: 100 }, invite: 10, state_default: 0 },
        { stateKey: '' },
      );
      expectRefused(
        room.send(room.event(BOB, 'm.room.third_party_invite', { public_key: 'x' }, { stateKey: 't' })),
        'insufficient_power',
      );
      expect(room.send(room.event(ALICE, 'm.room.third_party_invite', { public_key: 'x' }, { stateKey: 't' }))).toEqual(
        { ok: true },
      );
    });
    it('7 refuses an event type above the sender level (events, state_default, events_default)', () => {
      const room = roomWithMembers(version);
      expectRefused(room.send(room.event(BOB, 'm.room.name', { name: 'x' }, { stateKey: '' })), 'insufficient_power');
      expect(room.send(room.event(ALICE, 'm.room.name', { name: 'x' }, { stateKey: '' }))).toEqual({ ok: true });
      room.put(
        ALICE,
        'm.room.power_levels',
        { users: { [ALICE]: 100 }, events: { 'm.room.message': 10 }, events_default: 5, state_default: 0 },
        { stateKey: '' },
      );
      expectRefused(room.send(room.event(BOB, 'm.room.message', { body: 'hi' })), 'insufficient_power');
      expectRefused(room.send(room.event(BOB, 'm.reaction', {})), 'insufficient_power');
      expect(room.send(room.event(BOB, 'm.room.topic', { topic: 't' }, { stateKey: '' }))).toEqual({ ok: true });
    });
    it('without power levels only the creator has power; state events need 0', () => {
      const room = TestRoom.create(version, ALICE, { powerLevels: null });
      expect(room.send(room.event(ALICE, 'm.room.join_rules', { join_rule: 'public' }, { stateKey: '' }))).toEqual({
        ok: true,
      });
      room.join(BOB);
      expect(room.send(room.event(BOB, 'm.room.name', { name: 'b' }, { stateKey: '' }))).toEqual({ ok: true });
      expectRefused(
        room.send(room.event(BOB, 'm.room.member', { membership: 'ban' }, { stateKey: ALICE })),
        'insufficient_power',
      );
      expect(room.send(room.event(ALICE, 'm.room.member', { membership: 'ban' }, { stateKey: BOB }))).toEqual({
        ok: true,
      });
    });
    it('8 refuses a state_key starting with @ that is not the sender', () => {
      const room = roomWithMembers(version);
      expectRefused(room.send(room.event(ALICE, 'org.example.profile', {}, { stateKey: BOB })), 'state_key_not_sender');
      expect(room.send(room.event(ALICE, 'org.example.profile', {}, { stateKey: ALICE }))).toEqual({ ok: true });
    });
  });

  describe('rule 9: m.room.power_levels', () => {
    function modRoom(): TestRoom {
      const room = roomWithMembers(version);
      room.put(
        ALICE,
        'm.room.power_levels',
        {
          users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 50 },
          events: { 'm.room.tombstone': 100 },
          kick: 50,
          ban: 50,
          state_default: 50,
        },
        { stateKey: '' },
      );
      return room;
    }
    const base = {
      users: { [ALICE]: 100, [BOB]: 50, [CAROL]: 50 },
      events: { 'm.room.tombstone': 100 },
      kick: 50,
      ban: 50,
      state_default: 50,
    };
    const change = (room: TestRoom, sender: string, content: Record<string, unknown>) =>
      room.send(room.event(sender, 'm.room.power_levels', content, { stateKey: '' }));

    it('9.1 refuses a named level that is not an integer (v10 rule: no strings, no floats)', () => {
      const room = modRoom();
      expectRefused(change(room, ALICE, { ...base, ban: '50' }), 'invalid_power_levels');
      // A float cannot be signed (not canonical JSON); the rule is checked on the content as received.
      const valid = room.event(ALICE, 'm.room.power_levels', base, { stateKey: '' });
      const state = authStateOf([...room.state.values()].map((id) => room.events.get(id)!));
      expectRefused(checkAuth(version, { ...valid, content: { ...base, invite: 1.5 } }, state), 'invalid_power_levels');
      expect(change(room, ALICE, { ...base, ban: 60 })).toEqual({ ok: true });
    });
    it('9.2 refuses events or notifications with non-integer values', () => {
      const room = modRoom();
      expectRefused(change(room, ALICE, { ...base, events: { 'm.room.name': '50' } }), 'invalid_power_levels');
      expectRefused(change(room, ALICE, { ...base, notifications: { room: '50' } }), 'invalid_power_levels');
      expectRefused(change(room, ALICE, { ...base, notifications: [] }), 'invalid_power_levels');
      expect(change(room, ALICE, { ...base, notifications: { room: 50 } })).toEqual({ ok: true });
    });
    it('9.3 refuses users that are not user ids or levels that are not integers', () => {
      const room = modRoom();
      expectRefused(change(room, ALICE, { ...base, users: { ...base.users, bob: 10 } }), 'invalid_power_levels');
      expectRefused(
        change(room, ALICE, { ...base, users: { ...base.users, '@dave:d': '10' } }),
        'invalid_power_levels',
      );
      expect(change(room, ALICE, { ...base, users: { ...base.users, '@dave:d': 10 } })).toEqual({ ok: true });
    });
    it('9.4 accepts the first power levels event whatever the levels', () => {
      const room = TestRoom.create(version, ALICE, { powerLevels: null });
      expect(change(room, ALICE, { users: { [ALICE]: 100, [BOB]: 100 }, ban: 1000 })).toEqual({ ok: true });
    });
    it('9.5 refuses changing a named level from or to above the sender', () => {
      const room = modRoom();
      expectRefused(change(room, BOB, { ...base, ban: 60 }), 'insufficient_power');
      expectRefused(change(room, BOB, { ...base, redact: 75 }), 'insufficient_power');
      room.put(ALICE, 'm.room.power_levels', { ...base, invite: 75 }, { stateKey: '' });
      expectRefused(change(room, BOB, { ...base }), 'insufficient_power');
      expect(change(room, BOB, { ...base, invite: 75, kick: 40 })).toEqual({ ok: true });
    });
    it('9.6 and 9.7 refuse changing events entries from or to above the sender', () => {
      const room = modRoom();
      expectRefused(change(room, BOB, { ...base, events: {} }), 'insufficient_power');
      expectRefused(
        change(room, BOB, { ...base, events: { ...base.events, 'm.room.name': 51 } }),
        'insufficient_power',
      );
      expect(change(room, BOB, { ...base, events: { ...base.events, 'm.room.name': 50 } })).toEqual({ ok: true });
    });
    it('9.8 refuses changing another user at or above the sender; the sender may lower themselves', () => {
      const room = modRoom();
      expectRefused(change(room, BOB, { ...base, users: { ...base.users, [CAROL]: 0 } }), 'insufficient_power');
      expectRefused(change(room, BOB, { ...base, users: { [ALICE]: 100, [BOB]: 50 } }), 'insufficient_power');
      expect(change(room, BOB, { ...base, users: { ...base.users, [BOB]: 40 } })).toEqual({ ok: true });
    });
    it('9.9 refuses raising a user above the sender; allows up to the sender level', () => {
      const room = modRoom();
      room.join('@dave:d');
      expectRefused(change(room, BOB, { ...base, users: { ...base.users, '@dave:d': 51 } }), 'insufficient_power');
      expect(change(room, BOB, { ...base, users: { ...base.users, '@dave:d': 50 } })).toEqual({ ok: true });
    });
  });

  describe('redactions', () => {
    it('are authorized like any event (rule 10), gated by events levels only', () => {
      const room = roomWithMembers(version);
      const target = room.put(CAROL, 'm.room.message', { body: 'x' });
      expect(room.send(room.event(BOB, 'm.room.redaction', {}, { redacts: target }))).toEqual({ ok: true });
      room.put(
        ALICE,
        'm.room.power_levels',
        { users: { [ALICE]: 100 }, events: { 'm.room.redaction': 10 } },
        { stateKey: '' },
      );
      expectRefused(room.send(room.event(BOB, 'm.room.redaction', {}, { redacts: target })), 'insufficient_power');
    });
    it('apply when the sender has the redact level or is on the target sender server', () => {
      const room = roomWithMembers(version);
      const target = room.put(CAROL, 'm.room.message', { body: 'x' });
      const state = authStateOf([...room.state.values()].map((id) => room.events.get(id)!));
      const byBob = room.event(BOB, 'm.room.redaction', {}, { redacts: target });
      expectRefused(redactionAllowed(version, byBob, room.events.get(target)!, state), 'insufficient_power');
      const byAlice = room.event(ALICE, 'm.room.redaction', {}, { redacts: target });
      expect(redactionAllowed(version, byAlice, room.events.get(target)!, state)).toEqual({ ok: true });
      const byCarolsServer = room.event(CAROL, 'm.room.redaction', {}, { redacts: target });
      expect(redactionAllowed(version, byCarolsServer, room.events.get(target)!, state)).toEqual({ ok: true });
    });
  });
});

describe('the creator differs between versions', () => {
  it('v10 takes the creator from content.creator, v11 from the sender', () => {
    const v10 = TestRoom.create('10', ALICE, { creatorJoins: false, createContent: { creator: '@alex:a' } });
    const v10Join = v10.event(
      '@alex:a',
      'm.room.member',
      { membership: 'join' },
      { stateKey: '@alex:a', prevEvents: [v10.createId] },
    );
    expect(v10.check(v10Join)).toEqual({ ok: true });
    // Alice's own join (made by TestRoom.create) only passes in v11.
    const aliceJoin = v10.event(
      ALICE,
      'm.room.member',
      { membership: 'join' },
      { stateKey: ALICE, prevEvents: [v10.createId] },
    );
    expect(checkAuth('10', aliceJoin, authStateOf([v10.events.get(v10.createId)!]))).toMatchObject({ ok: false });
    const v11 = TestRoom.create('11', ALICE, { creatorJoins: false, createContent: { creator: '@alex:a' } });
    const v11Join = v11.event(
      '@alex:a',
      'm.room.member',
      { membership: 'join' },
      { stateKey: '@alex:a', prevEvents: [v11.createId] },
    );
    expectRefused(v11.check(v11Join), 'join_not_allowed');
    const v11Alice = v11.event(
      ALICE,
      'm.room.member',
      { membership: 'join' },
      { stateKey: ALICE, prevEvents: [v11.createId] },
    );
    expect(v11.check(v11Alice)).toEqual({ ok: true });
  });
});

describe('hostile input', () => {
  it('checkAuth and checkAuthEvents answer (never throw) for any event and auth state', () => {
    const versioned = fc.constantFrom('10' as const, '11' as const);
    const member = fc.record({ user: fc.constantFrom(ALICE, BOB, '@u:a'), membership: jsonValue });
    fc.assert(
      fc.property(
        versioned,
        pdu,
        fc.array(pdu, { maxLength: 6 }),
        fc.array(member, { maxLength: 3 }),
        (v, event, state, members) => {
          const authEvents = state.map((e, i) => ({ ...e, state_key: e.state_key ?? String(i) }));
          for (const { user, membership } of members) {
            authEvents.push({ ...event, type: 'm.room.member', state_key: user, content: { membership } });
          }
          const create = { ...event, type: 'm.room.create', state_key: '', content: { room_version: v } };
          for (const auth of [authStateOf(authEvents), authStateOf([create, ...authEvents])]) {
            const result = checkAuth(v, event, auth);
            expect(typeof result.ok).toBe('boolean');
          }
          expect(typeof checkAuthEvents(v, event, authEvents).ok).toBe('boolean');
        },
      ),
    );
  });
  it('refuses events that are not PDUs, and survives state events with broken content', () => {
    const room = roomWithMembers('11');
    const message = room.event(BOB, 'm.room.message', { body: 'x' });
    const state = authStateOf([...room.state.values()].map((id) => room.events.get(id)!));
    for (const broken of [{ content: 5 }, { sender: 5 }, { prev_events: null }, { state_key: 1 }]) {
      expectRefused(checkAuth('11', { ...message, ...broken } as unknown as Pdu, state), 'invalid_event');
    }
    fc.assert(
      fc.property(jsonValue, jsonValue, (content, other) => {
        const spoiled = new Map(state);
        let i = 0;
        for (const [key, event] of state) spoiled.set(key, { ...event, content: (i++ % 2 ? content : other) as never });
        expect(typeof checkAuth('11', message, spoiled).ok).toBe('boolean');
        const member = room.event(BOB, 'm.room.member', { membership: content } as never, { stateKey: BOB });
        expect(typeof checkAuth('11', member, spoiled).ok).toBe('boolean');
      }),
    );
  });
});
