// Federation between homes: the Matrix server-server API over /polyhome/federation/1.0.0 (libs/p2p), for the
// rooms of the accounts hosted here. A Matrix "server" is an account; a request is authenticated by the PeerId
// noise proved, which must be a home of the `origin` account (query parameter: the transport has no X-Matrix
// header). Outbound, every event taken into the timeline is fanned out to the homes that need it through a
// durable outbox (room_outbox), read in stream order and retried with backoff; see docs/decisions.md,
// "Room federation".
import { homeStatus, isServerName, type SecretKey } from '@polyhome/identity';
import type { RoomActor } from '@polyhome/matrix';
import { MatrixError } from '@polyhome/matrix/errors';
import { roomBlockedError } from './room-blocks.js';
import {
  createFederationServer,
  federationRequest,
  rememberPeerAddresses,
  type Discovery,
  type FederationRequest,
  type FederationResponse,
  type FederationServer,
  type PolyhomeHost,
} from '@polyhome/p2p';
import {
  addSignature,
  authChain,
  buildEvent,
  eventIdOf,
  LIMITS,
  serverNameOf,
  stateKeyOf,
  signPdu,
  SUPPORTED_ROOM_VERSIONS,
  validatePdu,
  type Pdu,
  type RoomVersionId,
  type StateMap,
  type UnsignedPdu,
} from '@polyhome/rooms';
import { SILENT_LOGGER, type HomeLogger } from '../ports.js';
import type { OutboxEntry, RoomStore, StoredRoomEvent } from '../room-store.js';
import type { RemoteRooms, RoomEngine } from './engine.js';
import type { FederationDocuments } from './federation-documents.js';
import { DEVICE_LIST_EDUS, FederationKeys, type FederationKeysComponents } from './federation-keys.js';
import type { AcceptOutcome } from './pipeline.js';

/** Events concurrent with a received join sent on to the joiner's homes, at most (the newest). */
const JOIN_CATCH_UP_EVENTS = 50;
/** PDUs per transaction (the spec's limit). */
export const MAX_PDUS_PER_TXN = 50;
/** How often the whole outbox is read for homes owed something (a safety net: runs are started per event). */
const OUTBOX_SWEEP_MS = 60_000;
/** Time allowed to each request of a backfill. */
const BACKFILL_TIMEOUT_MS = 10_000;
/** Homes asked, in turn, for one backfill. */
const BACKFILL_PEERS = 6;
/** Auth events one backfill may fetch. */
const BACKFILL_AUTH_FETCHES = 50;
/** Rooms one takeInRooms call takes in (the rest are left to the next membership change or connection). */
const TAKE_IN_ROOMS_PER_CALL = 200;
/** Rooms kept waiting per account for a home that can give them. */
const TAKE_IN_PENDING_PER_ACCOUNT = 1_000;
/** Time allowed to each request of a take-in. */
const TAKE_IN_TIMEOUT_MS = 15_000;
/** Joined rooms a migration compares with the new home, at most (the rest are taken in by the new home later). */
const ROOMS_BEHIND_CHECKED = 2_000;
/** A room's newest timeline events a migration makes sure the new home holds (older ones it backfills). */
const ROOM_HISTORY_CHECKED = 1_000;
/** EDUs per transaction (the spec's limit). */
export const MAX_EDUS_PER_TXN = 100;
/** Homes a leave of a room not held here asks in turn (make_leave/send_leave). */
const LEAVE_HOMES = 4;
/** Time allowed to each request of a leave handshake. */
const LEAVE_TIMEOUT_MS = 10_000;
/** Leaves taken in by send_leave remembered for their fan-out. */
const HANDED_IN_REMEMBERED = 1_000;
/** Largest make_join/make_leave answer taken (a template names at most 20 prev events and a few auth events). */
const TEMPLATE_MAX_BYTES = 256 * 1024;
/** Events the fan-out reads from the timeline stream per step. */
const FAN_OUT_BATCH = 200;
/** Events one get_missing_events answer may hold, and asks for. */
const MISSING_EVENTS_LIMIT = 100;
/** Rounds of get_missing_events one gap may take before the state at the event is fetched instead. */
const MISSING_EVENTS_ROUNDS = 100;
/** Events a backfill answer may hold. */
const BACKFILL_LIMIT = 100;
/** Events of a room's state and auth chain taken in one adoption. */
const MAX_ADOPTED_EVENTS = 20_000;
/** Time allowed to deliver one EDU to one home (best effort). */
const EDU_TIMEOUT_MS = 10_000;
/** Forward extremities sent as `earliest_events`. */
const EARLIEST_EVENTS = 20;
/** Destinations read from the outbox per delivery round. */
const DESTINATIONS_PER_ROUND = 1_000;
/** Batches one delivery run sends to a destination before it lets others go. */
const BATCHES_PER_RUN = 200;

/** What federation is built from. */
export interface RoomFederationComponents {
  host: PolyhomeHost;
  engine: RoomEngine;
  store: RoomStore;
  documents: FederationDocuments;
  /** This home's node key: it countersigns invites of the users hosted here. */
  nodeKey: SecretKey;
  /** Finds documents of accounts never met (through the DHT). */
  discovery?: Discovery;
  /** The accounts hosted here (their server homes are asked for documents the DHT does not give). */
  hosted?: () => readonly string[];
  /** Where the keys routes read the hosted accounts and claim one-time keys: given, they are served. */
  keys?: Pick<FederationKeysComponents, 'accounts' | 'oneTimeKeys' | 'onClaimed' | 'onUserKeysChanged'>;
  logger?: HomeLogger;
}

/** Delays of the delivery retries. */
export interface RoomFederationInit {
  /** First retry delay after a failed delivery, ms (doubles per failure). */
  minBackoffMs?: number;
  /** Longest retry delay, ms. */
  maxBackoffMs?: number;
}

/** What federation did so far (the admin API and tests read it). */
export interface FederationStats {
  /** PDUs received in transactions. */
  received: number;
  /** Of those, taken into the timeline (new). */
  accepted: number;
  /** Of those, already held. */
  duplicates: number;
  /** Refused, by stage of the accept pipeline (and `not_held`, `unauthorised`). */
  refused: Record<string, number>;
  /** Rooms taken in from another home's state (an invite, a join, a gap too long). */
  adopted: number;
  /** PDUs delivered to other homes. */
  delivered: number;
  /** Rooms of a hosted account taken in from the account's other homes (`takeInRooms`). */
  takenIn: number;
  /** Older events taken in with `/backfill`. */
  backfilled: number;
  /** Transactions that failed (the destination was away or answered an error); retried later. */
  failedTransactions: number;
}

type Json = Record<string, unknown>;

/** Federation of one home (see the file comment). */
export class RoomFederation implements RemoteRooms {
  readonly peerId: string;
  /** End-to-end keys across homes (the `user/...` routes, and asking other homes), when `keys` was given. */
  readonly keys: FederationKeys | undefined;
  readonly stats: FederationStats = {
    received: 0,
    accepted: 0,
    duplicates: 0,
    refused: {},
    adopted: 0,
    delivered: 0,
    takenIn: 0,
    backfilled: 0,
    failedTransactions: 0,
  };
  readonly #host: PolyhomeHost;
  readonly #engine: RoomEngine;
  readonly #store: RoomStore;
  readonly #documents: FederationDocuments;
  readonly #nodeKey: SecretKey;
  readonly #discovery: Discovery | undefined;
  readonly #hosted: () => readonly string[];
  readonly #logger: HomeLogger;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #server: FederationServer;
  readonly #inFlight = new Set<string>();
  readonly #rerun = new Set<string>();
  readonly #backoff = new Map<string, { failures: number; timer: NodeJS.Timeout | undefined }>();
  readonly #work = new Set<Promise<unknown>>();
  #edus: EduCarrier | undefined;
  /** Rooms of hosted accounts to take in that no home could give yet, by account: tried when a home connects. */
  readonly #toTakeIn = new Map<string, Set<string>>();
  readonly #takingIn = new Map<string, Promise<void>>();
  /** Leaves taken in by send_leave, fanned out from here as if made here (see `#onSendMembership`). */
  readonly #handedIn = new Set<string>();
  /** Addresses put in the peer store, by PeerId (joined), so they are put again only when they change. */
  readonly #known = new Map<string, string>();
  #pumping = false;
  #again = false;
  /** Whether the whole outbox was read since the start or the last sweep (see `wake`). */
  #swept = false;
  #sweep: NodeJS.Timeout | undefined;
  #stopped = false;
  #txn = 0;
  readonly #onConnect = (event: CustomEvent<{ toString(): string }>): void => {
    const peer = event.detail.toString();
    if (this.#toTakeIn.size > 0) this.#track(this.#retryTakeIn(peer));
    const waiting = this.#backoff.get(peer);
    if (waiting === undefined) return;
    clearTimeout(waiting.timer);
    waiting.timer = undefined;
    this.#track(this.#deliver(peer, true));
  };

