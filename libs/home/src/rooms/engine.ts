// The room engine: MatrixRoomsPort over the home's RoomStore and @polyhome/rooms, for rooms whose members are
// accounts hosted on this home. Every event, made here or (later) received from another home, goes through the
// one accept pipeline (pipeline.ts) inside its room's queue, so local sends of a room form a chain.
import { createHash, randomBytes } from 'node:crypto';
import { homeStatus, peerIdFromPublicKey, type SecretKey } from '@polyhome/identity';
import type {
  CreateRoomRequest,
  MatrixRoomsPort,
  MembershipAction,
  RoomActor,
  RoomEventView,
  RoomPage,
  RoomSyncEntry,
} from '@polyhome/matrix';
import { MatrixError } from '@polyhome/matrix/errors';
import {
  authStateOf,
  buildEvent,
  DEFAULT_ROOM_VERSION,
  eventIdOf,
  isUserId,
  LIMITS,
  redactionAllowed,
  redactPdu,
  serverNameOf,
  signPdu,
  splitStateKey,
  stateKeyOf,
  SUPPORTED_ROOM_VERSIONS,
  type EventTemplateInput,
  type Pdu,
  type RoomVersionId,
  type StateMap,
} from '@polyhome/rooms';
import type { RoomStore, StoredRoomEvent } from '../room-store.js';
import { createRoomStateEvents } from './create-room.js';
import { KeyedQueue } from '../keyed-queue.js';
import { RoomEventPipeline, type AcceptOutcome, type DocumentSource } from './pipeline.js';
import { roomBlockedError, type RoomBlockStore } from './room-blocks.js';

/**
 * What the engine asks of federation (RoomFederation implements it): the handshakes that need another home.
 * Unset, the engine serves only rooms whose members are all hosted here.
 */
export interface RemoteRooms {
  /**
   * The server-server invite handshake: sends the signed invite of a user of another account to a home of that
   * account, which countersigns it; resolves with the countersigned event. Throws a MatrixError when no home
   * of the invitee takes it.
   */
  invite(version: RoomVersionId, pdu: Pdu, inviteRoomState: Record<string, unknown>[]): Promise<Pdu>;
  /**
   * Joins (make_join/send_join) a room this home does not hold, through the homes of `via` (server names) and of
   * the room id's server; resolves when the join event is accepted here.
   */
  join(actor: RoomActor, roomId: string, via: readonly string[]): Promise<{ eventId: string }>;
  /**
   * Leaves (make_leave/send_leave) a room this home does not hold, through the homes of `via` (the inviter's
   * server), of the room id's server and of the user's own server; resolves with the leave event (with
   * `content` added, e.g. a reason) that a home of the room accepted. Throws a MatrixError when none did.
   */
  leave(
    actor: RoomActor,
    roomId: string,
    via: readonly string[],
    content?: Record<string, unknown>,
  ): Promise<{ eventId: string; event: Pdu }>;
  /**
   * Fetches older events of a room held here from other homes (`/backfill` from `gaps`, else from the room's
   * gaps), for `actor`'s account; resolves with how many were taken into the timeline (0: none to fetch, or no
   * home gave any).
   */
  backfill(actor: RoomActor, roomId: string, limit: number, gaps?: readonly string[]): Promise<number>;
}

/** What the engine is built from. */
export interface RoomEngineComponents {
  store: RoomStore;
  /** The account documents this home holds: who is hosted here, and which homes sign for an account. */
  documents: DocumentSource;
  /** This home's node key: events are signed with it as `ed25519:<PeerId>`. */
  nodeKey: SecretKey;
  /** The clock of `origin_server_ts` (tests pin it). */
  now?: () => number;
  /**
   * Called after this home accepted a membership event it made for a user of an account hosted here, with the
   * signed event: the Home records it as the account's `member.set` op, so the account's other homes list the
   * room before room events travel between homes. A failure is the caller's to log; the event stays accepted.
   */
  onOwnMembership?: (
    serverName: string,
    roomId: string,
    membership: string,
    event: Record<string, unknown>,
  ) => Promise<void>;
  /**
   * Called when a user reads or writes a room this home does not hold: takes the room in from the account's
   * other homes when the account's replicated membership says its user is in it (the Home's take-in), so a
   * client on a newly added home is answered instead of refused. Resolves when done, held or not.
   */
  takeIn?: (actor: RoomActor, roomId: string) => Promise<void>;
  /**
   * The rooms an operator blocked here: a user of an account hosted here may not join one, nor be invited into
   * one (by anyone, through this home). Unset: no room is blocked.
   */
  blocks?: Pick<RoomBlockStore, 'roomBlock'>;
}

/** Most events of a `/messages` or `/context` page (each may need a state read for history visibility). */
export const MAX_PAGE = 100;
/** Most timeline events of one room in a `/sync` response. */
export const MAX_SYNC_TIMELINE = 100;
/** How long a room whose backfill found nothing is not backfilled again for /messages. */
const BACKFILL_RETRY_MS = 60_000;
/** Most backfills one `/messages` page makes before it is served (each fetches up to a page of events). */
const BACKFILL_ROUNDS = 4;
/** Most gaps one backfill asks other homes about. */
const BACKFILL_GAPS = 20;
/** How long a room a client's request could not take in is not taken in again for a request. */
const TAKE_IN_RETRY_MS = 30_000;
/** Rooms remembered as having found nothing to backfill. */
const BACKFILL_REMEMBERED = 1_000;
/** Rooms read per page of an account's memberships. */
const ROOMS_PAGE = 500;
/** Most rooms of one user the engine lists (joined rooms, sync). */
const MAX_ROOMS = 10_000;
/** Most current state changes read for an incremental sync of one room. */
const MAX_STATE_CHANGES = 1_000;
/** Most redactions read for one page of events. */
const MAX_REDACTIONS = 1_000;
/** Longest client transaction id (the store's column is 255; redactions' ids get the prefix `redact:`). */
const MAX_TXN_ID_BYTES = 248;
/** The device id under which forgotten rooms are recorded in the transaction table (not a client's device). */
const FORGOTTEN_DEVICE = '$forgotten-rooms';
/** The `invite_state` types (client-server API "Stripped state"), the invite itself last. */
const INVITE_STATE_TYPES = [
  'm.room.create',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.join_rules',
  'm.room.canonical_alias',
  'm.room.encryption',
];

type Membership = RoomSyncEntry['membership'];

/** A user's standing in a room: the membership and the event that set it. */
interface Standing {
  version: RoomVersionId;
  current: StateMap;
  membership: string | undefined;
  memberEvent: StoredRoomEvent | undefined;
}

