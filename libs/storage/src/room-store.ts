import {
  splitStateKey,
  stateKeyOf,
  type Pdu,
  type RoomVersionId,
  type RefusalReason,
  type StateMap,
  type StateTuple,
} from '@polyhome/rooms';
import type { DataSource, EntityManager } from 'typeorm';
import { managerOf, type StorageTransaction } from './repositories/transaction.js';

/** A change to a state map: a key set to an event id, or removed (`null`). */
export type RoomStateDelta = ReadonlyMap<StateTuple, string | null>;

/** The state before an event: the whole map, or the state after a held event changed by a delta. */
export type RoomStateBefore = { state: StateMap } | { afterEvent: string; delta?: RoomStateDelta };

/** One event to persist (the `RoomStore` port of `@polyhome/home` documents each field). */
export interface PersistRoomEvent {
  eventId: string;
  roomVersion: RoomVersionId;
  pdu: Pdu;
  outlier?: boolean;
  rejected?: RefusalReason;
  stateBefore?: RoomStateBefore;
  /** The room's current state once the event is in: set in the same transaction, at its stream ordering. */
  currentState?: ReadonlyMap<StateTuple, string>;
  /** Or the change the event makes to the room's current state as held (null: the key leaves); wins over it. */
  currentStateDelta?: ReadonlyMap<StateTuple, string | null>;
}

/** An event as stored. */
export interface StoredRoomEvent {
  eventId: string;
  roomId: string;
  pdu: Pdu;
  depth: number;
  outlier: boolean;
  rejected: RefusalReason | null;
  streamOrdering: number | null;
}

/** A delivery owed: an event to a destination home, sent as `origin`. */
export interface OutboxEntry {
  destination: string;
  eventId: string;
  streamOrdering: number;
  origin: string;
}

/** Deltas between a state group and its snapshot before the store writes a new snapshot (Synapse uses 100). */
export const DEFAULT_MAX_STATE_DELTA_HOPS = 100;

/** States after prev events a whole map is compared with (the newest groups), bounding the work of a merge. */
const STATE_CANDIDATES = 4;

/** Default page size of the lists that have one (extremities, gaps). */
const DEFAULT_LIST_LIMIT = 100;

/** Rows per multi-row insert (4 parameters a row stays far below PostgreSQL's 65,535). */
const INSERT_CHUNK = 1_000;

/**
 * The advisory lock that orders stream orderings: taken last in a persist and held to its commit, so positions
 * become visible in order and a reader of "after P" never skips one that commits later.
 */
const ROOM_STREAM_LOCK = 0x70687273; // "phrs"

/**
 * What an accepted timeline event does besides its own row ($1 the event, $2 the room, $3 its prev events): it
 * is no longer a gap; its prev events stop being forward extremities, and it becomes one unless a held timeline
 * event already names it as a prev event (it arrived after its child); its prev events not held in the timeline
 * become gaps. Common table expressions of the statement that inserts (or updates) the event.
 */
const TIMELINE_CTES = `gone AS (DELETE FROM room_missing_prev WHERE room_id = $2 AND event_id = $1),
       replaced AS (DELETE FROM room_forward_extremity WHERE room_id = $2 AND event_id = ANY($3::varchar[])),
       extremity AS (
         INSERT INTO room_forward_extremity (room_id, event_id)
         SELECT $2, $1 WHERE NOT EXISTS (
           SELECT 1 FROM room_event_edge e JOIN room_event r ON r.event_id = e.event_id
           WHERE e.prev_event_id = $1 AND r.room_id = $2 AND r.outlier = false AND r.rejection_code IS NULL)
         ON CONFLICT DO NOTHING),
       gaps AS (
         INSERT INTO room_missing_prev (room_id, event_id)
         SELECT $2, p FROM unnest($3::varchar[]) AS p
         WHERE NOT EXISTS (SELECT 1 FROM room_event r WHERE r.event_id = p AND r.outlier = false)
         ON CONFLICT DO NOTHING)`;

/**
 * What a transaction did so far, so that each lock is taken once and a later event of a batch reads nothing an
 * earlier one wrote: the rooms locked (with their versions) and those it created, whether it holds the stream
 * lock, and the timeline events it stored with the state group after each.
 */
interface TransactionRecord {
  rooms: Map<string, string>;
  created: Set<string>;
  stream: boolean;
  stored: Map<string, { roomId: string; after: Group | null }>;
}

/** A state change to write: a key set (or removed, `null`) at a stream ordering. */
type StateChange = [StateTuple, string | null, number];

/** A state group and its deltas to its snapshot. */
interface Group {
  id: string;
  hops: number;
}

/** A topological token: the position of an event in (depth, event id) order. */
const TOKEN = /^t(\d{1,16})_(.*)$/s;

/** Byte order of event ids, the same on every home (the column's collation is "C" too). */
const EVENT_ID_ORDER = 'event_id COLLATE "C"';
/** Room versions kept in memory per store (the memo is cleared whole when it is full). */
const MAX_MEMO_ROOM_VERSIONS = 10_000;

type EventRow = {
  event_id: string;
  room_id: string;
  pdu: string;
  depth: string;
  outlier: boolean;
  rejection_code: string | null;
  rejection_message: string | null;
  stream_ordering: string | null;
};

const EVENT_COLUMNS = 'event_id, room_id, pdu, depth, outlier, rejection_code, rejection_message, stream_ordering';

function storedOf(row: EventRow): StoredRoomEvent {
  return {
    eventId: row.event_id,
    roomId: row.room_id,
    pdu: JSON.parse(row.pdu) as Pdu,
    depth: Number(row.depth),
    outlier: row.outlier,
    rejected: row.rejection_code === null ? null : { code: row.rejection_code, message: row.rejection_message ?? '' },
    streamOrdering: row.stream_ordering === null ? null : Number(row.stream_ordering),
  };
}

/** The topological token of an event: `t<depth>_<event id>`. */
function tokenOf(depth: number, eventId: string): string {
  return `t${depth}_${eventId}`;
}

function parseToken(token: string): { depth: number; eventId: string } {
  const match = TOKEN.exec(token);
  if (match === null)
    throw new RangeError(`"${token}" is not a room pagination token: expected t<depth>_<event id>, as returned.`);
  return { depth: Number(match[1]), eventId: match[2]! };
}

function checkLimit(limit: number, what: string): void {
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`${what} must be a positive integer, not ${limit}.`);
}

function checkPosition(position: number, what: string): void {
  if (!Number.isSafeInteger(position) || position < 0)
    throw new RangeError(`${what} must be a stream position (a non-negative integer), not ${position}.`);
}

/** Refuses malformed input before anything is written. */
function checkPersistInput(input: PersistRoomEvent): void {
  const { eventId, pdu } = input;
  const fail = (what: string) => {
    throw new TypeError(`Cannot persist event ${JSON.stringify(eventId)}: ${what}.`);
  };
  if (typeof eventId !== 'string' || eventId.length === 0 || eventId.length > 255)
    fail('its id must be 1 to 255 characters');
  if (typeof pdu !== 'object' || pdu === null) fail('its PDU must be an object');
  for (const field of ['room_id', 'type', 'sender'] as const)
    if (typeof pdu[field] !== 'string' || pdu[field].length === 0 || pdu[field].length > 255)
      fail(`its ${field} must be a string of 1 to 255 characters`);
  if (pdu.state_key !== undefined && (typeof pdu.state_key !== 'string' || pdu.state_key.length > 255))
    fail('its state_key must be a string of at most 255 characters');
  if (!Number.isSafeInteger(pdu.depth) || pdu.depth < 0) fail('its depth must be a non-negative integer');
  if (!Number.isSafeInteger(pdu.origin_server_ts)) fail('its origin_server_ts must be an integer');
  for (const field of ['prev_events', 'auth_events'] as const)
    if (!Array.isArray(pdu[field]) || !pdu[field].every((id) => typeof id === 'string' && id.length > 0))
      fail(`its ${field} must be a list of event ids`);
  if (typeof input.roomVersion !== 'string' || input.roomVersion.length === 0) fail('its room version is missing');
  if (input.outlier === true && input.stateBefore !== undefined)
    fail('an outlier has no state in this store: leave out stateBefore, or persist it as a timeline event');
  if (input.outlier !== true && input.rejected === undefined && input.stateBefore === undefined)
    fail('a timeline event needs stateBefore (the whole map, or { afterEvent, delta })');
}