  constructor(components: RoomFederationComponents, init: RoomFederationInit = {}) {
    this.#host = components.host;
    this.#engine = components.engine;
    this.#store = components.store;
    this.#documents = components.documents;
    this.#nodeKey = components.nodeKey;
    this.#discovery = components.discovery;
    this.#hosted = components.hosted ?? (() => []);
    this.#logger = components.logger ?? SILENT_LOGGER;
    this.#minBackoff = init.minBackoffMs ?? 1_000;
    this.#maxBackoff = init.maxBackoffMs ?? 300_000;
    this.peerId = components.engine.peerId;
    this.keys =
      components.keys === undefined
        ? undefined
        : new FederationKeys({
            ...components.keys,
            rooms: {
              joinedRoomsOfServer: (serverName) => this.#engine.joinedRoomsOfServer(serverName),
              roomServers: (roomId, memberships) => this.#store.roomServers(roomId, memberships),
            },
            peerId: this.peerId,
            documents: this.#documents,
            request: (peer, origin, init) => this.#request(peer, origin, init),
            logger: this.#logger,
          });
    this.#server = createFederationServer(components.host, {
      handler: (request) => this.#handle(request),
      authorize: (peer, head) => this.#authorize(peer.toString(), head.path, head.query),
      logger: this.#logger,
    });
    this.#documents.setFetcher((serverName, fromPeer) => this.#fetchDocument(serverName, fromPeer));
    this.#engine.setRemote(this);
    this.#engine.onAccepted(() => this.wake());
  }

  /** Serves the federation protocol and starts delivering what the outbox holds. */
  async start(): Promise<void> {
    await this.#server.start();
    this.#host.addEventListener('peer:connect', this.#onConnect);
    this.#sweep = setInterval(() => {
      this.#swept = false;
      this.wake();
    }, OUTBOX_SWEEP_MS);
    this.#sweep.unref();
    this.wake();
  }

  /** Stops serving and delivering; work in flight ends. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#sweep);
    this.#host.removeEventListener('peer:connect', this.#onConnect);
    for (const entry of this.#backoff.values()) clearTimeout(entry.timer);
    await this.#server.stop();
    await Promise.allSettled([...this.#work]);
  }

  /**
   * Resolves once no fan-out, delivery or take-in work is running (work started meanwhile is waited for too, at
   * most `rounds` times): for tests and for a graceful hand-over, never on a request's path.
   */
  async idle(rounds = 100): Promise<void> {
    for (let round = 0; round < rounds && (this.#work.size > 0 || this.#pumping); round++) {
      await Promise.allSettled([...this.#work]);
    }
  }

  /** Deliveries owed, per destination home (at most `limit` homes, the largest backlogs first). */
  backlog(limit = DESTINATIONS_PER_ROUND): Promise<Array<{ destination: string; pending: number }>> {
    return this.#store.outboxBacklog(limit);
  }

  /** Fans out new timeline events and delivers what is owed (called after every accepted event). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#track(
      (async () => {
        try {
          do {
            this.#again = false;
            const fresh = await this.#fanOut();
            // The whole outbox is read once after the start (deliveries owed from before) and then once a
            // minute (OUTBOX_SWEEP_MS); otherwise only the homes new events go to, so that a large backlog of
            // an away home costs nothing per event.
            if (!this.#swept) {
              this.#swept = true;
              await this.#deliverAll();
            } else {
              for (const destination of fresh) this.#deliverSoon(destination);
            }
          } while (this.#again && !this.#stopped);
        } finally {
          this.#pumping = false;
        }
      })(),
    );
  }

  // ---- RemoteRooms: the handshakes the engine asks for ----

  async invite(version: RoomVersionId, pdu: Pdu, inviteRoomState: Json[]): Promise<Pdu> {
    const target = pdu.state_key ?? '';
    const server = serverNameOf(target);
    if (server === undefined) throw new MatrixError('M_INVALID_PARAM', `${target} is not a user id.`);
    const document = await this.#documents.resolve(server);
    if (document === undefined) {
      throw new MatrixError('M_NOT_FOUND', `No account document of ${target} was found (asked the DHT).`, 404);
    }
    // An account has one user: any other localpart on its server name names nobody.
    if (document.user_id !== target) {
      throw new MatrixError(
        'M_NOT_FOUND',
        `${target} does not exist: the account of ${server} is ${document.user_id}.`,
        404,
      );
    }
    const origin = serverNameOf(pdu.sender)!;
    const eventId = eventIdOf(version, pdu);
    const errors: string[] = [];
    for (const home of document.homes) {
      if (home.peer_id === this.peerId) continue;
      try {
        const answer = await this.#request(home.peer_id, origin, {
          method: 'PUT',
          path: `/_matrix/federation/v2/invite/${encodeURIComponent(pdu.room_id)}/${encodeURIComponent(eventId)}`,
          body: { room_version: version, event: pdu, invite_room_state: inviteRoomState },
        });
        if (answer.status !== 200) {
          errors.push(`${home.peer_id}: ${describe(answer.body)}`);
          continue;
        }
        const event = (answer.body as { event?: unknown }).event;
        const checked = validatePdu(version, event);
        if (!checked.ok || eventIdOf(version, checked.pdu) !== eventId) {
          errors.push(`${home.peer_id}: the countersigned invite is not the event sent`);
          continue;
        }
        return checked.pdu;
      } catch (err) {
        errors.push(`${home.peer_id}: ${(err as Error).message}`);
      }
    }
    throw new MatrixError(
      'M_UNKNOWN',
      `No home of ${target} took the invite (${errors.join('; ') || 'it has no homes'}); try again when one is online.`,
      502,
    );
  }

  async join(actor: RoomActor, roomId: string, via: readonly string[]): Promise<{ eventId: string }> {
    const servers = [...new Set([...via, serverNameOf(roomId)].filter((s): s is string => s !== undefined))];
    return this.#throughHomes('join', roomId, servers, Infinity, (peer) => this.#joinThrough(actor, roomId, peer));
  }

  /**
   * Leaves (make_leave/send_leave) a room this home does not hold (an invite rejected before the room was taken
   * in), through the homes of `via` (the inviter's server), of the room id's server and of the user's own server
   * (another home of the account may hold the room), at most LEAVE_HOMES of them; resolves with the leave the
   * answering home accepted.
   */
  async leave(
    actor: RoomActor,
    roomId: string,
    via: readonly string[],
    content: Json = {},
  ): Promise<{ eventId: string; event: Pdu }> {
    const servers = [
      ...new Set([...via, serverNameOf(roomId), actor.serverName].filter((s): s is string => s !== undefined)),
    ];
    return this.#throughHomes('leave', roomId, servers, LEAVE_HOMES, async (peer) => {
      const { pdu, eventId } = await this.#handshake('leave', actor, roomId, peer, content, LEAVE_TIMEOUT_MS);
      return { eventId, event: pdu };
    });
  }

  /**
   * Tries `attempt` on the homes of `servers` in turn (not this home; at most `limit`) until one succeeds; a
   * home's M_FORBIDDEN ends the tries (the room's rules refuse the change), any other failure moves on.
   */
  async #throughHomes<T>(
    what: 'join' | 'leave',
    roomId: string,
    servers: readonly string[],
    limit: number,
    attempt: (peer: string) => Promise<T>,
  ): Promise<T> {
    const errors: string[] = [];
    let tried = 0;
    for (const server of servers) {
      if (!isServerName(server)) continue;
      const document = await this.#documents.resolve(server);
      for (const home of document?.homes ?? []) {
        if (home.peer_id === this.peerId || errors.some((e) => e.startsWith(`${home.peer_id}:`))) continue;
        if (tried++ >= limit) break;
        try {
          return await attempt(home.peer_id);
        } catch (err) {
          if (err instanceof MatrixError && err.errcode === 'M_FORBIDDEN') throw err;
          errors.push(`${home.peer_id}: ${(err as Error).message}`);
        }
      }
    }
    throw new MatrixError(
      'M_UNKNOWN',
      `Could not ${what} ${roomId} through any home of ${servers.join(', ') || 'its server'} (${errors.join('; ') || 'no home found'}).`,
      502,
    );
  }

  /** make_join, sign, send_join, then take in the room's state with the join. */
  async #joinThrough(actor: RoomActor, roomId: string, peer: string): Promise<{ eventId: string }> {
    const { version, pdu, eventId, answer } = await this.#handshake('join', actor, roomId, peer);
    const body = answer as { state?: unknown; auth_chain?: unknown };
    const outcome = await this.#takeInRoom(version, pdu, body.state, body.auth_chain);
    if (!outcome.ok) throw new Error(`the join was refused here: ${outcome.message}`);
    return { eventId };
  }

  /**
   * `make_<membership>` to `peer`, the template checked (the user's own membership event in that room) and
   * signed as the user's server with this home's key (`content` added), then `send_<membership>` (v2).
   * M_FORBIDDEN when the home refuses the user; other failures throw plain errors.
   */
  async #handshake(
    membership: 'join' | 'leave',
    actor: RoomActor,
    roomId: string,
    peer: string,
    content: Json = {},
    timeoutMs?: number,
  ): Promise<{ version: RoomVersionId; pdu: Pdu; eventId: string; answer: unknown }> {
    const base = `${encodeURIComponent(roomId)}/${encodeURIComponent(actor.userId)}`;
    const made = await this.#request(peer, actor.serverName, {
      method: 'GET',
      path: `/_matrix/federation/v1/make_${membership}/${base}`,
      ...(membership === 'join' ? { query: { ver: [...SUPPORTED_ROOM_VERSIONS] } } : {}),
      maxResponseBytes: TEMPLATE_MAX_BYTES,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    if (made.status === 403) throw new MatrixError('M_FORBIDDEN', describe(made.body));
    if (made.status !== 200) throw new Error(`make_${membership} answered ${made.status}: ${describe(made.body)}`);
    const version = (made.body as { room_version?: unknown }).room_version as RoomVersionId;
    const template = (made.body as { event?: unknown }).event as Json | undefined;
    if (!SUPPORTED_ROOM_VERSIONS.includes(version) || template === undefined || typeof template !== 'object') {
      throw new Error(`make_${membership} answered no usable template`);
    }
    const templateContent = template['content'] as Json | undefined;
    if (
      template['type'] !== 'm.room.member' ||
      template['sender'] !== actor.userId ||
      template['state_key'] !== actor.userId ||
      template['room_id'] !== roomId ||
      typeof templateContent !== 'object' ||
      templateContent === null ||
      templateContent['membership'] !== membership
    ) {
      throw new Error(`make_${membership} answered a template for another user, room or membership`);
    }
    const pdu = this.#sign(version, actor.serverName, {
      ...template,
      content: { ...templateContent, ...content, membership },
      origin_server_ts: Date.now(),
    });
    const eventId = eventIdOf(version, pdu);
    const sent = await this.#request(peer, actor.serverName, {
      method: 'PUT',
      path: `/_matrix/federation/v2/send_${membership}/${encodeURIComponent(roomId)}/${encodeURIComponent(eventId)}`,
      body: pdu,
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
    });
    if (sent.status === 403) throw new MatrixError('M_FORBIDDEN', describe(sent.body));
    if (sent.status !== 200) throw new Error(`send_${membership} answered ${sent.status}: ${describe(sent.body)}`);
    return { version, pdu, eventId, answer: sent.body };
  }

  /** Hashes and signs a template (make_join's) as `serverName` with this home's key. */
  #sign(version: RoomVersionId, serverName: string, template: Json): Pdu {
    const unsigned = { ...template };
    delete unsigned['signatures'];
    delete unsigned['hashes'];
    delete unsigned['unsigned'];
    return signPdu(version, unsigned as unknown as UnsignedPdu, {
      serverName,
      keyId: `ed25519:${this.peerId}`,
      secretKey: this.#nodeKey,
    });
  }

  // ---- EDUs: typing, receipts and presence, best-effort ----

  /**
   * Carries the ephemeral data of the home's users to the other homes of a room's servers (the account's own
   * other homes included) and takes in what they send. EDUs are not stored for later: a home that is away
   * misses them (the spec's best effort); receipts are kept by every home that got them.
   */
  carryEdus(carrier: EduCarrier): void {
    this.#edus = carrier;
    carrier.onLocalEdu((local) => {
      if (this.#stopped || local.roomId === undefined) return;
      this.#track(this.#sendEdu(local.roomId, local.edu));
    });
  }

  /** One `PUT /send` transaction of EDUs only, as `origin` (an account hosted here), to a home (to-device). */
  sendEdus(
    peer: string,
    origin: string,
    edus: Array<{ edu_type: string; content: unknown }>,
    timeoutMs = EDU_TIMEOUT_MS,
  ): Promise<FederationResponse> {
    const txnId = `edu.${Date.now()}.${++this.#txn}`;
    return this.#request(peer, origin, {
      method: 'PUT',
      path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
      body: { origin, origin_server_ts: Date.now(), pdus: [], edus },
      timeoutMs,
    });
  }

  async #sendEdu(roomId: string, edu: { edu_type: string; content: unknown }): Promise<void> {
    const origin = eduOrigin(edu);
    if (origin === undefined) return;
    const homes = new Set<string>();
    for (const server of await this.#store.roomServers(roomId, ['join'])) {
      for (const peer of await this.#documents.homesOf(server)) if (peer !== this.peerId) homes.add(peer);
    }
    const txnId = `edu.${Date.now()}.${++this.#txn}`;
    await Promise.allSettled(
      [...homes].map((peer) =>
        this.#request(peer, origin, {
          method: 'PUT',
          path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
          body: { origin, origin_server_ts: Date.now(), pdus: [], edus: [edu] },
          timeoutMs: EDU_TIMEOUT_MS,
        }),
      ),
    );
  }

  // ---- Outbound: fan-out into the outbox, and delivery ----

  /** Writes the deliveries of the timeline events not fanned out yet; returns the homes they go to. */
  async #fanOut(): Promise<Set<string>> {
    const destinations = new Set<string>();
    for (;;) {
      const cursor = await this.#store.fanOutCursor();
      const events = await this.#store.eventsAfter(cursor, FAN_OUT_BATCH);
      if (events.length === 0) return destinations;
      const rows: OutboxEntry[] = [];
      // Documents read once per batch: a batch is mostly one room's events from one sender. So are the servers
      // joined to a room (read as they are now, for every event of it in the batch).
      const documents = memoDocuments(this.#documents);
      const joined = new Map<string, Promise<string[]>>();
      const roomServers = (roomId: string): Promise<string[]> => {
        let servers = joined.get(roomId);
        if (servers === undefined) {
          servers = this.#store.roomServers(roomId, ['join']);
          joined.set(roomId, servers);
        }
        return servers;
      };
      for (const event of events) {
        try {
          rows.push(...(await this.#destinations(event, documents, roomServers)));
          rows.push(...(await this.#missedByJoiner(event, documents)));
        } catch (err) {
          this.#logger.warn({ err, eventId: event.eventId }, 'the event could not be fanned out');
        }
      }
      await this.#store.enqueueDeliveries(rows, events.at(-1)!.streamOrdering!);
      for (const row of rows) destinations.add(row.destination);
      if (events.length < FAN_OUT_BATCH || this.#stopped) return destinations;
    }
  }

  /**
   * The homes an event goes to from here. Every home of every server in the room (joined, and the target of a
   * membership event), except this one and the home that made it, when this home made it or is a server home
   * of the sender's account (it relays its account's events for homes that were away); a server home also
   * relays other accounts' events to the other homes of the accounts it hosts. A client home forwards nothing
   * it received, except a leave handed in by send_leave: its maker may not hold the room, so this home sends
   * it everywhere, as one of the room's accounts it hosts.
   */
  async #destinations(
    event: StoredRoomEvent,
    documents: DocumentReader,
    roomServers: (roomId: string) => Promise<string[]>,
  ): Promise<OutboxEntry[]> {
    const pdu = event.pdu;
    const sender = serverNameOf(pdu.sender);
    if (sender === undefined || event.streamOrdering === null) return [];
    const servers = new Set(await roomServers(pdu.room_id));
    servers.add(sender);
    if (pdu.type === 'm.room.member' && pdu.state_key !== undefined) {
      const target = serverNameOf(pdu.state_key);
      if (target !== undefined) servers.add(target);
    }
    const maker = makerOf(pdu, sender);
    const handedIn = this.#handedIn.has(event.eventId);
    const made = maker === this.peerId || handedIn;
    const senderHosted = await this.#hosts(sender, documents);
    const relayOwn = !made && senderHosted && (await this.#serverHomeOf(sender, documents));
    // A leave handed in by send_leave is sent on as one of the room's accounts hosted here.
    let handedInOrigin: string | undefined;
    for (const server of handedIn && !senderHosted ? servers : []) {
      if (await this.#hosts(server, documents)) {
        handedInOrigin = server;
        break;
      }
    }
    const rows: OutboxEntry[] = [];
    for (const server of servers) {
      const hostedHere = await this.#hosts(server, documents);
      if (!made && !relayOwn && !(hostedHere && (await this.#serverHomeOf(server, documents)))) continue;
      const origin = hostedHere ? server : senderHosted ? sender : handedInOrigin;
      if (origin === undefined) continue;
      const held = hostedHere ? await documents.document(server) : undefined;
      const homes = held !== undefined ? held.homes.map((h) => h.peer_id) : await this.#homesResolved(server);
      for (const destination of homes) {
        if (destination === this.peerId || destination === maker) continue;
        rows.push({ destination, eventId: event.eventId, streamOrdering: event.streamOrdering, origin });
      }
    }
    return rows;
  }

  /**
   * For a join received from another account's home: the events this home sent out between the join's prev
   * events and the join (concurrent with it, so not sent to the joiner's homes, whose server was not in the room
   * yet), now owed to the joiner's homes. Without this, a message made here while the join was on its way
   * reached the joiner only once a later event named it (and never, if none came). At most
   * JOIN_CATCH_UP_EVENTS, the newest.
   */
  async #missedByJoiner(event: StoredRoomEvent, documents: DocumentReader): Promise<OutboxEntry[]> {
    const pdu = event.pdu;
    if (pdu.type !== 'm.room.member' || pdu.content['membership'] !== 'join' || event.streamOrdering === null)
      return [];
    const joiner = serverNameOf(pdu.state_key ?? '');
    if (joiner === undefined || makerOf(pdu, joiner) === this.peerId || (await this.#hosts(joiner, documents)))
      return [];
    const prevs = [...(await this.#store.eventsByIds(pdu.prev_events)).values()];
    const since = Math.max(0, ...prevs.map((e) => e.streamOrdering ?? 0));
    if (since >= event.streamOrdering - 1) return [];
    const { events } = await this.#store.timelineSince(
      pdu.room_id,
      since,
      JOIN_CATCH_UP_EVENTS,
      event.streamOrdering - 1,
    );
    const homes = new Set(
      (await documents.document(joiner))?.homes.map((h) => h.peer_id) ?? (await this.#homesResolved(joiner)),
    );
    const rows: OutboxEntry[] = [];
    const servers = (roomId: string) => this.#store.roomServers(roomId, ['join']);
    for (const missed of events) {
      for (const row of await this.#destinations(missed, documents, servers))
        if (homes.has(row.destination)) rows.push(row);
    }
    return rows;
  }

  async #homesResolved(server: string): Promise<string[]> {
    const document = await this.#documents.resolve(server);
    return document?.homes.map((h) => h.peer_id) ?? [];
  }

  /** Starts a delivery run to every home the outbox owes something (at most DESTINATIONS_PER_ROUND). */
  async #deliverAll(): Promise<void> {
    const backlog = await this.#store.outboxBacklog(DESTINATIONS_PER_ROUND);
    for (const { destination } of backlog) this.#deliverSoon(destination);
  }

  /** A delivery run to `destination`, unless one is running (it runs again after) or it is backing off. */
  #deliverSoon(destination: string): void {
    if (this.#inFlight.has(destination)) {
      this.#rerun.add(destination);
      return;
    }
    if (this.#backoff.get(destination)?.timer !== undefined) return;
    this.#track(this.#deliver(destination, false));
  }

  /** Sends what a destination is owed, oldest first, in transactions of one origin; backs off on failure. */
  async #deliver(destination: string, now: boolean): Promise<void> {
    if (this.#stopped) return;
    if (this.#inFlight.has(destination)) {
      if (now) this.#rerun.add(destination);
      return;
    }
    this.#inFlight.add(destination);
    try {
      for (let batch = 0; !this.#stopped; batch++) {
        const pending = await this.#store.pendingDeliveries(destination, MAX_PDUS_PER_TXN);
        if (pending.length === 0) break;
        if (batch === BATCHES_PER_RUN) {
          // A long backlog yields to other destinations' runs, and goes on after them.
          this.#rerun.add(destination);
          break;
        }
        const origin = pending[0]!.origin;
        const run = pending.filter(
          (p, i) => p.origin === origin && pending.slice(0, i).every((q) => q.origin === origin),
        );
        const txnId = `${Date.now()}.${++this.#txn}`;
        let answer: FederationResponse;
        try {
          answer = await this.#request(destination, origin, {
            method: 'PUT',
            path: `/_matrix/federation/v1/send/${encodeURIComponent(txnId)}`,
            body: { origin, origin_server_ts: Date.now(), pdus: run.map((p) => p.pdu), edus: [] },
          });
        } catch (err) {
          this.#failed(destination, (err as Error).message);
          return;
        }
        if (answer.status !== 200) {
          this.#failed(destination, `answered ${answer.status}: ${describe(answer.body)}`);
          return;
        }
        const results = (answer.body as { pdus?: Record<string, { error?: string }> }).pdus ?? {};
        for (const p of run) {
          const error = results[p.eventId]?.error;
          if (error !== undefined) {
            this.#logger.info({ destination, eventId: p.eventId, error }, 'a home refused an event it was sent');
          }
        }
        await this.#store.removeDeliveries(
          destination,
          run.map((p) => p.eventId),
        );
        this.stats.delivered += run.length;
        this.#backoff.delete(destination);
      }
    } catch (err) {
      this.#logger.warn({ err, destination }, 'delivery failed');
      this.#failed(destination, (err as Error).message);
    } finally {
      this.#inFlight.delete(destination);
      if (this.#rerun.delete(destination) && !this.#stopped && this.#backoff.get(destination)?.timer === undefined) {
        this.#track(this.#deliver(destination, false));
      }
    }
  }

  #failed(destination: string, reason: string): void {
    this.stats.failedTransactions += 1;
    const entry = this.#backoff.get(destination) ?? { failures: 0, timer: undefined };
    entry.failures += 1;
    const delay = Math.min(this.#maxBackoff, this.#minBackoff * 2 ** Math.min(entry.failures - 1, 20));
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.#track(this.#deliver(destination, true));
    }, delay);
    this.#backoff.set(destination, entry);
    this.#logger.debug({ destination, reason, retryInMs: delay }, 'a delivery failed; retrying later');
  }

  // ---- Inbound: authorisation and the routes ----

  async #authorize(peer: string, path: string, query: URLSearchParams): Promise<boolean> {
    if (path.startsWith('/_polyhome/federation/v1/document/')) return true;
    const origin = query.get('origin');
    if (origin === null || !isServerName(origin)) return false;
    const document = await this.#documents.resolve(origin, { peerId: peer });
    return document !== undefined && homeStatus(document, peer).kind === 'home';
  }

  async #handle(request: FederationRequest): Promise<FederationResponse> {
    const peer = request.peerId.toString();
    const origin = request.query.get('origin') ?? '';
    const parts = request.path.split('/').map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return '';
      }
    });
    const [, prefix, federation, v, name, ...rest] = parts;
    try {
      if (prefix === '_polyhome' && federation === 'federation' && v === 'v1' && name === 'document') {
        return await this.#serveDocument(rest[0] ?? '');
      }
      if (prefix !== '_matrix' || federation !== 'federation') return notFound(request.path);
      const route = `${request.method} ${v}/${name}`;
      switch (route) {
        // End-to-end keys (federation-keys.ts): user/keys/query, user/keys/claim, user/devices/{userId}.
        case 'POST v1/user':
        case 'GET v1/user':
          return (await this.keys?.serve(request.method, rest, request.body ?? {})) ?? notFound(request.path);
        case 'PUT v1/send':
          return await this.#onSend(peer, origin, request.body ?? {});
        case 'PUT v2/invite':
          return await this.#onInvite(rest[0] ?? '', rest[1] ?? '', request.body ?? {});
        case 'GET v1/make_join':
          return await this.#onMakeJoin(origin, rest[0] ?? '', rest[1] ?? '', request.query.getAll('ver'));
        case 'GET v1/make_leave':
          return await this.#onMakeLeave(origin, rest[0] ?? '', rest[1] ?? '');
        case 'PUT v2/send_join':
        case 'PUT v2/send_leave': {
          const membership = name === 'send_join' ? 'join' : 'leave';
          return await this.#onSendMembership(
            membership,
            peer,
            origin,
            rest[0] ?? '',
            rest[1] ?? '',
            request.body ?? {},
          );
        }
        case 'GET v1/state':
        case 'GET v1/state_ids':
          return await this.#onState(origin, rest[0] ?? '', request.query.get('event_id') ?? '', name === 'state_ids');
        case 'GET v1/event':
          return await this.#onEvent(origin, rest[0] ?? '');
        case 'POST v1/get_missing_events':
          return await this.#onMissingEvents(origin, rest[0] ?? '', request.body ?? {});
        case 'GET v1/backfill':
          return await this.#onBackfill(origin, rest[0] ?? '', request.query);
        default:
          return notFound(request.path);
      }
    } catch (err) {
      if (err instanceof MatrixError) return { status: err.status, body: { errcode: err.errcode, error: err.message } };
      throw err;
    }
  }

  async #serveDocument(serverName: string): Promise<FederationResponse> {
    const document = isServerName(serverName) ? await this.#documents.document(serverName) : undefined;
    if (document === undefined) return error(404, 'M_NOT_FOUND', `No document of ${serverName} is held here.`);
    return { status: 200, body: { document } };
  }

  /** `PUT /send/{txnId}`: each PDU through the accept pipeline, gaps filled from the sender. */
  async #onSend(peer: string, origin: string, body: Json): Promise<FederationResponse> {
    if (body['origin'] !== origin) {
      return error(400, 'M_BAD_JSON', 'The transaction origin must be the origin the request is authorised as.');
    }
    const pdus = body['pdus'] ?? [];
    const edus = body['edus'] ?? [];
    if (!Array.isArray(pdus) || pdus.length > MAX_PDUS_PER_TXN) {
      return error(400, 'M_BAD_JSON', `pdus must be a list of at most ${MAX_PDUS_PER_TXN} events.`);
    }
    if (!Array.isArray(edus) || edus.length > MAX_EDUS_PER_TXN) {
      return error(400, 'M_BAD_JSON', `edus must be a list of at most ${MAX_EDUS_PER_TXN} EDUs.`);
    }
    const results: Record<string, Json> = {};
    for (const json of pdus) {
      this.stats.received += 1;
      const outcome = await this.#receive(peer, origin, json);
      const key = outcome.eventId ?? `#${Object.keys(results).length}`;
      if (outcome.ok) {
        if (outcome.inserted) this.stats.accepted += 1;
        else this.stats.duplicates += 1;
        results[key] = {};
      } else {
        this.#refused(outcome.stage, outcome.message, peer, outcome.eventId);
        results[key] = { error: `${outcome.code}: ${outcome.message}` };
      }
    }
    // EDUs: what is refused is logged and named in the answer's `edus` (index → errcode, error, retry_after_ms),
    // the transaction still stands. `M_LIMIT_EXCEEDED` is a refusal for now: the sender keeps the EDU and sends it
    // again, so a later EDU of the same type and sender in this transaction is refused for now too (not taken
    // ahead of it: to-device messages stay in order per sender).
    const carrier = this.#edus;
    const refusedEdus: Record<string, Json> = {};
    const heldBack = new Set<string>();
    for (const [index, edu] of edus.entries()) {
      // Device list updates (federation-keys.ts).
      if (this.keys !== undefined && DEVICE_LIST_EDUS.includes((edu as { edu_type?: string } | null)?.edu_type ?? '')) {
        const refused = await this.keys.receiveEdu(origin, edu as Json);
        if (refused !== undefined) this.#logger.debug({ peer, origin, refused }, 'a device list update was refused');
        continue;
      }
      if (carrier !== undefined) {
        const sender = eduSenderKey(edu);
        if (sender !== undefined && heldBack.has(sender)) {
          refusedEdus[String(index)] = {
            errcode: 'M_LIMIT_EXCEEDED',
            error: 'An earlier EDU of the same sender in this transaction was refused for now.',
            retry_after_ms: EDU_RETRY_AFTER_MS,
          };
          continue;
        }
        const outcome = await carrier.receiveEdu(origin, edu);
        if (outcome.refused.length > 0) {
          this.#logger.debug({ peer, origin, refused: outcome.refused.slice(0, 5) }, 'parts of an EDU were refused');
        }
        if (outcome.retry !== undefined) {
          if (sender !== undefined) heldBack.add(sender);
          refusedEdus[String(index)] = {
            errcode: 'M_LIMIT_EXCEEDED',
            error: outcome.retry.reason,
            retry_after_ms: outcome.retry.retryAfterMs,
          };
        } else if (outcome.accepted === 0 && outcome.refused.length > 0) {
          refusedEdus[String(index)] = { errcode: 'M_FORBIDDEN', error: outcome.refused.slice(0, 5).join('; ') };
        }
      }
    }
    return {
      status: 200,
      body: { pdus: results, ...(Object.keys(refusedEdus).length > 0 ? { edus: refusedEdus } : {}) },
    };
  }

  #refused(stage: string, message: string, peer: string, eventId: string | undefined): void {
    this.stats.refused[stage] = (this.stats.refused[stage] ?? 0) + 1;
    this.#logger.info({ peer, eventId, stage, reason: message }, 'a received event was refused');
  }

  /** One received PDU: the signers' documents, then the pipeline; a gap or a room not held is filled first. */
  async #receive(
    peer: string,
    origin: string,
    json: unknown,
    gaps: 'fill' | 'adopt' = 'fill',
  ): Promise<AcceptOutcome & { eventId?: string }> {
    if (typeof json !== 'object' || json === null) return refusal('format', 'not_json', 'A PDU must be an object.');
    const pdu = json as Partial<Pdu>;
    if (typeof pdu.room_id !== 'string') return refusal('format', 'missing_field', 'The PDU has no room_id.');
    const version = await this.#store.roomVersion(pdu.room_id);
    const known = version === null ? undefined : await this.#heldAlready(version, pdu);
    if (known !== undefined) return known;
    await this.#learnSigners(pdu, peer);
    // Requests back to the sender speak for an account hosted here that the event concerns.
    const local = await this.#localOrigin(origin, pdu);
    if (local === undefined)
      return refusal('missing', 'not_held', `Room ${pdu.room_id} concerns no account hosted here.`);
    if (version === null && pdu.type !== 'm.room.create') return this.#adoptAt(peer, local, json);
    // An event the held timeline already refers to (a home taking in a room holds its latest events first; a
    // late delivery of an older one follows) is older than them: kept as backfilled, before them, so /sync does
    // not give it (and the whole history a gap fill would fetch behind it) as news after the room's newest.
    if (version !== null && (await this.#store.isMissingPrev(pdu.room_id, eventIdOf(version, pdu as Pdu)))) {
      const backfilled = await this.#engine.ingestBackfilled(version, json);
      // Without its auth events held, it goes the usual way (which fetches them).
      if (backfilled.ok || backfilled.stage !== 'missing') return backfilled;
    }
    let outcome = await this.#engine.ingest(json);
    if (!outcome.ok && outcome.stage === 'missing') {
      // Taking a room in, each latest event is adopted with its state: a gap filled here would bring the
      // room's history in as news after the latest events (it comes by backfill, in its place, instead).
      if (gaps === 'fill') await this.#fillGap(peer, local, pdu as Pdu);
      outcome = await this.#engine.ingest(json);
      if (!outcome.ok && outcome.stage === 'missing') outcome = await this.#adoptAt(peer, local, json);
    }
    return outcome;
  }

  /**
   * The outcome for an event held here already (another home sent it first), without checking it again; a
   * home receives most events two or three times (see the fan-out). Undefined when it is not held.
   */
  async #heldAlready(version: RoomVersionId, pdu: Partial<Pdu>): Promise<AcceptOutcome | undefined> {
    const checked = validatePdu(version, pdu);
    if (!checked.ok) return undefined;
    const eventId = eventIdOf(version, checked.pdu);
    const held = (await this.#store.eventsByIds([eventId])).get(eventId);
    if (held === undefined || held.outlier) return undefined;
    if (held.rejected !== null)
      return { ok: false, eventId, stage: 'auth_state', ...held.rejected, stored: 'rejected' };
    return { ok: true, eventId, inserted: false, streamOrdering: held.streamOrdering };
  }

  /** Fetches (from the sending home, then the DHT) the documents of a PDU's signers this home lacks. */
  async #learnSigners(pdu: Partial<Pdu>, peer: string): Promise<void> {
    const signatures = pdu.signatures;
    if (typeof signatures !== 'object' || signatures === null) return;
    for (const [server, keys] of Object.entries(signatures).slice(0, 4)) {
      if (!isServerName(server) || typeof keys !== 'object' || keys === null) continue;
      for (const keyId of Object.keys(keys).slice(0, 4)) {
        if (!keyId.startsWith('ed25519:') || keyId === 'ed25519:root') continue;
        await this.#documents.resolve(server, { peerId: keyId.slice('ed25519:'.length), askPeer: peer });
      }
    }
  }

  /**
   * The account hosted here that a received event concerns (requests about it back to the sender speak for
   * it): the transaction's origin when hosted here (another home of the account), the target of a membership
   * event, or an account hosted here with a user in the room. Undefined: the event is none of this home's.
   */
  async #localOrigin(origin: string, pdu: Partial<Pdu>): Promise<string | undefined> {
    if (await this.#hosts(origin)) return origin;
    const target =
      pdu.type === 'm.room.member' && typeof pdu.state_key === 'string' ? serverNameOf(pdu.state_key) : undefined;
    if (target !== undefined && (await this.#hosts(target))) return target;
    if (typeof pdu.room_id !== 'string') return undefined;
    for (const server of await this.#store.roomServers(pdu.room_id, ['join', 'invite', 'leave', 'ban'])) {
      if (await this.#hosts(server)) return server;
    }
    return undefined;
  }

  /**
   * get_missing_events from the sending home until the event's prev events are all held (or the rounds run
   * out), then the events oldest first through the pipeline.
   */
  async #fillGap(peer: string, origin: string, pdu: Pdu): Promise<void> {
    const version = await this.#store.roomVersion(pdu.room_id);
    if (version === null) return;
    const collected = new Map<string, Pdu>();
    let latest = [eventIdOf(version, pdu)];
    const earliest = (await this.#store.forwardExtremities(pdu.room_id, EARLIEST_EVENTS)).map((e) => e.eventId);
    for (let round = 0; round < MISSING_EVENTS_ROUNDS && latest.length > 0; round++) {
      const answer = await this.#request(peer, origin, {
        method: 'POST',
        path: `/_matrix/federation/v1/get_missing_events/${encodeURIComponent(pdu.room_id)}`,
        body: { earliest_events: earliest, latest_events: latest, limit: MISSING_EVENTS_LIMIT, min_depth: 0 },
      }).catch(() => undefined);
      const events = answer?.status === 200 ? (answer.body as { events?: unknown }).events : undefined;
      if (!Array.isArray(events) || events.length === 0) break;
      for (const event of events.slice(0, MISSING_EVENTS_LIMIT)) {
        const checked = validatePdu(version, event);
        if (checked.ok && checked.pdu.room_id === pdu.room_id)
          collected.set(eventIdOf(version, checked.pdu), checked.pdu);
      }
      const wanted = new Set<string>();
      for (const event of collected.values())
        for (const prev of event.prev_events) if (!collected.has(prev)) wanted.add(prev);
      const held = await this.#store.hasEvents([...wanted]);
      const open = [...collected].filter(([, e]) => e.prev_events.some((p) => !collected.has(p) && !held.has(p)));
      latest = open.map(([id]) => id).slice(0, EARLIEST_EVENTS);
    }
    const ordered = [...collected.values()].sort((a, b) => a.depth - b.depth);
    for (const event of ordered) {
      await this.#learnSigners(event, peer);
      await this.#engine.ingest(event);
    }
  }

  /**
   * Takes in a room (or closes a gap) at an event: the state before it and its auth chain from the sending
   * home, each checked and kept as an outlier, then the event with that state.
   */
  async #adoptAt(peer: string, origin: string, json: unknown): Promise<AcceptOutcome> {
    const pdu = json as Pdu;
    const version = (await this.#store.roomVersion(pdu.room_id)) ?? (await this.#versionFrom(peer, origin, pdu));
    if (version === undefined) return refusal('missing', 'unknown_room', `The version of ${pdu.room_id} is unknown.`);
    const checked = validatePdu(version, json);
    if (!checked.ok) return refusal('format', checked.code, checked.message);
    const eventId = eventIdOf(version, checked.pdu);
    const answer = await this.#request(peer, origin, {
      method: 'GET',
      path: `/_matrix/federation/v1/state/${encodeURIComponent(pdu.room_id)}`,
      query: { event_id: eventId },
    }).catch((err: Error) => ({ status: 0, body: { error: err.message } }));
    if (answer.status !== 200) {
      return refusal('missing', 'no_state', `The state at ${eventId} could not be had: ${describe(answer.body)}`);
    }
    const body = answer.body as { pdus?: unknown; auth_chain?: unknown };
    const outcome = await this.#takeInRoom(version, checked.pdu, body.pdus, body.auth_chain, peer);
    if (outcome.ok && outcome.inserted) this.stats.adopted += 1;
    return outcome;
  }

  /** The room version from the create event in the state the sending home has at the event. */
  async #versionFrom(peer: string, origin: string, pdu: Pdu): Promise<RoomVersionId | undefined> {
    const createId = pdu.auth_events?.[0];
    if (typeof createId !== 'string') return undefined;
    for (const id of pdu.auth_events) {
      const answer = await this.#request(peer, origin, {
        method: 'GET',
        path: `/_matrix/federation/v1/event/${encodeURIComponent(id)}`,
      }).catch(() => undefined);
      const event = (answer?.body as { pdus?: Json[] } | undefined)?.pdus?.[0];
      if (event?.['type'] === 'm.room.create') {
        const declared = (event['content'] as Json | undefined)?.['room_version'];
        return SUPPORTED_ROOM_VERSIONS.includes(declared as RoomVersionId) ? (declared as RoomVersionId) : undefined;
      }
    }
    return undefined;
  }

  /** Checks and keeps a state and auth chain as outliers (oldest first), then accepts `pdu` with that state. */
  async #takeInRoom(
    version: RoomVersionId,
    pdu: Pdu,
    stateJson: unknown,
    authJson: unknown,
    peer?: string,
  ): Promise<AcceptOutcome> {
    if (
      !Array.isArray(stateJson) ||
      !Array.isArray(authJson) ||
      stateJson.length + authJson.length > MAX_ADOPTED_EVENTS
    ) {
      return refusal(
        'format',
        'bad_state',
        `The state and auth chain must be lists of at most ${MAX_ADOPTED_EVENTS} events.`,
      );
    }
    const events = new Map<string, Pdu>();
    for (const json of [...authJson, ...stateJson]) {
      const checked = validatePdu(version, json);
      if (checked.ok && checked.pdu.room_id === pdu.room_id) events.set(eventIdOf(version, checked.pdu), checked.pdu);
    }
    // Oldest first, retried while some wait for their auth events (an auth chain is not sorted on the wire).
    let waiting = [...events].sort(([, a], [, b]) => a.depth - b.depth);
    for (let pass = 0; pass < 8 && waiting.length > 0; pass++) {
      const next: typeof waiting = [];
      for (const [id, event] of waiting) {
        if (peer !== undefined) await this.#learnSigners(event, peer);
        const outcome = await this.#engine.ingestOutlier(version, event);
        if (!outcome.ok && outcome.stage === 'missing') next.push([id, event]);
        else if (!outcome.ok) this.#refused(outcome.stage, outcome.message, peer ?? '', id);
      }
      if (next.length === waiting.length) break;
      waiting = next;
    }
    const stateIds: string[] = [];
    for (const json of stateJson) {
      const checked = validatePdu(version, json);
      if (checked.ok) stateIds.push(eventIdOf(version, checked.pdu));
    }
    const state = new Map<string, string>();
    for (const event of (await this.#store.eventsByIds(stateIds)).values()) {
      if (event.rejected !== null || event.pdu.state_key === undefined || event.roomId !== pdu.room_id) continue;
      state.set(stateKeyOf(event.pdu.type, event.pdu.state_key), event.eventId);
    }
    if (peer !== undefined) await this.#learnSigners(pdu, peer);
    return this.#engine.ingest(pdu, { version, state });
  }

  /** `PUT /v2/invite`: countersigns the invite of a user hosted here (it reaches the room through `send`). */
  async #onInvite(roomId: string, eventId: string, body: Json): Promise<FederationResponse> {
    const version = body['room_version'] as RoomVersionId;
    if (!SUPPORTED_ROOM_VERSIONS.includes(version)) {
      return error(400, 'M_INCOMPATIBLE_ROOM_VERSION', `Room version ${String(version)} is not supported here.`);
    }
    const checked = validatePdu(version, body['event']);
    if (!checked.ok) return error(400, 'M_BAD_JSON', checked.message);
    const pdu = checked.pdu;
    if (pdu.room_id !== roomId || eventIdOf(version, pdu) !== eventId) {
      return error(400, 'M_BAD_JSON', 'The event is not the one the path names.');
    }
    const target = pdu.state_key;
    const server = target === undefined ? undefined : serverNameOf(target);
    if (pdu.type !== 'm.room.member' || pdu.content['membership'] !== 'invite' || server === undefined) {
      return error(400, 'M_BAD_JSON', 'Only m.room.member invites are taken here.');
    }
    const document = await this.#documents.document(server);
    if (document === undefined || document.user_id !== target || homeStatus(document, this.peerId).kind !== 'home') {
      return error(403, 'M_FORBIDDEN', `${target} is not hosted on this home.`);
    }
    if (await this.#engine.blocked(roomId)) return error(403, 'M_FORBIDDEN', roomBlockedError(roomId).message);
    return {
      status: 200,
      body: {
        event: addSignature(version, pdu, {
          serverName: server,
          keyId: `ed25519:${this.peerId}`,
          secretKey: this.#nodeKey,
        }),
      },
    };
  }

  /** `GET /make_join`: a join template from this home's current state of the room. */
  async #onMakeJoin(origin: string, roomId: string, userId: string, versions: string[]): Promise<FederationResponse> {
    if (serverNameOf(userId) !== origin) return error(403, 'M_FORBIDDEN', `${userId} is not a user of ${origin}.`);
    const version = await this.#store.roomVersion(roomId);
    if (version === null) return error(404, 'M_NOT_FOUND', `Room ${roomId} is not held here.`);
    if (versions.length > 0 && !versions.includes(version)) {
      return error(400, 'M_INCOMPATIBLE_ROOM_VERSION', `The room is version ${version}.`, { room_version: version });
    }
    return this.#template(version, roomId, userId, 'join', await this.#store.currentState(roomId));
  }

  /**
   * `GET /make_leave`: a leave template from this home's current state of the room, for a user of the origin
   * who is joined, invited or knocking there (the spec's 403 otherwise; 404 for a room not held here).
   */
  async #onMakeLeave(origin: string, roomId: string, userId: string): Promise<FederationResponse> {
    if (serverNameOf(userId) !== origin) return error(403, 'M_FORBIDDEN', `${userId} is not a user of ${origin}.`);
    const version = await this.#store.roomVersion(roomId);
    if (version === null) return error(404, 'M_NOT_FOUND', `Room ${roomId} is not held here.`);
    const state = await this.#store.currentState(roomId);
    const memberId = state.get(stateKeyOf('m.room.member', userId));
    const member = memberId === undefined ? undefined : (await this.#store.getEvents([memberId])).get(memberId);
    const membership = member?.content['membership'];
    if (membership !== 'join' && membership !== 'invite' && membership !== 'knock') {
      return error(403, 'M_FORBIDDEN', `${userId} is not joined, invited or knocking in ${roomId}.`);
    }
    return this.#template(version, roomId, userId, 'leave', state);
  }

  /** The answer of make_join/make_leave: the user's membership event over the latest events and `state`. */
  async #template(
    version: RoomVersionId,
    roomId: string,
    userId: string,
    membership: 'join' | 'leave',
    state: StateMap,
  ): Promise<FederationResponse> {
    const extremities = await this.#store.forwardExtremities(roomId, LIMITS.prevEvents);
    const prevPdus = await this.#store.getEvents(extremities.map((e) => e.eventId));
    const template = buildEvent({
      version,
      roomId,
      sender: userId,
      type: 'm.room.member',
      stateKey: userId,
      content: { membership },
      prevEvents: extremities
        .map((e) => ({ eventId: e.eventId, pdu: prevPdus.get(e.eventId)! }))
        .filter((e) => e.pdu !== undefined),
      state,
      originServerTs: Date.now(),
    });
    return { status: 200, body: { room_version: version, event: template } };
  }

  /**
   * `PUT /v2/send_join` and `/v2/send_leave`: the event through the accept pipeline. It must be the path's
   * event, in a room held here, the user's own `membership` event, of a user of `origin`; nothing is stored for
   * a malformed or mismatched event, nor for a bad signature. A join is answered the state before it with the
   * auth chain, a leave `{}`.
   */
  async #onSendMembership(
    membership: 'join' | 'leave',
    peer: string,
    origin: string,
    roomId: string,
    eventId: string,
    body: Json,
  ): Promise<FederationResponse> {
    const version = await this.#store.roomVersion(roomId);
    if (version === null) return error(404, 'M_NOT_FOUND', `Room ${roomId} is not held here.`);
    const checked = validatePdu(version, body);
    if (!checked.ok) return error(400, 'M_BAD_JSON', checked.message);
    const pdu = checked.pdu;
    if (pdu.room_id !== roomId || eventIdOf(version, pdu) !== eventId || pdu.type !== 'm.room.member') {
      return error(400, 'M_BAD_JSON', `The event is not the ${membership} the path names.`);
    }
    if (
      serverNameOf(pdu.sender) !== origin ||
      pdu.state_key !== pdu.sender ||
      pdu.content['membership'] !== membership
    ) {
      return error(400, 'M_BAD_JSON', `Only a ${membership} of a user of ${origin}, sent by that user, is taken.`);
    }
    // A leave's maker may not hold the room (an invite rejected before the room was taken in): this home fans
    // it out as if it had made it. Marked before it is accepted, as the fan-out may read it at once. (A joining
    // home takes the room in with its join and sends it on itself.)
    if (membership === 'leave') {
      this.#handedIn.add(eventId);
      if (this.#handedIn.size > HANDED_IN_REMEMBERED) this.#handedIn.delete(this.#handedIn.values().next().value!);
    }
    const outcome = await this.#receive(peer, origin, pdu);
    if (!outcome.ok) {
      this.#handedIn.delete(eventId);
      return error(403, 'M_FORBIDDEN', `The ${membership} was refused: ${outcome.message}`);
    }
    return { status: 200, body: membership === 'join' ? await this.#stateAndChain(roomId, eventId) : {} };
  }

  async #stateAndChain(roomId: string, eventId: string): Promise<{ state: Pdu[]; auth_chain: Pdu[] }> {
    const before = await this.#store.stateBefore(eventId);
    const ids = [...before.values()];
    const chain = await authChain([...ids, eventId], this.#store);
    for (const id of ids) chain.delete(id);
    const state = await this.#store.getEvents(ids);
    const auth = await this.#store.getEvents([...chain]);
    return {
      state: ids.map((id) => state.get(id)).filter((p): p is Pdu => p !== undefined),
      auth_chain: [...auth.values()],
    };
  }

  /** Whether `origin` may read a room here: one of its users is (or was invited) in it. */
  async #mayRead(origin: string, roomId: string): Promise<boolean> {
    const servers = await this.#store.roomServers(roomId, ['join', 'invite', 'leave', 'ban']);
    return servers.includes(origin) || (await this.#hosts(origin));
  }

  async #onState(origin: string, roomId: string, eventId: string, idsOnly: boolean): Promise<FederationResponse> {
    if (!(await this.#mayRead(origin, roomId))) return error(403, 'M_FORBIDDEN', `${origin} is not in ${roomId}.`);
    const held = (await this.#store.eventsByIds([eventId])).get(eventId);
    if (held === undefined || held.roomId !== roomId || held.streamOrdering === null) {
      return error(404, 'M_NOT_FOUND', `Event ${eventId} is not in the timeline of ${roomId} here.`);
    }
    const { state, auth_chain } = await this.#stateAndChain(roomId, eventId);
    const version = (await this.#store.roomVersion(roomId))!;
    if (idsOnly) {
      return {
        status: 200,
        body: {
          pdu_ids: state.map((p) => eventIdOf(version, p)),
          auth_chain_ids: auth_chain.map((p) => eventIdOf(version, p)),
        },
      };
    }
    return { status: 200, body: { pdus: state, auth_chain } };
  }

  async #onEvent(origin: string, eventId: string): Promise<FederationResponse> {
    const held = (await this.#store.eventsByIds([eventId])).get(eventId);
    if (held === undefined || held.rejected !== null || !(await this.#mayRead(origin, held.roomId))) {
      return error(404, 'M_NOT_FOUND', `Event ${eventId} is not held here.`);
    }
    return { status: 200, body: { origin: origin, origin_server_ts: Date.now(), pdus: [held.pdu] } };
  }

  /** `POST /get_missing_events`: walks back from `latest_events` to `earliest_events`, newest first, oldest out. */
  async #onMissingEvents(origin: string, roomId: string, body: Json): Promise<FederationResponse> {
    if (!(await this.#mayRead(origin, roomId))) return error(403, 'M_FORBIDDEN', `${origin} is not in ${roomId}.`);
    const earliest = new Set(stringList(body['earliest_events']));
    const latest = stringList(body['latest_events']);
    const limit = Math.max(1, Math.min(MISSING_EVENTS_LIMIT, Number(body['limit']) || 10));
    const minDepth = Number(body['min_depth']) || 0;
    const found = await this.#walkBack(roomId, latest, limit, (id) => earliest.has(id), minDepth, false);
    return { status: 200, body: { events: found } };
  }

  /** `GET /backfill`: the events `v` and before them, newest first. */
  async #onBackfill(origin: string, roomId: string, query: URLSearchParams): Promise<FederationResponse> {
    if (!(await this.#mayRead(origin, roomId))) return error(403, 'M_FORBIDDEN', `${origin} is not in ${roomId}.`);
    const limit = Math.max(1, Math.min(BACKFILL_LIMIT, Number(query.get('limit')) || 10));
    const found = await this.#walkBack(
      roomId,
      query.getAll('v').slice(0, EARLIEST_EVENTS),
      limit,
      () => false,
      0,
      true,
    );
    return { status: 200, body: { origin, origin_server_ts: Date.now(), pdus: found } };
  }

  /** Breadth-first over prev events from `from` (included when `inclusive`), at most `limit` events. */
  async #walkBack(
    roomId: string,
    from: string[],
    limit: number,
    stop: (id: string) => boolean,
    minDepth: number,
    inclusive: boolean,
  ): Promise<Pdu[]> {
    const seen = new Set<string>();
    const out: StoredRoomEvent[] = [];
    let level = inclusive ? from.slice(0, EARLIEST_EVENTS) : [];
    if (!inclusive) {
      const starts = await this.#store.eventsByIds(from.slice(0, EARLIEST_EVENTS));
      for (const event of starts.values()) if (event.roomId === roomId) level.push(...event.pdu.prev_events);
    }
    while (level.length > 0 && out.length < limit) {
      const ids = [...new Set(level)].filter((id) => !seen.has(id) && !stop(id));
      for (const id of ids) seen.add(id);
      const held = await this.#store.eventsByIds(ids);
      const next: string[] = [];
      for (const id of ids) {
        const event = held.get(id);
        if (event === undefined || event.roomId !== roomId || event.rejected !== null || event.depth < minDepth)
          continue;
        if (out.length >= limit) break;
        out.push(event);
        next.push(...event.pdu.prev_events);
      }
      level = next;
    }
    return out.sort((a, b) => a.depth - b.depth).map((e) => e.pdu);
  }

  // ---- Backfill: older events of a held room, for /messages ----

  async backfill(actor: RoomActor, roomId: string, limit: number, from?: readonly string[]): Promise<number> {
    const version = await this.#store.roomVersion(roomId);
    if (version === null) return 0;
    const gaps =
      from === undefined
        ? await this.#store.missingPrevEvents(roomId, EARLIEST_EVENTS)
        : from.slice(0, EARLIEST_EVENTS);
    if (gaps.length === 0) return 0;
    const want = Math.max(1, Math.min(BACKFILL_LIMIT, Math.floor(limit)));
    for (const peer of await this.#backfillPeers(actor.serverName, roomId)) {
      try {
        const answer = await this.#request(peer, actor.serverName, {
          method: 'GET',
          path: `/_matrix/federation/v1/backfill/${encodeURIComponent(roomId)}`,
          query: { v: gaps, limit: String(want) },
          timeoutMs: BACKFILL_TIMEOUT_MS,
        });
        const pdus = (answer.body as { pdus?: unknown }).pdus;
        if (answer.status !== 200 || !Array.isArray(pdus)) continue;
        let taken = 0;
        let fetches = 0;
        for (const json of pdus.slice(0, BACKFILL_LIMIT)) {
          const pdu = json as Partial<Pdu>;
          if (typeof pdu !== 'object' || pdu === null || pdu.room_id !== roomId) continue;
          await this.#learnSigners(pdu, peer);
          let outcome = await this.#engine.ingestBackfilled(version, json);
          // Auth events of old events (a power level since replaced) may not be held: fetched from the same home.
          if (!outcome.ok && outcome.code === 'missing_auth_event' && fetches < BACKFILL_AUTH_FETCHES) {
            fetches += await this.#fetchAuthEvents(peer, actor.serverName, version, pdu as Pdu);
            outcome = await this.#engine.ingestBackfilled(version, json);
          }
          if (outcome.ok && outcome.inserted) taken += 1;
          else if (!outcome.ok) this.#refused(outcome.stage, outcome.message, peer, outcome.eventId);
        }
        if (taken > 0) {
          this.stats.backfilled += taken;
          return taken;
        }
      } catch (err) {
        this.#logger.debug({ err, roomId, peer }, 'a home could not backfill a room');
      }
    }
    return 0;
  }

  /** The homes to backfill a room from: the account's own homes first (connected, server), then the room's. */
  async #backfillPeers(account: string, roomId: string): Promise<string[]> {
    const connected = new Set(this.#host.getConnections().map((c) => c.remotePeer.toString()));
    const ordered = (homes: ReadonlyArray<{ peer_id: string; role: string }>): string[] =>
      [...homes]
        .filter((h) => h.peer_id !== this.peerId)
        .sort(
          (a, b) =>
            Number(connected.has(b.peer_id)) - Number(connected.has(a.peer_id)) ||
            Number(b.role === 'server') - Number(a.role === 'server'),
        )
        .map((h) => h.peer_id);
    const peers = ordered((await this.#documents.document(account))?.homes ?? []);
    for (const server of await this.#store.roomServers(roomId, ['join'])) {
      if (server === account) continue;
      for (const peer of ordered((await this.#documents.document(server))?.homes ?? [])) {
        if (!peers.includes(peer)) peers.push(peer);
      }
    }
    return peers.slice(0, BACKFILL_PEERS);
  }

  /** Fetches the auth events of `pdu` not held here from `peer`, each kept as an outlier; returns how many. */
  async #fetchAuthEvents(peer: string, origin: string, version: RoomVersionId, pdu: Pdu): Promise<number> {
    const held = await this.#store.eventsByIds(pdu.auth_events);
    let fetched = 0;
    for (const id of pdu.auth_events) {
      if (held.has(id)) continue;
      const answer = await this.#request(peer, origin, {
        method: 'GET',
        path: `/_matrix/federation/v1/event/${encodeURIComponent(id)}`,
        timeoutMs: BACKFILL_TIMEOUT_MS,
      });
      const event = answer.status === 200 ? (answer.body as { pdus?: unknown[] }).pdus?.[0] : undefined;
      fetched += 1;
      if (event === undefined) continue;
      await this.#learnSigners(event as Partial<Pdu>, peer);
      const outcome = await this.#engine.ingestOutlier(version, event);
      if (!outcome.ok) this.#refused(outcome.stage, outcome.message, peer, outcome.eventId);
    }
    return fetched;
  }

  // ---- Taking in the rooms of an account that this home does not hold ----

  /**
   * Takes in rooms a hosted account is joined or invited to that this home does not hold: joined on another
   * home of the account before this home was added to it, or while their events could not reach it. The
   * account's other homes are asked, connected ones and server homes first: their `make_join` template names
   * their latest events of the room, and each is taken in as a received event is (the state at it from
   * `/state`, gaps from `get_missing_events`). A room no home could give is tried again when one of the
   * account's homes connects. Resolves with the rooms held afterwards and those still waiting.
   */
  async takeInRooms(account: string, roomIds: readonly string[]): Promise<{ taken: string[]; waiting: string[] }> {
    const taken: string[] = [];
    const waiting: string[] = [];
    for (const roomId of roomIds.slice(0, TAKE_IN_ROOMS_PER_CALL)) {
      if (this.#stopped) break;
      const key = `${account} ${roomId}`;
      const running = this.#takingIn.get(key);
      if (running !== undefined) {
        // Taken in by another call now (the background one, or a client's request): its outcome is this one's.
        await running;
        if (await this.#engine.holds(roomId)) taken.push(roomId);
        else waiting.push(roomId);
        continue;
      }
      let done!: () => void;
      this.#takingIn.set(key, new Promise<void>((resolve) => (done = resolve)));
      try {
        if (await this.#engine.holds(roomId)) {
          this.#toTakeIn.get(account)?.delete(roomId);
        } else if (await this.#takeInRoomOf(account, roomId)) {
          taken.push(roomId);
          this.stats.takenIn += 1;
          this.#toTakeIn.get(account)?.delete(roomId);
        } else {
          waiting.push(roomId);
          const pending = this.#toTakeIn.get(account) ?? new Set<string>();
          if (pending.size < TAKE_IN_PENDING_PER_ACCOUNT) pending.add(roomId);
          this.#toTakeIn.set(account, pending);
        }
      } finally {
        this.#takingIn.delete(key);
        done();
      }
    }
    if (taken.length > 0 || waiting.length > 0) {
      this.#logger.info({ account, taken: taken.length, waiting: waiting.length }, "took in the account's rooms");
    }
    return { taken, waiting };
  }

  async #takeInRoomOf(account: string, roomId: string): Promise<boolean> {
    const document = await this.#documents.document(account);
    if (document === undefined || homeStatus(document, this.peerId).kind !== 'home') return false;
    const connected = new Set(this.#host.getConnections().map((c) => c.remotePeer.toString()));
    const homes = document.homes
      .filter((h) => h.peer_id !== this.peerId)
      .sort(
        (a, b) =>
          Number(connected.has(b.peer_id)) - Number(connected.has(a.peer_id)) ||
          Number(b.role === 'server') - Number(a.role === 'server'),
      );
    for (const home of homes) {
      try {
        if (await this.#takeInFrom(home.peer_id, account, document.user_id, roomId)) return true;
      } catch (err) {
        this.#logger.debug({ err, account, roomId, peer: home.peer_id }, 'a home could not give a room');
      }
    }
    return false;
  }

  /** The room from one home of the account: its latest events (make_join's prev_events), each taken in. */
  async #takeInFrom(peer: string, account: string, userId: string, roomId: string): Promise<boolean> {
    const made = await this.#request(peer, account, {
      method: 'GET',
      path: `/_matrix/federation/v1/make_join/${encodeURIComponent(roomId)}/${encodeURIComponent(userId)}`,
      query: { ver: [...SUPPORTED_ROOM_VERSIONS] },
      timeoutMs: TAKE_IN_TIMEOUT_MS,
    });
    if (made.status !== 200) return false;
    const template = (made.body as { event?: { prev_events?: unknown } }).event;
    const latest = Array.isArray(template?.prev_events) ? template.prev_events.slice(0, LIMITS.prevEvents) : [];
    for (const id of latest) {
      if (typeof id !== 'string') continue;
      const answer = await this.#request(peer, account, {
        method: 'GET',
        path: `/_matrix/federation/v1/event/${encodeURIComponent(id)}`,
        timeoutMs: TAKE_IN_TIMEOUT_MS,
      });
      const pdu = answer.status === 200 ? (answer.body as { pdus?: unknown[] }).pdus?.[0] : undefined;
      if (pdu === undefined) continue;
      const outcome = await this.#receive(peer, account, pdu, 'adopt');
      if (!outcome.ok) this.#refused(outcome.stage, outcome.message, peer, outcome.eventId);
    }
    return this.#engine.holds(roomId);
  }

  /**
   * How far another home of an account (`peer`) is behind this one in the account's joined rooms: the rooms
   * held here where the account's users are joined, and those of them where `peer` lacks an event held here,
   * asked with `/event` as the account for the room's newest `ROOM_HISTORY_CHECKED` timeline events (a room
   * `peer` could not be asked about counts as behind). What `peer` lacks is offered to it (`/send`, oldest first):
   * it takes a room it does not hold in from this home, and keeps an older event as one it had missed. A
   * migration repeats this until nothing is behind. At most `ROOMS_BEHIND_CHECKED` rooms.
   */
  async roomsBehind(account: string, peer: string): Promise<{ rooms: number; behind: string[] }> {
    const joined = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page = await this.#store.roomsOfServer(account, { memberships: ['join'], after, limit: 500 });
      for (const row of page) joined.add(row.roomId);
      if (page.length < 500 || joined.size >= ROOMS_BEHIND_CHECKED) break;
      after = page[page.length - 1]!.roomId;
    }
    const behind: string[] = [];
    let rooms = 0;
    for (const roomId of [...joined].slice(0, ROOMS_BEHIND_CHECKED)) {
      if (this.#stopped) break;
      if (!(await this.#engine.holds(roomId))) continue;
      rooms += 1;
      const missing: Pdu[] = [];
      let from: string | undefined;
      for (let seen = 0; seen < ROOM_HISTORY_CHECKED;) {
        const page = await this.#store.messages(roomId, {
          dir: 'b',
          limit: 100,
          ...(from === undefined ? {} : { from }),
        });
        for (const event of page.events) {
          const answer = await this.#request(peer, account, {
            method: 'GET',
            path: `/_matrix/federation/v1/event/${encodeURIComponent(event.eventId)}`,
            timeoutMs: TAKE_IN_TIMEOUT_MS,
          }).catch(() => undefined);
          if (answer?.status !== 200) missing.push(event.pdu);
        }
        seen += page.events.length;
        if (page.end === null || page.events.length === 0) break;
        from = page.end;
      }
      if (missing.length === 0) continue;
      behind.push(roomId);
      // Oldest first, a transaction at a time.
      missing.reverse();
      for (let k = 0; k < missing.length; k += MAX_PDUS_PER_TXN) {
        await this.#offer(peer, account, missing.slice(k, k + MAX_PDUS_PER_TXN));
      }
    }
    return { rooms, behind };
  }

  /** Sends another home of the account events held here (`/send` as the account); failures are for the next round. */
  async #offer(peer: string, account: string, pdus: readonly Pdu[]): Promise<void> {
    await this.#request(peer, account, {
      method: 'PUT',
      path: `/_matrix/federation/v1/send/${encodeURIComponent(`offer.${Date.now()}.${++this.#txn}`)}`,
      body: { origin: account, origin_server_ts: Date.now(), pdus, edus: [] },
      timeoutMs: TAKE_IN_TIMEOUT_MS,
    }).catch((err: unknown) => this.#logger.debug({ err, account, peer }, 'events were not offered to a home'));
  }

  /** The rooms waiting to be taken in for the accounts `peer` is a home of. */
  async #retryTakeIn(peer: string): Promise<void> {
    for (const [account, rooms] of [...this.#toTakeIn]) {
      if (rooms.size === 0) {
        this.#toTakeIn.delete(account);
        continue;
      }
      const document = await this.#documents.document(account);
      if (!document?.homes.some((h) => h.peer_id === peer)) continue;
      await this.takeInRooms(account, [...rooms]);
    }
  }

  // ---- Helpers ----

  /** One federation request as `origin` (an account hosted here). */
  async #request(
    peer: string,
    origin: string,
    init: {
      method: string;
      path: string;
      query?: Record<string, string | readonly string[]>;
      body?: unknown;
      timeoutMs?: number;
      maxResponseBytes?: number;
    },
  ): Promise<FederationResponse> {
    await this.#knowAddresses(peer);
    return federationRequest(this.#host, peer, { ...init, query: { ...init.query, origin } });
  }

  /** Puts the addresses the documents give a home into the peer store (once per change), so a dial finds it. */
  async #knowAddresses(peer: string): Promise<void> {
    const addrs = this.#documents.addressesOf(peer);
    const key = addrs.join(' ');
    if (addrs.length === 0 || this.#known.get(peer) === key) return;
    try {
      await rememberPeerAddresses(this.#host, peer, addrs);
      this.#known.set(peer, key);
    } catch (err) {
      this.#logger.debug({ err, peer }, 'the addresses of a home could not be kept');
    }
  }

  /**
   * A document from a home (`fromPeer`), or else from the DHT and then from the server homes of the accounts
   * hosted here (they keep the documents of everyone in their rooms, and answer when the DHT lost a record).
   */
  async #fetchDocument(serverName: string, fromPeer: string | undefined): Promise<unknown> {
    if (fromPeer !== undefined) return this.#documentFrom(fromPeer, serverName);
    const found = await this.#discovery?.fetchDocument(serverName).catch(() => undefined);
    if (found !== undefined) return found;
    const asked = new Set<string>([this.peerId]);
    for (const account of this.#hosted().slice(0, 16)) {
      const document = await this.#documents.document(account);
      for (const home of document?.homes ?? []) {
        if (home.role !== 'server' || asked.has(home.peer_id)) continue;
        asked.add(home.peer_id);
        const answer = await this.#documentFrom(home.peer_id, serverName).catch(() => undefined);
        if (answer !== undefined) return answer;
      }
    }
    return undefined;
  }

  async #documentFrom(peer: string, serverName: string): Promise<unknown> {
    await this.#knowAddresses(peer);
    const answer = await federationRequest(this.#host, peer, {
      method: 'GET',
      path: `/_polyhome/federation/v1/document/${encodeURIComponent(serverName)}`,
      timeoutMs: 10_000,
    });
    return answer.status === 200 ? (answer.body as { document?: unknown }).document : undefined;
  }

  /** Whether an account is hosted here (its held document names this home). */
  async #hosts(serverName: string, documents: DocumentReader = this.#documents): Promise<boolean> {
    const document = await documents.document(serverName);
    return document !== undefined && homeStatus(document, this.peerId).kind === 'home';
  }

  /** Whether this home is a server home (always on) of an account. */
  async #serverHomeOf(serverName: string, documents: DocumentReader = this.#documents): Promise<boolean> {
    const document = await documents.document(serverName);
    const status = document === undefined ? undefined : homeStatus(document, this.peerId);
    return status?.kind === 'home' && status.home.role === 'server';
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => this.#logger.error({ err }, 'federation work failed'));
    this.#work.add(tracked);
    void tracked.finally(() => this.#work.delete(tracked));
  }
}

