// The one accept pipeline every room event goes through, made here or received (server-server API "Checks
// performed on receipt of a PDU", in its order): format, signatures, content hash, auth events, the state
// before the event, then persist, forward extremities and the room's new current state. Serialising per room is
// the caller's (RoomEngine runs it in the room's queue).
import { homeStatus, publicKeyFromPeerId, publicKeyFromServerName, type AccountDocument } from '@polyhome/identity';
import {
  authStateOf,
  authTypesFor,
  checkAuth,
  checkAuthEvents,
  checkContentHash,
  eventIdOf,
  MissingPrevStateError,
  requiredSigners,
  resolveState,
  stateAfterEvent,
  stateBeforeEvent,
  stateKeyOf,
  validatePdu,
  verifyPduSignatures,
  LIMITS,
  type EventLookup,
  type Pdu,
  type ResolveKey,
  type RoomVersionId,
  type StateMap,
  type StateTuple,
} from '@polyhome/rooms';
import type { PersistEventInput, RoomStore, StateBeforeInput, StateDelta, StoredRoomEvent } from '../room-store.js';

/** What the checks read of a held event. */
type HeldEvent = Pick<StoredRoomEvent, 'pdu' | 'outlier' | 'rejected' | 'streamOrdering'>;

/** Where a refusal happened: what the event failed. */
export type RefusalStage = 'format' | 'signature' | 'content_hash' | 'missing' | 'auth_events' | 'auth_state';

/** What the pipeline did with an event. */
export type AcceptOutcome =
  | {
      ok: true;
      eventId: string;
      /** False when the event was held already (a retry): nothing changed. */
      inserted: boolean;
      streamOrdering: number | null;
      /** The room's current state after it (only when inserted). */
      currentState?: StateMap;
    }
  | {
      ok: false;
      /** The event's id when it got far enough to have one. */
      eventId?: string;
      stage: RefusalStage;
      code: string;
      message: string;
      /** `rejected`: kept as evidence (a received event failing the auth rules); `dropped`: nothing stored. */
      stored: 'dropped' | 'rejected';
    };

/** Where the pipeline reads account documents (the replica store holds those of the accounts it knows). */
export interface DocumentSource {
  document(account: string): Promise<AccountDocument | undefined>;
}

/** Extremities whose states are resolved into the current state (the deepest; the rest wait for a merge). */
const MAX_RESOLVED_EXTREMITIES = LIMITS.prevEvents;

/**
 * The signing key resolver for one event: `ed25519:root` is the account key (the server name itself), and
 * `ed25519:<PeerId>` is that PeerId's key when the account document held here names it as a home (a revoked
 * home's key is refused). Documents are read before the synchronous check.
 */
export async function keyResolverFor(documents: DocumentSource, version: RoomVersionId, pdu: Pdu): Promise<ResolveKey> {
  const held = new Map<string, AccountDocument | undefined>();
  for (const server of requiredSigners(version, pdu)) held.set(server, await documents.document(server));
  return (serverName, keyId) => {
    try {
      if (keyId === 'ed25519:root') return publicKeyFromServerName(serverName);
      const peerId = keyId.slice('ed25519:'.length);
      const document = held.get(serverName);
      if (document === undefined || homeStatus(document, peerId).kind !== 'home') return undefined;
      return publicKeyFromPeerId(peerId);
    } catch {
      return undefined;
    }
  };
}

/** Accepted timeline events kept in memory (by count), and the states after them (by total entries). */
const CACHED_EVENTS = 4_096;
const CACHED_STATE_ENTRIES = 200_000;

/**
 * Accepted timeline events (never rejected, never outliers: such an event never changes once stored) with their
 * stream orderings, and the states after them: what the next events of a room read for their checks (the state
 * after their prev event, their auth events). Least recently used go first.
 */
class AcceptedCache {
  readonly #events = new Map<string, { pdu: Pdu; streamOrdering: number | null }>();
  readonly #states = new Map<string, StateMap>();
  #stateEntries = 0;

  event(eventId: string): { pdu: Pdu; streamOrdering: number | null } | undefined {
    const hit = this.#events.get(eventId);
    if (hit !== undefined) {
      this.#events.delete(eventId);
      this.#events.set(eventId, hit);
    }
    return hit;
  }

