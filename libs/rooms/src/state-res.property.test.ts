// Convergence of state resolution, tested the way Yjs tests its replicas: random room histories with
// concurrent branches and merges, delivered to several simulated homes in random orders with duplicates.
// Every home must compute the same state after each event, and the same resolved state whenever it has the
// same forward extremities as another home, whatever the order of the state sets.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { authStateOf, checkAuth } from './auth.js';
import { nextForwardExtremities, stateAfterEvent, stateBeforeEvent } from './extremities.js';
import { resolveState } from './state-res.js';
import { TEST_USERS, TestDag, membership, powerLevels, startRoom, stateEvent, topic } from './testing/dag.js';
import type { EventSpec } from './testing/dag.js';
import { simpleCheckAuth } from './testing/simple-auth.js';
import { stateKeyOf, type AuthCheck, type EventLookup, type Pdu, type RoomVersionId, type StateMap } from './types.js';

const USERS = TEST_USERS;
const [ALICE, BOB, CHARLIE, EVELYN] = TEST_USERS as [string, string, string, string];
const KINDS = ['topic', 'message', 'join', 'leave', 'kick', 'ban', 'invite', 'power', 'joinRule'] as const;

/** One step of a random history: who does what, on which branch, and whether it merges two branches. */
interface Action {
  kind: (typeof KINDS)[number];
  sender: number;
  target: number;
  level: number;
  /** Which recent event the new one follows: 0 is the newest, larger numbers fork from older ones. */
  back: number;
  /** Whether it also follows another forward extremity, merging branches. */
  merge: boolean;
  /** Subtracted from the timestamp, so timestamps tie and go backwards now and then. */
  skew: number;
}

const actionArb: fc.Arbitrary<Action> = fc.record({
  kind: fc.constantFrom(...KINDS),
  sender: fc.nat({ max: USERS.length - 1 }),
  target: fc.nat({ max: USERS.length - 1 }),
  level: fc.constantFrom(0, 50, 100),
  back: fc.nat({ max: 3 }),
  merge: fc.boolean(),
  skew: fc.nat({ max: 2 }),
});

/** The event an action asks for on top of `prev`, or undefined when it makes no sense (kicking oneself). */
async function specOf(
  dag: TestDag,
  action: Action,
  name: string,
  prev: string[],
  ts: number,
): Promise<EventSpec | undefined> {
  const sender = USERS[action.sender] as string;
  const target = USERS[action.target] as string;
  const spec = await kindOf();
  return spec === undefined ? undefined : { ...spec, ts };

  async function kindOf(): Promise<EventSpec | undefined> {
    switch (action.kind) {
      case 'topic':
        return topic(name, sender, prev);
      case 'message':
        return { name, sender, type: 'm.room.message', content: { body: name }, prev };
      case 'join':
      case 'leave':
        return membership(name, sender, sender, action.kind, prev);
      case 'kick':
        return target === sender ? undefined : membership(name, sender, target, 'leave', prev);
      case 'ban':
        return target === sender ? undefined : membership(name, sender, target, 'ban', prev);
      case 'invite':
        return membership(name, sender, target, 'invite', prev);
      case 'joinRule':
        return stateEvent(
          name,
          sender,
          'm.room.join_rules',
          { join_rule: action.level > 0 ? 'public' : 'invite' },
          prev,
        );
      case 'power': {
        const current = (await dag.stateBefore(prev)).get(stateKeyOf('m.room.power_levels', ''));
        const users = (current === undefined ? undefined : dag.events.get(current)?.content['users']) ?? {};
        return powerLevels(name, sender, { users: { ...(users as object), [target]: action.level } }, prev);
      }
    }
  }
}

/** Plays the actions into a DAG; actions the auth rules refuse are dropped, as an honest server would. */
async function buildHistory(version: RoomVersionId, check: AuthCheck, actions: Action[]): Promise<TestDag> {
  const dag = new TestDag(version, check);
  const start = await startRoom(dag);
  // Bob and Charlie may moderate, and Evelyn is in too, so that more of the random actions are allowed.
  await dag.addAll([
    powerLevels('$P0', ALICE, { users: { [ALICE]: 100, [BOB]: 50, [CHARLIE]: 50 } }, [start]),
    membership('$ME0', EVELYN, EVELYN, 'join', ['$P0']),
  ]);
  const order = ['$ME0'];
  let tips = [order[0] as string];
  for (const [index, action] of actions.entries()) {
    const name = `$e${index}`;
    const first = order[Math.max(0, order.length - 1 - action.back)] as string;
    const other = tips.find((tip) => tip !== first);
    const prev = action.merge && other !== undefined ? [first, other] : [first];
    const ts = 1_800_000_000_000 + index - action.skew;
    const spec = await specOf(dag, action, name, prev, ts);
    if (spec === undefined || typeof (await dag.tryAdd(spec)) === 'string') continue;
    order.push(name);
    tips = [...tips.filter((tip) => !prev.includes(tip)), name];
  }
  return dag;
}

