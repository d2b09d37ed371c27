// buildEvent: prev_events, depth and auth_events as the spec chooses them.
import { describe, expect, it } from 'vitest';
import { buildEvent, MAX_DEPTH } from './build.js';
import { InvalidEventTemplateError } from './errors.js';
import { TestRoom } from './testing/room.js';
import { stateKeyOf, type Pdu, type RoomEvent } from './types.js';

const ALICE = '@alice:a';

describe('buildEvent', () => {
  const room = TestRoom.create('11', ALICE);
  room.join('@bob:b');
  const extremity = (): RoomEvent[] => {
    const last = [...room.events.entries()].at(-1)!;
    return [{ eventId: last[0], pdu: last[1] }];
  };
  const input = { version: '11' as const, roomId: room.roomId, originServerTs: 7, state: room.state };

  it('takes prev events, depth one above the deepest, auth events from the state', () => {
    const prev = extremity();
    const other: RoomEvent = { eventId: '$deep', pdu: { ...prev[0]!.pdu, depth: 40 } as Pdu };
    const template = buildEvent({
      ...input,
      sender: '@bob:b',
      type: 'm.room.message',
      content: { body: 'x' },
      prevEvents: [...prev, other],
    });
    expect(template.prev_events).toEqual([prev[0]!.eventId, '$deep']);
    expect(template.depth).toBe(41);
    expect(new Set(template.auth_events)).toEqual(
      new Set([
        room.createId,
        room.state.get(stateKeyOf('m.room.power_levels', '')),
        room.state.get(stateKeyOf('m.room.member', '@bob:b')),
      ]),
    );
    expect(template).not.toHaveProperty('state_key');
    expect(template).not.toHaveProperty('hashes');
  });
  it('skips auth events the state lacks (a first join has no membership yet) and adds the join rules for joins', () => {
    const template = buildEvent({
      ...input,
      sender: '@carol:c',
      type: 'm.room.member',
      stateKey: '@carol:c',
      content: { membership: 'join' },
      prevEvents: extremity(),
    });
    expect(template.auth_events).toHaveLength(3);
    expect(template.auth_events).toContain(room.state.get(stateKeyOf('m.room.join_rules', '')));
  });
  it('caps depth at the largest canonical JSON integer', () => {
    const deep: RoomEvent = { eventId: '$d', pdu: { ...extremity()[0]!.pdu, depth: MAX_DEPTH } as Pdu };
    expect(buildEvent({ ...input, sender: ALICE, type: 'm.room.message', content: {}, prevEvents: [deep] }).depth).toBe(
      MAX_DEPTH,
    );
  });
  it('puts redacts at the top level in v10 and into content in v11', () => {
    const v11 = buildEvent({
      ...input,
      sender: ALICE,
      type: 'm.room.redaction',
      content: { reason: 'r' },
      redacts: '$t',
      prevEvents: extremity(),
    });
    expect(v11.content).toEqual({ reason: 'r', redacts: '$t' });
    expect(v11).not.toHaveProperty('redacts');
    const v10 = buildEvent({
      ...input,
      version: '10',
      sender: ALICE,
      type: 'm.room.redaction',
      content: {},
      redacts: '$t',
      prevEvents: extremity(),
    });
    expect(v10.redacts).toBe('$t');
    expect(v10.content).toEqual({});
  });
  it('makes a create event with depth 1 and no prev or auth events', () => {
    const create = buildEvent({
      ...input,
      state: new Map(),
      sender: ALICE,
      type: 'm.room.create',
      stateKey: '',
      content: { room_version: '11' },
      prevEvents: [],
    });
    expect(create).toMatchObject({ depth: 1, prev_events: [], auth_events: [] });
  });
  it('refuses templates that cannot become valid events', () => {
    const build = (over: Partial<Parameters<typeof buildEvent>[0]>) => () =>
      buildEvent({ ...input, sender: ALICE, type: 'm.room.message', content: {}, prevEvents: extremity(), ...over });
    expect(build({ prevEvents: [] })).toThrow(InvalidEventTemplateError);
    expect(build({ prevEvents: Array.from({ length: 21 }, () => extremity()[0]!) })).toThrow(/at most 20/);
    expect(build({ state: new Map() })).toThrow(/no m.room.create/);
    expect(build({ type: 'm.room.redaction' })).toThrow(/redacts/);
    expect(build({ type: 'm.room.create', stateKey: '' })).toThrow(/no prev_events/);
  });
});