  putEvent(eventId: string, pdu: Pdu, streamOrdering: number | null): void {
    this.#events.delete(eventId);
    this.#events.set(eventId, { pdu, streamOrdering });
    while (this.#events.size > CACHED_EVENTS) this.#events.delete(this.#events.keys().next().value!);
  }

  state(eventId: string): StateMap | undefined {
    const hit = this.#states.get(eventId);
    if (hit !== undefined) {
      this.#states.delete(eventId);
      this.#states.set(eventId, hit);
    }
    return hit;
  }

  putState(eventId: string, state: StateMap): void {
    if (state.size > CACHED_STATE_ENTRIES / 4) return;
    const old = this.#states.get(eventId);
    if (old !== undefined) {
      this.#states.delete(eventId);
      this.#stateEntries -= old.size;
    }
    this.#states.set(eventId, state);
    this.#stateEntries += state.size;
    while (this.#stateEntries > CACHED_STATE_ENTRIES) {
      const [oldest, evicted] = this.#states.entries().next().value!;
      this.#states.delete(oldest);
      this.#stateEntries -= evicted.size;
    }
  }
}

/** The accept pipeline over a room store and the documents that say which homes sign for an account. */
export class RoomEventPipeline {
  readonly #cache = new AcceptedCache();
  /** Events by id for the checks and state resolution: the cache first, then the store. */
  readonly #lookup: EventLookup = { getEvents: (ids) => this.#events(ids) };

  constructor(
    private readonly store: RoomStore,
    private readonly documents: DocumentSource,
  ) {}

