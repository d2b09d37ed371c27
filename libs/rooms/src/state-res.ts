/**
 * State resolution v2, the algorithm of room versions 2 to 11 (server-server API, room versions, "State
 * resolution" of room version 2, which versions 10 and 11 keep), step by step as the spec names the steps.
 *
 * Two homes that hold the same events and resolve the same state sets get the same state, whatever order
 * the state sets come in: every ordering here is a total order on events (ties end on the event id).
 */
import { authDifference, type AuthChainOptions } from './auth-chain.js';
import { authTypesFor } from './auth.js';
import { EventCache } from './event-cache.js';
import { compareStrings, lexicographicTopologicalSort } from './topo.js';
import {
  SUPPORTED_ROOM_VERSIONS,
  stateKeyOf,
  type AuthCheck,
  type EventLookup,
  type Pdu,
  type RoomVersionId,
  type StateMap,
  type StateTuple,
} from './types.js';

const POWER_LEVELS = stateKeyOf('m.room.power_levels', '');

/** Options of `resolveState`. */
export interface ResolveStateOptions extends AuthChainOptions {
  /**
   * Whether the home rejected an event. A rejected event is never used as an auth event in the iterative
   * auth checks (the spec: "if the auth event is not rejected"). Default: nothing is rejected.
   */
  isRejected?: (eventId: string) => boolean;
}

/** Thrown when `resolveState` is asked for a room version it does not implement. */
export class UnsupportedRoomVersionError extends Error {
  readonly code = 'UNSUPPORTED_ROOM_VERSION';

  constructor(version: string) {
    super(
      `State resolution is implemented for room versions ${SUPPORTED_ROOM_VERSIONS.join(' and ')}; got ${version}.`,
    );
    this.name = 'UnsupportedRoomVersionError';
  }
}

/**
 * A power event (state resolution v2, "Definitions"): power levels, join rules, or a leave or ban of
 * someone else (a kick or a ban), the events that can take a right away. The create event counts too, and
 * only state key "" of the first two, as in Synapse and ruma, whose reading decides what the network agrees
 * on.
 */
export function isPowerEvent(event: Pdu): boolean {
  if (typeof event.state_key !== 'string') return false;
  if (event.type === 'm.room.power_levels' || event.type === 'm.room.join_rules' || event.type === 'm.room.create') {
    return event.state_key === '';
  }
  if (event.type === 'm.room.member') {
    const membership = event.content['membership'];
    return (membership === 'leave' || membership === 'ban') && event.sender !== event.state_key;
  }
  return false;
}

/** The unconflicted state map and the conflicted state set of some state sets. */
export interface StateSplit {
  /** Keys with the same event in every state set. */
  unconflicted: Map<StateTuple, string>;
  /** Keys missing from some state set or holding different events; each with the events seen. */
  conflicted: Map<StateTuple, Set<string>>;
}

/** Splits state sets into the unconflicted state map and the conflicted state set (v2 "Definitions"). */
export function splitConflicts(stateSets: readonly StateMap[]): StateSplit {
  const unconflicted = new Map<StateTuple, string>();
  const conflicted = new Map<StateTuple, Set<string>>();
  const keys = new Set<StateTuple>();
  for (const stateSet of stateSets) for (const key of stateSet.keys()) keys.add(key);
  for (const key of keys) {
    const first = stateSets[0]?.get(key);
    if (first !== undefined && stateSets.every((stateSet) => stateSet.get(key) === first)) {
      unconflicted.set(key, first);
      continue;
    }
    const ids = new Set<string>();
    for (const stateSet of stateSets) {
      const id = stateSet.get(key);
      if (id !== undefined) ids.add(id);
    }
    conflicted.set(key, ids);
  }
  return { unconflicted, conflicted };
}

/**
 * Resolves the state of a room from several state sets (the states after each of an event's prev events,
 * or at each forward extremity) by state resolution v2. `lookup` must hold the state sets' events and
 * their auth chains (events it lacks are left out, as the spec allows); `checkAuth` is the room version's
 * authorization rules (`checkAuth` of `./auth.js` in production). Pure apart from the reads.
 */
export async function resolveState(
  version: RoomVersionId,
  stateSets: readonly StateMap[],
  lookup: EventLookup,
  checkAuth: AuthCheck,
  options: ResolveStateOptions = {},
): Promise<StateMap> {
  if (!SUPPORTED_ROOM_VERSIONS.includes(version)) throw new UnsupportedRoomVersionError(String(version));
  if (stateSets.length === 0) return new Map();
  if (stateSets.length === 1) return new Map(stateSets[0]);

  const { unconflicted, conflicted } = splitConflicts(stateSets);
  if (conflicted.size === 0) return unconflicted;

  const resolver = new Resolver(version, new EventCache(lookup), checkAuth, options);
  return resolver.resolve(stateSets, unconflicted, conflicted);
}

