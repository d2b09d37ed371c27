import { Inject, Injectable } from '@nestjs/common';
import { clientIdleWhile } from '@polyhome/sync';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { isRecord, type JsonRecord } from '../common/json.js';
import { ruleset } from '../account/push-rules.js';
import {
  accountDataOf as accountDataBodies,
  contentOf,
  pushRulesOf,
  roomAccountDataOf,
} from '../account/state-views.js';
import {
  MATRIX_HOME_PORT,
  MATRIX_STORE,
  type MatrixAccountState,
  type MatrixDeviceKeyCounts,
  type MatrixHomePort,
  type MatrixStore,
} from '../port.js';
import type { EphemeralEvents, EphemeralPosition } from '../ephemeral/ephemeral-port.js';
import { parseSetPresence, presenceContent } from '../ephemeral/ephemeral.service.js';
import { toStrippedEvent } from '../rooms/client-events.js';
import { actorOf, RoomApiService } from '../rooms/room-api.service.js';
import { clientEvent, strippedEvent } from '../rooms/room-events.js';
import { eventPasses, parseSyncFilter, roomPasses, timelineLimitOf, type SyncFilter } from '../rooms/room-filters.js';
import { parseJsonParam } from '../rooms/room-requests.js';
import type { RoomSyncEntry } from '../rooms/rooms-port.js';
import type { ToDeviceEvent } from '../to-device/to-device-port.js';
import { MAX_SYNC_TO_DEVICE } from '../to-device/to-device.service.js';
import { ChangeFeedService } from './change-feed.service.js';
import { otherUsersChanged, usersLeft, usersNewlyShared } from './device-lists.js';
import { parseSyncPosition, syncToken, type SyncPosition } from './sync-token.js';

/** Longest a /sync waits, whatever the client asks: proxies and clients time out beyond this. */
export const MAX_SYNC_TIMEOUT_MS = 30_000;

/** The highest `unread_notifications.notification_count` counted (clients show "99+" long before). */
export const MAX_NOTIFICATION_COUNT = 1_000;

/** The longest filter id looked up (ids this home makes are 12 characters). */
const MAX_FILTER_ID = 64;

/** What one /sync asks besides its token. */
interface SyncRequest {
  filter: SyncFilter;
  fullState: boolean;
}

/** Typing, receipts and presence for one response, filtered. */
interface EphemeralNews {
  rooms: EphemeralEvents;
  presence: JsonRecord[];
}

const NO_NEWS: EphemeralNews = { rooms: new Map(), presence: [] };

/** Room sections of a response. */
interface RoomsSection {
  join: JsonRecord;
  invite: JsonRecord;
  leave: JsonRecord;
  knock: JsonRecord;
}

/**
 * /sync over this home's change stream and, when the home has a room engine, its room stream: an initial
 * sync gives the whole account view; an incremental one what changed after `since`, waiting up to `timeout`
 * for a change when there is none. Tokens: see sync-token.ts.
 */
@Injectable()
export class SyncService {
  constructor(
    @Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort,
    @Inject(MATRIX_STORE) private readonly store: MatrixStore,
    private readonly feed: ChangeFeedService,
    private readonly roomApi: RoomApiService,
  ) {}

  /**
   * GET /sync with the query as given. `set_presence` (default `online`) marks the user active for the
   * duration of the request, as Synapse does; the user goes offline some time after its last /sync.
   */
  async sync(session: MatrixSession, query: Record<string, unknown>): Promise<JsonRecord> {
    const presence = parseSetPresence(query['set_presence']);
    const ephemeral = this.port.rooms === undefined ? undefined : this.port.ephemeral;
    const actor = actorOf(session);
    ephemeral?.syncing(actor, presence);
    try {
      return await this.answer(session, query);
    } finally {
      ephemeral?.syncDone(actor);
    }
  }