/** What carries EDUs for the home (its Ephemeral): local EDUs out, received ones in. */
export interface EduCarrier {
  onLocalEdu(listener: (local: { edu: { edu_type: string; content: unknown }; roomId?: string }) => void): void;
  /** `retry`: nothing of the EDU was taken for now; the sender should send it again later. */
  receiveEdu(
    origin: string,
    edu: unknown,
  ): Promise<{ accepted: number; refused: string[]; retry?: { reason: string; retryAfterMs: number } }>;
}

/** `retry_after_ms` of an EDU refused for now because an earlier one of its sender was. */
const EDU_RETRY_AFTER_MS = 10_000;

/** The type and sender of an EDU that names one (`content.sender`), as a key. */
function eduSenderKey(edu: unknown): string | undefined {
  if (typeof edu !== 'object' || edu === null) return undefined;
  const { edu_type: type, content } = edu as { edu_type?: unknown; content?: unknown };
  const sender = typeof content === 'object' && content !== null ? (content as { sender?: unknown }).sender : undefined;
  return typeof type === 'string' && typeof sender === 'string' ? `${type}\n${sender}` : undefined;
}

/** The server an EDU speaks for: the user's of a typing notice, the first receipt's, the first presence's. */
function eduOrigin(edu: { edu_type: string; content: unknown }): string | undefined {
  const content = edu.content as Record<string, unknown> | undefined;
  if (content === undefined || typeof content !== 'object') return undefined;
  if (edu.edu_type === 'm.typing') return serverNameOf(content['user_id']);
  if (edu.edu_type === 'm.receipt') {
    for (const room of Object.values(content)) {
      const users = Object.keys(((room as Record<string, unknown>)['m.read'] ?? {}) as object);
      if (users[0] !== undefined) return serverNameOf(users[0]);
    }
    return undefined;
  }
  const push = content['push'];
  return Array.isArray(push) ? serverNameOf((push[0] as { user_id?: unknown } | undefined)?.user_id) : undefined;
}