  /**
   * Checks and stores one event of a room of `version`. `origin` says who made it: a local event refused by
   * the auth rules is not stored at all (the client is told), a received one is kept as rejected evidence, as
   * the spec asks (it stays out of the timeline, the state and the extremities). Never throws for a bad event;
   * store failures propagate.
   */
  async accept(
    version: RoomVersionId,
    json: unknown,
    origin: 'local' | 'remote',
    givenState?: StateMap,
    known?: { extremities: readonly string[] },
  ): Promise<AcceptOutcome> {
    const checked = await this.#verified(version, json);
    if ('ok' in checked) return checked;
    const { pdu, eventId } = checked;

    const cached = this.#cache.event(eventId);
    if (cached !== undefined) return { ok: true, eventId, inserted: false, streamOrdering: cached.streamOrdering };
    // An event this home just made and signed is new (its id hashes a fresh timestamp); were it held, storing it
    // again changes nothing (`inserted: false`).
    const held = origin === 'local' ? undefined : (await this.store.eventsByIds([eventId])).get(eventId);
    if (held !== undefined && !held.outlier) {
      if (held.rejected !== null)
        return { ok: false, eventId, stage: 'auth_state', ...held.rejected, stored: 'rejected' };
      return { ok: true, eventId, inserted: false, streamOrdering: held.streamOrdering };
    }
    const reject = async (stage: RefusalStage, reason: { code: string; message: string }): Promise<AcceptOutcome> => {
      if (origin === 'local')
        return { ok: false, eventId, stage, code: reason.code, message: reason.message, stored: 'dropped' };
      await this.store.persistEvent({
        eventId,
        roomVersion: version,
        pdu,
        rejected: { code: reason.code, message: reason.message },
      });
      return { ok: false, eventId, stage, code: reason.code, message: reason.message, stored: 'rejected' };
    };

    // Auth events: all held and none rejected (rule 2.3), the right ones (2.1, 2.2, 2.4), and the event passes
    // the rules against them.
    const authHeld = await this.#heldEvents(pdu.auth_events);
    const authEvents: Pdu[] = [];
    for (const id of pdu.auth_events) {
      const event = authHeld.get(id);
      if (event === undefined) {
        return drop(
          'missing',
          {
            code: 'missing_auth_event',
            message: `Auth event ${id} is not held here (fetching missing events from other homes is not available yet).`,
          },
          eventId,
        );
      }
      if (event.rejected !== null)
        return reject('auth_events', { code: 'rejected_auth_event', message: `Auth event ${id} was rejected.` });
      authEvents.push(event.pdu);
    }
    const authEventsCheck = checkAuthEvents(version, pdu, authEvents);
    if (!authEventsCheck.ok) return reject('auth_events', authEventsCheck);
    const againstAuthEvents = checkAuth(version, pdu, authStateOf(authEvents));
    if (!againstAuthEvents.ok) return reject('auth_events', againstAuthEvents);

    // The state before the event, from its prev events' states, and the rules against it.
    // Given: the state another home sent with the event (a join's or an invite's room, a gap too long to
    // fill), after every event of it was checked and stored as an outlier.
    let before: StateMap;
    if (givenState !== undefined) before = givenState;
    else {
      try {
        before = await stateBeforeEvent(version, pdu, (id) => this.stateAfter(id), this.#lookup, checkAuth);
      } catch (error) {
        if (!(error instanceof MissingPrevStateError)) throw error;
        return drop('missing', { code: 'missing_prev_event', message: error.message }, eventId);
      }
    }
    const againstState = checkAuth(version, pdu, await this.authState(version, pdu, before));
    if (!againstState.ok) return reject('auth_state', againstState);

    const prev = [...new Set(pdu.prev_events)];
    const stateBefore: StateBeforeInput =
      prev.length === 1 && givenState === undefined ? { afterEvent: prev[0]! } : { state: before };
    // The current state the event leaves is resolved first and set in the event's own transaction: no reader
    // sees the event without the state (and memberships) it brings.
    const own = stateAfterEvent(before, eventId, pdu);
    // Only when the state before is the prev event's own state after (not a state another home gave) can the
    // change be a delta on the held current state.
    const extendsPrev = 'afterEvent' in stateBefore;
    const { currentState, currentStateDelta } = await this.currentState(
      version,
      eventId,
      pdu,
      own,
      extendsPrev,
      origin === 'local' ? known?.extremities : undefined,
    );
    const persisted = await this.store.persistEvent({
      eventId,
      roomVersion: version,
      pdu,
      stateBefore,
      currentState,
      ...(currentStateDelta === undefined ? {} : { currentStateDelta }),
    });
    if (!persisted.inserted || persisted.streamOrdering === null) {
      return { ok: true, eventId, inserted: false, streamOrdering: persisted.streamOrdering };
    }
    this.#cache.putEvent(eventId, pdu, persisted.streamOrdering);
    this.#cache.putState(eventId, own);
    return { ok: true, eventId, inserted: true, streamOrdering: persisted.streamOrdering, currentState };
  }

  /**
   * Checks and stores the first events of a room this home makes (createRoom): a chain of local events of a room
   * not held yet, the create event first and each next one naming the one before as its only prev event. Each
   * goes through the checks of `accept` (format, signatures, content hash, auth events, the auth rules against
   * them and against the state before it), reading the chain's earlier events and states from memory; then all
   * are stored in one transaction (`persistEvents`), each with the change it makes to the room's current state.
   * The first refusal is returned and nothing is stored. Store failures propagate.
   */
  async acceptNewRoom(version: RoomVersionId, jsons: readonly unknown[]): Promise<AcceptOutcome[]> {
    const pending = new Map<string, { pdu: Pdu; state: StateMap }>();
    const inputs: PersistEventInput[] = [];
    const checked: Array<{ eventId: string; pdu: Pdu; own: StateMap }> = [];
    let last: { eventId: string; state: StateMap } | undefined;
    for (const json of jsons) {
      const verified = await this.#verified(version, json);
      if ('ok' in verified) return [verified];
      const { pdu, eventId } = verified;
      const prevs = [...new Set(pdu.prev_events)];
      const chained = last === undefined ? prevs.length === 0 : prevs.length === 1 && prevs[0] === last.eventId;
      if (!chained || (last === undefined && pdu.type !== 'm.room.create'))
        throw new TypeError(
          `Event ${eventId} does not continue the chain of a new room: it starts with its create event and each next one names the one before.`,
        );
      const authEvents: Pdu[] = [];
      const missing = pdu.auth_events.filter((id) => !pending.has(id));
      const held = missing.length === 0 ? new Map<string, HeldEvent>() : await this.#heldEvents(missing);
      for (const id of pdu.auth_events) {
        const event = pending.get(id)?.pdu ?? held.get(id)?.pdu;
        if (event === undefined || held.get(id)?.rejected != null)
          return [
            drop(
              'missing',
              { code: 'missing_auth_event', message: `Auth event ${id} is not held here (or rejected).` },
              eventId,
            ),
          ];
        authEvents.push(event);
      }
      const authEventsCheck = checkAuthEvents(version, pdu, authEvents);
      if (!authEventsCheck.ok) return [drop('auth_events', authEventsCheck, eventId)];
      const againstAuthEvents = checkAuth(version, pdu, authStateOf(authEvents));
      if (!againstAuthEvents.ok) return [drop('auth_events', againstAuthEvents, eventId)];
      const before: StateMap = last?.state ?? new Map();
      const authState = authTypesFor(version, pdu)
        .map((key) => before.get(key))
        .filter((id): id is string => id !== undefined)
        .map((id) => pending.get(id)!.pdu);
      const againstState = checkAuth(version, pdu, authStateOf(authState));
      if (!againstState.ok) return [drop('auth_state', againstState, eventId)];
      const own = stateAfterEvent(before, eventId, pdu);
      // The room's current state is empty before its create event and follows the chain: each event changes it
      // by its own state key.
      const delta = ownChange(eventId, pdu);
      inputs.push({
        eventId,
        roomVersion: version,
        pdu,
        stateBefore: last === undefined ? { state: before } : { afterEvent: last.eventId },
        currentState: own,
        currentStateDelta: delta,
      });
      pending.set(eventId, { pdu, state: own });
      checked.push({ eventId, pdu, own });
      last = { eventId, state: own };
    }
    const persisted = await this.store.persistEvents(inputs);
    return checked.map(({ eventId, pdu, own }, i) => {
      const result = persisted[i]!;
      if (!result.inserted || result.streamOrdering === null)
        return { ok: true, eventId, inserted: false, streamOrdering: result.streamOrdering };
      this.#cache.putEvent(eventId, pdu, result.streamOrdering);
      this.#cache.putState(eventId, own);
      return { ok: true, eventId, inserted: true, streamOrdering: result.streamOrdering, currentState: own };
    });
  }

  /**
   * Checks one event of a room's auth chain or state sent by another home, and keeps it as an outlier (held for
   * checks, not in the timeline): format, signatures, content hash, and the auth rules against its own auth
   * events, which must be held already (send a chain oldest first). A failing event is refused and not stored.
   */
  async acceptOutlier(version: RoomVersionId, json: unknown): Promise<AcceptOutcome> {
    const checked = await this.#againstOwnAuthEvents(version, json, 'outlier');
    if ('ok' in checked) return checked;
    const { pdu, eventId } = checked;
    await this.store.persistEvent({ eventId, roomVersion: version, pdu, outlier: true });
    return { ok: true, eventId, inserted: true, streamOrdering: null };
  }

  /**
   * Checks an older event of a room sent by another home in answer to `/backfill`, and stores it in the timeline
   * before every held event: format, signatures, content hash, and the auth rules against its own auth events,
   * which must be held already (`missing_auth_event` names the first that is not). Its state is not computed:
   * the state the home holds was taken at a later event, and a backfilled event changes no current state.
   */
  async acceptBackfilled(version: RoomVersionId, json: unknown): Promise<AcceptOutcome> {
    const checked = await this.#againstOwnAuthEvents(version, json, 'timeline');
    if ('ok' in checked) return checked;
    const { pdu, eventId } = checked;
    const persisted = await this.store.persistBackfilled({ eventId, roomVersion: version, pdu });
    return { ok: true, eventId, inserted: persisted.inserted, streamOrdering: persisted.streamOrdering };
  }

  /**
   * Format, signatures, content hash, and the auth rules against the event's own auth events (held, not
   * rejected): the event to store, or the outcome to answer. An event held already is answered as held: any
   * copy of it for an outlier, a copy in the timeline for a timeline event (an outlier is taken into it).
   */
  async #againstOwnAuthEvents(
    version: RoomVersionId,
    json: unknown,
    into: 'outlier' | 'timeline',
  ): Promise<AcceptOutcome | { pdu: Pdu; eventId: string }> {
    const checked = await this.#verified(version, json);
    if ('ok' in checked) return checked;
    const { pdu, eventId } = checked;
    const held = await this.#heldEvents([eventId, ...pdu.auth_events]);
    const self = held.get(eventId);
    if (self !== undefined && (into === 'outlier' || !self.outlier)) {
      if (self.rejected !== null)
        return { ok: false, eventId, stage: 'auth_state', ...self.rejected, stored: 'rejected' };
      return { ok: true, eventId, inserted: false, streamOrdering: self.streamOrdering };
    }
    const authEvents: Pdu[] = [];
    for (const id of pdu.auth_events) {
      const event = held.get(id);
      if (event === undefined || event.rejected !== null) {
        return drop(
          'missing',
          { code: 'missing_auth_event', message: `Auth event ${id} is not held (or rejected).` },
          eventId,
        );
      }
      authEvents.push(event.pdu);
    }
    const authEventsCheck = checkAuthEvents(version, pdu, authEvents);
    if (!authEventsCheck.ok) return drop('auth_events', authEventsCheck, eventId);
    const allowed = checkAuth(version, pdu, authStateOf(authEvents));
    if (!allowed.ok) return drop('auth_events', allowed, eventId);
    return { pdu, eventId };
  }