  private async answer(session: MatrixSession, query: Record<string, unknown>): Promise<JsonRecord> {
    const since = query['since'] === undefined ? undefined : parseSyncPosition(query['since'], 'since');
    const timeout = parseTimeout(query['timeout']);
    const request: SyncRequest = {
      filter: parseSyncFilter(await this.filterOf(session, query['filter'])),
      fullState: parseFullState(query['full_state']),
    };
    const rooms = this.port.rooms;
    const ephemeral = rooms === undefined ? undefined : this.port.ephemeral;
    if (since === undefined) {
      const position: SyncPosition = { change: await this.store.position(), room: await rooms?.position() };
      const ephemeralPosition = await ephemeral?.position();
      if (ephemeralPosition !== undefined) position.ephemeral = ephemeralPosition;
      const entries =
        rooms === undefined ? undefined : await this.roomEntries(session, undefined, position.room, request);
      const news =
        ephemeralPosition === undefined
          ? NO_NEWS
          : await this.ephemeralNews(session, undefined, ephemeralPosition, request);
      const toDevice = await this.toDeviceNews(session, undefined, await this.port.toDevice?.position());
      if (toDevice !== undefined) position.toDevice = toDevice.position;
      return this.build(session, position, undefined, entries, request, news, toDevice?.events ?? []);
    }
    const deadline = Date.now() + timeout;
    // Room and ephemeral positions already seen to hold nothing for this user: a later look starts after them.
    let roomSince = since.room;
    let ephemeralSince = since.ephemeral;
    for (;;) {
      const wait = this.feed.waitForChange(session.serverName, Math.max(0, deadline - Date.now()));
      // The streams' positions are read at once (each is its own snapshot, as when read one after the other).
      const [changes, roomPosition, ephemeralPosition, toDeviceTo] = await Promise.all([
        this.store.changesAndKeyCounts(session.serverName, since.change, session.deviceId),
        rooms?.position(),
        ephemeral?.position(),
        this.port.toDevice?.position(),
      ]);
      const entries =
        rooms === undefined
          ? undefined
          : roomSince === undefined || request.fullState || (roomPosition ?? 0) > roomSince
            ? await this.roomEntries(session, request.fullState ? undefined : roomSince, roomPosition, request)
            : [];
      const news =
        ephemeralPosition === undefined || samePosition(ephemeralSince, ephemeralPosition)
          ? NO_NEWS
          : await this.ephemeralNews(session, ephemeralSince, ephemeralPosition, request);
      const toDevice = await this.toDeviceNews(session, since.toDevice, toDeviceTo);
      const changed =
        (toDevice !== undefined && toDevice.events.length > 0) ||
        changes.expired ||
        changes.keys.length > 0 ||
        (entries !== undefined && entries.length > 0) ||
        news.rooms.size > 0 ||
        news.presence.length > 0;
      if (changed || request.fullState || Date.now() >= deadline) {
        wait.cancel();
        const position: SyncPosition = { change: changes.position, room: roomPosition };
        if (ephemeralPosition !== undefined) position.ephemeral = ephemeralPosition;
        if (toDevice !== undefined) position.toDevice = toDevice.position;
        return this.build(
          session,
          position,
          changes.expired ? 'expired' : changes.keys,
          entries,
          request,
          news,
          toDevice?.events ?? [],
          since.room,
          changes.deviceKeys,
        );
      }
      if (roomSince !== undefined && roomPosition !== undefined) roomSince = roomPosition;
      if (ephemeralPosition !== undefined) ephemeralSince = ephemeralPosition;
      // Waiting for a change is not work: batches of replication need not wait for it (clientIdleWhile).
      await clientIdleWhile(wait.promise);
    }
  }

  /**
   * The to-device messages waiting for the session's device (at most MAX_SYNC_TO_DEVICE), after acknowledging
   * those at or before `since` (a position ahead of the stream's, from before a database was replaced, acknowledges
   * nothing), up to the stream's position `to`. Undefined without a to-device port.
   */
  private async toDeviceNews(
    session: MatrixSession,
    since: number | undefined,
    to: number | undefined,
  ): Promise<{ events: ToDeviceEvent[]; position: number } | undefined> {
    const toDevice = this.port.toDevice;
    if (toDevice === undefined || to === undefined) return undefined;
    const acknowledged = since !== undefined && since <= to ? since : undefined;
    return toDevice.messages(actorOf(session), acknowledged, to, MAX_SYNC_TO_DEVICE);
  }