/** An event to make in a room. */
interface EventSpec {
  type: string;
  stateKey?: string;
  content: Record<string, unknown>;
  redacts?: string;
}

/** The room engine of one home (see the file comment). */
export class RoomEngine implements MatrixRoomsPort {
  /** This home's PeerId (the key id of its signatures). */
  readonly peerId: string;
  readonly #store: RoomStore;
  readonly #documents: DocumentSource;
  readonly #nodeKey: SecretKey;
  readonly #now: () => number;
  readonly #pipeline: RoomEventPipeline;
  readonly #queue = new KeyedQueue();
  readonly #listeners: Array<(serverNames: string[]) => void> = [];
  readonly #onOwnMembership: RoomEngineComponents['onOwnMembership'];
  readonly #acceptedListeners: Array<() => void> = [];
  #remote: RemoteRooms | undefined;
  readonly #takeIn: RoomEngineComponents['takeIn'];
  readonly #blocks: RoomEngineComponents['blocks'];
  /** Take-ins a request started, per room (requests at once wait for the same one), and failed ones, with when. */
  readonly #takingIn = new Map<string, Promise<void>>();
  readonly #takeInFailed = new Map<string, number>();
  /** Rooms whose last backfill found nothing, with when (see #backfill). */
  readonly #backfillFailed = new Map<string, number>();
  constructor(components: RoomEngineComponents) {
    this.#store = components.store;
    this.#documents = components.documents;
    this.#nodeKey = components.nodeKey;
    this.#takeIn = components.takeIn;
    this.#blocks = components.blocks;
    this.#now = components.now ?? Date.now;
    this.#onOwnMembership = components.onOwnMembership;
    this.peerId = peerIdFromPublicKey(components.nodeKey.publicKey);
    this.#pipeline = new RoomEventPipeline(components.store, components.documents);
  }

  /**
   * The newest stream position: every event up to it is stored with the current state and memberships it
   * brings (one transaction each, committed in stream order), so a /sync may take it as it is.
   */
  async position(): Promise<number> {
    return this.#store.currentStreamPosition();
  }

  onRoomEvents(listener: (serverNames: string[]) => void): void {
    this.#listeners.push(listener);
  }

  /** Called after every event taken into the timeline, made here or received (the federation sender wakes). */
  onAccepted(listener: () => void): void {
    this.#acceptedListeners.push(listener);
  }

  /** Gives the engine federation: invites and joins of other accounts go through it. */
  setRemote(remote: RemoteRooms): void {
    this.#remote = remote;
  }

  /**
   * Takes in an event of a room's auth chain or state sent by another home, as an outlier (see
   * RoomEventPipeline.acceptOutlier), in the room's queue.
   */
  async ingestOutlier(version: RoomVersionId, json: unknown): Promise<AcceptOutcome> {
    const roomId = roomIdOf(json);
    if (roomId === undefined) return noRoomId();
    return this.#queue.run(roomId, () => this.#pipeline.acceptOutlier(version, json));
  }

  /** Takes in an older event another home gave with `/backfill` (see RoomEventPipeline.acceptBackfilled). */
  async ingestBackfilled(version: RoomVersionId, json: unknown): Promise<AcceptOutcome> {
    const roomId = roomIdOf(json);
    if (roomId === undefined) return noRoomId();
    return this.#queue.run(roomId, () => this.#pipeline.acceptBackfilled(version, json));
  }

