import { Inject, Injectable } from '@nestjs/common';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { bodyOf, optionalString, optionalStringArray, type JsonRecord } from '../common/json.js';
import { randomToken } from '../common/random.js';
import { MATRIX_HOME_PORT, MATRIX_STORE, type MatrixHomePort, type MatrixStore } from '../port.js';
import { ChangeFeedService } from '../sync/change-feed.service.js';
import { ROOM_VERSION, referenceHash } from './room-events.js';

/** Room ids and user ids in paths: Matrix grammar, bounded. */
const ROOM_ID = /^![A-Za-z0-9._~=+/-]{1,200}:[A-Za-z0-9.:-]{1,255}$/;

/**
 * The account's own view of its rooms: each membership change is a `member.set` op carrying the signed
 * `m.room.member` event, so every home of the account shows it. Room events of other accounts are not
 * exchanged yet: a room is what this account made or was told of.
 */
@Injectable()
export class RoomsService {
  constructor(
    @Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort,
    @Inject(MATRIX_STORE) private readonly store: MatrixStore,
    private readonly feed: ChangeFeedService,
  ) {}

  /** POST /createRoom: a create event (stored on this home) and the creator's join (replicated). */
  async create(session: MatrixSession, input: unknown): Promise<{ room_id: string }> {
    const body = bodyOf(input);
    const invite = optionalStringArray(body, 'invite', 100) ?? [];
    const version = optionalString(body, 'room_version', 32);
    if (version !== undefined && version !== ROOM_VERSION) {
      throw new MatrixError('M_INVALID_PARAM', `Only room version ${ROOM_VERSION} can be made here.`);
    }
    const roomId = `!${randomToken(18)}:${session.serverName}`;
    const create = await this.makeEvent(
      session,
      roomId,
      'm.room.create',
      '',
      { creator: session.userId, room_version: ROOM_VERSION },
      [],
      [],
      1,
    );
    await this.store.saveRoomEvent(session.serverName, roomId, create);
    const createId = String(create['event_id']);
    const join = await this.makeEvent(
      session,
      roomId,
      'm.room.member',
      session.userId,
      { membership: 'join' },
      [createId],
      [createId],
      2,
    );
    await this.port.applyLocal(session.serverName, [
      { op: 'member.set', key: roomId, body: { room_id: roomId, membership: 'join', event: join } },
    ]);
    let prev = String(join['event_id']);
    for (const [i, userId] of invite.entries()) {
      if (userId === session.userId) continue;
      const event = await this.makeEvent(
        session,
        roomId,
        'm.room.member',
        userId,
        { membership: 'invite' },
        [prev],
        [createId, prev],
        3 + i,
      );
      await this.store.saveRoomEvent(session.serverName, roomId, event);
      prev = String(event['event_id']);
    }
    return { room_id: roomId };
  }

  /** POST /join/{roomIdOrAlias} and /rooms/{roomId}/join: joins a room the account knows (made, invited, left). */
  async join(session: MatrixSession, roomIdOrAlias: string): Promise<{ room_id: string }> {
    if (roomIdOrAlias.startsWith('#')) {
      throw new MatrixError('M_NOT_FOUND', 'Room aliases are not resolved by this home yet.');
    }
    await this.setMembership(session, roomIdOrAlias, 'join', ['invite', 'leave', 'join']);
    return { room_id: roomIdOrAlias };
  }

  /** POST /rooms/{roomId}/leave */
  async leave(session: MatrixSession, roomId: string): Promise<Record<string, never>> {
    await this.setMembership(session, roomId, 'leave', ['join', 'invite', 'knock', 'leave']);
    return {};
  }

  /** POST /rooms/{roomId}/invite: an invite of another user, signed and stored on this home. */
  async invite(session: MatrixSession, roomId: string, input: unknown): Promise<Record<string, never>> {
    const userId = optionalString(bodyOf(input), 'user_id', 255);
    if (userId === undefined) throw new MatrixError('M_MISSING_PARAM', 'user_id is required.');
    if (!/^@[^:]+:.+$/.test(userId)) throw new MatrixError('M_INVALID_PARAM', 'user_id is not a user ID.');
    const membership = await this.membershipOf(session, roomId);
    if (membership?.membership !== 'join') throw new MatrixError('M_FORBIDDEN', 'You are not in this room.');
    if (userId === session.userId) throw new MatrixError('M_FORBIDDEN', 'You are already in this room.');
    const prev = eventIdOf(membership);
    const event = await this.makeEvent(
      session,
      roomId,
      'm.room.member',
      userId,
      { membership: 'invite' },
      prev,
      prev,
      3,
    );
    await this.store.saveRoomEvent(session.serverName, roomId, event);
    await this.feed.record(session.serverName, [`room:${roomId}`]);
    return {};
  }

  /** GET /joined_rooms */
  async joined(session: MatrixSession): Promise<{ joined_rooms: string[] }> {
    const state = await this.port.state(session.serverName);
    const rooms = Object.entries(state.memberships).filter(([, m]) => m['membership'] === 'join');
    return { joined_rooms: rooms.map(([id]) => id).sort() };
  }

  private async setMembership(
    session: MatrixSession,
    roomId: string,
    membership: 'join' | 'leave',
    from: string[],
  ): Promise<void> {
    if (!ROOM_ID.test(roomId)) throw new MatrixError('M_INVALID_PARAM', 'Not a room ID.');
    const current = await this.membershipOf(session, roomId);
    const was = current?.['membership'];
    if (typeof was !== 'string' || !from.includes(was)) {
      // Nothing of other accounts' rooms reaches this home yet, so an unknown room cannot be joined or left.
      throw new MatrixError('M_NOT_FOUND', 'Unknown room.');
    }
    if (was === membership) return;
    const prev = eventIdOf(current);
    const event = await this.makeEvent(session, roomId, 'm.room.member', session.userId, { membership }, prev, prev, 3);
    await this.port.applyLocal(session.serverName, [
      { op: 'member.set', key: roomId, body: { room_id: roomId, membership, event } },
    ]);
  }

  private async membershipOf(session: MatrixSession, roomId: string): Promise<JsonRecord | undefined> {
    if (!ROOM_ID.test(roomId)) throw new MatrixError('M_INVALID_PARAM', 'Not a room ID.');
    return (await this.port.state(session.serverName)).memberships[roomId];
  }

  private async makeEvent(
    session: MatrixSession,
    roomId: string,
    type: string,
    stateKey: string,
    content: JsonRecord,
    prevEvents: string[],
    authEvents: string[],
    depth: number,
  ): Promise<JsonRecord> {
    const unsigned = {
      type,
      room_id: roomId,
      sender: session.userId,
      state_key: stateKey,
      content,
      origin: session.serverName,
      origin_server_ts: Date.now(),
      depth,
      prev_events: prevEvents,
      auth_events: authEvents,
    };
    const signed = await this.port.signEvent(session.serverName, unsigned, ROOM_VERSION);
    return { ...signed, event_id: referenceHash(signed) };
  }
}

function eventIdOf(membership: JsonRecord | undefined): string[] {
  const event = membership?.['event'];
  const id = typeof event === 'object' && event !== null ? (event as JsonRecord)['event_id'] : undefined;
  return typeof id === 'string' ? [id] : [];
}