  /** Typing and receipts of the user's joined rooms, and presence, after `since` (all when undefined). */
  private async ephemeralNews(
    session: MatrixSession,
    since: EphemeralPosition | undefined,
    to: EphemeralPosition,
    request: SyncRequest,
  ): Promise<EphemeralNews> {
    const rooms = this.port.rooms;
    const ephemeral = this.port.ephemeral;
    if (rooms === undefined || ephemeral === undefined) return NO_NEWS;
    const actor = actorOf(session);
    const { filter } = request;
    const joined = (await rooms.joinedRooms(actor)).filter((roomId) => roomPasses(filter, roomId));
    const news: EphemeralNews = { rooms: new Map(), presence: [] };
    for (const [roomId, events] of await ephemeral.ephemeralOf(actor, joined, since, to)) {
      const wanted = events.filter((e) => eventPasses(filter.ephemeral, { type: String(e['type']), roomId }));
      if (wanted.length > 0) news.rooms.set(roomId, wanted);
    }
    const now = Date.now();
    for (const view of await ephemeral.presenceOf(actor, since, to)) {
      if (!eventPasses(filter.presence, { type: 'm.presence', sender: view.userId })) continue;
      news.presence.push({ type: 'm.presence', sender: view.userId, content: presenceContent(view, now) });
    }
    return news;
  }

  /** The filter of `?filter=`: a stored filter's id, or a filter as JSON (it starts with `{`). */
  private async filterOf(session: MatrixSession, value: unknown): Promise<JsonRecord | undefined> {
    if (value === undefined || value === '') return undefined;
    if (typeof value === 'string' && value.trimStart().startsWith('{')) return parseJsonParam(value, 'filter');
    if (typeof value !== 'string' || value.length > MAX_FILTER_ID) {
      throw new MatrixError('M_INVALID_PARAM', 'filter must be a filter id or a filter as JSON.');
    }
    const stored = await this.store.getFilter(session.serverName, value);
    if (stored === null) {
      throw new MatrixError('M_NOT_FOUND', `No filter ${value}: make one with POST /user/{userId}/filter.`);
    }
    return stored;
  }

  /** The engine's rooms of the user after `since` (all rooms when undefined), up to `to`. */
  private async roomEntries(
    session: MatrixSession,
    since: number | undefined,
    to: number | undefined,
    request: SyncRequest,
  ): Promise<RoomSyncEntry[]> {
    const rooms = this.port.rooms;
    if (rooms === undefined || to === undefined) return [];
    const options: { since?: number; to: number; timelineLimit: number; lazyLoadMembers?: boolean } = {
      to,
      timelineLimit: timelineLimitOf(request.filter),
      lazyLoadMembers: request.filter.state.lazyLoadMembers,
    };
    if (since !== undefined) options.since = since;
    const entries = await rooms.syncRooms(actorOf(session), options);
    return entries.filter((e) => roomPasses(request.filter, e.roomId));
  }

  /**
   * The response at `position`: `changed` lists the keys changed since the client's token (undefined: initial
   * sync; 'expired': the stream was pruned past the token, so every room and the device list count as changed,
   * left rooms included, and timelines are marked limited, as Synapse answers a token older than its caches).
   * `entries` are the room engine's rooms (undefined without an engine: the account's membership view);
   * `sinceRoom` is the token's room position (what counts as new for the users newly sharing an encrypted room);
   * `deviceKeys` the device's key counts when already read (else they are read here).
   */
  private async build(
    session: MatrixSession,
    position: SyncPosition,
    changed: string[] | 'expired' | undefined,
    entries: RoomSyncEntry[] | undefined,
    request: SyncRequest,
    news: EphemeralNews,
    toDevice: ToDeviceEvent[],
    sinceRoom?: number,
    deviceKeys?: MatrixDeviceKeyCounts,
  ): Promise<JsonRecord> {
    // Read only when the response shows some of it: a change of devices or keys alone needs none of the state.
    const state = needsAccountState(changed) ? await this.port.state(session.serverName) : undefined;
    const rooms =
      entries === undefined
        ? await this.membershipRooms(session, state, changed)
        : await this.engineRooms(session, entries, changed === undefined, request);
    if (entries !== undefined) await this.addRoomsNotHeld(rooms, session, state, changed, request);
    const accountData = accountDataOf(session.userId, state, changed);
    // The engine's joined rooms, read once for the response (only when some room's account data needs them).
    let joinedRooms: Set<string> | undefined;
    for (const [roomId, events] of accountData.rooms) {
      const wanted = events.filter((e) => eventPasses(request.filter.roomAccountData, { type: String(e['type']) }));
      if (wanted.length === 0 || !roomPasses(request.filter, roomId)) continue;
      let joined = rooms.join[roomId];
      if (!isRecord(joined) && entries !== undefined) {
        joinedRooms ??= new Set((await this.port.rooms?.joinedRooms(actorOf(session))) ?? []);
      }
      if (!isRecord(joined) && joinedRooms?.has(roomId) === true) {
        joined = emptyJoinedRoom();
        rooms.join[roomId] = joined;
      }
      if (isRecord(joined)) joined['account_data'] = { events: wanted };
    }
    await this.addEphemeral(session, rooms, news);
    const devicesChanged =
      changed === 'expired' || (changed ?? []).some((k) => k.startsWith('device:') || k.startsWith('cross_signing:'));
    // Incremental syncs only: an initial one has no "since", an expired one lists the user only (see above).
    const left =
      Array.isArray(changed) && entries !== undefined && this.port.rooms !== undefined
        ? await usersLeft(this.port.rooms, actorOf(session), entries)
        : [];
    const newlyShared =
      Array.isArray(changed) && entries !== undefined && this.port.rooms !== undefined
        ? await usersNewlyShared(this.port.rooms, actorOf(session), entries, sinceRoom)
        : [];
    const othersChanged = [...new Set([...otherUsersChanged(changed), ...newlyShared])].filter(
      (u) => !left.includes(u),
    );
    const keys = deviceKeys ?? (await this.store.deviceKeyCounts(session.serverName, session.deviceId));
    return {
      next_batch: syncToken(position),
      rooms,
      device_lists: { changed: [...(devicesChanged ? [session.userId] : []), ...othersChanged], left },
      device_one_time_keys_count: keys.oneTime,
      device_unused_fallback_key_types: keys.unusedFallback,
      account_data: {
        events: accountData.global.filter((e) => eventPasses(request.filter.accountData, { type: String(e['type']) })),
      },
      presence: { events: news.presence },
      to_device: { events: toDevice },
    };
  }

