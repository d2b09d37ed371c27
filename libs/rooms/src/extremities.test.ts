import { describe, expect, it } from 'vitest';
import { checkAuth } from './auth.js';
import { MissingPrevStateError, nextForwardExtremities, stateAfterEvent, stateBeforeEvent } from './extremities.js';
import { ALICE, BOB, TestDag, startRoom, topic } from './testing/dag.js';
import { stateKeyOf, type StateMap } from './types.js';

describe('nextForwardExtremities', () => {
  it('replaces the prev events by the new event', () => {
    expect(nextForwardExtremities(['$a', '$b', '$c'], { eventId: '$d', prevEvents: ['$a', '$b'] })).toEqual([
      '$c',
      '$d',
    ]);
    expect(nextForwardExtremities([], { eventId: '$create', prevEvents: [] })).toEqual(['$create']);
  });

  it('does not make an event that came late an extremity, and accepting it twice changes nothing', () => {
    const referenced = new Set(['$old']);
    const late = { eventId: '$old', prevEvents: ['$older'] };
    expect(nextForwardExtremities(['$new'], late, (id) => referenced.has(id))).toEqual(['$new']);
    const once = nextForwardExtremities(['$a'], { eventId: '$b', prevEvents: ['$a'] });
    expect(nextForwardExtremities(once, { eventId: '$b', prevEvents: ['$a'] })).toEqual(once);
  });
});

describe('stateBeforeEvent', () => {
  it('is empty for the create event, the prev state for one prev event, and resolved for several', async () => {
    const dag = new TestDag('11', checkAuth);
    await startRoom(dag);
    await dag.addAll([topic('$TA', ALICE, ['$IMC']), topic('$TB', ALICE, ['$IMC'])]);
    const stateAfter = (id: string) => Promise.resolve(dag.stateAfter.get(id));
    expect((await stateBeforeEvent('11', { prev_events: [] }, stateAfter, dag, checkAuth)).size).toBe(0);
    const one = await stateBeforeEvent('11', { prev_events: [dag.id('$TA')] }, stateAfter, dag, checkAuth);
    expect(one).toEqual(dag.stateAfter.get(dag.id('$TA')));
    const both = [dag.id('$TB'), dag.id('$TA'), dag.id('$TB')];
    const merged = await stateBeforeEvent('11', { prev_events: both }, stateAfter, dag, checkAuth);
    // Both topics hang off $IPOWER; $TB is the later one.
    expect(dag.names(merged).get(stateKeyOf('m.room.topic', ''))).toBe('$TB');
  });

  it('names the prev event whose state is missing', async () => {
    const stateAfter = () => Promise.resolve(undefined);
    const lookup = { getEvents: () => Promise.resolve(new Map()) };
    await expect(stateBeforeEvent('11', { prev_events: ['$gone'] }, stateAfter, lookup, checkAuth)).rejects.toThrow(
      MissingPrevStateError,
    );
  });
});

describe('stateAfterEvent', () => {
  it('adds a state event at its key and leaves the state alone for other events', async () => {
    const dag = new TestDag('11', checkAuth);
    await startRoom(dag);
    const before: StateMap = new Map(dag.stateAfter.get(dag.id('$IMC')));
    const message = { ...dag.get('$IMC'), type: 'm.room.message', content: { body: 'hi' } };
    delete message.state_key;
    expect(stateAfterEvent(before, '$m', message)).toBe(before);
    const after = stateAfterEvent(before, '$j', { ...dag.get('$IMB'), state_key: BOB });
    expect(after.get(stateKeyOf('m.room.member', BOB))).toBe('$j');
    expect(before.get(stateKeyOf('m.room.member', BOB))).toBe(dag.id('$IMB'));
  });
});
