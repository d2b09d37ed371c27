import { Inject, Injectable } from '@nestjs/common';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { bodyOf, isRecord, type JsonRecord } from '../common/json.js';
import { MATRIX_HOME_PORT, type MatrixHomePort } from '../port.js';
import { toClientEvent } from './client-events.js';
import { eventPasses, parseEventFilter, type EventFilter } from './room-filters.js';
import {
  DEFAULT_PAGE_LIMIT,
  MAX_PAGE_LIMIT,
  checkKnownContent,
  parseContent,
  parseCreateRoom,
  parseDirection,
  parseEventId,
  parseEventType,
  parseJsonParam,
  parseLeave,
  parseLimit,
  parsePageToken,
  parseRedactReason,
  parseRoomId,
  parseRoomIdOrAlias,
  parseStateKey,
  parseTargetedMembership,
  parseTxnId,
} from './room-requests.js';
import type { MatrixRoomsPort, RoomActor, RoomEventView, RoomPage } from './rooms-port.js';

/** /messages reads at most this many engine pages to fill one filtered page (a sparse filter ends early). */
const MAX_FILTERED_PAGES = 10;

/**
 * The room endpoints over the home's room engine (`MatrixHomePort.rooms`): requests are checked here, the
 * engine decides (auth rules, history visibility), and its events are turned into client events.
 */
@Injectable()
export class RoomApiService {
  constructor(@Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort) {}

  /** Whether the home has a room engine (else the account-only RoomsService answers what it can). */
  /**
   * Whether the engine answers for this room: it runs, and it holds the room or the account has no replicated
   * membership in it. A room of the account made on another home (room events do not yet travel between homes)
   * is served by the membership view of RoomsService, as before the engine.
   */
  async serves(session: MatrixSession, roomIdOrAlias: string): Promise<boolean> {
    const engine = this.port.rooms;
    if (engine === undefined) return false;
    if (!roomIdOrAlias.startsWith('!') || (await engine.holds(roomIdOrAlias))) return true;
    return (await this.port.state(session.serverName)).memberships[roomIdOrAlias] === undefined;
  }

  get available(): boolean {
    return this.port.rooms !== undefined;
  }

  async createRoom(session: MatrixSession, input: unknown): Promise<{ room_id: string }> {
    const request = parseCreateRoom(input);
    const { roomId } = await this.engine().createRoom(actorOf(session), request);
    return { room_id: roomId };
  }

  async join(session: MatrixSession, roomIdOrAlias: string, via: readonly string[] = []): Promise<{ room_id: string }> {
    const roomId = parseRoomIdOrAlias(roomIdOrAlias);
    await this.engine().membership(actorOf(session), roomId, { action: 'join' }, via);
    return { room_id: roomId };
  }

  async leave(session: MatrixSession, roomId: string, input: unknown): Promise<Record<string, never>> {
    const id = parseRoomId(roomId);
    const change = parseLeave(input);
    const actor = actorOf(session);
    const engine = this.engine();
    if ((await engine.ownMembership(actor, id)) === undefined) {
      const replicated = (await this.port.state(session.serverName)).memberships[id];
      const membership = replicated?.['membership'];
      const event = replicated?.['event'];
      const sender = isRecord(event) && typeof event['sender'] === 'string' ? event['sender'] : '';
      const via = sender.includes(':') ? [sender.slice(sender.indexOf(':') + 1)] : [];
      // An invite (or knock) of a room this home did not take in: rejected through the homes of the inviter's
      // server (make_leave/send_leave); the engine records the leave as the account's membership.
      if ((membership === 'invite' || membership === 'knock') && via.length > 0 && !(await engine.holds(id))) {
        await engine.membership(actor, id, change, via);
        return {};
      }
      // A room another home of the account joined, whose events (or the user's own member event) have not reached
      // this home yet: the leave is set in the account's replicated state, and the homes holding the room enact it.
      if (membership === 'join' || membership === 'invite' || membership === 'knock') {
        await this.port.applyLocal(session.serverName, [
          { op: 'member.set', key: id, body: { room_id: id, membership: 'leave' } },
        ]);
        return {};
      }
      // Left already (on another home of the account): nothing to do.
      if (membership === 'leave') return {};
    }
    await engine.membership(actor, id, change);
    return {};
  }