/** Where account documents are read from. */
type DocumentReader = Pick<FederationDocuments, 'document'>;

/** A reader that reads each account's document once (for one batch of work). */
function memoDocuments(documents: DocumentReader): DocumentReader {
  const held = new Map<string, ReturnType<DocumentReader['document']>>();
  return {
    document(serverName) {
      let document = held.get(serverName);
      if (document === undefined) {
        document = documents.document(serverName);
        held.set(serverName, document);
      }
      return document;
    },
  };
}

/** The PeerId that made an event: the key id of its sender server's signature (`ed25519:<PeerId>`). */
function makerOf(pdu: Pdu, sender: string): string | undefined {
  const keys = Object.keys(pdu.signatures?.[sender] ?? {});
  const key = keys.find((k) => k.startsWith('ed25519:') && k !== 'ed25519:root');
  return key?.slice('ed25519:'.length);
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string').slice(0, 1_000) : [];
}

function describe(body: unknown): string {
  const b = body as { errcode?: unknown; error?: unknown } | undefined;
  return typeof b?.error === 'string'
    ? `${String(b.errcode ?? '')} ${b.error}`.trim()
    : JSON.stringify(body).slice(0, 200);
}

function error(status: number, errcode: string, message: string, extra: Json = {}): FederationResponse {
  return { status, body: { errcode, error: message, ...extra } };
}

function notFound(path: string): FederationResponse {
  return error(404, 'M_UNRECOGNIZED', `Unrecognised federation request: ${path}`);
}

function refusal(stage: 'format' | 'missing', code: string, message: string): AcceptOutcome {
  return { ok: false, stage, code, message, stored: 'dropped' };
}
