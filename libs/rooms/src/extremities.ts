/**
 * Forward extremities and the state before an event: the bookkeeping a home does as events arrive
 * (server-server API, "Room state resolution" and "PDUs": an event's state is resolved from the states
 * after its prev events).
 */
import { resolveState, type ResolveStateOptions } from './state-res.js';
import { stateKeyOf, type AuthCheck, type EventLookup, type Pdu, type RoomVersionId, type StateMap } from './types.js';

/** An event as the extremity bookkeeping needs it: its id and the events it follows. */
export interface DagEdge {
  eventId: string;
  prevEvents: readonly string[];
}

/**
 * The forward extremities after `event` was accepted: the current ones minus the event's prev events, plus
 * the event itself unless an event already held lists it as a prev event (`isReferenced`; the event came
 * late, e.g. by backfill). Accepting the same event twice changes nothing. The result is sorted, so the
 * same DAG gives the same list in every home.
 */
export function nextForwardExtremities(
  current: Iterable<string>,
  event: DagEdge,
  isReferenced: (eventId: string) => boolean = () => false,
): string[] {
  const prev = new Set(event.prevEvents);
  const next = new Set<string>();
  for (const id of current) if (!prev.has(id)) next.add(id);
  if (!isReferenced(event.eventId)) next.add(event.eventId);
  return [...next].sort();
}

/** Thrown by `stateBeforeEvent` when the state after one of the event's prev events is not known. */
export class MissingPrevStateError extends Error {
  readonly code = 'MISSING_PREV_STATE';

  constructor(readonly eventId: string) {
    super(
      `The state after prev event ${eventId} is not known; fetch it (federation state_ids) or the missing ` +
        'events (get_missing_events) before computing the state before this event.',
    );
    this.name = 'MissingPrevStateError';
  }
}

/**
 * The state before `event` from the states after its prev events (`stateAfter`): no prev events (the
 * create event) give the empty state, one gives that state, several are resolved by state resolution v2.
 * Duplicate prev events count once, and their order does not change the result.
 */
export async function stateBeforeEvent(
  version: RoomVersionId,
  event: Pick<Pdu, 'prev_events'>,
  stateAfter: (eventId: string) => Promise<StateMap | undefined>,
  lookup: EventLookup,
  checkAuth: AuthCheck,
  options?: ResolveStateOptions,
): Promise<StateMap> {
  const prevStates: StateMap[] = [];
  for (const prevId of new Set(event.prev_events)) {
    const state = await stateAfter(prevId);
    if (state === undefined) throw new MissingPrevStateError(prevId);
    prevStates.push(state);
  }
  return resolveState(version, prevStates, lookup, checkAuth, options);
}

/** The state after an event: the state before it, with the event at its key when it is a state event. */
export function stateAfterEvent(stateBefore: StateMap, eventId: string, event: Pdu): StateMap {
  if (typeof event.state_key !== 'string') return stateBefore;
  const after = new Map(stateBefore);
  after.set(stateKeyOf(event.type, event.state_key), eventId);
  return after;
}