  /** /invite, /kick, /ban, /unban. */
  async changeMembership(
    session: MatrixSession,
    roomId: string,
    action: 'invite' | 'kick' | 'ban' | 'unban',
    input: unknown,
  ): Promise<Record<string, never>> {
    const id = parseRoomId(roomId);
    await this.engine().membership(actorOf(session), id, parseTargetedMembership(action, input));
    return {};
  }

  async forget(session: MatrixSession, roomId: string): Promise<Record<string, never>> {
    await this.engine().forget(actorOf(session), parseRoomId(roomId));
    return {};
  }

  async joinedRooms(session: MatrixSession): Promise<{ joined_rooms: string[] }> {
    const engine = this.engine();
    const joined = new Set(await engine.joinedRooms(actorOf(session)));
    // The account's rooms this home does not hold (made on another home of the account): its replicated joins.
    const memberships = (await this.port.state(session.serverName)).memberships;
    for (const [roomId, m] of Object.entries(memberships)) {
      if (m['membership'] !== 'join' || joined.has(roomId)) continue;
      if ((await engine.ownMembership(actorOf(session), roomId)) === undefined) joined.add(roomId);
    }
    return { joined_rooms: [...joined].sort() };
  }

  /** PUT /rooms/{roomId}/send/{eventType}/{txnId} */
  async send(
    session: MatrixSession,
    roomId: string,
    eventType: string,
    txnId: string,
    input: unknown,
  ): Promise<{ event_id: string }> {
    const id = parseRoomId(roomId);
    const type = parseEventType(eventType);
    const txn = parseTxnId(txnId);
    const content = parseContent(bodyOf(input));
    checkKnownContent(type, content);
    const { eventId } = await this.engine().send(actorOf(session), id, { type, content, txnId: txn });
    return { event_id: eventId };
  }

  /** PUT /rooms/{roomId}/state/{eventType}/{stateKey} (an absent key is the empty one). */
  async setState(
    session: MatrixSession,
    roomId: string,
    eventType: string,
    stateKey: string | undefined,
    input: unknown,
  ): Promise<{ event_id: string }> {
    const id = parseRoomId(roomId);
    const type = parseEventType(eventType);
    const key = parseStateKey(stateKey);
    const content = parseContent(bodyOf(input));
    checkKnownContent(type, content, key);
    const { eventId } = await this.engine().send(actorOf(session), id, { type, content, stateKey: key });
    return { event_id: eventId };
  }

  /** GET /rooms/{roomId}/state */
  async state(session: MatrixSession, roomId: string): Promise<JsonRecord[]> {
    const actor = actorOf(session);
    const id = parseRoomId(roomId);
    return this.format(actor, id, await this.engine().state(actor, id));
  }

  /** GET /rooms/{roomId}/state/{eventType}/{stateKey}: the content, or the event with `?format=event`. */
  async stateEvent(
    session: MatrixSession,
    roomId: string,
    eventType: string,
    stateKey: string | undefined,
    format: unknown,
  ): Promise<JsonRecord> {
    const actor = actorOf(session);
    const id = parseRoomId(roomId);
    const type = parseEventType(eventType);
    const key = parseStateKey(stateKey);
    if (format !== undefined && format !== 'content' && format !== 'event') {
      throw new MatrixError('M_INVALID_PARAM', 'format must be content or event.');
    }
    const view = await this.engine().stateEvent(actor, id, type, key);
    if (view === null) {
      throw new MatrixError('M_NOT_FOUND', `The room has no ${type} state event with state key "${key}".`);
    }
    if (format === 'event') return (await this.format(actor, id, [view]))[0] as JsonRecord;
    return view.pdu.content;
  }

