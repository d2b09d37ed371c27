/**
 * The room store port: where a home keeps the Matrix rooms of its accounts (federation-format PDUs of room
 * versions 10 and 11, their DAG, the state at every event, the forward extremities and the timeline). Types
 * only: `SqlRoomStore` of `@polyhome/storage` satisfies it structurally (PostgreSQL or PGlite), so the home
 * never imports storage. The store verifies nothing: it keeps what the home accepted, checked or rejected.
 * The scheme (tables, state groups, orderings, tokens) is in docs/decisions.md, "Room storage".
 */
import type { EventLookup, Pdu, RefusalReason, RoomVersionId, StateMap, StateTuple } from '@polyhome/rooms';

/** A change to a state map: a key set to an event id, or removed (`null`). */
export type StateDelta = ReadonlyMap<StateTuple, string | null>;

/**
 * The room state before an event, as the home computed it: the whole map, or the state after an event the
 * store holds (with its state) changed by a delta. The second form is what a chain of events passes, and costs
 * the store one small delta instead of a copy.
 */
export type StateBeforeInput = { state: StateMap } | { afterEvent: string; delta?: StateDelta };

/** One event to persist, as the home accepted (or rejected) it. */
export interface PersistEventInput {
  /** The reference-hash event id of `pdu`. */
  eventId: string;
  /** The room's version, recorded with the room the first time one of its events is stored. */
  roomVersion: RoomVersionId;
  /** The PDU exactly as received (stored and returned unchanged). */
  pdu: Pdu;
  /**
   * Held but not in the timeline (an auth event fetched for a check, a state event of a join): no stream
   * ordering, no extremity change, no state. Persisting the same event later without `outlier` takes it into
   * the timeline.
   */
  outlier?: boolean;
  /** Why the home rejected it: kept as evidence, never in the timeline, the state or the extremities. */
  rejected?: RefusalReason;
  /** The state before the event; required unless it is an outlier. */
  stateBefore?: StateBeforeInput;
  /**
   * The room's current state once this accepted timeline event is in (the resolution of the forward extremities
   * it leaves, as `forwardExtremitiesAfter` names them). Set in the event's transaction, logged at its stream
   * ordering, so no reader sees the event without the state and memberships it brings. Ignored when the event
   * was held already (`inserted: false`), for outliers and for rejected events.
   */
  currentState?: StateMap;
  /**
   * Or the change the event makes to the room's current state as held (`null`: the key leaves), when the home
   * knows it (an event extending the room's only extremity); it wins over `currentState`.
   */
  currentStateDelta?: StateDelta;
}

/** What `persistEvent` did: stored it now (or took an outlier into the timeline), and its stream ordering. */
export interface PersistEventResult {
  /** False when the event was already held as asked (a retry): nothing changed. */
  inserted: boolean;
  /** Its position in this home's timeline stream, or null for outliers and rejected events. */
  streamOrdering: number | null;
}

/** An event as stored, with what the store knows about it. */
export interface StoredRoomEvent {
  eventId: string;
  roomId: string;
  pdu: Pdu;
  depth: number;
  outlier: boolean;
  /** Set when the home rejected the event. */
  rejected: RefusalReason | null;
  /** Null for outliers and rejected events. */
  streamOrdering: number | null;
}

/** A forward extremity of a room (an event no held timeline event references) with its depth. */
export interface ForwardExtremity {
  eventId: string;
  depth: number;
}

/**
 * A page of a room's timeline in stream order (this home's arrival order), for /sync: the newest `limit` events
 * after `since`, newest last. `limited` when more events than `limit` came after `since` (the client has a
 * gap to fill with /messages from `prevBatch`, the topological token of the oldest event returned).
 */
export interface StreamTimeline {
  events: StoredRoomEvent[];
  limited: boolean;
  /** The stream position the page reaches (the newest event's, or `since` when there is none). */
  position: number;
  /** A `/messages` token just before the oldest event returned, or null when none was returned. */
  prevBatch: string | null;
}

/**
 * A page of a room's timeline in topological order (depth, then event id: the same on every home), for
 * /messages and /context. `end` continues in the same direction; null when the room has no more events that way.
 */