  /** The state after a held accepted timeline event when it is in memory (a state after an event never changes). */
  cachedStateAfter(eventId: string): StateMap | undefined {
    return this.#cache.state(eventId);
  }

  /** Events by id (any held copy, not rejected), from memory first, then the store. */
  events(ids: readonly string[]): Promise<ReadonlyMap<string, Pdu>> {
    return this.#events(ids);
  }

  /** Format, signatures and content hash: the event and its id, or the refusal. */
  async #verified(version: RoomVersionId, json: unknown): Promise<AcceptOutcome | { pdu: Pdu; eventId: string }> {
    const format = validatePdu(version, json);
    if (!format.ok) return drop('format', format);
    const pdu = format.pdu;
    const signatures = verifyPduSignatures(version, pdu, await keyResolverFor(this.documents, version, pdu));
    if (!signatures.ok) return drop('signature', signatures);
    // A hash mismatch under a valid signature means the content was changed after signing. The spec keeps
    // such an event redacted; nothing here can yet ask another home for the real one, so it is refused.
    const hash = checkContentHash(pdu);
    if (!hash.ok) return drop('content_hash', hash);
    return { pdu, eventId: eventIdOf(version, pdu) };
  }

  /** The state after a held timeline event, or undefined when the store has none for it. */
  private async stateAfter(eventId: string): Promise<StateMap | undefined> {
    const cached = this.#cache.state(eventId);
    if (cached !== undefined) return cached;
    const held = (await this.#heldEvents([eventId])).get(eventId);
    if (held === undefined || held.outlier || held.rejected !== null) return undefined;
    // A backfilled event (ordered before every other) has no state of its own here.
    if (held.streamOrdering !== null && held.streamOrdering <= 0) return undefined;
    const state = await this.store.stateAfter(eventId);
    this.#cache.putState(eventId, state);
    return state;
  }

  /**
   * Held events by id, as `eventsByIds` gives them: accepted timeline events from the cache, the rest from the
   * store (accepted timeline events read are cached).
   */
  async #heldEvents(ids: readonly string[]): Promise<Map<string, HeldEvent>> {
    const [found, missing] = this.#cached(ids, (hit): HeldEvent => ({ ...hit, outlier: false, rejected: null }));
    if (missing.length === 0) return found;
    for (const [id, event] of await this.store.eventsByIds(missing)) {
      found.set(id, event);
      if (!event.outlier && event.rejected === null) this.#cache.putEvent(id, event.pdu, event.streamOrdering);
    }
    return found;
  }