  /**
   * Takes in a PDU received from another home, through the same pipeline as local events (in the room's
   * queue). The room must be held here (or the PDU be its create event). Never throws for a bad event.
   */
  async ingest(json: unknown, given?: { version: RoomVersionId; state: StateMap }): Promise<AcceptOutcome> {
    const roomId = roomIdOf(json);
    if (roomId === undefined) return noRoomId();
    const outcome = await this.#queue.run(roomId, async () => {
      if (given !== undefined) {
        return this.#pipeline.accept(given.version, json, 'remote', given.state);
      }
      let version = await this.#store.roomVersion(roomId);
      const pdu = json as Partial<Pdu>;
      if (version === null && pdu.type === 'm.room.create' && typeof pdu.content === 'object') {
        const declared = (pdu.content as { room_version?: unknown }).room_version;
        if (SUPPORTED_ROOM_VERSIONS.includes(declared as RoomVersionId)) version = declared as RoomVersionId;
      }
      if (version === null) {
        return {
          ok: false,
          stage: 'missing',
          code: 'unknown_room',
          message: `Room ${roomId} is not held here.`,
          stored: 'dropped',
        } satisfies AcceptOutcome;
      }
      return this.#pipeline.accept(version, json, 'remote');
    });
    if (outcome.ok && outcome.currentState !== undefined) await this.#notify(outcome.currentState);
    if (outcome.ok && outcome.inserted) this.#tellAccepted();
    return outcome;
  }

  /**
   * Throws M_FORBIDDEN when an operator blocked the room here: the check of every join of a user hosted here
   * and of every invite into the room made or countersigned here.
   */
  async refuseBlocked(roomId: string): Promise<void> {
    if (await this.blocked(roomId)) throw roomBlockedError(roomId);
  }

  /** Whether an operator blocked the room here (see `refuseBlocked`). */
  async blocked(roomId: string): Promise<boolean> {
    return this.#blocks !== undefined && (await this.#blocks.roomBlock(roomId)) !== undefined;
  }

  #tellAccepted(): void {
    for (const listener of this.#acceptedListeners) listener();
  }

  async createRoom(actor: RoomActor, request: CreateRoomRequest): Promise<{ roomId: string }> {
    await this.#requireLocal(actor);
    const version = request.roomVersion ?? DEFAULT_ROOM_VERSION;
    if (!SUPPORTED_ROOM_VERSIONS.includes(version)) {
      throw new MatrixError(
        'M_UNSUPPORTED_ROOM_VERSION',
        `Room version ${String(version)} is not supported here; use ${SUPPORTED_ROOM_VERSIONS.join(' or ')}.`,
      );
    }
    const invitees = [...new Set(request.invite)];
    for (const invitee of invitees) await this.#requireInvitable(invitee);
    const stateEvents = createRoomStateEvents(actor.userId, request);
    const roomId = `!${randomBytes(18).toString('base64url')}:${actor.serverName}`;
    const creation: Record<string, unknown> = { ...request.creationContent, room_version: version };
    // v10 names the creator in the content; v11 takes the create event's sender (and drops the field).
    if (version === '10') creation['creator'] = actor.userId;
    else delete creation['creator'];
    const specs: EventSpec[] = [
      { type: 'm.room.create', stateKey: '', content: creation },
      { type: 'm.room.member', stateKey: actor.userId, content: { membership: 'join' } },
      ...stateEvents,
      ...invitees.map((invitee) => ({
        type: 'm.room.member',
        stateKey: invitee,
        content: { membership: 'invite', ...(request.isDirect ? { is_direct: true } : {}) },
      })),
    ];
    await this.#queue.run(roomId, async () => {
      // The room is new: its events form a chain made here, each from the state the one before leaves, checked
      // and stored together (one transaction).
      const pdus: Pdu[] = [];
      let state: StateMap = new Map();
      let prev: { eventId: string; pdu: Pdu } | undefined;
      for (const spec of specs) {
        const pdu = this.#sign(actor, version, this.#template(actor, roomId, version, spec, prev ? [prev] : [], state));
        const eventId = eventIdOf(version, pdu);
        if (pdu.state_key !== undefined) state = new Map(state).set(stateKeyOf(pdu.type, pdu.state_key), eventId);
        pdus.push(pdu);
        prev = { eventId, pdu };
      }
      const outcomes = await this.#pipeline.acceptNewRoom(version, pdus);
      const refused = outcomes.find((o) => !o.ok);
      if (refused !== undefined && !refused.ok) throw refusalError(refused);
      const current = outcomes.at(-1);
      if (current?.ok === true && current.currentState !== undefined) await this.#notify(current.currentState);
      if (outcomes.some((o) => o.ok && o.inserted)) this.#tellAccepted();
      for (const [i, pdu] of pdus.entries()) await this.#recordOwnMembership(roomId, pdu, outcomes[i]!.eventId!);
    });
    return { roomId };
  }

  async membership(
    actor: RoomActor,
    roomId: string,
    change: MembershipAction,
    via: readonly string[] = [],
  ): Promise<{ eventId: string }> {
    await this.#requireLocal(actor);
    if (change.action === 'join' || change.action === 'invite') await this.refuseBlocked(roomId);
    const reason = 'reason' in change && change.reason !== undefined ? { reason: change.reason } : {};
    const remote = this.#remote;
    const remoteChange = change.action === 'join' || (change.action === 'leave' && via.length > 0);
    if (remote !== undefined && remoteChange && !(await this.holds(roomId))) {
      if (change.action === 'join') return remote.join(actor, roomId, via);
      // An invite (or knock) of a room not taken in here, rejected through the homes of `via` (the inviter's
      // server); the leave is recorded as the account's membership (/sync shows the room left, the invite gone).
      const { eventId, event } = await remote.leave(actor, roomId, via, reason);
      await this.#recordOwnMembership(roomId, event, eventId);
      return { eventId };
    }
    const version = await this.#version(roomId);
    let target = actor.userId;
    let membership: string;
    switch (change.action) {
      case 'join':
        membership = 'join';
        break;
      case 'leave':
        membership = 'leave';
        break;
      case 'invite':
        await this.#requireInvitable(change.target);
        target = change.target;
        membership = 'invite';
        break;

      case 'kick':
      case 'ban':
      case 'unban':
        if (!isUserId(change.target)) throw new MatrixError('M_INVALID_PARAM', `${change.target} is not a user id.`);
        target = change.target;
        membership = change.action === 'ban' ? 'ban' : 'leave';
        break;
    }
    const remoteInvite = membership === 'invite' && !(await this.#isLocalUser(target)) ? this.#remote : undefined;
    return this.#queue.run(roomId, async () => {
      const current = await this.#store.currentState(roomId);
      const held = await this.#memberEvent(current, target);
      const now = held?.pdu.content['membership'];
      if (change.action === 'join' && now === 'join') return { eventId: held!.eventId };
      if (change.action === 'unban' && now !== 'ban') {
        throw new MatrixError('M_FORBIDDEN', `${target} is not banned from this room.`);
      }
      if (change.action === 'kick' && now !== 'join' && now !== 'invite' && now !== 'knock') {
        throw new MatrixError('M_FORBIDDEN', `${target} is not in this room.`);
      }
      const exchange =
        remoteInvite === undefined
          ? undefined
          : async (pdu: Pdu) => remoteInvite.invite(version, pdu, await this.strippedState(roomId));
      const eventId = await this.#make(
        actor,
        roomId,
        version,
        { type: 'm.room.member', stateKey: target, content: { membership, ...reason } },
        exchange,
      );
      return { eventId };
    });
  }

  async send(
    actor: RoomActor,
    roomId: string,
    event: { type: string; content: Record<string, unknown>; stateKey?: string; txnId?: string },
  ): Promise<{ eventId: string }> {
    await this.#requireLocal(actor);
    if (event.type === 'm.room.create') {
      throw new MatrixError('M_FORBIDDEN', 'm.room.create cannot be sent to an existing room.');
    }
    if (event.type === 'm.room.redaction') {
      throw new MatrixError('M_INVALID_PARAM', 'Redact events with PUT /rooms/{roomId}/redact/{eventId}/{txnId}.');
    }
    if (event.txnId !== undefined) checkTxnId(event.txnId);
    const version = await this.#version(roomId);
    return this.#queue.run(roomId, () =>
      this.#once(actor, event.txnId, () =>
        this.#make(actor, roomId, version, {
          type: event.type,
          content: event.content,
          ...(event.stateKey === undefined ? {} : { stateKey: event.stateKey }),
        }),
      ),
    );
  }

  async redact(
    actor: RoomActor,
    roomId: string,
    eventId: string,
    reason: string | undefined,
    txnId: string,
  ): Promise<{ eventId: string }> {
    await this.#requireLocal(actor);
    checkTxnId(txnId);
    const version = await this.#version(roomId);
    return this.#queue.run(roomId, () =>
      this.#once(actor, `redact:${txnId}`, async () => {
        const target = (await this.#store.eventsByIds([eventId])).get(eventId);
        if (target === undefined || target.roomId !== roomId || target.rejected !== null) {
          throw new MatrixError('M_NOT_FOUND', `Event ${eventId} is not known in ${roomId}.`);
        }
        const current = await this.#store.currentState(roomId);
        const ids = [stateKeyOf('m.room.create', ''), stateKeyOf('m.room.power_levels', '')]
          .map((key) => current.get(key))
          .filter((id): id is string => id !== undefined);
        const authState = authStateOf((await this.#store.getEvents(ids)).values());
        const allowed = redactionAllowed(
          version,
          { ...target.pdu, type: 'm.room.redaction', sender: actor.userId, room_id: roomId },
          target.pdu,
          authState,
        );
        if (!allowed.ok) throw new MatrixError('M_FORBIDDEN', allowed.message);
        return this.#make(actor, roomId, version, {
          type: 'm.room.redaction',
          content: reason === undefined ? {} : { reason },
          redacts: eventId,
        });
      }),
    );
  }

  async forget(actor: RoomActor, roomId: string): Promise<void> {
    const standing = await this.#standing(actor, roomId);
    if (standing.memberEvent === undefined) throw new MatrixError('M_NOT_FOUND', `You were never in ${roomId}.`);
    if (standing.membership === 'join' || standing.membership === 'invite') {
      throw new MatrixError('M_UNKNOWN', 'Leave the room before forgetting it.', 400);
    }
    const eventId = standing.memberEvent.eventId;
    await this.#store.recordTransaction(actor.serverName, FORGOTTEN_DEVICE, forgetKey(roomId, eventId), eventId);
  }

  async joinedRooms(actor: RoomActor): Promise<string[]> {
    const rows = await this.#roomsOf(actor, ['join']);
    return rows.map((r) => r.roomId);
  }

  async state(actor: RoomActor, roomId: string): Promise<RoomEventView[]> {
    const state = await this.#visibleState(actor, roomId);
    return this.#viewsOfState(state.version, roomId, state.map);
  }

  async stateEvent(actor: RoomActor, roomId: string, type: string, stateKey: string): Promise<RoomEventView | null> {
    const state = await this.#visibleState(actor, roomId);
    const id = state.map.get(stateKeyOf(type, stateKey));
    if (id === undefined) return null;
    const [view] = await this.#views(state.version, roomId, [...(await this.#store.eventsByIds([id])).values()]);
    return view ?? null;
  }

  async event(actor: RoomActor, roomId: string, eventId: string): Promise<RoomEventView> {
    const standing = await this.#standing(actor, roomId).catch(() => undefined);
    const held = (await this.#store.eventsByIds([eventId])).get(eventId);
    const notFound = new MatrixError(
      'M_NOT_FOUND',
      `Event ${eventId} is not known in ${roomId}, or not visible to you.`,
    );
    if (standing === undefined || held === undefined || held.roomId !== roomId) throw notFound;
    if (held.rejected !== null || held.streamOrdering === null) throw notFound;
    const [visible] = await this.#visible(actor.userId, standing, [held]);
    if (visible === undefined) throw notFound;
    return (await this.#views(standing.version, roomId, [visible]))[0]!;
  }

  async messages(
    actor: RoomActor,
    roomId: string,
    options: { from?: string; dir: 'b' | 'f'; limit: number },
  ): Promise<RoomPage> {
    const standing = await this.#readable(actor, roomId);
    const limit = clampLimit(options.limit, MAX_PAGE);
    let page = await this.#page(roomId, { ...options, limit });
    // Backwards, a page is whole only when no gap could hold an event that sorts within it: a gap referenced by
    // an event deeper than the page's last one (or any gap, at the room's held start). Such gaps are fetched
    // from other homes first, then the page is read again. An event fetched later that sorts above the `end`
    // a client already has would never reach it (events of parallel branches interleave by depth).
    let unfilled = false;
    for (let round = 0; options.dir === 'b'; round++) {
      const last = page.events.at(-1);
      const floor = page.end === null || last === undefined ? -1 : last.depth;
      const gaps = await this.#store.missingPrevEvents(roomId, BACKFILL_GAPS, floor);
      if (gaps.length === 0) break;
      // Every backfill so far gave events, but the gaps go on: left to the client's next page.
      unfilled = round === BACKFILL_ROUNDS;
      if (unfilled || !(await this.#backfill(actor, roomId, limit, gaps))) break;
      page = await this.#page(roomId, { ...options, limit });
    }
    // Gaps other homes are still filling: the client is told there is more, and pages on from here, rather than
    // taking this page for the room's start.
    if (unfilled && page.end === null) {
      const last = page.events.at(-1);
      page = {
        ...page,
        end: last === undefined ? (options.from ?? page.start) : this.#store.tokenOf(last.depth, last.eventId),
      };
    }
    const visible = await this.#visible(actor.userId, standing, page.events);
    return {
      events: await this.#views(standing.version, roomId, visible),
      start: page.start,
      ...(page.end === null ? {} : { end: page.end }),
    };
  }

  /**
   * `limit` counts both sides (half before, as Synapse splits it); `state` is the state after the last event
   * returned (the spec's "state of the room at the last event returned").
   */
  async context(
    actor: RoomActor,
    roomId: string,
    eventId: string,
    limit: number,
  ): Promise<{ event: RoomEventView; before: RoomPage; after: RoomPage; state: RoomEventView[] }> {
    const event = await this.event(actor, roomId, eventId);
    const standing = await this.#standing(actor, roomId);
    const token = await this.#store.topologicalTokenOf(eventId);
    if (token === null) throw new MatrixError('M_NOT_FOUND', `Event ${eventId} is not in the timeline of ${roomId}.`);
    const total = Math.max(0, Math.min(Math.floor(limit), MAX_PAGE));
    const beforeLimit = Math.floor(total / 2);
    const side = async (dir: 'b' | 'f', count: number): Promise<RoomPage> => {
      if (count === 0) return { events: [], start: token, end: token };
      const page = await this.#store.messages(roomId, { from: token, dir, limit: count });
      const visible = await this.#visible(actor.userId, standing, page.events);
      return {
        events: await this.#views(standing.version, roomId, visible),
        start: token,
        ...(page.end === null ? {} : { end: page.end }),
      };
    };
    const before = await side('b', beforeLimit);
    const after = await side('f', total - beforeLimit);
    const last = after.events.at(-1)?.eventId ?? eventId;
    const state = await this.#viewsOfState(standing.version, roomId, await this.#store.stateAfter(last));
    return { event, before, after, state };
  }

  async members(actor: RoomActor, roomId: string): Promise<RoomEventView[]> {
    const state = await this.#visibleState(actor, roomId);
    const members = new Map([...state.map].filter(([key]) => splitStateKey(key).type === 'm.room.member'));
    return this.#viewsOfState(state.version, roomId, members);
  }

  async syncRooms(
    actor: RoomActor,
    options: { since?: number; to: number; timelineLimit: number; lazyLoadMembers?: boolean },
  ): Promise<RoomSyncEntry[]> {
    const since = options.since ?? 0;
    const initial = options.since === undefined;
    const limit = clampLimit(options.timelineLimit, MAX_SYNC_TIMELINE);
    const range = { since, limit, lazyLoadMembers: options.lazyLoadMembers === true };
    const entries: RoomSyncEntry[] = [];
    for (const row of await this.#roomsOf(actor)) {
      // A change after `to` is for the next sync (which starts at `to`).
      if (row.streamOrdering > options.to) continue;
      const membership = row.membership as Membership;
      if (membership === 'invite') {
        if (!initial && row.streamOrdering <= since) continue;
        entries.push(await this.#inviteEntry(row.roomId, row.eventId));
        continue;
      }
      if (membership === 'join') {
        // Joined since the last sync: the whole state, as on an initial sync.
        const full = initial || row.streamOrdering > since;
        const entry = await this.#timelineEntry(actor, row.roomId, 'join', { ...range, to: options.to, full });
        if (entry !== undefined) entries.push(entry);
        continue;
      }
      if (membership === 'leave' || membership === 'ban') {
        if (initial || row.streamOrdering <= since) continue;
        if (await this.#forgotten(actor, row.roomId, row.eventId)) continue;
        const entry = await this.#timelineEntry(actor, row.roomId, membership, {
          ...range,
          to: row.streamOrdering,
          full: false,
        });
        if (entry !== undefined) entries.push(entry);
      }
    }
    return entries;
  }

  /** One joined or left room of a sync: the timeline after `since` up to `to`, and the state the client lacks. */
  async #timelineEntry(
    actor: RoomActor,
    roomId: string,
    membership: Membership,
    range: { since: number; to: number; limit: number; full: boolean; lazyLoadMembers: boolean },
  ): Promise<RoomSyncEntry | undefined> {
    const { since, to, limit, full } = range;
    const standing = await this.#standing(actor, roomId);
    // A room the client gets whole (initial sync, joined or taken in since `since`) shows its newest events, as
    // on an initial sync, not only those after `since`: the client never had the earlier ones.
    const timeline = await this.#store.timelineSince(roomId, full ? 0 : since, limit, to);
    if (!full && timeline.events.length === 0) return undefined;
    const visible = await this.#visible(actor.userId, standing, timeline.events);
    const first = timeline.events[0];
    // Whole, the timeline is limited whenever history lies before it, held here or not: a room taken in from
    // another home holds only its latest events until /messages backfills the rest. A client pages back only
    // from a limited timeline's `prev_batch` (matrix-js-sdk drops the token of a room it already shows).
    const limited = timeline.limited || (full && first !== undefined && first.pdu.type !== 'm.room.create');
    let state: RoomEventView[];
    if (full || limited) {
      // The state at the start of the timeline: before its first event, or at `to` when it is empty.
      const map =
        first !== undefined
          ? await this.#store.stateBefore(first.eventId)
          : membership === 'join'
            ? standing.current
            : await this.#store.stateAfter(standing.memberEvent!.eventId);
      state = await this.#viewsOfState(
        standing.version,
        roomId,
        range.lazyLoadMembers ? lazyMembers(map, [actor.userId, ...visible.map((e) => e.pdu.sender)]) : map,
      );
    } else {
      // Not limited: the timeline holds every event since `since`; state changes it does not show (a state
      // resolution's outcome) are sent as state.
      const shown = new Set(timeline.events.map((e) => e.eventId));
      const latest = new Map<string, string | null>();
      for (const change of await this.#store.currentStateChangesSince(roomId, since, MAX_STATE_CHANGES)) {
        if (change.streamOrdering <= to) latest.set(change.key, change.eventId);
      }
      const ids = [...latest.values()].filter((id): id is string => id !== null && !shown.has(id));
      state = await this.#views(standing.version, roomId, [...(await this.#store.eventsByIds(ids)).values()]);
    }
    return {
      roomId,
      membership,
      timeline: await this.#views(standing.version, roomId, visible),
      limited,
      prevBatch: timeline.prevBatch,
      state,
    };
  }

  /**
   * The stripped state of a room now (client-server API "Stripped state"): what an invitee sees before joining,
   * sent with a federation invite.
   */
  async strippedState(roomId: string): Promise<Record<string, unknown>[]> {
    const state = await this.#store.currentState(roomId);
    const ids = INVITE_STATE_TYPES.map((type) => state.get(stateKeyOf(type, ''))).filter(
      (id): id is string => id !== undefined,
    );
    const held = await this.#store.getEvents(ids);
    return ids
      .map((id) => held.get(id))
      .filter((pdu): pdu is Pdu => pdu !== undefined)
      .map((pdu) => ({ type: pdu.type, state_key: pdu.state_key, sender: pdu.sender, content: pdu.content }));
  }

  /** An invite of a sync: the stripped state the spec lists, the invite event last. */
  async #inviteEntry(roomId: string, inviteId: string): Promise<RoomSyncEntry> {
    const version = await this.#version(roomId);
    const invite = await this.#store.eventsByIds([inviteId]);
    const state = await this.#store.stateBefore(inviteId);
    const ids = INVITE_STATE_TYPES.map((type) => state.get(stateKeyOf(type, ''))).filter(
      (id): id is string => id !== undefined,
    );
    const inviter = invite.get(inviteId)?.pdu.sender;
    const inviterId = inviter === undefined ? undefined : state.get(stateKeyOf('m.room.member', inviter));
    if (inviterId !== undefined) ids.push(inviterId);
    const held = await this.#store.eventsByIds(ids);
    const events = [...ids.map((id) => held.get(id)), invite.get(inviteId)].filter(
      (e): e is StoredRoomEvent => e !== undefined,
    );
    return {
      roomId,
      membership: 'invite',
      timeline: [],
      limited: false,
      prevBatch: null,
      state: [],
      inviteState: await this.#views(version, roomId, events),
    };
  }

  /** Makes, signs and accepts one local event from the room's current state and extremities (in its queue). */
  async #make(
    actor: RoomActor,
    roomId: string,
    version: RoomVersionId,
    spec: EventSpec,
    exchange?: (pdu: Pdu) => Promise<Pdu>,
  ): Promise<string> {
    const isCreate = spec.type === 'm.room.create';
    const extremities = isCreate ? [] : await this.#store.forwardExtremities(roomId, LIMITS.prevEvents);
    // With one extremity, the room's current state is the state after it (kept in memory when it was accepted
    // here); otherwise, the current state as held.
    const sole = extremities.length === 1 ? this.#pipeline.cachedStateAfter(extremities[0]!.eventId) : undefined;
    const state = isCreate ? new Map<string, string>() : (sole ?? (await this.#store.currentState(roomId)));
    const prevPdus = await this.#pipeline.events(extremities.map((e) => e.eventId));
    const prevEvents = extremities
      .map((e) => ({ eventId: e.eventId, pdu: prevPdus.get(e.eventId)! }))
      .filter((e) => e.pdu !== undefined);
    let pdu = this.#sign(actor, version, this.#template(actor, roomId, version, spec, prevEvents, state));
    if (exchange !== undefined) pdu = await exchange(pdu);
    const outcome = await this.#pipeline.accept(version, pdu, 'local', undefined, {
      extremities: extremities.map((e) => e.eventId),
    });
    if (!outcome.ok) throw refusalError(outcome);
    if (outcome.currentState !== undefined) await this.#notify(outcome.currentState);
    if (outcome.inserted) this.#tellAccepted();
    await this.#recordOwnMembership(roomId, pdu, outcome.eventId);
    return outcome.eventId;
  }

  /** The template of an event of `actor` made on `prevEvents` from `state` (its auth events are taken from it). */
  #template(
    actor: RoomActor,
    roomId: string,
    version: RoomVersionId,
    spec: EventSpec,
    prevEvents: EventTemplateInput['prevEvents'],
    state: StateMap,
  ): EventTemplateInput {
    return {
      version,
      roomId,
      sender: actor.userId,
      type: spec.type,
      ...(spec.stateKey === undefined ? {} : { stateKey: spec.stateKey }),
      content: spec.content,
      prevEvents,
      state,
      ...(spec.redacts === undefined ? {} : { redacts: spec.redacts }),
      originServerTs: this.#now(),
    };
  }

  /** Builds and signs an event of `actor` with this home's key (M_BAD_JSON when it cannot be). */
  #sign(actor: RoomActor, version: RoomVersionId, input: EventTemplateInput): Pdu {
    const template = buildEvent(input);
    try {
      return signPdu(version, template, {
        serverName: actor.serverName,
        keyId: `ed25519:${this.peerId}`,
        secretKey: this.#nodeKey,
      });
    } catch (error) {
      throw new MatrixError('M_BAD_JSON', `The event cannot be signed: ${(error as Error).message}`);
    }
  }

  /** Runs a client send once per (account, device, txn id): a retry gets the first event's id. */
  async #once(actor: RoomActor, txnId: string | undefined, make: () => Promise<string>): Promise<{ eventId: string }> {
    if (txnId === undefined) return { eventId: await make() };
    const earlier = await this.#store.eventForTransaction(actor.serverName, actor.deviceId, txnId);
    if (earlier !== null) return { eventId: earlier };
    const eventId = await make();
    return { eventId: await this.#store.recordTransaction(actor.serverName, actor.deviceId, txnId, eventId) };
  }

  /** A membership event of a user hosted here, made here: handed to `onOwnMembership` (see the components). */
  async #recordOwnMembership(roomId: string, pdu: Pdu, eventId: string): Promise<void> {
    const record = this.#onOwnMembership;
    const target = pdu.state_key;
    const membership = pdu.content['membership'];
    if (record === undefined || pdu.type !== 'm.room.member' || target === undefined) return;
    if (typeof membership !== 'string' || !(await this.#isLocalUser(target))) return;
    await record(serverNameOf(target)!, roomId, membership, { ...pdu, event_id: eventId });
  }

  /**
   * Enacts here a membership of the account's user that another home of the account set (its replicated
   * `member.set`), for a room this home holds: a join or a leave made on one home holds on all of them. Only
   * joins and leaves are followed; a change the room's rules refuse here throws (the caller logs it).
   */
  async followOwnMembership(serverName: string, userId: string, roomId: string, membership: string): Promise<void> {
    if (!(await this.holds(roomId))) return;
    const actor: RoomActor = { serverName, userId, deviceId: '$replicated' };
    const standing = await this.#standing(actor, roomId).catch(() => undefined);
    if (standing === undefined || standing.membership === membership) return;
    if (membership === 'leave' && (standing.membership === 'join' || standing.membership === 'invite')) {
      await this.membership(actor, roomId, { action: 'leave' });
    } else if (membership === 'join') {
      await this.membership(actor, roomId, { action: 'join' });
    }
  }

  /** The users joined to a room held here, from its current state ([] when it is not held). */
  async joinedMembers(roomId: string): Promise<string[]> {
    const current = await this.#store.currentState(roomId);
    const ids = [...current].filter(([key]) => splitStateKey(key).type === 'm.room.member').map(([, id]) => id);
    const events = await this.#store.eventsByIds(ids);
    const joined: string[] = [];
    for (const event of events.values()) {
      if (event.pdu.content['membership'] === 'join' && event.pdu.state_key !== undefined) {
        joined.push(event.pdu.state_key);
      }
    }
    return joined;
  }

  /** The rooms held here that users of `serverName` are joined to (at most MAX_ROOMS). */
  async joinedRoomsOfServer(serverName: string): Promise<string[]> {
    const rows = await this.#roomsOf({ serverName, userId: '', deviceId: '' }, ['join'], false);
    return [...new Set(rows.map((r) => r.roomId))];
  }

  /** The stream ordering of a held timeline event of the room, or null (not held, outlier, rejected, elsewhere). */
  async streamOrderingOf(roomId: string, eventId: string): Promise<number | null> {
    const held = (await this.#store.eventsByIds([eventId])).get(eventId);
    return held === undefined || held.roomId !== roomId || held.rejected !== null ? null : held.streamOrdering;
  }

  async ownMembership(actor: RoomActor, roomId: string): Promise<string | undefined> {
    if (!(await this.holds(roomId))) return undefined;
    return (await this.#standing(actor, roomId)).membership;
  }

  /** Whether this home holds the room (any event of it). */
  async holds(roomId: string): Promise<boolean> {
    return (await this.#store.roomVersion(roomId)) !== null;
  }

  /** Tells the listeners which hosted accounts have members in a room whose state is `state`. */
  async #notify(state: StateMap): Promise<void> {
    if (this.#listeners.length === 0) return;
    const servers = new Set<string>();
    for (const key of state.keys()) {
      const { type, stateKey } = splitStateKey(key);
      const server = type === 'm.room.member' ? serverNameOf(stateKey) : undefined;
      if (server !== undefined) servers.add(server);
    }
    const hosted: string[] = [];
    for (const server of servers) if (await this.#hosts(server)) hosted.push(server);
    if (hosted.length === 0) return;
    for (const listener of this.#listeners) listener(hosted);
  }

  /** Whether an account is hosted on this home (its document names this home). */
  async #hosts(serverName: string): Promise<boolean> {
    const document = await this.#documents.document(serverName);
    return document !== undefined && homeStatus(document, this.peerId).kind === 'home';
  }

  /** Whether `userId` is the user of an account hosted on this home. */
  async #isLocalUser(userId: string): Promise<boolean> {
    const server = serverNameOf(userId);
    if (server === undefined) return false;
    const document = await this.#documents.document(server);
    return document !== undefined && document.user_id === userId && homeStatus(document, this.peerId).kind === 'home';
  }

  async #requireLocal(actor: RoomActor): Promise<void> {
    if (serverNameOf(actor.userId) !== actor.serverName || !(await this.#isLocalUser(actor.userId))) {
      throw new MatrixError('M_FORBIDDEN', `${actor.userId} is not the user of an account hosted on this home.`);
    }
  }

  async #requireInvitable(userId: string): Promise<void> {
    if (!isUserId(userId)) throw new MatrixError('M_INVALID_PARAM', `${userId} is not a user id.`);
    if (this.#remote !== undefined) return;
    if (!(await this.#isLocalUser(userId))) {
      throw new MatrixError(
        'M_FORBIDDEN',
        `${userId} is not hosted on this home; inviting users of other homes needs federation between homes, which is not available yet.`,
      );
    }
  }

  async #version(roomId: string): Promise<RoomVersionId> {
    const version = await this.#store.roomVersion(roomId);
    if (version === null) throw new MatrixError('M_NOT_FOUND', `Room ${roomId} is not known on this home.`);
    return version;
  }

  async #memberEvent(state: StateMap, userId: string): Promise<StoredRoomEvent | undefined> {
    const id = state.get(stateKeyOf('m.room.member', userId));
    return id === undefined ? undefined : (await this.#store.eventsByIds([id])).get(id);
  }

  /** The user's membership in a room now. M_FORBIDDEN for a room not held here (as for one never joined). */
  async #standing(actor: RoomActor, roomId: string): Promise<Standing> {
    let version = await this.#store.roomVersion(roomId);
    if (version === null && (await this.#takenIn(actor, roomId))) version = await this.#store.roomVersion(roomId);
    if (version === null) throw new MatrixError('M_FORBIDDEN', `You are not in room ${roomId}.`);
    const current = await this.#store.currentState(roomId);
    const memberEvent = await this.#memberEvent(current, actor.userId);
    const membership = memberEvent?.pdu.content['membership'];
    return { version, current, membership: typeof membership === 'string' ? membership : undefined, memberEvent };
  }

  /** The state a user may read: the current one when joined, the one at their leave (or ban) otherwise. */
  async #visibleState(actor: RoomActor, roomId: string): Promise<{ version: RoomVersionId; map: StateMap }> {
    const standing = await this.#standing(actor, roomId);
    if (standing.membership === 'join') return { version: standing.version, map: standing.current };
    if ((standing.membership === 'leave' || standing.membership === 'ban') && standing.memberEvent !== undefined) {
      const before = await this.#store.stateBefore(standing.memberEvent.eventId);
      const was = await this.#memberEvent(before, actor.userId);
      if (was !== undefined && was.pdu.content['membership'] === 'join') {
        return { version: standing.version, map: await this.#store.stateAfter(standing.memberEvent.eventId) };
      }
    }
    throw new MatrixError('M_FORBIDDEN', `You are not in room ${roomId}.`);
  }

  /** Standing for reading the timeline: a membership event of the user, or a world-readable room. */
  async #readable(actor: RoomActor, roomId: string): Promise<Standing> {
    const standing = await this.#standing(actor, roomId);
    if (standing.memberEvent !== undefined) return standing;
    const visibility = await this.#historyVisibility(standing.current);
    if (visibility === 'world_readable') return standing;
    throw new MatrixError('M_FORBIDDEN', `You are not in room ${roomId}.`);
  }

  async #historyVisibility(state: StateMap): Promise<string> {
    const id = state.get(stateKeyOf('m.room.history_visibility', ''));
    if (id === undefined) return 'shared';
    const value = (await this.#store.getEvents([id])).get(id)?.content['history_visibility'];
    return typeof value === 'string' ? value : 'shared';
  }

  /**
   * The events a user may see (client-server API "History visibility"), by the visibility and the user's
   * membership at each event: `world_readable` always; `shared` when joined then or now; `invited` when invited
   * or joined then; `joined` when joined then; the user's own membership events always. Events after the user's current join need no state read (joined then).
   */
  async #visible(userId: string, standing: Standing, events: StoredRoomEvent[]): Promise<StoredRoomEvent[]> {
    const joinedSince =
      standing.membership === 'join' ? (standing.memberEvent?.streamOrdering ?? Number.MAX_SAFE_INTEGER) : undefined;
    const visible: StoredRoomEvent[] = [];
    for (const event of events) {
      if (joinedSince !== undefined && event.streamOrdering !== null && event.streamOrdering >= joinedSince) {
        visible.push(event);
        continue;
      }
      // Users always see their own membership changes (a leave or a rejected invite too, as Synapse does).
      if (event.pdu.type === 'm.room.member' && event.pdu.state_key === userId) {
        visible.push(event);
        continue;
      }
      if (event.streamOrdering !== null && event.streamOrdering <= 0) {
        // Backfilled: no state of its own here. Shown as the room's current visibility allows history.
        const visibility = await this.#historyVisibility(standing.current);
        if (visibility === 'world_readable' || (visibility === 'shared' && standing.membership === 'join')) {
          visible.push(event);
        }
        continue;
      }
      const before = await this.#store.stateBefore(event.eventId);
      const visibility = await this.#historyVisibility(before);
      const membership = (await this.#memberEvent(before, userId))?.pdu.content['membership'];
      const seen =
        visibility === 'world_readable' ||
        membership === 'join' ||
        (visibility === 'shared' && standing.membership === 'join') ||
        (visibility === 'invited' && membership === 'invite');
      if (seen) visible.push(event);
    }
    return visible;
  }

  /**
   * Backfills a room for a page of /messages, unless the room has no gaps or backfilling it found nothing less
   * than BACKFILL_RETRY_MS ago (a client paging back at the room's start must not cost requests to other homes).
   */
  async #backfill(actor: RoomActor, roomId: string, limit: number, gaps: readonly string[]): Promise<boolean> {
    const remote = this.#remote;
    if (remote === undefined) return false;
    const failed = this.#backfillFailed.get(roomId);
    if (failed !== undefined && this.#now() - failed < BACKFILL_RETRY_MS) return false;
    const taken = await remote.backfill(actor, roomId, limit, gaps).catch(() => 0);
    if (taken === 0) {
      this.#backfillFailed.delete(roomId);
      this.#backfillFailed.set(roomId, this.#now());
      if (this.#backfillFailed.size > BACKFILL_REMEMBERED) {
        this.#backfillFailed.delete(this.#backfillFailed.keys().next().value!);
      }
    }
    return taken > 0;
  }

  /**
   * Takes in a room not held here for a request (see `takeIn`), at most once per TAKE_IN_RETRY_MS when it fails;
   * requests at once wait for the same take-in. Resolves with whether a take-in ran.
   */
  async #takenIn(actor: RoomActor, roomId: string): Promise<boolean> {
    const takeIn = this.#takeIn;
    if (takeIn === undefined) return false;
    const failed = this.#takeInFailed.get(roomId);
    if (failed !== undefined && this.#now() - failed < TAKE_IN_RETRY_MS) return false;
    let running = this.#takingIn.get(roomId);
    if (running === undefined) {
      running = takeIn(actor, roomId)
        .catch(() => undefined)
        .then(async () => {
          if (await this.holds(roomId)) return;
          this.#takeInFailed.delete(roomId);
          this.#takeInFailed.set(roomId, this.#now());
          if (this.#takeInFailed.size > BACKFILL_REMEMBERED) {
            this.#takeInFailed.delete(this.#takeInFailed.keys().next().value!);
          }
        })
        .finally(() => this.#takingIn.delete(roomId));
      this.#takingIn.set(roomId, running);
    }
    await running;
    return true;
  }

  /** A store page, with a malformed token as the client's error. */
  async #page(roomId: string, options: { from?: string; dir: 'b' | 'f'; limit: number }) {
    try {
      return await this.#store.messages(roomId, options);
    } catch (error) {
      if (error instanceof RangeError) throw new MatrixError('M_INVALID_PARAM', error.message);
      throw error;
    }
  }

  async #viewsOfState(version: RoomVersionId, roomId: string, state: StateMap): Promise<RoomEventView[]> {
    const held = await this.#store.eventsByIds([...state.values()]);
    return this.#views(version, roomId, [...held.values()]);
  }

  /**
   * Events as handed out: the redacted form (with the redaction's id) when an accepted redaction that may be
   * applied (`redactionAllowed`, against the redaction's own auth events) targets one.
   */
  async #views(version: RoomVersionId, roomId: string, events: StoredRoomEvent[]): Promise<RoomEventView[]> {
    if (events.length === 0) return [];
    const redactions = await this.#store.redactionsOf(
      roomId,
      events.map((e) => e.eventId),
      MAX_REDACTIONS,
    );
    const byTarget = new Map<string, StoredRoomEvent[]>();
    for (const redaction of redactions) {
      const target = redactsOf(redaction.pdu);
      if (target === undefined) continue;
      byTarget.set(target, [...(byTarget.get(target) ?? []), redaction]);
    }
    const views: RoomEventView[] = [];
    for (const event of events) {
      const view: RoomEventView = { eventId: event.eventId, pdu: event.pdu, streamOrdering: event.streamOrdering };
      for (const redaction of byTarget.get(event.eventId) ?? []) {
        const authEvents = await this.#store.getEvents(redaction.pdu.auth_events);
        if (redactionAllowed(version, redaction.pdu, event.pdu, authStateOf(authEvents.values())).ok) {
          view.pdu = redactPdu(version, event.pdu) as Pdu;
          view.redactedBy = redaction.eventId;
          break;
        }
      }
      views.push(view);
    }
    return views;
  }

  /** The user's rooms by current membership (all memberships when `memberships` is absent), room id order. */
  async #roomsOf(actor: RoomActor, memberships?: string[], ownOnly = true) {
    const rows: Awaited<ReturnType<RoomStore['roomsOfServer']>> = [];
    let after: string | undefined;
    for (let read = 0; read < MAX_ROOMS; read += ROOMS_PAGE) {
      const page = await this.#store.roomsOfServer(actor.serverName, {
        ...(memberships === undefined ? {} : { memberships }),
        ...(after === undefined ? {} : { after }),
        limit: ROOMS_PAGE,
      });
      rows.push(...page.filter((r) => !ownOnly || r.userId === actor.userId));
      const rooms = new Set(page.map((r) => r.roomId));
      if (rooms.size < ROOMS_PAGE) break;
      after = page.at(-1)!.roomId;
    }
    return rows;
  }

  async #forgotten(actor: RoomActor, roomId: string, memberEventId: string): Promise<boolean> {
    const key = forgetKey(roomId, memberEventId);
    return (await this.#store.eventForTransaction(actor.serverName, FORGOTTEN_DEVICE, key)) !== null;
  }
}