/** One run of the algorithm: the event cache and the parameters shared by its steps. */
class Resolver {
  private readonly isRejected: (eventId: string) => boolean;

  constructor(
    private readonly version: RoomVersionId,
    private readonly events: EventCache,
    private readonly checkAuth: AuthCheck,
    private readonly options: ResolveStateOptions,
  ) {
    this.isRejected = options.isRejected ?? (() => false);
  }

  async resolve(
    stateSets: readonly StateMap[],
    unconflicted: Map<StateTuple, string>,
    conflicted: Map<StateTuple, Set<string>>,
  ): Promise<StateMap> {
    // The full conflicted set: the conflicted events and the auth difference, of the events held.
    const candidates = new Set<string>();
    for (const ids of conflicted.values()) for (const id of ids) candidates.add(id);
    for (const id of await authDifference(stateSets, this.events, this.options)) candidates.add(id);
    await this.events.load(candidates);
    const fullConflicted = new Set([...candidates].filter((id) => this.events.peek(id) !== undefined));

    // Step 1: the power events and their auth ancestors in the full conflicted set, in reverse topological
    // power ordering; step 2: iterative auth checks on them from the unconflicted state.
    const powerEvents = [...fullConflicted].filter((id) => isPowerEvent(this.pdu(id)));
    const sortedPower = await this.reverseTopologicalPowerOrder(powerEvents, fullConflicted);
    const partial = await this.iterativeAuthChecks(sortedPower, unconflicted);

    // Step 3: the other events in mainline order of the partially resolved power levels; step 4: iterative
    // auth checks on them from the partially resolved state.
    const picked = new Set(sortedPower);
    const others = [...fullConflicted].filter((id) => !picked.has(id));
    const sortedOthers = await this.mainlineOrder(others, partial.get(POWER_LEVELS));
    const resolved = await this.iterativeAuthChecks(sortedOthers, partial);

    // Step 5: the unconflicted state map wins over whatever the steps above put at its keys.
    for (const [key, id] of unconflicted) resolved.set(key, id);
    return resolved;
  }

  /** A held event; every id reaching here was filtered on being held. */
  private pdu(eventId: string): Pdu {
    const pdu = this.events.peek(eventId);
    if (pdu === undefined)
      throw new Error(`Event ${eventId} was expected in the cache; this is a bug in state resolution.`);
    return pdu;
  }

  /**
   * "Reverse topological power ordering": the power events enlarged by their auth chains within the full
   * conflicted set, sorted by Kahn's algorithm over their auth events, the ready event with the highest
   * sender power level first, then the lowest origin_server_ts, then the lowest event id. As Synapse and
   * ruma do, the auth chain is walked through events of the full conflicted set only.
   */
  private async reverseTopologicalPowerOrder(powerEvents: string[], fullConflicted: Set<string>): Promise<string[]> {
    const graph = new Map<string, string[]>();
    const stack = [...powerEvents];
    while (stack.length > 0) {
      const id = stack.pop() as string;
      if (graph.has(id)) continue;
      const parents = this.pdu(id).auth_events.filter((authId) => fullConflicted.has(authId));
      graph.set(id, parents);
      for (const parent of parents) if (!graph.has(parent)) stack.push(parent);
    }
    const levels = new Map<string, number>();
    for (const id of graph.keys()) levels.set(id, await this.senderPowerLevel(this.pdu(id)));
    return lexicographicTopologicalSort(graph, (a, b) => {
      const byLevel = (levels.get(b) ?? 0) - (levels.get(a) ?? 0);
      if (byLevel !== 0) return byLevel;
      return this.byTimestampThenId(a, b);
    });
  }

  private byTimestampThenId(a: string, b: string): number {
    const byTs = this.pdu(a).origin_server_ts - this.pdu(b).origin_server_ts;
    return byTs !== 0 ? byTs : compareStrings(a, b);
  }