  /** Events by id (any held copy) for the checks: the cache first, then the store. */
  async #events(ids: readonly string[]): Promise<ReadonlyMap<string, Pdu>> {
    const [found, missing] = this.#cached(ids, (hit) => hit.pdu);
    if (missing.length > 0) for (const [id, pdu] of await this.store.getEvents(missing)) found.set(id, pdu);
    return found;
  }

  /** The cached events of `ids` (as `as` makes them), and the ids not cached. */
  #cached<T>(
    ids: readonly string[],
    as: (hit: { pdu: Pdu; streamOrdering: number | null }) => T,
  ): [Map<string, T>, string[]] {
    const found = new Map<string, T>();
    const missing: string[] = [];
    for (const id of ids) {
      const hit = this.#cache.event(id);
      if (hit === undefined) missing.push(id);
      else found.set(id, as(hit));
    }
    return [found, missing];
  }

  /** The events of `state` the rules read for `pdu`, keyed as the auth rules want them. */
  private async authState(version: RoomVersionId, pdu: Pdu, state: StateMap): Promise<Map<StateTuple, Pdu>> {
    const ids = authTypesFor(version, pdu)
      .map((key) => state.get(key))
      .filter((id): id is string => id !== undefined);
    const events = await this.#events(ids);
    return authStateOf(ids.map((id) => events.get(id)).filter((e): e is Pdu => e !== undefined));
  }

  /**
   * The room's state once the event is in, read before it is stored (the caller serialises the room): when the
   * event extends the room's only extremity from that extremity's own state after (`extendsPrev`: no state given
   * by another home), the change it makes to the current state (which is that state, as set when it came in); when it leaves itself the only extremity otherwise, its own state after;
   * else the resolution of the states at the extremities it leaves (state resolution v2).
   */
  private async currentState(
    version: RoomVersionId,
    eventId: string,
    pdu: Pdu,
    own: StateMap,
    extendsPrev: boolean,
    extremities?: readonly string[],
  ): Promise<{ currentState: StateMap; currentStateDelta?: StateDelta }> {
    const prevs = [...new Set(pdu.prev_events)];
    // A local event made on the room's only extremity (read in the room's queue, `extremities`) leaves itself the
    // only one: nothing held can name an event just made as its prev event.
    if (extendsPrev && extremities?.length === 1 && prevs.length === 1 && extremities[0] === prevs[0]) {
      return { currentState: own, currentStateDelta: ownChange(eventId, pdu) };
    }
    const { before, after } = await this.store.forwardExtremitiesAfter(
      pdu.room_id,
      { eventId, depth: pdu.depth },
      prevs,
      MAX_RESOLVED_EXTREMITIES,
    );
    if (after.length === 1 && after[0]!.eventId === eventId) {
      if (extendsPrev && before.length === 1 && prevs.length === 1 && before[0] === prevs[0]) {
        return { currentState: own, currentStateDelta: ownChange(eventId, pdu) };
      }
      return { currentState: own };
    }
    const states: StateMap[] = [];
    for (const extremity of after)
      states.push(
        extremity.eventId === eventId
          ? own
          : (this.#cache.state(extremity.eventId) ?? (await this.store.stateAfter(extremity.eventId))),
      );
    // The event is not stored yet: the resolution reads it from here.
    const lookup: EventLookup = {
      getEvents: async (ids) => {
        const events = new Map(await this.#events(ids.filter((id) => id !== eventId)));
        if (ids.includes(eventId)) events.set(eventId, pdu);
        return events;
      },
    };
    return { currentState: await resolveState(version, states, lookup, checkAuth) };
  }
}

/** The change an event makes to the state it extends: its own state key, or none for a message. */
function ownChange(eventId: string, pdu: Pdu): StateDelta {
  return typeof pdu.state_key === 'string' ? new Map([[stateKeyOf(pdu.type, pdu.state_key), eventId]]) : new Map();
}

function drop(stage: RefusalStage, reason: { code: string; message: string }, eventId?: string): AcceptOutcome {
  return {
    ok: false,
    ...(eventId === undefined ? {} : { eventId }),
    stage,
    code: reason.code,
    message: reason.message,
    stored: 'dropped',
  };
}