/**
 * Matrix rooms on PostgreSQL or PGlite: events (accepted, outliers, rejected), their DAG edges, state groups,
 * forward extremities and gaps, the current state with its change log, memberships by server and client
 * transaction ids. It satisfies the `RoomStore` port of `@polyhome/home` structurally. The scheme is in
 * docs/decisions.md, "Room storage".
 */
export class SqlRoomStore {
  /** Room versions read (a room's version never changes once its row exists). */
  readonly #versions = new Map<string, RoomVersionId>();
  /** What an open transaction of this store did so far (see TransactionRecord). */
  readonly #transactions = new WeakMap<EntityManager, TransactionRecord>();

  constructor(
    private readonly dataSource: DataSource,
    private readonly maxDeltaHops = DEFAULT_MAX_STATE_DELTA_HOPS,
  ) {
    if (!Number.isSafeInteger(maxDeltaHops) || maxDeltaHops < 0)
      throw new RangeError(`maxDeltaHops must be a non-negative integer, not ${maxDeltaHops}.`);
  }

  /**
   * Stores an event with its edges, state, extremity update and stream ordering in one transaction, under the
   * room's row lock. Idempotent by event id; an event held as an outlier and persisted again without `outlier`
   * is taken into the timeline. Given a `transaction` (of `Transactions.run`), it joins it: the caller's other
   * writes (the client's transaction id, say) commit or roll back with the event, and the room's lock and the
   * stream lock are held until that transaction ends. Persist events of one room per such transaction: the room
   * lock is taken before the stream lock, and two transactions each holding a room the other wants next would
   * deadlock (PostgreSQL then aborts one).
   */
  async persistEvent(
    input: PersistRoomEvent,
    transaction?: StorageTransaction,
  ): Promise<{ inserted: boolean; streamOrdering: number | null }> {
    const [result] = await this.persistEvents([input], transaction);
    return result!;
  }

  /**
   * Stores events of one room in order, in one transaction (the caller's when given), as `persistEvent` stores
   * each: the room's lock and the stream lock are taken once, so the events get consecutive stream orderings and
   * become visible together. An event may name an earlier one of the batch (as its prev event, its state base).
   */
  async persistEvents(
    inputs: readonly PersistRoomEvent[],
    transaction?: StorageTransaction,
  ): Promise<Array<{ inserted: boolean; streamOrdering: number | null }>> {
    for (const input of inputs) checkPersistInput(input);
    const roomIds = new Set(inputs.map((i) => i.pdu.room_id));
    if (roomIds.size > 1) throw new TypeError(`Persist the events of one room per batch, not of ${roomIds.size}.`);
    const run = <T>(work: (m: EntityManager) => Promise<T>): Promise<T> =>
      transaction === undefined ? this.dataSource.transaction(work) : work(managerOf(transaction));
    if (inputs.length === 0) return [];
    return run(async (m) => {
      const results: Array<{ inserted: boolean; streamOrdering: number | null }> = [];
      // The current state changes of the batch, written together at its end (or before a whole state).
      const changes: StateChange[] = [];
      for (const input of inputs) {
        const result = await this.persistOne(m, input);
        results.push(result);
        const at = result.streamOrdering;
        if (!result.inserted || at === null) continue;
        if (input.currentStateDelta !== undefined) {
          for (const [key, id] of input.currentStateDelta) changes.push([key, id, at]);
        } else if (input.currentState !== undefined) {
          await this.applyStateChanges(m, input.pdu.room_id, changes.splice(0));
          await this.applyCurrentState(m, input.pdu.room_id, input.currentState, at);
        }
      }
      if (changes.length > 0) await this.applyStateChanges(m, inputs[0]!.pdu.room_id, changes);
      return results;
    });
  }

  private async persistOne(
    m: EntityManager,
    input: PersistRoomEvent,
  ): Promise<{ inserted: boolean; streamOrdering: number | null }> {
    const { eventId, pdu } = input;
    const roomId = pdu.room_id;
    await this.lockRoom(m, roomId, input.roomVersion);
    const base =
      input.stateBefore !== undefined && 'afterEvent' in input.stateBefore ? input.stateBefore.afterEvent : null;
    // The event as held, and the state group after the event its state builds on, in one read; none for an
    // event of a room this transaction created building on one it stored (nothing else of the room is held).
    const record = this.recordOf(m);
    const stored = base === null ? undefined : record.stored.get(base);
    const known = record.created.has(roomId) && !record.stored.has(eventId) && (base === null || stored?.after != null);
    const probed = known
      ? stored === undefined
        ? []
        : [
            {
              event_id: base!,
              room_id: stored.roomId,
              outlier: false,
              stream_ordering: null,
              state_group_after: stored.after!.id,
              delta_hops: stored.after!.hops,
            },
          ]
      : ((await m.query(
          `SELECT e.event_id, e.room_id, e.outlier, e.stream_ordering, e.state_group_after, g.delta_hops
       FROM room_event e LEFT JOIN room_state_group g ON g.id = e.state_group_after
       WHERE e.event_id = ANY($1::varchar[])`,
          [base === null ? [eventId] : [eventId, base]],
        )) as Array<{
          event_id: string;
          room_id: string;
          outlier: boolean;
          stream_ordering: string | null;
          state_group_after: string | null;
          delta_hops: number | null;
        }>);
    const existing = probed.find((r) => r.event_id === eventId);
    if (existing !== undefined) {
      if (existing.room_id !== roomId)
        throw new TypeError(`Event ${eventId} is already held in room ${existing.room_id}, not ${roomId}.`);
      if (!existing.outlier || input.outlier === true)
        return {
          inserted: false,
          streamOrdering: existing.stream_ordering === null ? null : Number(existing.stream_ordering),
        };
    }
    if (input.outlier === true) {
      await this.insertEvent(m, input, null, false);
      return { inserted: true, streamOrdering: null };
    }

    let groups: { before: string; after: string } | null = null;
    let groupAfter: Group | null = null;
    if (input.stateBefore !== undefined) {
      let before: Group;
      if (base !== null) {
        const row = probed.find((r) => r.event_id === base);
        if (row === undefined) throw new RangeError(`Event ${base} is not held: persist it (with its state) first.`);
        if (row.room_id !== roomId)
          throw new RangeError(
            `Event ${base} is in room ${row.room_id}, not ${roomId}: its state cannot be used here.`,
          );
        if (row.state_group_after === null)
          throw new RangeError(
            `Event ${base} is held without its state (an outlier): persist it into the timeline with stateBefore.`,
          );
        const baseGroup = { id: String(row.state_group_after), hops: Number(row.delta_hops) };
        const delta = (input.stateBefore as { delta?: RoomStateDelta }).delta ?? new Map<StateTuple, string | null>();
        checkStateEntries(delta, roomId);
        before = delta.size === 0 ? baseGroup : await this.deltaGroup(m, roomId, baseGroup, delta);
      } else {
        before = await this.stateGroupBefore(m, roomId, pdu.prev_events, input.stateBefore as { state: StateMap });
      }
      const isAcceptedState = pdu.state_key !== undefined && input.rejected === undefined;
      const after = isAcceptedState
        ? await this.deltaGroup(m, roomId, before, new Map([[stateKeyOf(pdu.type, pdu.state_key!), eventId]]))
        : before;
      groups = { before: before.id, after: after.id };
      groupAfter = after;
    }

    const accepted = input.rejected === undefined;
    // Stream order = commit order: the lock is held until this transaction ends (taken once per transaction).
    if (accepted) await this.lockStream(m);
    let streamOrdering: number | null;
    if (existing === undefined) {
      streamOrdering = await this.insertEvent(m, input, groups, true);
    } else {
      // An outlier taken into the timeline.
      await m.query(
        `UPDATE room_event SET outlier = false, rejection_code = $2, rejection_message = $3,
           state_group_before = $4, state_group_after = $5 WHERE event_id = $1`,
        [eventId, input.rejected?.code ?? null, input.rejected?.message ?? null, groups?.before, groups?.after],
      );
      streamOrdering = await this.enterTimeline(m, input);
    }
    this.recordOf(m).stored.set(eventId, { roomId, after: groupAfter });
    if (!accepted || streamOrdering === null) return { inserted: true, streamOrdering: null };
    return { inserted: true, streamOrdering };
  }