  /**
   * The sender's power level "when looking at their respective auth_events": the power levels event among
   * the auth events, or, without one, 100 for the room's creator (the create event's `creator` in v10, its
   * sender in v11) and 0 for everyone else.
   */
  private async senderPowerLevel(event: Pdu): Promise<number> {
    const authEvents = await this.events.getEvents(event.auth_events);
    let create: Pdu | undefined;
    for (const id of event.auth_events) {
      const authEvent = authEvents.get(id);
      if (authEvent?.state_key !== '') continue;
      if (authEvent.type === 'm.room.power_levels') {
        const users = authEvent.content['users'];
        const own =
          typeof users === 'object' && users !== null ? (users as Record<string, unknown>)[event.sender] : undefined;
        if (isInteger(own)) return own;
        const byDefault = authEvent.content['users_default'];
        return isInteger(byDefault) ? byDefault : 0;
      }
      if (authEvent.type === 'm.room.create') create ??= authEvent;
    }
    if (create === undefined) return 0;
    const creator = this.version === '10' ? create.content['creator'] : create.sender;
    return creator === event.sender ? 100 : 0;
  }

  /**
   * "Mainline ordering": the mainline of the power levels event P is P, the power levels event among P's
   * auth events, and so on. An event's position is that of the first mainline event met by following power
   * levels auth events from it, counted from the oldest (1), or 0 when none is met (the spec's ∞, which
   * sorts first); events sort by position, then origin_server_ts, then event id, all ascending. The walk
   * starts at the event itself, as in Synapse and ruma; the spec starts at its power levels auth event,
   * which is the same for the events this step sees (none is a power levels event: those are power events).
   */
  private async mainlineOrder(eventIds: string[], powerLevelsId: string | undefined): Promise<string[]> {
    const mainline: string[] = [];
    const seenOnMainline = new Set<string>();
    for (let id = powerLevelsId; id !== undefined && !seenOnMainline.has(id);) {
      mainline.push(id);
      seenOnMainline.add(id);
      const pdu = await this.events.get(id);
      id = pdu === undefined ? undefined : await this.powerLevelsAuthEvent(pdu);
    }
    const position = new Map<string, number>();
    mainline.reverse().forEach((id, index) => position.set(id, index + 1));

    const depths = new Map<string, number>();
    for (const id of eventIds) {
      let depth = 0;
      const walked = new Set<string>();
      for (let at: string | undefined = id; at !== undefined && !walked.has(at);) {
        const onMainline = position.get(at);
        if (onMainline !== undefined) {
          depth = onMainline;
          break;
        }
        walked.add(at);
        const pdu: Pdu | undefined = await this.events.get(at);
        at = pdu === undefined ? undefined : await this.powerLevelsAuthEvent(pdu);
      }
      depths.set(id, depth);
    }
    return [...eventIds].sort((a, b) => (depths.get(a) ?? 0) - (depths.get(b) ?? 0) || this.byTimestampThenId(a, b));
  }

  /** The id of the held power levels event among an event's auth events, if any. */
  private async powerLevelsAuthEvent(event: Pdu): Promise<string | undefined> {
    const authEvents = await this.events.getEvents(event.auth_events);
    return event.auth_events.find((id) => {
      const authEvent = authEvents.get(id);
      return authEvent?.type === 'm.room.power_levels' && authEvent.state_key === '';
    });
  }

  /**
   * "Iterative auth checks": each event in turn is checked against its own auth events (those not
   * rejected) with the entries of the state built so far laid over them at the keys of its auth events
   * selection, and replaces its key in that state when allowed; an event that is not allowed is skipped.
   */
  private async iterativeAuthChecks(
    eventIds: readonly string[],
    base: ReadonlyMap<StateTuple, string>,
  ): Promise<Map<StateTuple, string>> {
    const state = new Map(base);
    for (const id of eventIds) {
      const event = this.pdu(id);
      if (typeof event.state_key !== 'string') continue;
      const authState = new Map<StateTuple, Pdu>();
      const authEvents = await this.events.getEvents(event.auth_events);
      for (const authId of event.auth_events) {
        const authEvent = authEvents.get(authId);
        if (authEvent === undefined || this.isRejected(authId) || typeof authEvent.state_key !== 'string') continue;
        authState.set(stateKeyOf(authEvent.type, authEvent.state_key), authEvent);
      }
      for (const key of authTypesFor(this.version, event)) {
        const current = state.get(key);
        if (current === undefined || this.isRejected(current)) continue;
        const currentEvent = await this.events.get(current);
        if (currentEvent !== undefined) authState.set(key, currentEvent);
      }
      if (this.checkAuth(this.version, event, authState).ok) state.set(stateKeyOf(event.type, event.state_key), id);
    }
    return state;
  }
}

function isInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}
