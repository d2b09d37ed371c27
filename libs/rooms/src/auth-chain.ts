/**
 * Auth chains and the auth difference (server-server API, room versions, state resolution v2 "Definitions").
 *
 * The auth chain of an event E is E's auth events, their auth events, and so on back to the create event.
 * Walked breadth first, one store read per level, so a chain of depth d costs d batched reads, and bounded:
 * a chain past `maxEvents` events throws rather than reading a hostile or corrupt DAG without end.
 */
import { EventCache } from './event-cache.js';
import type { EventLookup, StateMap } from './types.js';

/** Default bound on the events one auth chain walk may visit. Real rooms' auth chains stay far below it. */
export const DEFAULT_MAX_AUTH_CHAIN_EVENTS = 100_000;

/** Options of the auth chain walks. */
export interface AuthChainOptions {
  /** The most events one walk may collect before it throws `AuthChainTooLargeError`. */
  maxEvents?: number;
}

/** Thrown when an auth chain has more events than the `maxEvents` bound of the walk. */
export class AuthChainTooLargeError extends Error {
  readonly code = 'AUTH_CHAIN_TOO_LARGE';

  constructor(readonly maxEvents: number) {
    super(
      `The auth chain has more than ${maxEvents} events; raise maxEvents if the room is really that large, ` +
        'or look for a corrupt or hostile DAG.',
    );
    this.name = 'AuthChainTooLargeError';
  }
}

function boundOf(options: AuthChainOptions | undefined): number {
  const max = options?.maxEvents ?? DEFAULT_MAX_AUTH_CHAIN_EVENTS;
  if (!Number.isInteger(max) || max < 0) {
    throw new RangeError(`maxEvents must be a non-negative integer; got ${String(max)}.`);
  }
  return max;
}

/**
 * The ids of the auth chain of `eventIds` together (the union of each event's auth chain). The starting
 * events are not part of it unless one is an auth event of another. Events that are not held end the walk
 * along their branch and are left out, since nothing about them can be known. Throws
 * `AuthChainTooLargeError` past `maxEvents`.
 */
export async function authChain(
  eventIds: Iterable<string>,
  lookup: EventLookup,
  options?: AuthChainOptions,
): Promise<Set<string>> {
  const max = boundOf(options);
  const cache = lookup instanceof EventCache ? lookup : new EventCache(lookup);
  const chain = new Set<string>();
  let level = [...new Set(eventIds)];
  let walkingStart = true;
  while (level.length > 0) {
    const events = await cache.getEvents(level);
    const next = new Set<string>();
    for (const id of level) {
      const pdu = events.get(id);
      if (pdu === undefined) continue;
      if (!walkingStart) {
        chain.add(id);
        if (chain.size > max) throw new AuthChainTooLargeError(max);
      }
      for (const authId of pdu.auth_events) if (!chain.has(authId)) next.add(authId);
    }
    walkingStart = false;
    level = [...next];
  }
  return chain;
}

/**
 * The auth difference of state sets: every event that is in some but not all of their full auth chains,
 * ∪Ci − ∩Ci. The full auth chain Ci of a state set counts the state set's own events with their auth
 * chains, as Synapse, Dendrite and ruma do (an event reachable from a state set is in its chain), so an
 * unconflicted state event never lands in the difference. Only events held are returned.
 */
export async function authDifference(
  stateSets: readonly StateMap[],
  lookup: EventLookup,
  options?: AuthChainOptions,
): Promise<Set<string>> {
  if (stateSets.length < 2) return new Set();
  const cache = lookup instanceof EventCache ? lookup : new EventCache(lookup);
  const chains: Set<string>[] = [];
  for (const stateSet of stateSets) {
    const ids = new Set(stateSet.values());
    await cache.load(ids);
    const chain = await authChain(ids, cache, options);
    for (const id of ids) if (cache.peek(id) !== undefined) chain.add(id);
    chains.push(chain);
  }
  const difference = new Set<string>();
  for (const chain of chains) {
    for (const id of chain) {
      if (!difference.has(id) && chains.some((other) => !other.has(id))) difference.add(id);
    }
  }
  return difference;
}