  /** What `m`'s transaction did so far. */
  private recordOf(m: EntityManager): TransactionRecord {
    let record = this.#transactions.get(m);
    if (record === undefined) {
      record = { rooms: new Map(), created: new Set(), stream: false, stored: new Map() };
      this.#transactions.set(m, record);
    }
    return record;
  }

  /** Takes the stream lock once per transaction (see ROOM_STREAM_LOCK). */
  private async lockStream(m: EntityManager): Promise<void> {
    const held = this.recordOf(m);
    if (held.stream) return;
    await m.query('SELECT pg_advisory_xact_lock($1)', [ROOM_STREAM_LOCK]);
    held.stream = true;
  }

  /**
   * A held event (an outlier taken into the timeline) stops being a gap; accepted, it gets the next stream
   * ordering and the extremity update, in one statement. Null for a rejected one.
   */
  private async enterTimeline(m: EntityManager, input: PersistRoomEvent): Promise<number | null> {
    const { eventId, pdu } = input;
    if (input.rejected !== undefined) {
      await m.query('DELETE FROM room_missing_prev WHERE room_id = $1 AND event_id = $2', [pdu.room_id, eventId]);
      return null;
    }
    const [row] = (await m.query(
      `WITH event AS (
         UPDATE room_event SET stream_ordering = (SELECT COALESCE(MAX(stream_ordering), 0) + 1 FROM room_event)
         WHERE event_id = $1 RETURNING stream_ordering),
       ${TIMELINE_CTES}
       SELECT stream_ordering FROM event`,
      [eventId, pdu.room_id, pdu.prev_events],
    )) as Array<{ stream_ordering: string }>;
    return Number(row!.stream_ordering);
  }

  /**
   * Stores an older event fetched with `/backfill` into the timeline, before every event held: a stream ordering
   * below all others (0 and down, so the sync stream and the fan-out, which read forward from positions >= 0,
   * never see it), no state of its own and no change to the forward extremities. Its prev events not held become
   * the room's gaps (the next backfill asks for them); it stops being one. An outlier of it is taken into the
   * timeline so. Idempotent: an event already in the timeline (or rejected) is left as it is.
   */
  async persistBackfilled(input: {
    eventId: string;
    roomVersion: RoomVersionId;
    pdu: Pdu;
  }): Promise<{ inserted: boolean; streamOrdering: number | null }> {
    // Checked as an outlier is (a backfilled event has no state of its own), stored in the timeline.
    checkPersistInput({ ...input, outlier: true });
    const { eventId, pdu } = input;
    const roomId = pdu.room_id;
    return this.dataSource.transaction(async (m) => {
      await this.lockRoom(m, roomId, input.roomVersion);
      const held = (await m.query(
        'SELECT room_id, outlier, rejection_code, stream_ordering FROM room_event WHERE event_id = $1',
        [eventId],
      )) as Array<{ room_id: string; outlier: boolean; rejection_code: string | null; stream_ordering: string | null }>;
      const existing = held[0];
      if (existing !== undefined) {
        if (existing.room_id !== roomId)
          throw new TypeError(`Event ${eventId} is already held in room ${existing.room_id}, not ${roomId}.`);
        if (!existing.outlier || existing.rejection_code !== null) {
          return {
            inserted: false,
            streamOrdering: existing.stream_ordering === null ? null : Number(existing.stream_ordering),
          };
        }
        await m.query('UPDATE room_event SET outlier = false WHERE event_id = $1', [eventId]);
      } else {
        await this.insertEvent(m, { eventId, roomVersion: input.roomVersion, pdu }, null, false);
      }
      await m.query('DELETE FROM room_missing_prev WHERE room_id = $1 AND event_id = $2', [roomId, eventId]);
      await m.query(
        `INSERT INTO room_missing_prev (room_id, event_id)
         SELECT $1, p FROM unnest($2::varchar[]) AS p
         WHERE NOT EXISTS (SELECT 1 FROM room_event r WHERE r.event_id = p AND r.outlier = false)
         ON CONFLICT DO NOTHING`,
        [roomId, pdu.prev_events],
      );
      await m.query('SELECT pg_advisory_xact_lock($1)', [ROOM_STREAM_LOCK]);
      const [next] = (await m.query(
        'SELECT LEAST(COALESCE(MIN(stream_ordering), 1), 1) - 1 AS next FROM room_event',
      )) as Array<{ next: string }>;
      const streamOrdering = Number(next!.next);
      await m.query('UPDATE room_event SET stream_ordering = $2 WHERE event_id = $1', [eventId, streamOrdering]);
      return { inserted: true, streamOrdering };
    });
  }