  /** GET /rooms/{roomId}/event/{eventId} */
  async event(session: MatrixSession, roomId: string, eventId: string): Promise<JsonRecord> {
    const actor = actorOf(session);
    const id = parseRoomId(roomId);
    const view = await this.engine().event(actor, id, parseEventId(eventId));
    return (await this.format(actor, id, [view]))[0] as JsonRecord;
  }

  /** GET /rooms/{roomId}/messages: pages of the engine, filtered (`filter`: a RoomEventFilter as JSON). */
  async messages(session: MatrixSession, roomId: string, query: Record<string, unknown>): Promise<JsonRecord> {
    const actor = actorOf(session);
    const id = parseRoomId(roomId);
    const dir = parseDirection(query['dir']);
    let from = parsePageToken(query['from'], 'from');
    const to = parsePageToken(query['to'], 'to');
    const filter = parseEventFilter(parseJsonParam(query['filter'], 'filter'), 'filter');
    const limit = parseLimit(
      query['limit'],
      Math.min(filter.limit ?? DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT),
      MAX_PAGE_LIMIT,
    );
    const engine = this.engine();
    const chunk: RoomEventView[] = [];
    let start: string | undefined;
    let end: string | undefined;
    for (let pages = 0; pages < MAX_FILTERED_PAGES && chunk.length < limit; pages++) {
      const options: { from?: string; dir: 'b' | 'f'; limit: number } = { dir, limit: limit - chunk.length };
      if (from !== undefined) options.from = from;
      const page: RoomPage = await engine.messages(actor, id, options);
      start ??= page.start;
      end = page.end;
      const passing = page.events.filter((e) => passes(filter, e));
      chunk.push(...passing);
      // `to` bounds the pages: a page ending at `to` is the last one.
      if (page.end === undefined || page.end === to || page.events.length === 0) break;
      from = page.end;
    }
    const response: JsonRecord = { chunk: await this.format(actor, id, chunk), start: start ?? from ?? '' };
    if (end !== undefined && end !== to) response['end'] = end;
    if (filter.lazyLoadMembers) response['state'] = await this.membersOf(actor, id, chunk);
    return response;
  }

  /** GET /rooms/{roomId}/context/{eventId} */
  async context(
    session: MatrixSession,
    roomId: string,
    eventId: string,
    query: Record<string, unknown>,
  ): Promise<JsonRecord> {
    const actor = actorOf(session);
    const id = parseRoomId(roomId);
    const target = parseEventId(eventId);
    const filter = parseEventFilter(parseJsonParam(query['filter'], 'filter'), 'filter');
    const limit = parseLimit(query['limit'], DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT);
    const context = await this.engine().context(actor, id, target, limit);
    const before = context.before.events.filter((e) => passes(filter, e));
    const after = context.after.events.filter((e) => passes(filter, e));
    const state = filter.lazyLoadMembers
      ? await this.membersOf(actor, id, [context.event, ...before, ...after])
      : await this.format(actor, id, context.state);
    return {
      event: (await this.format(actor, id, [context.event]))[0],
      events_before: await this.format(actor, id, before),
      events_after: await this.format(actor, id, after),
      start: context.before.end ?? context.before.start,
      end: context.after.end ?? context.after.start,
      state,
    };
  }

