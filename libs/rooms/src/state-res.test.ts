import { describe, expect, it } from 'vitest';
import { resolveState, isPowerEvent, splitConflicts } from './state-res.js';
import { AuthChainTooLargeError } from './auth-chain.js';
import { checkAuth } from './auth.js';
import { simpleCheckAuth } from './testing/simple-auth.js';
import {
  ALICE,
  BOB,
  CHARLIE,
  EVELYN,
  TestDag,
  membership,
  powerLevels,
  startRoom,
  stateEvent,
  topic,
  type EventSpec,
} from './testing/dag.js';
import { stateKeyOf, type AuthCheck, type Pdu, type RoomVersionId, type StateMap } from './types.js';

const PL = stateKeyOf('m.room.power_levels', '');
const TOPIC = stateKeyOf('m.room.topic', '');
const JOIN_RULES = stateKeyOf('m.room.join_rules', '');
const member = (user: string) => stateKeyOf('m.room.member', user);

const CHECKERS: [string, AuthCheck][] = [
  ['the auth rules', checkAuth],
  ['the stand-in auth rules', simpleCheckAuth],
];
const VERSIONS: RoomVersionId[] = ['10', '11'];

/** A room started by `startRoom` with the events `specs` gives on top of its last event. */
async function scenario(
  version: RoomVersionId,
  check: AuthCheck,
  specs: (start: string) => EventSpec[],
): Promise<TestDag> {
  const dag = new TestDag(version, check);
  await dag.addAll(specs(await startRoom(dag)));
  return dag;
}

/** Resolves at the tips in both orders and checks that the order of the state sets does not matter. */
async function resolveBothWays(dag: TestDag, tips: string[]): Promise<StateMap> {
  const forward = await dag.resolveAt(tips);
  const backward = await dag.resolveAt([...tips].reverse());
  expect(backward).toEqual(forward);
  return forward;
}

