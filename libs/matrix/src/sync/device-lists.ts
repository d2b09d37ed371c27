import type { MatrixRoomsPort, RoomActor, RoomEventView, RoomSyncEntry } from '../rooms/rooms-port.js';

/**
 * Users of other accounts whose device list or cross-signing keys changed, as the home marked them (`user_keys:<user
 * id>`, from an `m.device_list_update` of a home of theirs): the client queries their keys again.
 */
export function otherUsersChanged(changed: string[] | 'expired' | undefined): string[] {
  if (changed === undefined || changed === 'expired') return [];
  return [...new Set(changed.filter((k) => k.startsWith('user_keys:')).map((k) => k.slice('user_keys:'.length)))];
}

/**
 * `device_lists.left` of an incremental /sync: the users who no longer share an encrypted room with the syncing
 * user, among those a change in `entries` (the rooms with events since `since`) could have parted from it: members
 * who left or were banned from an encrypted room, and every member of an encrypted room the user itself left. Each
 * is checked against the members joined now to the user's joined encrypted rooms (a user who left one room but is
 * still in another encrypted room with the user is not left).
 */
export async function usersLeft(
  rooms: Pick<MatrixRoomsPort, 'joinedRooms' | 'members' | 'stateEvent'>,
  actor: RoomActor,
  entries: readonly RoomSyncEntry[],
): Promise<string[]> {
  const encrypted = async (roomId: string, events: readonly RoomEventView[]): Promise<boolean> => {
    if (events.some((e) => e.pdu.type === ENCRYPTION && e.pdu.state_key === '')) return true;
    try {
      return (await rooms.stateEvent(actor, roomId, ENCRYPTION, '')) !== null;
    } catch {
      return false;
    }
  };
  const candidates = new Set<string>();
  for (const entry of entries) {
    const events = [...entry.state, ...entry.timeline];
    const parted =
      entry.membership === 'leave' || entry.membership === 'ban'
        ? await membersOf(rooms, actor, entry.roomId)
        : events.filter((e) => isMember(e) && ['leave', 'ban'].includes(membershipOf(e))).map((e) => e.pdu.state_key!);
    const others = parted.filter((u) => u !== actor.userId);
    if (others.length > 0 && (await encrypted(entry.roomId, events))) for (const u of others) candidates.add(u);
  }
  if (candidates.size === 0) return [];
  for (const roomId of await rooms.joinedRooms(actor)) {
    if (!(await encrypted(roomId, []))) continue;
    for (const e of await rooms.members(actor, roomId)) {
      if (membershipOf(e) === 'join') candidates.delete(e.pdu.state_key!);
    }
    if (candidates.size === 0) return [];
  }
  return [...candidates];
}

/**
 * Users who newly share an encrypted room with the syncing user, for `device_lists.changed` of an incremental
 * /sync, from `entries` (the rooms with events since `since`) of rooms the user is joined to: members who joined
 * or were invited since `sinceRoom` (the token's room position; undefined: every event counts), and every joined or
 * invited member of a room the user joined, or that turned encrypted, since then. Whether they already shared
 * another encrypted room with the user before is not checked (see docs/decisions.md); the user is never listed.
 */
export async function usersNewlyShared(
  rooms: Pick<MatrixRoomsPort, 'members' | 'stateEvent'>,
  actor: RoomActor,
  entries: readonly RoomSyncEntry[],
  sinceRoom: number | undefined,
): Promise<string[]> {
  const isNew = (e: RoomEventView) =>
    sinceRoom === undefined || (e.streamOrdering !== null && e.streamOrdering > sinceRoom);
  const found = new Set<string>();
  for (const entry of entries) {
    if (entry.membership !== 'join') continue;
    const events = [...entry.state, ...entry.timeline].filter(isNew);
    const whole = events.some(
      (e) =>
        (e.pdu.type === ENCRYPTION && e.pdu.state_key === '') ||
        (isMember(e) && e.pdu.state_key === actor.userId && membershipOf(e) === 'join'),
    );
    const joined = events.filter((e) => isMember(e) && SHARING.includes(membershipOf(e))).map((e) => e.pdu.state_key!);
    if (!whole && joined.length === 0) continue;
    const encrypted = await rooms.stateEvent(actor, entry.roomId, ENCRYPTION, '').catch(() => null);
    if (encrypted === null) continue;
    const members = whole
      ? (await rooms.members(actor, entry.roomId))
          .filter((e) => SHARING.includes(membershipOf(e)))
          .map((e) => e.pdu.state_key!)
      : joined;
    for (const u of members) if (u !== actor.userId) found.add(u);
  }
  return [...found];
}

/** Memberships that share a room's keys: clients encrypt for invited members too. */
const SHARING = ['join', 'invite'];

const ENCRYPTION = 'm.room.encryption';

/** The users joined to a room the user left, as its last seen state says (none when it cannot be read). */
async function membersOf(rooms: Pick<MatrixRoomsPort, 'members'>, actor: RoomActor, roomId: string): Promise<string[]> {
  try {
    return (await rooms.members(actor, roomId)).filter((e) => membershipOf(e) === 'join').map((e) => e.pdu.state_key!);
  } catch {
    return [];
  }
}

function isMember(e: RoomEventView): boolean {
  return e.pdu.type === 'm.room.member' && typeof e.pdu.state_key === 'string';
}

function membershipOf(e: RoomEventView): string {
  const membership = (e.pdu.content as { membership?: unknown } | undefined)?.membership;
  return typeof membership === 'string' ? membership : '';
}
