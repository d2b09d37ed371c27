// A hand-driven room for tests: servers with generated keys, events built by buildEvent, signed by
// signPdu, checked by checkAuth against the state their own auth_events name, and applied to the
// room's current state when accepted. Not exported from the package entry.
import { generateKeyPair, type KeyPair } from '@polyhome/identity';
import { authStateOf, checkAuth, checkAuthEvents } from '../auth.js';
import { buildEvent } from '../build.js';
import { eventIdOf } from '../hashes.js';
import { serverNameOf } from '../json.js';
import { signPdu, type ResolveKey, type UnsignedPdu } from '../signing.js';
import {
  stateKeyOf,
  type CheckResult,
  type JsonObject,
  type Pdu,
  type RoomEvent,
  type RoomVersionId,
  type StateTuple,
} from '../types.js';

/** Key id every test server signs with. */
export const TEST_KEY_ID = 'ed25519:test';

/** Options of TestRoom.event. */
export interface TestEventOptions {
  stateKey?: string;
  redacts?: string;
  /** Replace the computed prev_events (ids). */
  prevEvents?: string[];
  /** Edit the template before signing (to make events the builder would not). */
  edit?: (template: UnsignedPdu) => void;
}

/** A room built event by event. */
export class TestRoom {
  readonly events = new Map<string, Pdu>();
  readonly state = new Map<StateTuple, string>();
  private readonly keys = new Map<string, KeyPair>();
  private extremities: string[] = [];
  private clock = 1_700_000_000_000;

  private constructor(
    readonly version: RoomVersionId,
    readonly roomId: string,
  ) {}

  /**
   * A room created by `creator` with the usual first events: create, the creator's join and, unless
   * `powerLevels` is null, power levels (creator 100) and join rules (`joinRule`, default public).
   * With `creatorJoins: false` the room holds only the create event.
   */
  static create(
    version: RoomVersionId,
    creator: string,
    options: {
      joinRule?: string;
      powerLevels?: JsonObject | null;
      createContent?: JsonObject;
      creatorJoins?: boolean;
    } = {},
  ): TestRoom {
    const room = new TestRoom(version, `!room:${serverNameOf(creator)}`);
    const createContent: JsonObject = {
      room_version: version,
      ...(version === '10' ? { creator } : {}),
      ...options.createContent,
    };
    room.accept(room.event(creator, 'm.room.create', createContent, { stateKey: '' }));
    if (options.creatorJoins === false) return room;
    room.accept(room.event(creator, 'm.room.member', { membership: 'join' }, { stateKey: creator }));
    if (options.powerLevels !== null) {
      const content = options.powerLevels ?? { users: { [creator]: 100 } };
      room.accept(room.event(creator, 'm.room.power_levels', content, { stateKey: '' }));
      room.accept(
        room.event(creator, 'm.room.join_rules', { join_rule: options.joinRule ?? 'public' }, { stateKey: '' }),
      );
    }
    return room;
  }

  /** The key pair of a server, generated on first use. */
  keyOf(server: string): KeyPair {
    let pair = this.keys.get(server);
    if (pair === undefined) {
      pair = generateKeyPair();
      this.keys.set(server, pair);
    }
    return pair;
  }

  /** Resolves the keys of the servers this room has signed for. */
  readonly resolveKey: ResolveKey = (server, keyId) =>
    keyId === TEST_KEY_ID ? this.keys.get(server)?.publicKey : undefined;

  /** A signed event on top of the current extremities, with auth events from the current state. */
  event(sender: string, type: string, content: JsonObject, options: TestEventOptions = {}): Pdu {
    const prev: RoomEvent[] = (options.prevEvents ?? this.extremities).map((id) => ({
      eventId: id,
      pdu: this.events.get(id)!,
    }));
    const template = buildEvent({
      version: this.version,
      roomId: this.roomId,
      sender,
      type,
      stateKey: options.stateKey,
      content,
      prevEvents: prev,
      state: this.state,
      redacts: options.redacts,
      originServerTs: this.clock++,
    });
    options.edit?.(template);
    const server = serverNameOf(sender)!;
    return signPdu(this.version, template, {
      serverName: server,
      keyId: TEST_KEY_ID,
      secretKey: this.keyOf(server).secretKey,
    });
  }

  /** Checks an event against its own auth events (rule 2, then the rest). */
  check(pdu: Pdu): CheckResult {
    const authEvents = pdu.auth_events.map((id) => this.events.get(id)).filter((e): e is Pdu => e !== undefined);
    const listed = checkAuthEvents(this.version, pdu, authEvents);
    if (!listed.ok) return listed;
    return checkAuth(this.version, pdu, authStateOf(authEvents));
  }

  /** Checks and, when allowed, adds the event to the DAG and the state. Returns the check's result. */
  send(pdu: Pdu): CheckResult {
    const result = this.check(pdu);
    if (result.ok) this.add(pdu);
    return result;
  }

  /** Like send, but throws when the event is refused (for setting up a room). Returns the event id. */
  accept(pdu: Pdu): string {
    const result = this.check(pdu);
    if (!result.ok) throw new Error(`setup event ${pdu.type} refused: ${result.code}: ${result.message}`);
    return this.add(pdu);
  }

  /** Builds, signs and accepts an event; returns its id. */
  put(sender: string, type: string, content: JsonObject, options: TestEventOptions = {}): string {
    return this.accept(this.event(sender, type, content, options));
  }

  /** Joins a user (public room) or completes an invite. */
  join(user: string): string {
    return this.put(user, 'm.room.member', { membership: 'join' }, { stateKey: user });
  }

  /** The current state event of (type, state_key). */
  stateEvent(type: string, stateKey: string): Pdu | undefined {
    const id = this.state.get(stateKeyOf(type, stateKey));
    return id === undefined ? undefined : this.events.get(id);
  }

  /** The id of the event the room's create event has. */
  get createId(): string {
    return this.state.get(stateKeyOf('m.room.create', ''))!;
  }

  private add(pdu: Pdu): string {
    const id = eventIdOf(this.version, pdu);
    this.events.set(id, pdu);
    if (typeof pdu.state_key === 'string') this.state.set(stateKeyOf(pdu.type, pdu.state_key), id);
    this.extremities = [id];
    return id;
  }
}