  /** GET /rooms/{roomId}/members (`membership` / `not_membership` honoured; `at` is the current state). */
  async members(session: MatrixSession, roomId: string, query: Record<string, unknown>): Promise<JsonRecord> {
    const actor = actorOf(session);
    const id = parseRoomId(roomId);
    const memberships = ['join', 'invite', 'knock', 'leave', 'ban'];
    for (const field of ['membership', 'not_membership']) {
      const value = query[field];
      if (value !== undefined && !memberships.includes(String(value))) {
        throw new MatrixError('M_INVALID_PARAM', `${field} must be one of ${memberships.join(', ')}.`);
      }
    }
    const members = (await this.engine().members(actor, id)).filter((e) => {
      const membership = e.pdu.content['membership'];
      if (query['membership'] !== undefined && membership !== query['membership']) return false;
      return query['not_membership'] === undefined || membership !== query['not_membership'];
    });
    return { chunk: await this.format(actor, id, members) };
  }

  /** GET /rooms/{roomId}/joined_members */
  async joinedMembers(session: MatrixSession, roomId: string): Promise<JsonRecord> {
    const id = parseRoomId(roomId);
    const joined: JsonRecord = {};
    for (const event of await this.engine().members(actorOf(session), id)) {
      const content = event.pdu.content;
      if (content['membership'] !== 'join' || event.pdu.state_key === undefined) continue;
      const profile: JsonRecord = {};
      if (typeof content['displayname'] === 'string') profile['display_name'] = content['displayname'];
      if (typeof content['avatar_url'] === 'string') profile['avatar_url'] = content['avatar_url'];
      joined[event.pdu.state_key] = profile;
    }
    return { joined };
  }

  /** PUT /rooms/{roomId}/redact/{eventId}/{txnId} */
  async redact(
    session: MatrixSession,
    roomId: string,
    eventId: string,
    txnId: string,
    input: unknown,
  ): Promise<{ event_id: string }> {
    const id = parseRoomId(roomId);
    const target = parseEventId(eventId);
    const txn = parseTxnId(txnId);
    const reason = parseRedactReason(input);
    const { eventId: redactionId } = await this.engine().redact(actorOf(session), id, target, reason, txn);
    return { event_id: redactionId };
  }

  /** Client events of `views`, with the redaction events of those redacted (for `redacted_because`). */
  async format(actor: RoomActor, roomId: string, views: RoomEventView[]): Promise<JsonRecord[]> {
    const redactions = new Map<string, RoomEventView>();
    for (const view of views) {
      if (view.redactedBy === undefined || redactions.has(view.redactedBy)) continue;
      try {
        redactions.set(view.redactedBy, await this.engine().event(actor, roomId, view.redactedBy));
      } catch (err) {
        // A redaction the user may not see: `redacted_because` then names it without its content.
        if (!(err instanceof MatrixError)) throw err;
      }
    }
    const now = Date.now();
    return views.map((view) => toClientEvent(view, { now, redactions }));
  }

  /** The current `m.room.member` events of the senders of `events` (lazy-loaded members). */
  private async membersOf(actor: RoomActor, roomId: string, events: RoomEventView[]): Promise<JsonRecord[]> {
    const senders = [...new Set(events.map((e) => e.pdu.sender))];
    return this.format(actor, roomId, await this.memberEvents(actor, roomId, senders));
  }

  /** The current `m.room.member` events of `userIds` that are set. */
  async memberEvents(actor: RoomActor, roomId: string, userIds: string[]): Promise<RoomEventView[]> {
    const members: RoomEventView[] = [];
    for (const userId of userIds) {
      const member = await this.engine().stateEvent(actor, roomId, 'm.room.member', userId);
      if (member !== null) members.push(member);
    }
    return members;
  }

  private engine(): MatrixRoomsPort {
    const rooms = this.port.rooms;
    if (rooms === undefined) {
      throw new MatrixError('M_UNRECOGNIZED', 'This home has no room engine yet: room events are not served here.');
    }
    return rooms;
  }
}

/** The engine's actor of a session. */
export function actorOf(session: MatrixSession): RoomActor {
  return { serverName: session.serverName, userId: session.userId, deviceId: session.deviceId };
}

function passes(filter: EventFilter, view: RoomEventView): boolean {
  return eventPasses(filter, { type: view.pdu.type, sender: view.pdu.sender });
}