export interface TopologicalPage {
  events: StoredRoomEvent[];
  start: string;
  end: string | null;
}

/** One change of a room's current state at a stream position (`eventId` null when the key was removed). */
export interface CurrentStateChange {
  streamOrdering: number;
  key: StateTuple;
  eventId: string | null;
}

/** A room a server's user is in (or was invited to, or left), from the current state's memberships. */
export interface ServerRoomMembership {
  roomId: string;
  userId: string;
  membership: string;
  eventId: string;
  streamOrdering: number;
}

/** A delivery owed: an event to a destination home, sent as `origin` (an account hosted here). */
export interface OutboxEntry {
  destination: string;
  eventId: string;
  streamOrdering: number;
  origin: string;
}

/**
 * What federation keeps beside the rooms: the durable outbox (deliveries owed per destination home), the
 * fan-out's cursor over the timeline stream, and verified documents of other accounts.
 */
export interface RoomFederationStore {
  /** Timeline events of every room after stream position `after`, oldest first, at most `limit`. */
  eventsAfter(after: number, limit: number): Promise<StoredRoomEvent[]>;
  /** The stream position the fan-out has read up to. */
  fanOutCursor(): Promise<number>;
  /** Records deliveries (a held row is kept) and moves the cursor forward, in one transaction. */
  enqueueDeliveries(rows: readonly OutboxEntry[], cursor: number): Promise<void>;
  /** Destinations with deliveries owed, most owed first. */
  outboxBacklog(limit: number): Promise<Array<{ destination: string; pending: number }>>;
  /** The oldest deliveries owed to a destination, in stream order, with their events. */
  pendingDeliveries(
    destination: string,
    limit: number,
  ): Promise<Array<{ eventId: string; origin: string; streamOrdering: number; pdu: Pdu }>>;
  /** Forgets deliveries made (or that can never be made). */
  removeDeliveries(destination: string, eventIds: readonly string[]): Promise<void>;
  /** Servers with a user in the room whose current membership is one of `memberships`. */
  roomServers(roomId: string, memberships: readonly string[]): Promise<string[]>;
  /** A verified document of another account, as JSON text. */
  foreignDocument(serverName: string): Promise<{ seq: number; document: string } | null>;
  /** Keeps a verified document of another account unless a newer one is held. */
  putForeignDocument(serverName: string, seq: number, document: string): Promise<void>;
}

/**
 * Rooms as a Matrix homeserver stores them. Every read that can be large takes a limit. Persisting events of
 * one room is serialised per room (extremities stay consistent under concurrent persists); stream orderings are
 * committed in order, so a reader never sees position N+1 before N.
 */