describe.each(CHECKERS)('state resolution v2 on the classic scenarios (%s)', (_name, check) => {
  describe.each(VERSIONS)('room version %s', (version) => {
    it('a ban wins over a power levels event the banned user sent concurrently', async () => {
      const dag = await scenario(version, check, (start) => [
        powerLevels('$PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, [start]),
        membership('$MB', ALICE, BOB, 'ban', ['$PA']),
        powerLevels('$PB', BOB, { users: { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 50 } }, ['$PA']),
      ]);
      // Power events $PA, $MB and $PB, with $IMB (Bob's join, conflicted with the ban and an auth event of
      // both) pulled in as an auth ancestor in the full conflicted set. Kahn: $PA and $IMB have no parents
      // there; $PA's sender has 100, $IMB's 0, so $PA, $IMB, then $MB (Alice, 100) before $PB (Bob, 50).
      // The ban applies; Bob's power levels event is then checked with Bob banned and fails.
      const state = await resolveBothWays(dag, ['$MB', '$PB']);
      expect(state.get(PL)).toBe('$PA');
      expect(state.get(member(BOB))).toBe('$MB');
    });

    it('a topic set by a user who is banned on another branch is reset to the older topic', async () => {
      const dag = await scenario(version, check, (start) => [
        topic('$T1', ALICE, [start]),
        powerLevels('$PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$T1']),
        topic('$T2', BOB, ['$PA']),
        membership('$MB', ALICE, BOB, 'ban', ['$T2']),
      ]);
      // The other branch ends at $T1. The power events ($IPOWER, $PA, $MB with $IMB) resolve to $PA and the
      // ban. Mainline of $PA is [$PA, $IPOWER]: $T1 hangs off $IPOWER (position 1), $T2 off $PA (position
      // 2), so $T1 is checked first and passes, then $T2 fails because Bob is banned in the resolved state.
      const state = await resolveBothWays(dag, ['$MB', '$T1']);
      expect(state.get(TOPIC)).toBe('$T1');
      expect(state.get(PL)).toBe('$PA');
      expect(state.get(member(BOB))).toBe('$MB');
    });

    it('a join concurrent with a switch to invite-only is refused (join rule evasion)', async () => {
      const dag = await scenario(version, check, (start) => [
        stateEvent('$JR', ALICE, 'm.room.join_rules', { join_rule: 'invite' }, [start]),
        membership('$ME', EVELYN, EVELYN, 'join', [start]),
      ]);
      // The join rules events are power events and are applied first ($IJR, then $JR); Evelyn's join comes
      // in the mainline step and is checked with the resolved join rules, invite, and she was not invited.
      const state = await resolveBothWays(dag, ['$JR', '$ME']);
      expect(state.get(JOIN_RULES)).toBe('$JR');
      expect(state.has(member(EVELYN))).toBe(false);
    });

    it('a chain of power levels events on one branch is replayed whole (offtopic power levels)', async () => {
      const dag = await scenario(version, check, (start) => [
        powerLevels('$PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, [start]),
        powerLevels('$PB', BOB, { users: { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 50 } }, ['$PA']),
        powerLevels('$PC', CHARLIE, { users: { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 0 } }, ['$PB']),
      ]);
      // Conflicted: $PA against $PC; $PB is in the auth difference (in $PC's chain only). Each one's parent
      // is the one before, so the order is $PA, $PB, $PC whatever the senders' levels, and each passes.
      const state = await resolveBothWays(dag, ['$PC', '$PA']);
      expect(state.get(PL)).toBe('$PC');
    });

    it('a demotion wins over the demoted user, and the older topic survives (topic basic)', async () => {
      const dag = await scenario(version, check, (start) => [
        topic('$T1', ALICE, [start]),
        powerLevels('$PA1', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$T1']),
        topic('$T2', ALICE, ['$PA1']),
        powerLevels('$PA2', ALICE, { users: { [ALICE]: 100, [BOB]: 0 } }, ['$T2']),
        powerLevels('$PB', BOB, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$PA1']),
        topic('$T3', BOB, ['$PB']),
      ]);
      // $PA2 (Alice, 100) sorts before $PB (Bob, 50); after $PA2 Bob has 0 and his $PB fails. Mainline of
      // $PA2 is [$PA2, $PA1, $IPOWER]; $T2 hangs off $PA1 and $T3 off $PB, whose own power levels parent is
      // $PA1: both at position 2, so the earlier $T2 goes first; $T3 then fails (Bob has 0, topic needs 50).
      const state = await resolveBothWays(dag, ['$PA2', '$T3']);
      expect(state.get(PL)).toBe('$PA2');
      expect(state.get(TOPIC)).toBe('$T2');
    });

    it('a topic sent after a merge wins over the topic resolved in the merge', async () => {
      const dag = await scenario(version, check, (start) => [
        topic('$T1', ALICE, [start]),
        powerLevels('$PA1', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$T1']),
        topic('$T2', ALICE, ['$PA1']),
        powerLevels('$PA2', ALICE, { users: { [ALICE]: 100, [BOB]: 0 } }, ['$T2']),
        powerLevels('$PB', BOB, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$PA1']),
        topic('$T3', BOB, ['$PB']),
        {
          name: '$MZ',
          sender: CHARLIE,
          type: 'm.room.message',
          content: { body: 'merge' },
          prev: ['$PA2', '$T3'],
        },
        topic('$T4', ALICE, ['$MZ']),
      ]);
      // At $MZ the state is the one of the previous scenario ($T2, $PA2). Between $T4 and $MZ only the topic
      // conflicts: $T4 hangs off $PA2 (position 3), $T2 off $PA1 (position 2), so $T4 is applied last.
      expect(dag.names(await dag.stateBefore(['$PA2', '$T3'])).get(TOPIC)).toBe('$T2');
      const state = await resolveBothWays(dag, ['$T4', '$MZ']);
      expect(state.get(TOPIC)).toBe('$T4');
      expect(state.get(PL)).toBe('$PA2');
    });

    it('mainline ordering picks the topic based on the newer power levels over a later timestamp', async () => {
      const dag = new TestDag(version, check);
      const start = await startRoom(dag);
      const raised = { users: { [ALICE]: 100, [BOB]: 50 }, events: { 'm.room.power_levels': 100 } };
      await dag.addAll([
        topic('$T1', ALICE, [start]),
        powerLevels('$PA1', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$T1']),
        topic('$T2', ALICE, ['$PA1']),
        powerLevels('$PA2', ALICE, raised, ['$T2']),
        topic('$T3', BOB, ['$PA2']),
        powerLevels('$PB', BOB, { users: { [ALICE]: 100, [BOB]: 50 } }, ['$PA1']),
        topic('$T4', ALICE, ['$PB']),
      ]);
      // $PB fails after $PA2 (power levels now need 100). $T4 is newer than $T3 but hangs off $PB, which
      // is off the mainline and whose power levels parent is $PA1 (position 2); $T3 hangs off $PA2
      // (position 3). $T4 is applied first, $T3 last: without mainline ordering $T4 would win.
      expect(dag.get('$T4').origin_server_ts).toBeGreaterThan(dag.get('$T3').origin_server_ts);
      const state = await resolveBothWays(dag, ['$T3', '$T4']);
      expect(state.get(TOPIC)).toBe('$T3');
      expect(state.get(PL)).toBe('$PA2');
    });

    it('a demotion sorts before a kick by the demoted user, which then fails', async () => {
      const dag = await scenario(version, check, (start) => [
        powerLevels('$PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, [start]),
        powerLevels('$PD', ALICE, { users: { [ALICE]: 100, [BOB]: 0 } }, ['$PA']),
        membership('$KC', BOB, CHARLIE, 'leave', ['$PA']),
      ]);
      // Both are power events with $PA as their parent: $PD's sender has 100, $KC's 50, so $PD goes first
      // even though $KC is not older. With Bob at 0 the kick (kick level 50) fails: Charlie stays.
      const state = await resolveBothWays(dag, ['$KC', '$PD']);
      expect(state.get(PL)).toBe('$PD');
      expect(state.get(member(CHARLIE))).toBe('$IMC');
    });

    it('events tied on mainline position and timestamp are ordered by event id', async () => {
      const ts = 1_800_000_000_000;
      const dag = await scenario(version, check, (start) => [
        { ...topic('$TX', ALICE, [start]), ts },
        { ...topic('$TY', ALICE, [start]), ts },
      ]);
      // Same mainline position ($IPOWER), same timestamp: the smaller id is applied first, the larger wins.
      const winner = dag.id('$TX') > dag.id('$TY') ? '$TX' : '$TY';
      expect((await resolveBothWays(dag, ['$TX', '$TY'])).get(TOPIC)).toBe(winner);
    });

    it('a kick is a power event: it is applied before a concurrent topic from the kicked user', async () => {
      const dag = await scenario(version, check, (start) => [
        powerLevels('$PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, [start]),
        membership('$KB', ALICE, BOB, 'leave', ['$PA']),
        topic('$TB', BOB, ['$PA']),
      ]);
      // $KB (a leave by someone else) is a power event and applies first; Bob's topic, checked next with Bob
      // no longer in the room, fails: the topic stays unset.
      expect(isPowerEvent(dag.get('$KB'))).toBe(true);
      const state = await resolveBothWays(dag, ['$KB', '$TB']);
      expect(state.get(member(BOB))).toBe('$KB');
      expect(state.has(TOPIC)).toBe(false);
    });
  });
});

describe('resolveState', () => {
  it('returns the only state set as it is, and the union when nothing conflicts, without reading events', async () => {
    const lookup = {
      getEvents: () => Promise.reject(new Error('must not be read')),
    };
    const a = new Map([
      ['k1', '$a'],
      ['k2', '$b'],
    ]);
    expect(new Map(await resolveState('11', [a], lookup, simpleCheckAuth))).toEqual(a);
    expect(new Map(await resolveState('11', [a, new Map(a)], lookup, simpleCheckAuth))).toEqual(a);
    expect((await resolveState('11', [], lookup, simpleCheckAuth)).size).toBe(0);
  });

  it('refuses a room version it does not implement', async () => {
    const lookup = { getEvents: () => Promise.resolve(new Map<string, Pdu>()) };
    await expect(resolveState('9' as RoomVersionId, [new Map(), new Map()], lookup, simpleCheckAuth)).rejects.toThrow(
      /room versions 10 and 11/,
    );
  });

  it('never uses a rejected event as an auth event', async () => {
    const dag = new TestDag('11', checkAuth);
    const start = await startRoom(dag);
    await dag.addAll([
      powerLevels('$PA', ALICE, { users: { [ALICE]: 100, [BOB]: 50 } }, [start]),
      topic('$TA', ALICE, ['$PA']),
      topic('$TB', BOB, ['$PA']),
    ]);
    const stateSets = [dag.stateAfter.get(dag.id('$TA')) as StateMap, dag.stateAfter.get(dag.id('$TB')) as StateMap];
    // Both topics hang off $PA; $TA is older, so $TB is applied last and wins.
    expect(dag.names(await resolveState('11', stateSets, dag, checkAuth)).get(TOPIC)).toBe('$TB');
    // Were Bob's join rejected, neither $TB's auth events nor the resolved state could show Bob in the room.
    const isRejected = (id: string) => id === dag.id('$IMB');
    const rejected = await resolveState('11', stateSets, dag, checkAuth, { isRejected });
    expect(dag.names(rejected).get(TOPIC)).toBe('$TA');
  });

  it('leaves out conflicted events the store does not hold', async () => {
    const dag = new TestDag('11', checkAuth);
    const start = await startRoom(dag);
    await dag.add(topic('$TA', ALICE, [start]));
    const held = dag.stateAfter.get(dag.id('$TA')) as StateMap;
    const unknown = new Map(held).set(TOPIC, '$not-held');
    const state = await resolveState('11', [unknown, held], dag, checkAuth);
    expect(dag.names(state).get(TOPIC)).toBe('$TA');
  });

  it('passes the auth chain bound on and fails rather than walk past it', async () => {
    const dag = new TestDag('11', checkAuth);
    const start = await startRoom(dag);
    await dag.addAll([topic('$TA', ALICE, [start]), topic('$TB', ALICE, [start])]);
    const stateSets = [dag.stateAfter.get(dag.id('$TA')) as StateMap, dag.stateAfter.get(dag.id('$TB')) as StateMap];
    await expect(resolveState('11', stateSets, dag, checkAuth, { maxEvents: 2 })).rejects.toThrow(
      AuthChainTooLargeError,
    );
  });

  it('splits keys missing from one state set into the conflicted set', () => {
    const { unconflicted, conflicted } = splitConflicts([
      new Map([
        ['a', '$1'],
        ['b', '$2'],
      ]),
      new Map([
        ['a', '$1'],
        ['b', '$3'],
        ['c', '$4'],
      ]),
    ]);
    expect(unconflicted).toEqual(new Map([['a', '$1']]));
    expect(conflicted).toEqual(
      new Map([
        ['b', new Set(['$2', '$3'])],
        ['c', new Set(['$4'])],
      ]),
    );
  });
});
