/**
 * Hand-built room DAGs for state resolution tests, in the manner of Synapse's and ruma's state resolution
 * tests: each event names its prev events; its state before is resolved from their states after, its auth
 * events are picked from that state by `buildEvent` (the spec's auth events selection), it is signed and
 * gets its real event id, and it must pass the auth check against its auth events. Tests call events by
 * names (`$PA`); `id(name)` and `names(state)` translate. Timestamps count up in the order events are added.
 */
import { generateKeyPair, type KeyPair } from '@polyhome/identity';
import { authStateOf, checkAuthEvents } from '../auth.js';
import { buildEvent } from '../build.js';
import { stateAfterEvent, stateBeforeEvent } from '../extremities.js';
import { eventIdOf } from '../hashes.js';
import { serverNameOf } from '../json.js';
import { signPdu } from '../signing.js';
import { resolveState } from '../state-res.js';
import {
  type AuthCheck,
  type EventLookup,
  type JsonObject,
  type Pdu,
  type RoomVersionId,
  type StateMap,
  type StateTuple,
} from '../types.js';

export const ALICE = '@alice:a.example';
export const BOB = '@bob:b.example';
export const CHARLIE = '@charlie:c.example';
export const EVELYN = '@evelyn:e.example';
export const ROOM_ID = '!room:a.example';
/** The users above, in that order. */
export const TEST_USERS: readonly string[] = [ALICE, BOB, CHARLIE, EVELYN];

/** One event to add: its name, who sends it, what it says and which events (by name) it follows. */
export interface EventSpec {
  name: string;
  sender: string;
  type: string;
  stateKey?: string;
  content?: JsonObject;
  prev: string[];
  /** Default: one more than the largest timestamp so far. */
  ts?: number;
}

/** An in-memory room: the events, the state after each, and an `EventLookup` over them. */
export class TestDag implements EventLookup {
  readonly events = new Map<string, Pdu>();
  readonly stateAfter = new Map<string, StateMap>();
  private readonly ids = new Map<string, string>();
  private readonly nameOf = new Map<string, string>();
  private readonly keys = new Map<string, KeyPair>();
  private clock = 1_700_000_000_000;
  /** How many times the lookup was asked, and for how many ids in all. */
  reads = { calls: 0, ids: 0 };

  constructor(
    readonly version: RoomVersionId,
    readonly checkAuth: AuthCheck,
  ) {}

  async getEvents(eventIds: readonly string[]): Promise<ReadonlyMap<string, Pdu>> {
    this.reads.calls++;
    this.reads.ids += eventIds.length;
    const found = new Map<string, Pdu>();
    for (const id of eventIds) {
      const pdu = this.events.get(id);
      if (pdu) found.set(id, pdu);
    }
    return found;
  }

  /** The event id of a named event; throws when the test never added it. */
  id(name: string): string {
    const id = this.ids.get(name);
    if (id === undefined) throw new Error(`No event named ${name} in this test DAG.`);
    return id;
  }

  /** The named event. */
  get(name: string): Pdu {
    return this.events.get(this.id(name)) as Pdu;
  }

  /** A state map with the events' names in place of their ids (ids of unnamed events stay). */
  names(state: StateMap): Map<StateTuple, string> {
    return new Map([...state].map(([key, id]) => [key, this.nameOf.get(id) ?? id]));
  }

  /** The state before an event with these prev events (names), resolved from their states after. */
  async stateBefore(prev: readonly string[]): Promise<StateMap> {
    return stateBeforeEvent(
      this.version,
      { prev_events: prev.map((name) => this.id(name)) },
      (id) => Promise.resolve(this.stateAfter.get(id)),
      this,
      this.checkAuth,
    );
  }

  /** Adds an event; throws if it fails the auth check against its own auth events (a test's mistake). */
  async add(spec: EventSpec): Promise<Pdu> {
    const pdu = await this.tryAdd(spec);
    if (typeof pdu === 'string') throw new Error(`Event ${spec.name} fails auth in its own state: ${pdu}`);
    return pdu;
  }