export interface RoomStore extends EventLookup, RoomFederationStore {
  /**
   * Stores an event, its prev and auth edges, its state before and after, the forward extremities and its
   * stream ordering, in one transaction. Idempotent by event id: a second call changes nothing and says
   * `inserted: false` (except taking an outlier into the timeline).
   */
  persistEvent(input: PersistEventInput): Promise<PersistEventResult>;
  /**
   * Stores events of one room in order, as `persistEvent` stores each, in one transaction: the events become
   * visible together, with consecutive stream orderings. An event may name an earlier one of the batch (its prev
   * event, the event its state builds on).
   */
  persistEvents(inputs: readonly PersistEventInput[]): Promise<PersistEventResult[]>;
  /**
   * Stores an older event fetched with `/backfill` into the timeline before every held event (a stream ordering
   * of 0 or below, no state of its own, extremities unchanged); its prev events not held become the room's gaps.
   * An event already in the timeline is left as it is (`inserted: false`).
   */
  persistBackfilled(input: { eventId: string; roomVersion: RoomVersionId; pdu: Pdu }): Promise<PersistEventResult>;
  /** The room version recorded for a room, or null when no event of it is held. */
  roomVersion(roomId: string): Promise<RoomVersionId | null>;
  /** The state before a held timeline event; throws when the event or its state is not held. */
  stateBefore(eventId: string): Promise<StateMap>;
  /** The state after a held timeline event (before plus the event when it is an accepted state event). */
  stateAfter(eventId: string): Promise<StateMap>;
  /** The room's forward extremities, deepest first, at most `limit`. */
  forwardExtremities(roomId: string, limit?: number): Promise<ForwardExtremity[]>;
  /**
   * The forward extremities the room would have once `event` (not held yet) is persisted with `prevEvents`:
   * today's, less its prev events, and the event itself unless a held timeline event already names it as a
   * prev event. Deepest first, at most `limit` (`after`): what `persistEvent` leaves, read before it runs; with
   * today's (`before`, deepest first, at most `limit` plus the number of prev events).
   */
  forwardExtremitiesAfter(
    roomId: string,
    event: ForwardExtremity,
    prevEvents: readonly string[],
    limit: number,
  ): Promise<{ before: string[]; after: ForwardExtremity[] }>;
  /**
   * Prev events referenced by held timeline events but not held in the timeline (gaps to fill), at most `limit`;
   * with `referencedAbove`, only those referenced by an event deeper than that depth, deepest referrer first.
   */
  missingPrevEvents(roomId: string, limit?: number, referencedAbove?: number): Promise<string[]>;
  /** Whether an event is a gap of the room: referenced by a held timeline event, and not held in the timeline. */
  isMissingPrev(roomId: string, eventId: string): Promise<boolean>;
  /** The room's current state as last set by `setCurrentState` (empty when never set). */
  currentState(roomId: string): Promise<StateMap>;
  /**
   * Replaces the room's current state (the resolution of its extremities' states), logged at a stream position.
   * Accepting an event sets it with `persistEvent`'s `currentState` instead, in one transaction.
   */
  setCurrentState(roomId: string, state: StateMap, atStreamOrdering: number): Promise<void>;
  /** Changes of the room's current state after stream position `since`, oldest first, at most `limit`. */
  currentStateChangesSince(roomId: string, since: number, limit: number): Promise<CurrentStateChange[]>;
  /** The newest stream ordering this home has assigned (0 when none). */
  currentStreamPosition(): Promise<number>;
  /** The room's timeline after stream position `since` (up to `to` when given), newest `limit` events. */
  timelineSince(roomId: string, since: number, limit: number, to?: number): Promise<StreamTimeline>;
  /**
   * A page in topological order from a token: `'b'` for older events (newest first), `'f'` for newer (oldest
   * first). Without `from`, from the newest end (`'b'`) or the oldest (`'f'`).
   */
  messages(roomId: string, options: { from?: string; dir: 'b' | 'f'; limit: number }): Promise<TopologicalPage>;
  /** The token of the point just before an event in topological order (`'b'` from it excludes the event). */
  topologicalTokenOf(eventId: string): Promise<string | null>;
  /** The pagination token of a position in the room's topological order (an event's depth and id). */
  tokenOf(depth: number, eventId: string): string;
  /** Held events (accepted, rejected or outliers) by id; unknown ids are absent. */
  eventsByIds(eventIds: readonly string[]): Promise<Map<string, StoredRoomEvent>>;
  /**
   * Accepted timeline redactions of the room (`m.room.redaction`) that name one of `eventIds` as their target
   * (`redacts` in content, v11, or top level, v10), oldest first, at most `limit`. Whether one may be applied
   * is the home's check (`redactionAllowed`).
   */
  redactionsOf(roomId: string, eventIds: readonly string[], limit: number): Promise<StoredRoomEvent[]>;
  /** Which of these ids are held (in any form). */
  hasEvents(eventIds: readonly string[]): Promise<Set<string>>;
  /**
   * Records the event a client send made, unless that (account, device, txn id) already made one: returns the
   * event id the transaction id stands for (the earlier one on a retry).
   */
  recordTransaction(account: string, deviceId: string, txnId: string, eventId: string): Promise<string>;
  /** The event id a client's transaction id made, or null. */
  eventForTransaction(account: string, deviceId: string, txnId: string): Promise<string | null>;
  /**
   * Rooms of a server's users by their current membership (`join`, `invite`, `leave`, `ban`, `knock`), in room id
   * order after `after`, at most `limit`.
   */
  roomsOfServer(
    serverName: string,
    options: { memberships?: readonly string[]; after?: string; limit: number },
  ): Promise<ServerRoomMembership[]>;
}