  /**
   * Typing and receipts into the joined rooms (a room with only those appears too), and the unread counts of
   * every joined room of the response (`highlight_count` is 0: this home evaluates no push rules yet).
   */
  private async addEphemeral(session: MatrixSession, rooms: RoomsSection, news: EphemeralNews): Promise<void> {
    const ephemeral = this.port.ephemeral;
    if (ephemeral === undefined || this.port.rooms === undefined) return;
    for (const [roomId, events] of news.rooms) {
      const held = rooms.join[roomId];
      const joined = isRecord(held) ? held : emptyJoinedRoom();
      rooms.join[roomId] = joined;
      joined['ephemeral'] = { events };
    }
    const roomIds = Object.keys(rooms.join);
    if (roomIds.length === 0) return;
    const counts = await ephemeral.notificationCounts(actorOf(session), roomIds, MAX_NOTIFICATION_COUNT);
    for (const roomId of roomIds) {
      const joined = rooms.join[roomId];
      if (isRecord(joined)) {
        joined['unread_notifications'] = { highlight_count: 0, notification_count: counts.get(roomId) ?? 0 };
      }
    }
  }

  /** Room sections from the engine's entries, filtered and in client format. */
  private async engineRooms(
    session: MatrixSession,
    entries: RoomSyncEntry[],
    initial: boolean,
    request: SyncRequest,
  ): Promise<RoomsSection> {
    const rooms: RoomsSection = { join: {}, invite: {}, leave: {}, knock: {} };
    const actor = actorOf(session);
    const { filter } = request;
    for (const entry of entries) {
      const timelineEvents = entry.timeline.filter((e) =>
        eventPasses(filter.timeline, { type: e.pdu.type, sender: e.pdu.sender }),
      );
      const senders = new Set([session.userId, ...timelineEvents.map((e) => e.pdu.sender)]);
      const stateEvents = entry.state.filter((e) => {
        if (!eventPasses(filter.state, { type: e.pdu.type, sender: e.pdu.sender })) return false;
        // Lazy-loaded members: the members of the timeline's senders, and the user's own.
        return !(filter.state.lazyLoadMembers && e.pdu.type === 'm.room.member' && !senders.has(e.pdu.state_key ?? ''));
      });
      if (filter.state.lazyLoadMembers && entry.membership === 'join') {
        // Senders whose member event neither the state nor the timeline carries (the client may never have had
        // it, having lazy-loaded before): their current one.
        const shown = new Set(
          [...stateEvents, ...timelineEvents].filter((e) => e.pdu.type === 'm.room.member').map((e) => e.pdu.state_key),
        );
        const missing = [...senders].filter((u) => u !== session.userId && !shown.has(u));
        stateEvents.push(...(await this.roomApi.memberEvents(actor, entry.roomId, missing)));
      }
      const timeline: JsonRecord = {
        events: await this.roomApi.format(actor, entry.roomId, timelineEvents),
        limited: entry.limited,
      };
      if (entry.prevBatch !== null) timeline['prev_batch'] = entry.prevBatch;
      const roomState = { events: await this.roomApi.format(actor, entry.roomId, stateEvents) };
      switch (entry.membership) {
        case 'join':
          rooms.join[entry.roomId] = {
            ...emptyJoinedRoom(),
            state: roomState,
            timeline,
            summary: await this.summaryOf(session, entry.roomId),
          };
          break;
        case 'invite':
          rooms.invite[entry.roomId] = { invite_state: { events: (entry.inviteState ?? []).map(toStrippedEvent) } };
          break;
        case 'knock':
          rooms.knock[entry.roomId] = { knock_state: { events: (entry.inviteState ?? []).map(toStrippedEvent) } };
          break;
        default:
          // Left rooms: news to an incremental sync; an initial one gives them only with `include_leave`.
          if (!initial || filter.includeLeave) {
            rooms.leave[entry.roomId] = { state: roomState, timeline, account_data: { events: [] } };
          }
      }
    }
    return rooms;
  }

