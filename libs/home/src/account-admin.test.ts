import { emptyState, type JsonAccountState } from '@polyhome/sync';
import { describe, expect, it } from 'vitest';
import {
  activeRooms,
  ADMIN_ACTOR_DEVICE,
  deviceDeletions,
  devicesOfHome,
  leaveAllRooms,
  type AdminRoomEngine,
} from './account-admin.js';
import type { LocalChange } from './local-op-writer.js';

const ACCOUNT = 'a'.repeat(64);
const USER = `@u:${ACCOUNT}`;

function stateWith(memberships: Record<string, string>, devices: Record<string, string> = {}): JsonAccountState {
  const state = emptyState<Record<string, unknown>>() as JsonAccountState;
  for (const [roomId, membership] of Object.entries(memberships))
    state.memberships[roomId] = { room_id: roomId, membership };
  for (const [deviceId, home] of Object.entries(devices)) state.devices[deviceId] = { device_id: deviceId, home };
  return state;
}

describe('account administration shared by the homes', () => {
  it('finds the rooms a user is in, invited to or knocking on, in room-id order', () => {
    const state = stateWith({ '!c:x': 'join', '!a:x': 'invite', '!b:x': 'leave', '!d:x': 'ban', '!e:x': 'knock' });
    expect(activeRooms(state)).toEqual(['!a:x', '!c:x', '!e:x']);
  });

  it('leaves held rooms through the engine, the others by one member.set op, and reports refusals', async () => {
    const state = stateWith({ '!held:x': 'join', '!refused:x': 'join', '!elsewhere:x': 'invite', '!gone:x': 'leave' });
    const calls: Array<[string, string, string | undefined]> = [];
    const rooms: AdminRoomEngine = {
      holds: (roomId) => Promise.resolve(roomId !== '!elsewhere:x'),
      membership: (actor, roomId, change) => {
        calls.push([actor.deviceId, roomId, change.reason]);
        if (roomId === '!refused:x') return Promise.reject(new Error('not allowed'));
        return Promise.resolve({ eventId: '$e' });
      },
    };
    const applied: LocalChange[][] = [];
    const left = await leaveAllRooms(
      {
        state: () => Promise.resolve(state),
        applyLocal: (_account, changes) => Promise.resolve(applied.push([...changes])),
        rooms,
      },
      ACCOUNT,
      USER,
      'spam',
    );
    expect(left).toEqual({
      byEvent: ['!held:x'],
      byOp: ['!elsewhere:x'],
      failed: [{ roomId: '!refused:x', error: 'not allowed' }],
    });
    expect(calls).toEqual([
      [ADMIN_ACTOR_DEVICE, '!held:x', 'spam'],
      [ADMIN_ACTOR_DEVICE, '!refused:x', 'spam'],
    ]);
    expect(applied).toEqual([
      [{ op: 'member.set', key: '!elsewhere:x', body: { room_id: '!elsewhere:x', membership: 'leave' } }],
    ]);
  });

  it('without an engine, leaves every room by op; with no room, writes nothing', async () => {
    const applied: LocalChange[][] = [];
    const ports = (state: JsonAccountState) => ({
      state: () => Promise.resolve(state),
      applyLocal: (_a: string, changes: readonly LocalChange[]) => Promise.resolve(applied.push([...changes])),
    });
    const none = await leaveAllRooms(ports(stateWith({})), ACCOUNT, USER, 'r');
    expect([none, applied]).toEqual([{ byEvent: [], byOp: [], failed: [] }, []]);
    const some = await leaveAllRooms(ports(stateWith({ '!r:x': 'join' })), ACCOUNT, USER, 'r');
    expect(some.byOp).toEqual(['!r:x']);
    expect(applied).toHaveLength(1);
  });

  it('names the devices a home hosts and deletes only devices the state holds, once each', () => {
    const state = stateWith({}, { PHONE: 'home-a', LAPTOP: 'home-b', TABLET: 'home-a' });
    expect(devicesOfHome(state, 'home-a')).toEqual(['PHONE', 'TABLET']);
    expect(devicesOfHome(state, 'home-c')).toEqual([]);
    expect(deviceDeletions(state, ['PHONE', 'PHONE', 'NOSUCH'])).toEqual([
      { op: 'device.delete', key: 'PHONE', body: {} },
    ]);
  });
});
