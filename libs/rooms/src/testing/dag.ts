/**
 * Hand-built room DAGs for state resolution tests, in the manner of Synapse's and ruma's state resolution
 * tests: each event names its prev events; its state before is resolved from their states after, its auth
 * events are picked from that state by the auth events selection, and it must pass the auth check there.
 * Event ids are given by the test (they break ties), timestamps count up in the order events are added.
 */
import { stateBeforeEvent, stateAfterEvent } from '../extremities.js';
import { authKeysFor, resolveState } from '../state-res.js';
import {
  stateKeyOf,
  type AuthCheck,
  type EventLookup,
  type JsonObject,
  type Pdu,
  type RoomVersionId,
  type StateMap,
} from '../types.js';

export const ROOM_ID = '!room:a.example';
export const ALICE = '@alice:a.example';
export const BOB = '@bob:b.example';
export const CHARLIE = '@charlie:c.example';
export const EVELYN = '@evelyn:e.example';
export const ZARA = '@zara:z.example';

/** One event to add: its id, who sends it, what it says and which events it follows. */
export interface EventSpec {
  id: string;
  sender: string;
  type: string;
  stateKey?: string;
  content?: JsonObject;
  prev: string[];
  /** Default: one more than the last event added. */
  ts?: number;
}

/** An in-memory room: the events, the state after each, and an `EventLookup` over them. */
export class TestDag implements EventLookup {
  readonly events = new Map<string, Pdu>();
  readonly stateAfter = new Map<string, StateMap>();
  private clock = 0;

  constructor(
    readonly version: RoomVersionId,
    readonly checkAuth: AuthCheck,
  ) {}

  async getEvents(eventIds: readonly string[]): Promise<ReadonlyMap<string, Pdu>> {
    const found = new Map<string, Pdu>();
    for (const id of eventIds) {
      const pdu = this.events.get(id);
      if (pdu) found.set(id, pdu);
    }
    return found;
  }

  /** The event with that id; throws when the test never added it. */
  get(eventId: string): Pdu {
    const pdu = this.events.get(eventId);
    if (pdu === undefined) throw new Error(`No event ${eventId} in this test DAG.`);
    return pdu;
  }

  /** The PDU `spec` describes with its auth events picked from `stateBefore`, not added to the DAG. */
  build(spec: EventSpec, stateBefore: StateMap): Pdu {
    const depth = Math.max(0, ...spec.prev.map((id) => this.get(id).depth)) + 1;
    const pdu: Pdu = {
      room_id: ROOM_ID,
      sender: spec.sender,
      type: spec.type,
      content: spec.content ?? {},
      origin_server_ts: spec.ts ?? this.clock + 1,
      depth,
      prev_events: [...spec.prev],
      auth_events: [],
      hashes: { sha256: 'unchecked' },
      signatures: {},
    };
    if (spec.stateKey !== undefined) pdu.state_key = spec.stateKey;
    for (const key of authKeysFor(this.version, pdu)) {
      const id = stateBefore.get(key);
      if (id !== undefined) pdu.auth_events.push(id);
    }
    return pdu;
  }

  /** The state before an event with these prev events, resolved from their states after. */
  async stateBefore(prev: readonly string[]): Promise<StateMap> {
    return stateBeforeEvent(
      this.version,
      { prev_events: [...prev] },
      (id) => Promise.resolve(this.stateAfter.get(id)),
      this,
      this.checkAuth,
    );
  }

  /** Adds an event; throws if it fails the auth check against its own state before (a test's mistake). */
  async add(spec: EventSpec): Promise<Pdu> {
    const pdu = await this.tryAdd(spec);
    if (typeof pdu === 'string') throw new Error(`Event ${spec.id} fails auth in its own state: ${pdu}`);
    return pdu;
  }

  /** Adds an event if it passes the auth check against its state before; otherwise returns why not. */
  async tryAdd(spec: EventSpec): Promise<Pdu | string> {
    if (this.events.has(spec.id)) throw new Error(`Event ${spec.id} was added twice.`);
    const before = await this.stateBefore(spec.prev);
    const pdu = this.build(spec, before);
    const verdict = this.checkAuth(this.version, pdu, authStateOf(pdu, this));
    if (!verdict.ok) return verdict.message;
    this.events.set(spec.id, pdu);
    this.stateAfter.set(spec.id, stateAfterEvent(before, spec.id, pdu));
    this.clock = Math.max(this.clock, pdu.origin_server_ts);
    return pdu;
  }

  /** Adds events in order. */
  async addAll(specs: readonly EventSpec[]): Promise<void> {
    for (const spec of specs) await this.add(spec);
  }

  /** The resolved state at several forward extremities. */
  async resolveAt(eventIds: readonly string[]): Promise<StateMap> {
    return resolveState(
      this.version,
      eventIds.map((id) => this.stateAfter.get(id) ?? new Map()),
      this,
      this.checkAuth,
    );
  }
}

/** The auth state an event names: its auth events by (type, state_key). */
export function authStateOf(pdu: Pdu, dag: { get(eventId: string): Pdu }): Map<string, Pdu> {
  return new Map(
    pdu.auth_events.map((id) => {
      const authEvent = dag.get(id);
      return [stateKeyOf(authEvent.type, authEvent.state_key ?? ''), authEvent];
    }),
  );
}

/**
 * The usual start of the scenarios: Alice creates the room (`$CREATE`), joins (`$IMA`), sets power levels
 * (`$IPOWER`, herself at 100) and public join rules (`$IJR`); Bob (`$IMB`) and Charlie (`$IMC`) join.
 * Returns the id of the last event.
 */
export async function startRoom(dag: TestDag): Promise<string> {
  const member = (id: string, user: string, prev: string): EventSpec => ({
    id,
    sender: user,
    type: 'm.room.member',
    stateKey: user,
    content: { membership: 'join' },
    prev: [prev],
  });
  await dag.addAll([
    {
      id: '$CREATE',
      sender: ALICE,
      type: 'm.room.create',
      stateKey: '',
      content: { room_version: dag.version, ...(dag.version === '10' ? { creator: ALICE } : {}) },
      prev: [],
    },
    member('$IMA', ALICE, '$CREATE'),
    {
      id: '$IPOWER',
      sender: ALICE,
      type: 'm.room.power_levels',
      stateKey: '',
      content: { users: { [ALICE]: 100 } },
      prev: ['$IMA'],
    },
    {
      id: '$IJR',
      sender: ALICE,
      type: 'm.room.join_rules',
      stateKey: '',
      content: { join_rule: 'public' },
      prev: ['$IPOWER'],
    },
    member('$IMB', BOB, '$IJR'),
    member('$IMC', CHARLIE, '$IMB'),
  ]);
  return '$IMC';
}