  /** `summary` of a joined room: member counts and up to five heroes (other joined or invited users). */
  private async summaryOf(session: MatrixSession, roomId: string): Promise<JsonRecord> {
    const rooms = this.port.rooms;
    if (rooms === undefined) return {};
    const members = await rooms.members(actorOf(session), roomId);
    const with_ = (m: string): string[] =>
      members.filter((e) => e.pdu.content['membership'] === m).map((e) => e.pdu.state_key ?? '');
    const joined = with_('join');
    const invited = with_('invite');
    const heroes = [...joined, ...invited]
      .filter((u) => u !== session.userId)
      .sort()
      .slice(0, 5);
    return { 'm.joined_member_count': joined.length, 'm.invited_member_count': invited.length, 'm.heroes': heroes };
  }

  /**
   * The account's rooms this home's engine does not hold: invites, knocks and leaves from the account's
   * replicated memberships (the membership view, as without an engine). Joined rooms wait until held.
   */
  private async addRoomsNotHeld(
    rooms: RoomsSection,
    session: MatrixSession,
    state: MatrixAccountState | undefined,
    changed: string[] | 'expired' | undefined,
    request: SyncRequest,
  ): Promise<void> {
    const engine = this.port.rooms;
    if (engine === undefined) return;
    const notHeld = async (roomId: string): Promise<boolean> =>
      roomPasses(request.filter, roomId) && !(await engine.holds(roomId));
    const view = await this.membershipRooms(session, state, changed, notHeld, false);
    // A joined room is listed once this home holds it (the Home takes it in from the account's other homes):
    // listed before, from the membership alone, a client would hold a timeline with no position in the room's
    // order, and matrix-js-sdk then mixes the pages it fetches with the room's real timeline once it arrives.
    for (const section of ['invite', 'leave', 'knock'] as const) {
      for (const [roomId, entry] of Object.entries(view[section])) rooms[section][roomId] ??= entry;
    }
  }

  /**
   * Rooms without a room engine: the account's replicated memberships and the events this home stored. Without
   * `joined`, joined rooms are skipped before their events are read (a home with an engine lists them once held).
   */
  private async membershipRooms(
    session: MatrixSession,
    state: MatrixAccountState | undefined,
    changed: string[] | 'expired' | undefined,
    include: (roomId: string) => Promise<boolean> = () => Promise.resolve(true),
    joined = true,
  ): Promise<RoomsSection> {
    const rooms: RoomsSection = { join: {}, invite: {}, leave: {}, knock: {} };
    const roomIds =
      changed === undefined || changed === 'expired'
        ? Object.keys(state?.memberships ?? {})
        : [
            ...new Set([
              ...changed
                .filter((k) => k.startsWith('member:') || k.startsWith('room:'))
                .map((k) => k.slice(k.indexOf(':') + 1)),
              ...changed.filter((k) => k.startsWith('room_account_data:')).flatMap(roomOfAccountDataKey),
            ]),
          ];
    for (const roomId of roomIds) {
      const membership = state?.memberships[roomId];
      // Checked before the room's events are read: a room left out costs nothing.
      if (membership === undefined || (!joined && membership['membership'] === 'join')) continue;
      if (!(await include(roomId))) continue;
      const event = isRecord(membership['event']) ? clientEvent(membership['event']) : undefined;
      const timeline = { events: event === undefined ? [] : [event], limited: changed === 'expired' };
      switch (membership['membership']) {
        case 'join': {
          const others = (await this.store.roomEvents(session.serverName, roomId)).map(clientEvent);
          rooms.join[roomId] = { ...emptyJoinedRoom(), state: { events: others }, timeline };
          break;
        }
        case 'invite':
          rooms.invite[roomId] = { invite_state: { events: event === undefined ? [] : [strippedEvent(event)] } };
          break;
        case 'knock':
          rooms.knock[roomId] = { knock_state: { events: event === undefined ? [] : [strippedEvent(event)] } };
          break;
        default:
          // Left and banned rooms are news only to an incremental sync; an initial one leaves them out, as Matrix does.
          if (changed !== undefined) rooms.leave[roomId] = { state: { events: [] }, timeline };
      }
    }
    return rooms;
  }
}