  /** Adds an event if it passes the auth checks against its auth events; otherwise returns why not. */
  async tryAdd(spec: EventSpec): Promise<Pdu | string> {
    if (this.ids.has(spec.name)) throw new Error(`Event ${spec.name} was added twice.`);
    const before = await this.stateBefore(spec.prev);
    const ts = spec.ts ?? this.clock + 1;
    const server = serverNameOf(spec.sender) as string;
    let keys = this.keys.get(server);
    if (keys === undefined) {
      keys = generateKeyPair();
      this.keys.set(server, keys);
    }
    const template = buildEvent({
      version: this.version,
      roomId: ROOM_ID,
      sender: spec.sender,
      type: spec.type,
      stateKey: spec.stateKey,
      content: spec.content ?? {},
      prevEvents: spec.prev.map((name) => ({ eventId: this.id(name), pdu: this.get(name) })),
      state: before,
      originServerTs: ts,
    });
    const pdu = signPdu(this.version, template, {
      serverName: server,
      keyId: 'ed25519:test',
      secretKey: keys.secretKey,
    });
    const authEvents = pdu.auth_events.map((id) => this.events.get(id) as Pdu);
    const listed = checkAuthEvents(this.version, pdu, authEvents);
    if (!listed.ok) return listed.message;
    const verdict = this.checkAuth(this.version, pdu, authStateOf(authEvents));
    if (!verdict.ok) return verdict.message;
    const id = eventIdOf(this.version, pdu);
    this.ids.set(spec.name, id);
    this.nameOf.set(id, spec.name);
    this.events.set(id, pdu);
    this.stateAfter.set(id, stateAfterEvent(before, id, pdu));
    this.clock = Math.max(this.clock, ts);
    return pdu;
  }

  /** Adds events in order. */
  async addAll(specs: readonly EventSpec[]): Promise<void> {
    for (const spec of specs) await this.add(spec);
  }

  /** The resolved state at several forward extremities (names), with names in place of ids. */
  async resolveAt(names: readonly string[]): Promise<Map<StateTuple, string>> {
    const state = await resolveState(
      this.version,
      names.map((name) => this.stateAfter.get(this.id(name)) ?? new Map()),
      this,
      this.checkAuth,
    );
    return this.names(state);
  }
}

/**
 * The usual start of the scenarios: Alice creates the room (`$CREATE`), joins (`$IMA`), sets power levels
 * (`$IPOWER`, herself at 100) and public join rules (`$IJR`); Bob (`$IMB`) and Charlie (`$IMC`) join.
 * Returns the name of the last event.
 */
export async function startRoom(dag: TestDag): Promise<string> {
  const join = (name: string, user: string, prev: string) => membership(name, user, user, 'join', [prev]);
  await dag.addAll([
    {
      name: '$CREATE',
      sender: ALICE,
      type: 'm.room.create',
      stateKey: '',
      content: { room_version: dag.version, ...(dag.version === '10' ? { creator: ALICE } : {}) },
      prev: [],
    },
    join('$IMA', ALICE, '$CREATE'),
    {
      name: '$IPOWER',
      sender: ALICE,
      type: 'm.room.power_levels',
      stateKey: '',
      content: { users: { [ALICE]: 100 } },
      prev: ['$IMA'],
    },
    {
      name: '$IJR',
      sender: ALICE,
      type: 'm.room.join_rules',
      stateKey: '',
      content: { join_rule: 'public' },
      prev: ['$IPOWER'],
    },
    join('$IMB', BOB, '$IJR'),
    join('$IMC', CHARLIE, '$IMB'),
  ]);
  return '$IMC';
}

/** A state event with state key "". */
export function stateEvent(name: string, sender: string, type: string, content: JsonObject, prev: string[]): EventSpec {
  return { name, sender, type, stateKey: '', content, prev };
}

/** A topic whose text is the event's name. */
export function topic(name: string, sender: string, prev: string[]): EventSpec {
  return stateEvent(name, sender, 'm.room.topic', { topic: name }, prev);
}

/** A power levels event. */
export function powerLevels(name: string, sender: string, content: JsonObject, prev: string[]): EventSpec {
  return stateEvent(name, sender, 'm.room.power_levels', content, prev);
}

/** A membership event of `target` sent by `sender`. */
export function membership(name: string, sender: string, target: string, value: string, prev: string[]): EventSpec {
  return { name, sender, type: 'm.room.member', stateKey: target, content: { membership: value }, prev };
}