function roomIdOf(json: unknown): string | undefined {
  const roomId = typeof json === 'object' && json !== null ? (json as { room_id?: unknown }).room_id : undefined;
  return typeof roomId === 'string' ? roomId : undefined;
}

function noRoomId(): AcceptOutcome {
  return { ok: false, stage: 'format', code: 'missing_field', message: 'The PDU has no room_id.', stored: 'dropped' };
}

/** The transaction id a forgotten room is recorded under: the room and the leave the user forgot it after. */
function forgetKey(roomId: string, memberEventId: string): string {
  return createHash('sha256').update(`${roomId}\n${memberEventId}`).digest('hex');
}

/** The event a redaction targets (v11 in content, v10 at the top level). */
function redactsOf(pdu: Pdu): string | undefined {
  const inContent = pdu.content['redacts'];
  if (typeof inContent === 'string') return inContent;
  return typeof pdu.redacts === 'string' ? pdu.redacts : undefined;
}

/**
 * A state map with only the member events of `users` (client-server API "Lazy-loading room members": the
 * senders of the timeline and the user syncing); every other state event stays.
 */
function lazyMembers(state: StateMap, users: readonly string[]): StateMap {
  const keep = new Set(users.map((user) => stateKeyOf('m.room.member', user)));
  return new Map([...state].filter(([key]) => keep.has(key) || splitStateKey(key).type !== 'm.room.member'));
}

/** Refuses a transaction id the store cannot keep. */
function checkTxnId(txnId: string): void {
  if (txnId.length === 0 || Buffer.byteLength(txnId) > MAX_TXN_ID_BYTES) {
    throw new MatrixError('M_INVALID_PARAM', `A transaction id must be 1 to ${MAX_TXN_ID_BYTES} bytes long.`);
  }
}

function clampLimit(limit: number, max: number): number {
  if (!Number.isFinite(limit) || limit < 1) return 1;
  return Math.min(Math.floor(limit), max);
}

/** A refusal of a local event as the client sees it. */
function refusalError(outcome: Extract<AcceptOutcome, { ok: false }>): MatrixError {
  switch (outcome.stage) {
    case 'format':
      return new MatrixError(outcome.code === 'too_large' ? 'M_TOO_LARGE' : 'M_BAD_JSON', outcome.message);
    case 'auth_events':
    case 'auth_state':
      return new MatrixError('M_FORBIDDEN', outcome.message);
    default:
      return new MatrixError('M_UNKNOWN', `This home could not accept its own event: ${outcome.message}`);
  }
}