/** A joined room with nothing new (account data alone changed). */
function emptyJoinedRoom(): JsonRecord {
  return {
    state: { events: [] },
    timeline: { events: [], limited: false },
    ephemeral: { events: [] },
    account_data: { events: [] },
    unread_notifications: { highlight_count: 0, notification_count: 0 },
    summary: {},
  };
}

/** Whether two ephemeral positions are the same (none before counts as different: an initial look is due). */
function samePosition(a: EphemeralPosition | undefined, b: EphemeralPosition): boolean {
  return a !== undefined && a.receipt === b.receipt && a.memory === b.memory;
}

function parseFullState(value: unknown): boolean {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new MatrixError('M_INVALID_PARAM', 'full_state must be true or false.');
}

/**
 * The account-data events of a sync: all of them on an initial (or expired) sync, else those whose keys
 * changed; `m.push_rules` is the whole ruleset whenever any rule changed. Per-room events go to the rooms the
 * response lists as joined.
 */
function accountDataOf(
  userId: string,
  state: MatrixAccountState | undefined,
  changed: string[] | 'expired' | undefined,
): { global: JsonRecord[]; rooms: Map<string, JsonRecord[]> } {
  if (state === undefined) return { global: [], rooms: new Map() };
  const all = changed === undefined || changed === 'expired';
  const keys = all ? [] : changed;
  const has = (prefix: string, key: string): boolean => all || keys.includes(`${prefix}:${key}`);
  const global: JsonRecord[] = [];
  for (const [type, body] of Object.entries(accountDataBodies(state))) {
    if (has('account_data', type)) global.push({ type, content: contentOf(body) });
  }
  if (all || keys.some((k) => k.startsWith('push_rule:'))) {
    global.push({ type: 'm.push_rules', content: { global: ruleset(userId, pushRulesOf(state)) } });
  }
  const rooms = new Map<string, JsonRecord[]>();
  for (const [key, body] of Object.entries(roomAccountDataOf(state))) {
    if (!has('room_account_data', key)) continue;
    const list = rooms.get(body.room_id) ?? [];
    list.push({ type: body.type, content: contentOf(body) });
    rooms.set(body.room_id, list);
  }
  return { global, rooms };
}

/** Prefixes of the changed keys a response shows from the account's state: memberships and account data. */
const STATE_SHOWN = ['member:', 'room:', 'room_account_data:', 'account_data:', 'push_rule:'];

/**
 * Whether a response needs the account's state: an initial or expired sync shows all of it, an incremental one
 * only what changed of its memberships and account data (`membershipRooms`, `accountDataOf`). Without it they
 * are given none (undefined), which shows the same for such changes.
 */
function needsAccountState(changed: string[] | 'expired' | undefined): boolean {
  return !Array.isArray(changed) || changed.some((key) => STATE_SHOWN.some((prefix) => key.startsWith(prefix)));
}

/** The room of a changed `room_account_data:<["room","type"]>` key. */
function roomOfAccountDataKey(key: string): string[] {
  try {
    const pair: unknown = JSON.parse(key.slice('room_account_data:'.length));
    return Array.isArray(pair) && typeof pair[0] === 'string' ? [pair[0]] : [];
  } catch {
    return [];
  }
}

function parseTimeout(value: unknown): number {
  if (value === undefined || value === '') return 0;
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value))
    throw new MatrixError('M_INVALID_PARAM', 'timeout must be milliseconds.');
  return Math.min(Number(value), MAX_SYNC_TIMEOUT_MS);
}
