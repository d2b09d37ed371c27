// What an operator does to an account, on any home that hosts it: end its presence in rooms, find and delete its
// devices. Every change is an op of this home (or a room event the engine records as one), so it replicates to
// every home of the account. No NestJS, no storage: the caller gives the narrow ports.
import type { JsonAccountState } from '@polyhome/sync';
import type { LocalChange } from './local-op-writer.js';

/** Memberships that keep a user in a room (or on its way in): what deactivating an account ends. */
const ACTIVE_MEMBERSHIPS: ReadonlySet<string> = new Set(['join', 'invite', 'knock']);

/** The room engine as account administration uses it (the `RoomEngine` of this package fits it). */
export interface AdminRoomEngine {
  holds(roomId: string): Promise<boolean>;
  membership(
    actor: { serverName: string; userId: string; deviceId: string },
    roomId: string,
    change: { action: 'leave'; reason?: string },
  ): Promise<{ eventId: string }>;
}

/** What `leaveAllRooms` needs of the home. */
export interface LeaveRoomsPorts {
  state(account: string): Promise<JsonAccountState>;
  applyLocal(account: string, changes: readonly LocalChange[]): Promise<unknown>;
  /** The room engine; without one, every room is left by its replicated membership alone. */
  rooms?: AdminRoomEngine | undefined;
}

/** What leaving did, room by room. */
export interface LeftRooms {
  /** Left through the room engine: a leave event was made (and recorded as a `member.set` op). */
  byEvent: string[];
  /** Held by no engine here: left by a `member.set` op, which the homes holding the room enact. */
  byOp: string[];
  /** Rooms the engine refused to leave, with its message (the membership is kept; say so to the operator). */
  failed: Array<{ roomId: string; error: string }>;
}

/** Device id the engine's actor carries when an operator acts (no device of the user makes the change). */
export const ADMIN_ACTOR_DEVICE = 'POLYHOME_ADMIN';

/** Rooms the account's user is in, invited to or knocking on, by its replicated memberships, in room-id order. */
export function activeRooms(state: JsonAccountState): string[] {
  return Object.entries(state.memberships)
    .filter(([, body]) => typeof body['membership'] === 'string' && ACTIVE_MEMBERSHIPS.has(body['membership']))
    .map(([roomId]) => roomId)
    .sort();
}

/**
 * Leaves every room of the account's user: through the room engine for rooms this home holds, else by a
 * `member.set` leave op (which every home holding the room enacts, as for a leave made on another home).
 * One room failing does not stop the others; failures are returned.
 */
export async function leaveAllRooms(
  ports: LeaveRoomsPorts,
  account: string,
  userId: string,
  reason: string,
): Promise<LeftRooms> {
  const left: LeftRooms = { byEvent: [], byOp: [], failed: [] };
  const actor = { serverName: account, userId, deviceId: ADMIN_ACTOR_DEVICE };
  const byOp: LocalChange[] = [];
  for (const roomId of activeRooms(await ports.state(account))) {
    if (ports.rooms !== undefined && (await ports.rooms.holds(roomId))) {
      try {
        await ports.rooms.membership(actor, roomId, { action: 'leave', reason });
        left.byEvent.push(roomId);
      } catch (err) {
        left.failed.push({ roomId, error: err instanceof Error ? err.message : String(err) });
      }
    } else {
      byOp.push({ op: 'member.set', key: roomId, body: { room_id: roomId, membership: 'leave' } });
      left.byOp.push(roomId);
    }
  }
  if (byOp.length > 0) await ports.applyLocal(account, byOp);
  return left;
}

/** The room engine as deleting a room uses it: leaves, then forgets, for each user hosted here. */
export interface AdminRoomClearing extends AdminRoomEngine {
  forget(actor: { serverName: string; userId: string; deviceId: string }, roomId: string): Promise<void>;
}

/** What clearing a room did, user by user. */
export interface ClearedRoom {
  /** Users who left (a leave event each, recorded as their account's membership). */
  left: string[];
  /** Users who forgot the room (after leaving it, or having left it before). */
  forgotten: string[];
  /** Users the engine refused to take out, with its message. */
  failed: Array<{ userId: string; error: string }>;
}

/**
 * Takes the users of accounts hosted here out of a room, as an operator deleting it does: each one joined,
 * invited or knocking leaves through the engine (with `reason`), and each one that was ever in it forgets it.
 * Users of other accounts are untouched. One user failing does not stop the others.
 */
export async function clearRoom(
  engine: AdminRoomClearing,
  roomId: string,
  members: ReadonlyArray<{ serverName: string; userId: string; membership: string }>,
  reason: string,
): Promise<ClearedRoom> {
  const cleared: ClearedRoom = { left: [], forgotten: [], failed: [] };
  for (const member of [...members].sort((a, b) => (a.userId < b.userId ? -1 : 1))) {
    const actor = { serverName: member.serverName, userId: member.userId, deviceId: ADMIN_ACTOR_DEVICE };
    try {
      if (ACTIVE_MEMBERSHIPS.has(member.membership)) {
        await engine.membership(actor, roomId, { action: 'leave', reason });
        cleared.left.push(member.userId);
      }
      await engine.forget(actor, roomId);
      cleared.forgotten.push(member.userId);
    } catch (err) {
      cleared.failed.push({ userId: member.userId, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return cleared;
}

/** The account's devices that `homeId` hosts (logged in there), by the `home` their replicated body names. */
export function devicesOfHome(state: JsonAccountState, homeId: string): string[] {
  return Object.entries(state.devices)
    .filter(([, body]) => body['home'] === homeId)
    .map(([deviceId]) => deviceId)
    .sort();
}

/** The `device.delete` ops deleting these devices, for those the state holds (deleting twice changes nothing). */
export function deviceDeletions(state: JsonAccountState, deviceIds: readonly string[]): LocalChange[] {
  return [...new Set(deviceIds)]
    .filter((id) => state.devices[id] !== undefined)
    .map((id) => ({ op: 'device.delete', key: id, body: {} }));
}