  /** The room version recorded for a room, or null. */
  async roomVersion(roomId: string): Promise<RoomVersionId | null> {
    const known = this.#versions.get(roomId);
    if (known !== undefined) return known;
    const rows = (await this.dataSource.query('SELECT room_version FROM room WHERE room_id = $1', [roomId])) as Array<{
      room_version: RoomVersionId;
    }>;
    const version = rows[0]?.room_version ?? null;
    if (version !== null) {
      // A room's version never changes once recorded; the memo is bounded by dropping it whole.
      if (this.#versions.size >= MAX_MEMO_ROOM_VERSIONS) this.#versions.clear();
      this.#versions.set(roomId, version);
    }
    return version;
  }

  /** The state before a held event that has state. */
  async stateBefore(eventId: string): Promise<StateMap> {
    return this.loadGroup(this.dataSource.manager, await this.groupOf(this.dataSource.manager, eventId, 'before'));
  }

  /** The state after a held event that has state. */
  async stateAfter(eventId: string): Promise<StateMap> {
    return this.loadGroup(this.dataSource.manager, await this.groupOf(this.dataSource.manager, eventId, 'after'));
  }

  /** The room's forward extremities with their depths, deepest first. */
  async forwardExtremities(
    roomId: string,
    limit = DEFAULT_LIST_LIMIT,
  ): Promise<Array<{ eventId: string; depth: number }>> {
    checkLimit(limit, 'limit');
    const rows = (await this.dataSource.query(
      `SELECT f.event_id, r.depth FROM room_forward_extremity f JOIN room_event r ON r.event_id = f.event_id
       WHERE f.room_id = $1 ORDER BY r.depth DESC, r.${EVENT_ID_ORDER} LIMIT $2`,
      [roomId, limit],
    )) as Array<{ event_id: string; depth: string }>;
    return rows.map((r) => ({ eventId: r.event_id, depth: Number(r.depth) }));
  }

  /**
   * The forward extremities once `event` (not held yet) is persisted with `prevEvents`, as `updateExtremities`
   * will leave them: today's less its prev events, and the event unless a held timeline event names it as a
   * prev event. Deepest first, at most `limit`; with today's (`before`, at most `limit` + the prev events).
   */
  async forwardExtremitiesAfter(
    roomId: string,
    event: { eventId: string; depth: number },
    prevEvents: readonly string[],
    limit: number,
  ): Promise<{ before: string[]; after: Array<{ eventId: string; depth: number }> }> {
    checkLimit(limit, 'limit');
    const rows = (await this.dataSource.query(
      `SELECT f.event_id, r.depth FROM room_forward_extremity f JOIN room_event r ON r.event_id = f.event_id
       WHERE f.room_id = $1 ORDER BY r.depth DESC, r.${EVENT_ID_ORDER} LIMIT $2`,
      [roomId, limit + prevEvents.length],
    )) as Array<{ event_id: string; depth: string }>;
    const replaced = new Set(prevEvents);
    const after = rows
      .filter((r) => !replaced.has(r.event_id) && r.event_id !== event.eventId)
      .map((r) => ({ eventId: r.event_id, depth: Number(r.depth) }));
    if (!(await this.isReferenced(this.dataSource.manager, roomId, event.eventId))) after.push(event);
    // Event ids are ASCII: comparing code units is the store's "C" collation.
    after.sort((a, b) => b.depth - a.depth || (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
    return { before: rows.map((r) => r.event_id), after: after.slice(0, limit) };
  }

  /** Prev events of held timeline events that are not held in the timeline (gaps to fill). */
  async missingPrevEvents(roomId: string, limit = DEFAULT_LIST_LIMIT, referencedAbove?: number): Promise<string[]> {
    checkLimit(limit, 'limit');
    if (referencedAbove === undefined) {
      const rows = (await this.dataSource.query(
        `SELECT event_id FROM room_missing_prev WHERE room_id = $1 ORDER BY ${EVENT_ID_ORDER} LIMIT $2`,
        [roomId, limit],
      )) as Array<{ event_id: string }>;
      return rows.map((r) => r.event_id);
    }
    if (!Number.isSafeInteger(referencedAbove)) throw new RangeError('referencedAbove must be an integer depth.');
    // Deepest referrers first: the gaps nearest a page being read.
    const rows = (await this.dataSource.query(
      `SELECT g.event_id, MAX(r.depth) AS depth FROM room_missing_prev g
       JOIN room_event_edge e ON e.prev_event_id = g.event_id AND e.room_id = g.room_id
       JOIN room_event r ON r.event_id = e.event_id
       WHERE g.room_id = $1 AND r.outlier = false AND r.rejection_code IS NULL AND r.depth > $3
       GROUP BY g.event_id ORDER BY MAX(r.depth) DESC, g.event_id COLLATE "C" LIMIT $2`,
      [roomId, limit, referencedAbove],
    )) as Array<{ event_id: string }>;
    return rows.map((r) => r.event_id);
  }

  /** Whether an event is a gap of the room: referenced by a held timeline event, and not held in the timeline. */
  async isMissingPrev(roomId: string, eventId: string): Promise<boolean> {
    const rows = (await this.dataSource.query('SELECT 1 FROM room_missing_prev WHERE room_id = $1 AND event_id = $2', [
      roomId,
      eventId,
    ])) as unknown[];
    return rows.length > 0;
  }

  /** The room's current state as last set (empty when never set). */
  async currentState(roomId: string): Promise<StateMap> {
    return this.readCurrentState(this.dataSource.manager, roomId);
  }

  /**
   * Replaces the room's current state, logging each changed key at `atStreamOrdering` and keeping the
   * memberships of the room's users in step, in one transaction under the room's lock.
   */
  async setCurrentState(roomId: string, state: StateMap, atStreamOrdering: number): Promise<void> {
    await this.dataSource.transaction(async (m) => {
      const locked = (await m.query('SELECT room_id FROM room WHERE room_id = $1 FOR UPDATE', [roomId])) as unknown[];
      if (locked.length === 0)
        throw new TypeError(`Cannot set the state of ${roomId}: no event of it is held. Persist its events first.`);
      await this.applyCurrentState(m, roomId, state, atStreamOrdering);
    });
  }

  /** Changes of the room's current state after `since`, oldest first. */
  async currentStateChangesSince(
    roomId: string,
    since: number,
    limit: number,
  ): Promise<Array<{ streamOrdering: number; key: StateTuple; eventId: string | null }>> {
    checkPosition(since, 'since');
    checkLimit(limit, 'limit');
    const rows = (await this.dataSource.query(
      `SELECT stream_ordering, type, state_key, event_id FROM room_current_state_delta
       WHERE room_id = $1 AND stream_ordering > $2 ORDER BY stream_ordering, type, state_key LIMIT $3`,
      [roomId, since, limit],
    )) as Array<{ stream_ordering: string; type: string; state_key: string; event_id: string | null }>;
    return rows.map((r) => ({
      streamOrdering: Number(r.stream_ordering),
      key: stateKeyOf(r.type, r.state_key),
      eventId: r.event_id,
    }));
  }

  /** The newest stream ordering assigned (0 when none). */
  async currentStreamPosition(): Promise<number> {
    const [row] = (await this.dataSource.query(
      'SELECT COALESCE(MAX(stream_ordering), 0) AS position FROM room_event',
    )) as Array<{ position: string }>;
    return Number(row!.position);
  }

  /**
   * The room's newest `limit` timeline events after stream position `since` (and up to `to`), newest last;
   * `limited` when more came after `since`.
   */
  async timelineSince(
    roomId: string,
    since: number,
    limit: number,
    to?: number,
  ): Promise<{ events: StoredRoomEvent[]; limited: boolean; position: number; prevBatch: string | null }> {
    checkPosition(since, 'since');
    checkLimit(limit, 'limit');
    if (to !== undefined) checkPosition(to, 'to');
    const rows = (await this.dataSource.query(
      `SELECT ${EVENT_COLUMNS} FROM room_event
       WHERE room_id = $1 AND stream_ordering > $2 AND ($3::bigint IS NULL OR stream_ordering <= $3)
       ORDER BY stream_ordering DESC LIMIT $4`,
      [roomId, since, to ?? null, limit + 1],
    )) as EventRow[];
    const limited = rows.length > limit;
    const events = rows.slice(0, limit).reverse().map(storedOf);
    const oldest = events[0];
    return {
      events,
      limited,
      position: events.at(-1)?.streamOrdering ?? since,
      prevBatch: oldest === undefined ? null : tokenOf(oldest.depth, oldest.eventId),
    };
  }

  /**
   * A page of the room's timeline in topological order (depth, then event id in byte order). A token is the
   * position of an event; `'b'` returns events strictly before it (newest first), `'f'` strictly after (oldest
   * first). `end` is the position of the last event returned, or null when no more events lie that way.
   */
  async messages(
    roomId: string,
    options: { from?: string; dir: 'b' | 'f'; limit: number },
  ): Promise<{ events: StoredRoomEvent[]; start: string; end: string | null }> {
    checkLimit(options.limit, 'limit');
    if (options.dir !== 'b' && options.dir !== 'f')
      throw new RangeError(`dir must be 'b' or 'f', not ${String(options.dir)}.`);
    const from = options.from === undefined ? undefined : parseToken(options.from);
    const back = options.dir === 'b';
    const order = back ? 'DESC' : 'ASC';
    const params: unknown[] = [roomId, options.limit + 1];
    let bound = '';
    if (from !== undefined) {
      bound = `AND (depth, ${EVENT_ID_ORDER}) ${back ? '<' : '>'} ($3::bigint, $4::varchar COLLATE "C")`;
      params.push(from.depth, from.eventId);
    }
    const rows = (await this.dataSource.query(
      `SELECT ${EVENT_COLUMNS} FROM room_event
       WHERE room_id = $1 AND outlier = false AND rejection_code IS NULL AND stream_ordering IS NOT NULL ${bound}
       ORDER BY depth ${order}, ${EVENT_ID_ORDER} ${order} LIMIT $2`,
      params,
    )) as EventRow[];
    const events = rows.slice(0, options.limit).map(storedOf);
    const last = events.at(-1);
    const first = events[0];
    const start = options.from ?? (first === undefined ? tokenOf(0, '') : tokenOf(first.depth, first.eventId));
    return {
      events,
      start,
      end: rows.length > options.limit && last !== undefined ? tokenOf(last.depth, last.eventId) : null,
    };
  }

  /** The pagination token of a position in a room's topological order (an event's depth and id). */
  tokenOf(depth: number, eventId: string): string {
    return tokenOf(depth, eventId);
  }

  /** The topological token of a held timeline event, or null. */
  async topologicalTokenOf(eventId: string): Promise<string | null> {
    const rows = (await this.dataSource.query(
      'SELECT depth FROM room_event WHERE event_id = $1 AND stream_ordering IS NOT NULL',
      [eventId],
    )) as Array<{ depth: string }>;
    return rows[0] === undefined ? null : tokenOf(Number(rows[0].depth), eventId);
  }

  /** Held events by id (accepted, rejected or outliers). */
  async eventsByIds(eventIds: readonly string[]): Promise<Map<string, StoredRoomEvent>> {
    const found = new Map<string, StoredRoomEvent>();
    for (const chunk of chunks(eventIds)) {
      const rows = (await this.dataSource.query(
        `SELECT ${EVENT_COLUMNS} FROM room_event WHERE event_id = ANY($1::varchar[])`,
        [chunk],
      )) as EventRow[];
      for (const row of rows) found.set(row.event_id, storedOf(row));
    }
    return found;
  }

  /**
   * PDUs of held events that were not rejected (accepted and outliers), for the DAG walks of `@polyhome/rooms`
   * (`EventLookup`): a rejected event is absent, as if not held, so no check ever builds on it.
   */
  async getEvents(eventIds: readonly string[]): Promise<ReadonlyMap<string, Pdu>> {
    const found = new Map<string, Pdu>();
    for (const chunk of chunks(eventIds)) {
      const rows = (await this.dataSource.query(
        'SELECT event_id, pdu FROM room_event WHERE event_id = ANY($1::varchar[]) AND rejection_code IS NULL',
        [chunk],
      )) as Array<{ event_id: string; pdu: string }>;
      for (const row of rows) found.set(row.event_id, JSON.parse(row.pdu) as Pdu);
    }
    return found;
  }

  /**
   * Accepted timeline redactions of the room naming one of `eventIds` (content `redacts` in v11, top level in
   * v10), oldest first. The target is read from the stored PDU: a room's redactions are few, and the scan is
   * bounded by the room and the type.
   */
  async redactionsOf(roomId: string, eventIds: readonly string[], limit: number): Promise<StoredRoomEvent[]> {
    checkLimit(limit, 'limit');
    if (eventIds.length === 0) return [];
    const found: StoredRoomEvent[] = [];
    for (const chunk of chunks(eventIds)) {
      const rows = (await this.dataSource.query(
        `SELECT ${EVENT_COLUMNS} FROM room_event
         WHERE room_id = $1 AND type = 'm.room.redaction' AND rejection_code IS NULL AND stream_ordering IS NOT NULL
           AND COALESCE(pdu::jsonb -> 'content' ->> 'redacts', pdu::jsonb ->> 'redacts') = ANY($2::varchar[])
         ORDER BY stream_ordering LIMIT $3`,
        [roomId, chunk, limit - found.length],
      )) as EventRow[];
      found.push(...rows.map(storedOf));
      if (found.length >= limit) break;
    }
    return found;
  }

  /** Which of these ids are held, in any form. */
  async hasEvents(eventIds: readonly string[]): Promise<Set<string>> {
    const held = new Set<string>();
    for (const chunk of chunks(eventIds)) {
      const rows = (await this.dataSource.query('SELECT event_id FROM room_event WHERE event_id = ANY($1::varchar[])', [
        chunk,
      ])) as Array<{ event_id: string }>;
      for (const row of rows) held.add(row.event_id);
    }
    return held;
  }

  /**
   * Records a client transaction id's event unless it already has one; returns the event id it stands for.
   * Given a `transaction`, it joins it (to commit with the event it names).
   */
  async recordTransaction(
    account: string,
    deviceId: string,
    txnId: string,
    eventId: string,
    transaction?: StorageTransaction,
  ): Promise<string> {
    const m = transaction === undefined ? this.dataSource.manager : managerOf(transaction);
    const inserted = (await m.query(
      `INSERT INTO room_txn (server_name, device_id, txn_id, event_id) VALUES ($1, $2, $3, $4)
       ON CONFLICT (server_name, device_id, txn_id) DO NOTHING RETURNING event_id`,
      [account, deviceId, txnId, eventId],
    )) as Array<{ event_id: string }>;
    if (inserted[0] !== undefined) return inserted[0].event_id;
    // Held already: a second statement, so it sees the row of a concurrent send that won the insert (read
    // committed).
    const rows = (await m.query(
      'SELECT event_id FROM room_txn WHERE server_name = $1 AND device_id = $2 AND txn_id = $3',
      [account, deviceId, txnId],
    )) as Array<{ event_id: string }>;
    const recorded = rows[0]?.event_id;
    if (recorded === undefined)
      throw new Error(`The transaction id ${txnId} of ${account}/${deviceId} was not recorded.`);
    return recorded;
  }

  /** The event a client transaction id made, or null. */
  async eventForTransaction(account: string, deviceId: string, txnId: string): Promise<string | null> {
    const rows = (await this.dataSource.query(
      'SELECT event_id FROM room_txn WHERE server_name = $1 AND device_id = $2 AND txn_id = $3',
      [account, deviceId, txnId],
    )) as Array<{ event_id: string }>;
    return rows[0]?.event_id ?? null;
  }

  /**
   * Rooms of a server's users with their current memberships: at most `limit` rooms after `after` in room id
   * order, with every matching user of each (a room is never split across pages).
   */
  async roomsOfServer(
    serverName: string,
    options: { memberships?: readonly string[]; after?: string; limit: number },
  ): Promise<Array<{ roomId: string; userId: string; membership: string; eventId: string; streamOrdering: number }>> {
    checkLimit(options.limit, 'limit');
    const rows = (await this.dataSource.query(
      `WITH page AS (
         SELECT DISTINCT room_id FROM room_membership
         WHERE server_name = $1 AND ($2::varchar[] IS NULL OR membership = ANY($2::varchar[])) AND room_id > $3
         ORDER BY room_id LIMIT $4)
       SELECT m.room_id, m.user_id, m.membership, m.event_id, m.stream_ordering FROM room_membership m
       JOIN page p ON p.room_id = m.room_id
       WHERE m.server_name = $1 AND ($2::varchar[] IS NULL OR m.membership = ANY($2::varchar[]))
       ORDER BY m.room_id, m.user_id`,
      [serverName, options.memberships ?? null, options.after ?? '', options.limit],
    )) as Array<{ room_id: string; user_id: string; membership: string; event_id: string; stream_ordering: string }>;
    return rows.map((r) => ({
      roomId: r.room_id,
      userId: r.user_id,
      membership: r.membership,
      eventId: r.event_id,
      streamOrdering: Number(r.stream_ordering),
    }));
  }

  // ---- Federation: the outbox, the fan-out cursor and other accounts' documents ----

  /** Timeline events of every room after stream position `after`, oldest first, at most `limit`. */
  async eventsAfter(after: number, limit: number): Promise<StoredRoomEvent[]> {
    checkPosition(after, 'after');
    checkLimit(limit, 'limit');
    const rows = (await this.dataSource.query(
      `SELECT ${EVENT_COLUMNS} FROM room_event WHERE stream_ordering > $1 ORDER BY stream_ordering LIMIT $2`,
      [after, limit],
    )) as EventRow[];
    return rows.map(storedOf);
  }

  /** The stream position the fan-out has read up to (0 before the first fan-out). */
  async fanOutCursor(): Promise<number> {
    const rows = (await this.dataSource.query('SELECT position FROM room_fanout_cursor WHERE id = 1')) as Array<{
      position: string;
    }>;
    return rows[0] === undefined ? 0 : Number(rows[0].position);
  }

  /**
   * Records deliveries owed (a row per destination and event; one already there is kept) and moves the fan-out
   * cursor to `cursor` (never back), in one transaction.
   */
  async enqueueDeliveries(rows: readonly OutboxEntry[], cursor: number): Promise<void> {
    checkPosition(cursor, 'cursor');
    const moveCursor = (m: EntityManager) =>
      m.query(
        `INSERT INTO room_fanout_cursor (id, position) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET position = GREATEST(room_fanout_cursor.position, EXCLUDED.position)`,
        [cursor],
      );
    // Nothing owed: the cursor alone, one statement.
    if (rows.length === 0) {
      await moveCursor(this.dataSource.manager);
      return;
    }
    await this.dataSource.transaction(async (m) => {
      for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
        const chunk = rows.slice(i, i + INSERT_CHUNK);
        await m.query(
          `INSERT INTO room_outbox (destination, event_id, stream_ordering, origin)
           SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::char(64)[])
           ON CONFLICT (destination, event_id) DO NOTHING`,
          [
            chunk.map((r) => r.destination),
            chunk.map((r) => r.eventId),
            chunk.map((r) => r.streamOrdering),
            chunk.map((r) => r.origin),
          ],
        );
      }
      await moveCursor(m);
    });
  }

  /** Destinations with deliveries owed and how many, most owed first, at most `limit`. */
  async outboxBacklog(limit: number): Promise<Array<{ destination: string; pending: number }>> {
    checkLimit(limit, 'limit');
    const rows = (await this.dataSource.query(
      `SELECT destination, COUNT(*) AS pending FROM room_outbox GROUP BY destination
       ORDER BY COUNT(*) DESC, destination LIMIT $1`,
      [limit],
    )) as Array<{ destination: string; pending: string }>;
    return rows.map((r) => ({ destination: r.destination, pending: Number(r.pending) }));
  }

  /** The oldest `limit` deliveries owed to a destination, in stream order, with their events. */
  async pendingDeliveries(
    destination: string,
    limit: number,
  ): Promise<Array<{ eventId: string; origin: string; streamOrdering: number; pdu: Pdu }>> {
    checkLimit(limit, 'limit');
    const rows = (await this.dataSource.query(
      `SELECT o.event_id, o.origin, o.stream_ordering, e.pdu FROM room_outbox o
       JOIN room_event e ON e.event_id = o.event_id
       WHERE o.destination = $1 ORDER BY o.stream_ordering LIMIT $2`,
      [destination, limit],
    )) as Array<{ event_id: string; origin: string; stream_ordering: string; pdu: string }>;
    return rows.map((r) => ({
      eventId: r.event_id,
      origin: r.origin,
      streamOrdering: Number(r.stream_ordering),
      pdu: JSON.parse(r.pdu) as Pdu,
    }));
  }

  /** Forgets deliveries a destination took (or that can never be made). */
  async removeDeliveries(destination: string, eventIds: readonly string[]): Promise<void> {
    if (eventIds.length === 0) return;
    await this.dataSource.query('DELETE FROM room_outbox WHERE destination = $1 AND event_id = ANY($2::varchar[])', [
      destination,
      [...eventIds],
    ]);
  }

  /** The servers with a user in a room whose current membership is one of `memberships`. */
  async roomServers(roomId: string, memberships: readonly string[]): Promise<string[]> {
    const rows = (await this.dataSource.query(
      `SELECT DISTINCT server_name FROM room_membership WHERE room_id = $1 AND membership = ANY($2::varchar[])
       ORDER BY server_name`,
      [roomId, [...memberships]],
    )) as Array<{ server_name: string }>;
    return rows.map((r) => r.server_name);
  }

  /** The newest verified document of another account held here, as JSON text, or null. */
  async foreignDocument(serverName: string): Promise<{ seq: number; document: string } | null> {
    const rows = (await this.dataSource.query(
      'SELECT seq, document FROM foreign_account_document WHERE server_name = $1',
      [serverName],
    )) as Array<{ seq: string; document: string }>;
    return rows[0] === undefined ? null : { seq: Number(rows[0].seq), document: rows[0].document };
  }

  /** Keeps a verified document of another account unless a newer one is held. */
  async putForeignDocument(serverName: string, seq: number, document: string): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO foreign_account_document (server_name, seq, document, fetched_at) VALUES ($1, $2, $3, now())
       ON CONFLICT (server_name) DO UPDATE SET seq = EXCLUDED.seq, document = EXCLUDED.document,
         fetched_at = EXCLUDED.fetched_at
       WHERE foreign_account_document.seq <= EXCLUDED.seq`,
      [serverName, seq, document],
    );
  }

  /**
   * Records the room (first event) and takes its row lock for the rest of the transaction (once: a later event of
   * the room in the same transaction finds it held).
   */
  private async lockRoom(m: EntityManager, roomId: string, roomVersion: RoomVersionId): Promise<void> {
    const held = this.recordOf(m);
    let version = held.rooms.get(roomId);
    if (version === undefined) {
      const lock = async () =>
        (
          (await m.query('SELECT room_version FROM room WHERE room_id = $1 FOR UPDATE', [roomId])) as Array<{
            room_version: string;
          }>
        )[0]?.room_version;
      version = await lock();
      if (version === undefined) {
        // A new room's row is this transaction's until it commits: inserting it locks it.
        const [created] = (await m.query(
          'INSERT INTO room (room_id, room_version) VALUES ($1, $2) ON CONFLICT (room_id) DO NOTHING RETURNING room_version',
          [roomId, roomVersion],
        )) as Array<{ room_version: string }>;
        if (created !== undefined) held.created.add(roomId);
        version = created?.room_version ?? (await lock())!;
      }
      held.rooms.set(roomId, version);
    }
    if (version !== roomVersion)
      throw new TypeError(`Room ${roomId} is held as version ${version}, not ${roomVersion}.`);
  }

  /**
   * Inserts an event with its prev and auth edges (and its state groups) in one statement. In the timeline
   * (`timeline`, not an outlier), it is no longer a gap, and accepted it takes the next stream ordering (the
   * caller holds the stream lock) with the extremity update (TIMELINE_CTES); returns that ordering.
   */
  private async insertEvent(
    m: EntityManager,
    input: PersistRoomEvent,
    groups: { before: string; after: string } | null,
    timeline: boolean,
  ): Promise<number | null> {
    const { eventId, pdu } = input;
    const accepted = timeline && input.outlier !== true && input.rejected === undefined;
    const rejectedInTimeline = timeline && input.outlier !== true && input.rejected !== undefined;
    // A rejected timeline event is no longer a gap either, with no other change.
    const timelineCtes = accepted
      ? `,\n       ${TIMELINE_CTES}`
      : rejectedInTimeline
        ? ',\n       gone AS (DELETE FROM room_missing_prev WHERE room_id = $2 AND event_id = $1)'
        : '';
    const rows = (await m.query(
      `WITH event AS (
         INSERT INTO room_event (event_id, room_id, pdu, type, state_key, sender, depth, origin_server_ts, outlier,
           rejection_code, rejection_message, state_group_before, state_group_after, stream_ordering)
         VALUES ($1, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14, $15,
           ${accepted ? '(SELECT COALESCE(MAX(stream_ordering), 0) + 1 FROM room_event)' : 'NULL'})
         RETURNING stream_ordering),
       edges AS (
         INSERT INTO room_event_edge (event_id, prev_event_id, room_id)
         SELECT $1, p, $2 FROM unnest($3::varchar[]) AS p ON CONFLICT DO NOTHING),
       auths AS (
         INSERT INTO room_event_auth (event_id, auth_event_id, room_id)
         SELECT $1, a, $2 FROM unnest($13::varchar[]) AS a ON CONFLICT DO NOTHING)${timelineCtes}
       SELECT stream_ordering FROM event`,
      [
        eventId,
        pdu.room_id,
        pdu.prev_events,
        JSON.stringify(pdu),
        pdu.type,
        pdu.state_key ?? null,
        pdu.sender,
        pdu.depth,
        pdu.origin_server_ts,
        input.outlier === true,
        input.rejected?.code ?? null,
        input.rejected?.message ?? null,
        pdu.auth_events,
        groups?.before ?? null,
        groups?.after ?? null,
      ],
    )) as Array<{ stream_ordering: string | null }>;
    const ordering = rows[0]?.stream_ordering;
    return ordering === null || ordering === undefined ? null : Number(ordering);
  }

  /** Whether a held, accepted timeline event of the room names `eventId` as a prev event. */
  private async isReferenced(m: EntityManager, roomId: string, eventId: string): Promise<boolean> {
    const rows = (await m.query(
      `SELECT 1 FROM room_event_edge e JOIN room_event r ON r.event_id = e.event_id
       WHERE e.prev_event_id = $1 AND r.room_id = $2 AND r.outlier = false AND r.rejection_code IS NULL LIMIT 1`,
      [eventId, roomId],
    )) as unknown[];
    return rows.length > 0;
  }

  /**
   * The state group of a whole map of the state before an event: compared with the states after the event's
   * prev events, equal to one it reuses its group; close to one, it becomes a delta on it; otherwise a snapshot.
   */
  private async stateGroupBefore(
    m: EntityManager,
    roomId: string,
    prevEvents: string[],
    input: { state: StateMap },
  ): Promise<Group> {
    checkStateEntries(input.state, roomId);
    // A room's first event has no prev events: nothing to compare with.
    const candidates =
      prevEvents.length === 0
        ? []
        : ((await m.query(
            `SELECT DISTINCT state_group_after AS id FROM room_event
             WHERE event_id = ANY($1::varchar[]) AND room_id = $2 AND state_group_after IS NOT NULL
             ORDER BY state_group_after DESC LIMIT ${STATE_CANDIDATES}`,
            [prevEvents, roomId],
          )) as Array<{ id: string }>);
    let best: { group: string; delta: Map<StateTuple, string | null> } | undefined;
    for (const { id } of candidates) {
      const delta = diffStates(await this.loadGroup(m, id), input.state);
      if (best === undefined || delta.size < best.delta.size) best = { group: String(id), delta };
    }
    if (best !== undefined && best.delta.size === 0) return { id: best.group, hops: await this.hopsOf(m, best.group) };
    if (best !== undefined && best.delta.size < input.state.size)
      return this.deltaGroup(m, roomId, { id: best.group, hops: await this.hopsOf(m, best.group) }, best.delta);
    return this.snapshotGroup(m, roomId, input.state);
  }

  private async hopsOf(m: EntityManager, group: string): Promise<number> {
    const [row] = (await m.query('SELECT delta_hops FROM room_state_group WHERE id = $1', [group])) as Array<{
      delta_hops: number;
    }>;
    return Number(row!.delta_hops);
  }

  /** A new group: `base` changed by `delta`, or a snapshot when the delta chain would grow past its bound. */
  private async deltaGroup(
    m: EntityManager,
    roomId: string,
    base: Group,
    delta: ReadonlyMap<StateTuple, string | null>,
  ): Promise<Group> {
    const hops = base.hops + 1;
    if (hops > this.maxDeltaHops) {
      const state = new Map(await this.loadGroup(m, base.id));
      for (const [key, id] of delta) {
        if (id === null) state.delete(key);
        else state.set(key, id);
      }
      return this.snapshotGroup(m, roomId, state);
    }
    return this.insertGroup(m, roomId, base.id, hops, delta);
  }

  private snapshotGroup(m: EntityManager, roomId: string, state: StateMap): Promise<Group> {
    return this.insertGroup(m, roomId, null, 0, state);
  }

  /** A group with its entries: one statement (more only past INSERT_CHUNK entries). */
  private async insertGroup(
    m: EntityManager,
    roomId: string,
    prevGroup: string | null,
    hops: number,
    entries: ReadonlyMap<StateTuple, string | null>,
  ): Promise<Group> {
    const list = [...entries];
    const [types, keys, ids] = columnsOf(list.slice(0, INSERT_CHUNK));
    const [group] = (await m.query(
      `WITH g AS (INSERT INTO room_state_group (room_id, prev_group, delta_hops) VALUES ($1, $2, $3) RETURNING id),
       entries AS (
         INSERT INTO room_state_group_entry (state_group, type, state_key, event_id)
         SELECT g.id, x.type, x.state_key, x.event_id
         FROM g, unnest($4::varchar[], $5::varchar[], $6::varchar[]) AS x(type, state_key, event_id))
       SELECT id FROM g`,
      [roomId, prevGroup, hops, types, keys, ids],
    )) as Array<{ id: string }>;
    for (let i = INSERT_CHUNK; i < list.length; i += INSERT_CHUNK) {
      const [types, keys, ids] = columnsOf(list.slice(i, i + INSERT_CHUNK));
      await m.query(
        `INSERT INTO room_state_group_entry (state_group, type, state_key, event_id)
         SELECT $1::bigint, x.type, x.state_key, x.event_id
         FROM unnest($2::varchar[], $3::varchar[], $4::varchar[]) AS x(type, state_key, event_id)`,
        [group!.id, types, keys, ids],
      );
    }
    return { id: String(group!.id), hops };
  }

  /** The whole state of a group: its chain down to the snapshot in one query, the nearest entry of a key winning. */
  private async loadGroup(m: EntityManager, group: string): Promise<StateMap> {
    const rows = (await m.query(
      `WITH RECURSIVE chain(id, prev_group, hop) AS (
         SELECT id, prev_group, 0 FROM room_state_group WHERE id = $1
         UNION ALL
         SELECT g.id, g.prev_group, c.hop + 1 FROM room_state_group g JOIN chain c ON g.id = c.prev_group)
       SELECT DISTINCT ON (e.type, e.state_key) e.type, e.state_key, e.event_id
       FROM chain c JOIN room_state_group_entry e ON e.state_group = c.id
       ORDER BY e.type, e.state_key, c.hop`,
      [group],
    )) as Array<{ type: string; state_key: string; event_id: string | null }>;
    const state = new Map<StateTuple, string>();
    for (const row of rows) if (row.event_id !== null) state.set(stateKeyOf(row.type, row.state_key), row.event_id);
    return state;
  }

  /** The state group before or after a held event; throws when the event or its state is not held. */
  private async groupOf(m: EntityManager, eventId: string, which: 'before' | 'after', roomId?: string) {
    const rows = (await m.query(
      'SELECT room_id, state_group_before, state_group_after FROM room_event WHERE event_id = $1',
      [eventId],
    )) as Array<{ room_id: string; state_group_before: string | null; state_group_after: string | null }>;
    const row = rows[0];
    if (row === undefined) throw new RangeError(`Event ${eventId} is not held: persist it (with its state) first.`);
    if (roomId !== undefined && row.room_id !== roomId)
      throw new RangeError(`Event ${eventId} is in room ${row.room_id}, not ${roomId}: its state cannot be used here.`);
    const group = which === 'before' ? row.state_group_before : row.state_group_after;
    if (group === null)
      throw new RangeError(
        `Event ${eventId} is held without its state (an outlier): persist it into the timeline with stateBefore.`,
      );
    return String(group);
  }

  /**
   * Replaces the room's current state inside `m`'s transaction, which holds the room's lock: each changed key is
   * logged at `atStreamOrdering`, and the memberships of the room's users follow.
   */
  private async applyCurrentState(
    m: EntityManager,
    roomId: string,
    state: ReadonlyMap<StateTuple, string>,
    atStreamOrdering: number,
  ): Promise<void> {
    checkPosition(atStreamOrdering, 'atStreamOrdering');
    for (const [key, id] of state)
      if (!key.includes('\u0000') || typeof id !== 'string' || id.length === 0)
        throw new TypeError(
          `Cannot set the state of ${roomId}: ${JSON.stringify(key)} is not a state entry (stateKeyOf).`,
        );
    const current = await this.readCurrentState(m, roomId);
    const changes: StateChange[] = [];
    for (const [key, id] of state) if (current.get(key) !== id) changes.push([key, id, atStreamOrdering]);
    for (const key of current.keys()) if (!state.has(key)) changes.push([key, null, atStreamOrdering]);
    await this.applyStateChanges(m, roomId, changes);
  }

  /**
   * Writes changes to the room's current state, each logged at its stream ordering, with the memberships they
   * bring (read from the member events held, which must carry a membership); the last change of a key is the
   * one held. One statement per INSERT_CHUNK changes.
   */
  private async applyStateChanges(m: EntityManager, roomId: string, changes: StateChange[]): Promise<void> {
    for (const [key, id, at] of changes) {
      checkStateEntries(new Map([[key, id]]), roomId);
      checkPosition(at, 'atStreamOrdering');
    }
    for (let i = 0; i < changes.length; i += INSERT_CHUNK) {
      const chunk = changes.slice(i, i + INSERT_CHUNK);
      const [types, keys, ids] = columnsOf(chunk.map(([key, id]) => [key, id] as const));
      const ats = chunk.map(([, , at]) => at);
      // Several changes of a key (a batch of events): the last one is the key's state.
      const lastOf = new Map(chunk.map(([key], n) => [key, n]));
      const last = chunk.map(([key], n) => lastOf.get(key) === n);
      const members = chunk.filter(
        ([key, id], n) => last[n] && id !== null && splitStateKey(key).type === 'm.room.member',
      );
      const rows = (await m.query(
        `WITH x AS MATERIALIZED (
           SELECT * FROM unnest($2::varchar[], $3::varchar[], $4::varchar[], $5::bigint[], $6::boolean[])
             AS x(type, state_key, event_id, at, last)),
         removed AS (
           DELETE FROM room_current_state c USING x
           WHERE c.room_id = $1 AND c.type = x.type AND c.state_key = x.state_key AND x.last AND x.event_id IS NULL),
         kept AS (
           INSERT INTO room_current_state (room_id, type, state_key, event_id)
           SELECT $1, x.type, x.state_key, x.event_id FROM x WHERE x.last AND x.event_id IS NOT NULL
           ON CONFLICT (room_id, type, state_key) DO UPDATE SET event_id = EXCLUDED.event_id),
         logged AS (
           INSERT INTO room_current_state_delta (room_id, stream_ordering, type, state_key, event_id)
           SELECT $1, x.at, x.type, x.state_key, x.event_id FROM x
           ON CONFLICT (room_id, stream_ordering, type, state_key) DO UPDATE SET event_id = EXCLUDED.event_id),
         left_room AS (
           DELETE FROM room_membership WHERE room_id = $1 AND user_id IN (
             SELECT x.state_key FROM x WHERE x.last AND x.type = 'm.room.member' AND x.event_id IS NULL)),
         members AS (
           INSERT INTO room_membership (room_id, user_id, server_name, membership, event_id, stream_ordering)
           SELECT $1, x.state_key, substr(x.state_key, strpos(x.state_key, ':') + 1),
             r.pdu::jsonb -> 'content' ->> 'membership', x.event_id, x.at
           FROM x JOIN room_event r ON r.event_id = x.event_id
           WHERE x.last AND x.type = 'm.room.member'
             AND jsonb_typeof(r.pdu::jsonb -> 'content' -> 'membership') = 'string'
           ON CONFLICT (room_id, user_id) DO UPDATE SET server_name = EXCLUDED.server_name,
             membership = EXCLUDED.membership, event_id = EXCLUDED.event_id,
             stream_ordering = EXCLUDED.stream_ordering
           RETURNING event_id)
         SELECT event_id FROM members`,
        [roomId, types, keys, ids, ats, last],
      )) as Array<{ event_id: string }>;
      const set = new Set(rows.map((r) => r.event_id));
      const missing = members.find(([, id]) => !set.has(id!));
      if (missing !== undefined)
        throw new TypeError(
          `Cannot set the state of ${roomId}: member event ${missing[1]} is not held or has no membership. Persist it first.`,
        );
    }
  }

  private async readCurrentState(m: EntityManager, roomId: string): Promise<Map<StateTuple, string>> {
    const rows = (await m.query('SELECT type, state_key, event_id FROM room_current_state WHERE room_id = $1', [
      roomId,
    ])) as Array<{ type: string; state_key: string; event_id: string }>;
    return new Map(rows.map((r) => [stateKeyOf(r.type, r.state_key), r.event_id]));
  }
}

/** The changes that turn `from` into `to`. */
function diffStates(from: StateMap, to: StateMap): Map<StateTuple, string | null> {
  const delta = new Map<StateTuple, string | null>();
  for (const [key, id] of to) if (from.get(key) !== id) delta.set(key, id);
  for (const key of from.keys()) if (!to.has(key)) delta.set(key, null);
  return delta;
}

function checkStateEntries(entries: ReadonlyMap<StateTuple, string | null>, roomId: string): void {
  for (const [key, id] of entries) {
    if (typeof key !== 'string' || !key.includes('\u0000'))
      throw new TypeError(`A state entry of ${roomId} has the key ${JSON.stringify(key)}: make keys with stateKeyOf.`);
    if (id !== null && (typeof id !== 'string' || id.length === 0))
      throw new TypeError(`The state entry ${JSON.stringify(key)} of ${roomId} names no event id.`);
  }
}

/** Parallel arrays (type, state_key, event id) of state entries, for `unnest`. */
function columnsOf(
  entries: ReadonlyArray<readonly [StateTuple, string | null]>,
): [string[], string[], Array<string | null>] {
  const types: string[] = [];
  const keys: string[] = [];
  const ids: Array<string | null> = [];
  for (const [key, id] of entries) {
    const { type, stateKey } = splitStateKey(key);
    types.push(type);
    keys.push(stateKey);
    ids.push(id);
  }
  return [types, keys, ids];
}

function* chunks(ids: readonly string[]): Generator<string[]> {
  for (let i = 0; i < ids.length; i += INSERT_CHUNK) yield ids.slice(i, i + INSERT_CHUNK);
}