/** A deterministic pseudo-random source (mulberry32) for delivery orders. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The items in a random order (Fisher-Yates), in place. */
function shuffle<T>(items: T[], next: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

/** A home: receives events in any order, holds back those whose prev or auth events it lacks. */
class Home implements EventLookup {
  readonly held = new Map<string, Pdu>();
  readonly stateAfter = new Map<string, StateMap>();
  extremities: string[] = [];
  private readonly referenced = new Set<string>();
  private readonly pending = new Map<string, Pdu>();

  constructor(
    private readonly version: RoomVersionId,
    private readonly check: AuthCheck,
    private readonly onState: (extremities: string[], state: StateMap) => void,
  ) {}

  async getEvents(eventIds: readonly string[]): Promise<ReadonlyMap<string, Pdu>> {
    return new Map(eventIds.flatMap((id) => (this.held.has(id) ? [[id, this.held.get(id) as Pdu]] : [])));
  }

  async receive(id: string, pdu: Pdu): Promise<void> {
    if (this.held.has(id)) return;
    this.pending.set(id, pdu);
    for (let progress = true; progress;) {
      progress = false;
      for (const [waiting, event] of this.pending) {
        if (![...event.prev_events, ...event.auth_events].every((dep) => this.held.has(dep))) continue;
        this.pending.delete(waiting);
        await this.accept(waiting, event);
        progress = true;
      }
    }
  }

  private async accept(id: string, pdu: Pdu): Promise<void> {
    const before = await stateBeforeEvent(
      this.version,
      pdu,
      (prev) => Promise.resolve(this.stateAfter.get(prev)),
      this,
      this.check,
    );
    const verdict = this.check(
      this.version,
      pdu,
      authStateOf(pdu.auth_events.map((authId) => this.held.get(authId) as Pdu)),
    );
    expect(verdict).toEqual({ ok: true });
    this.held.set(id, pdu);
    this.stateAfter.set(id, stateAfterEvent(before, id, pdu));
    this.extremities = nextForwardExtremities(this.extremities, { eventId: id, prevEvents: pdu.prev_events }, (e) =>
      this.referenced.has(e),
    );
    for (const prev of pdu.prev_events) this.referenced.add(prev);
    this.onState(this.extremities, await this.current());
  }

  async current(): Promise<StateMap> {
    const sets = this.extremities.map((id) => this.stateAfter.get(id) as StateMap);
    return resolveState(this.version, sets, this, this.check);
  }
}

const sorted = (state: StateMap) => JSON.stringify([...state].sort());

async function converges(version: RoomVersionId, check: AuthCheck, actions: Action[], seed: number): Promise<void> {
  const dag = await buildHistory(version, check, actions);
  const next = random(seed);
  const seen = new Map<string, string>();
  const record = (extremities: string[], state: StateMap) => {
    const key = extremities.join(',');
    const known = seen.get(key);
    if (known === undefined) seen.set(key, sorted(state));
    else expect(sorted(state)).toBe(known);
  };
  const ids = [...dag.events.keys()];
  const homes = [0, 1, 2].map(() => new Home(version, check, record));
  for (const home of homes) {
    // A random order, with about one event in four delivered a second time later on.
    const deliveries = shuffle([...ids, ...ids.filter(() => next() < 0.25)], next);
    for (const id of deliveries) await home.receive(id, dag.events.get(id) as Pdu);
  }
  const tips = ids.filter((id) => !ids.some((other) => dag.events.get(other)?.prev_events.includes(id))).sort();
  const expected = sorted(
    await resolveState(
      version,
      tips.map((id) => dag.stateAfter.get(id) as StateMap),
      dag,
      check,
    ),
  );
  for (const home of homes) {
    expect(home.extremities).toEqual(tips);
    for (const id of ids)
      expect(sorted(home.stateAfter.get(id) as StateMap)).toBe(sorted(dag.stateAfter.get(id) as StateMap));
    expect(sorted(await home.current())).toBe(expected);
    // The order of the state sets does not matter.
    const shuffled = shuffle(
      home.extremities.map((id) => home.stateAfter.get(id) as StateMap),
      next,
    );
    expect(sorted(await resolveState(version, shuffled, home, check))).toBe(expected);
  }
  // Any three events' states, not only concurrent ones, resolve the same in every order.
  const picks = [0, 1, 2].map(() => dag.stateAfter.get(ids[Math.floor(next() * ids.length)] as string) as StateMap);
  const [a, b, c] = picks as [StateMap, StateMap, StateMap];
  const first = sorted(await resolveState(version, [a, b, c], dag, check));
  for (const order of [
    [a, c, b],
    [b, a, c],
    [b, c, a],
    [c, a, b],
    [c, b, a],
  ]) {
    expect(sorted(await resolveState(version, order, dag, check))).toBe(first);
  }
}

describe('state resolution converges across homes', () => {
  const cases: [string, RoomVersionId, AuthCheck][] = [
    ['room version 11, the auth rules', '11', checkAuth],
    ['room version 10, the auth rules', '10', checkAuth],
    ['room version 11, the stand-in auth rules', '11', simpleCheckAuth],
  ];
  it.each(cases)('%s', async (_name, version, check) => {
    await fc.assert(
      fc.asyncProperty(fc.array(actionArb, { minLength: 4, maxLength: 20 }), fc.integer(), (actions, seed) =>
        converges(version, check, actions, seed),
      ),
      { numRuns: 100 },
    );
  });
});
