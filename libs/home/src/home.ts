import {
  hashAndSignEvent,
  homeStatus,
  parseUserId,
  peerIdFromPublicKey,
  type AccountDocument,
  type MatrixEvent,
  type SecretKey,
} from '@polyhome/identity';
import type {
  MatrixAccountState,
  MatrixEphemeralPort,
  MatrixHomePort,
  MatrixLocalChange,
  MatrixRemoteKeysPort,
  MatrixRoomsPort,
  MatrixRoomVersion,
  MatrixStateRow,
  MatrixToDevicePort,
} from '@polyhome/matrix';
import { MatrixError } from '@polyhome/matrix/errors';
import {
  checkPairingProof,
  createPolyhomeHost,
  createSyncService,
  newPairingCode,
  normalizePairingCode,
  pairingNonce,
  PairingHandler,
  requestPairingProof,
  dhtPeerCount,
  type Discovery,
  type SeqGuardStore,
  type PolyhomeHost,
  type PolyhomeHostInit,
  type ResyncOptions,
  type ResyncProgress,
  type SessionInfo,
  type SyncService,
} from '@polyhome/p2p';
import type { Job, QueueBackend } from '@polyhome/queue';
import { stateKey, type Op, type StateSummary, type VersionVector } from '@polyhome/sync';
import { AckRecorder } from './ack-recorder.js';
import { BackgroundWork } from './background.js';
import {
  addHomeToAccount,
  changeAccountDocument,
  departureDocument,
  removeHomeFromAccount,
  type NewHome,
} from './documents.js';
import { HomeStoppingError, InvalidPairingCodeError, NotConnectedError } from './errors.js';
import { HomeEvents, type HomeEventMap } from './events.js';
import { discoveryOf } from './transient-host.js';
import { LocalChangeRefusedError, LocalOpWriter, type LocalChange } from './local-op-writer.js';
import { PAIRING_MAX_FAILURES, PairingCodes, type PairingCodeStore, type PairingState } from './pairing.js';
import { SILENT_LOGGER, type HomeAccounts, type HomeLogger, type HomeStore } from './ports.js';
import type { RoomStore } from './room-store.js';
import { RoomEngine } from './rooms/engine.js';
import type { RoomBlockStore } from './rooms/room-blocks.js';
import { RoomFederation, type RoomFederationInit } from './rooms/federation.js';
import { FederationDocuments } from './rooms/federation-documents.js';
import type { OneTimeKeyStore } from './rooms/federation-keys.js';
import { Ephemeral } from './ephemeral/ephemeral.js';
import type { ReceiptStore } from './ephemeral/receipt-store.js';
import { eduCarrier } from './to-device/edu-carrier.js';
import { ToDevice, type ToDeviceInit } from './to-device/to-device.js';
import type { ToDeviceStore } from './to-device/to-device-store.js';

/** The code of a sync session refused because this home does not hold the account. */
export const NOT_A_HOME = 'NOT_A_HOME';
/** Accounts hosted on the sync service per page, at start. */
const HOST_PAGE = 5000;
/** Accounts read per page when all of them are announced. */
const ANNOUNCE_PAGE = 500;
/** Accounts whose server homes a client home considers as relays (a client home hosts one or a few). */
const RELAY_ACCOUNTS = 16;
/** Equivocations a home remembers having reported (the oldest is forgotten first). */
const EQUIVOCATIONS_REMEMBERED = 1024;
/**
 * How long after a membership set on another home of the account a room this home does not hold is taken in
 * from the account's homes: the room's own events, fanned out to every home, usually arrive first.
 */
const TAKE_IN_DELAY_MS = 5_000;
/** Accounts in rooms read per query by the start-up's taking in of rooms. */
const TAKE_IN_PAGE = 500;
/** The job queue of DHT announcements. */
export const ANNOUNCE_QUEUE = 'dht';
/** The repeatable job that re-announces the accounts due, a slot of the period at a time. */
const REANNOUNCE_SCHEDULE = 'republish-all';
/** Slots the republish period is cut into: each account is republished in one of them (see republishSlot). */
export const REPUBLISH_SLOTS = 60;

/**
 * The slot of the republish period an account is republished in: a hash of its name, so the accounts are
 * spread evenly over the period and each keeps its offset across restarts.
 */
export function republishSlot(account: string, slots = REPUBLISH_SLOTS): number {
  // FNV-1a over the name's UTF-16 units: cheap, stable, and server names are already random (a key's hash).
  let hash = 0x811c9dc5;
  for (let i = 0; i < account.length; i++) {
    hash ^= account.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % slots;
}

/** What a Home is built from. */
export interface HomeComponents {
  /** This home's node key: its PeerId, and the key its ops and events are signed with. */
  nodeKey: SecretKey;
  /** The account, state, replica and delivery stores (the SQL replica store of `@polyhome/storage` is all). */
  store: HomeStore;
  /** The job queue (BullMQ on the server, in-process on a client-side home). */
  queue: QueueBackend;
  logger?: HomeLogger;
  /**
   * Where the DHT replay guard keeps the highest document seq of the accounts this home hosts or looked up
   * (the SQL store of `@polyhome/storage`), so a replayed older document is refused after a restart too.
   * Unset: in memory.
   */
  seqGuard?: SeqGuardStore;
  /**
   * Where the Matrix rooms of the hosted accounts are kept (`repositories.rooms` of `@polyhome/storage`). Given,
   * the home runs the room engine and its Matrix port exposes it as `rooms`; unset, it has no rooms.
   */
  rooms?: RoomStore;
  /**
   * Where read receipts are kept (`repositories.receipts` of `@polyhome/storage`). Given with `rooms`, the home
   * serves typing, receipts and presence (`ephemeral`); unset, its Matrix port has none.
   */
  receipts?: ReceiptStore;
  /**
   * Where the one-time and fallback keys uploaded to this home are kept (`repositories.matrix` of
   * `@polyhome/storage`, the Matrix client API's store): other homes claim them over federation. Unset: this home
   * answers key claims with no keys.
   */
  oneTimeKeys?: OneTimeKeyStore;
  /**
   * Where to-device messages are kept (`repositories.toDevice` of `@polyhome/storage`). Given with `rooms`, the
   * home carries them (`toDevice`); unset, its Matrix port has none.
   */
  toDevice?: ToDeviceStore;
  /**
   * The rooms an operator blocked on this home (`repositories.roomBlocks` of `@polyhome/storage`): the room
   * engine refuses joins and invites of users hosted here into them. Unset: no room is blocked.
   */
  roomBlocks?: RoomBlockStore;
}

/** The options of a Home: the differences between a server home and a client-side home are all here. */
export interface HomeInit {
  /** libp2p listen multiaddrs. */
  listen: string[];
  /** Multiaddrs with /p2p/<PeerId> of DHT peers to dial at start. */
  bootstrap?: string[];
  /** Further libp2p host options (connection gater, limits). */
  host?: Omit<PolyhomeHostInit, 'nodeKey' | 'listen' | 'bootstrap'>;
  /**
   * How often every account is announced again in the DHT (provider records and documents expire). The period
   * is cut into `republishSlots` slots; each account is republished in its own (republishSlot), not all at once.
   */
  announceEveryMs: number;
  /** Slots of the republish period (default REPUBLISH_SLOTS; at most announceEveryMs). */
  republishSlots?: number;
  /** Also announce every account this long after start (a client home; a server waits for its schedule). */
  announceAtStartMs?: number;
  /** Re-dial every account's homes this often (a client home); unset: only on demand. */
  reconnectEveryMs?: number;
  /** At start, offer every home of every account the document held here (a client home restored elsewhere). */
  offerDocumentsAtStart?: boolean;
  /**
   * Take in the account of a home that opens a session for an account not held here, when this home holds
   * none yet, the account's document names it, and that home proves the pairing code of `pairing` (a client
   * home made with `init --join`). Without `pairing` no account is taken in.
   */
  adoptWhenEmpty?: boolean;
  /** The pairing code of a joining home: adoption takes only an account whose offering home proves it. */
  pairing?: PairingCodeStore;
  /** Delivery retry delays of room federation. */
  federation?: RoomFederationInit;
  /** Limits and retry delays of to-device messages. */
  toDevice?: ToDeviceInit;
}

/**
 * One home: the libp2p host, the sync service, discovery and the local op writer over the store and queue
 * ports. The server runs it behind a Nest provider, the client-side node in its process; both use only this.
 */
export class Home {
  readonly events = new HomeEvents();
  readonly #background: BackgroundWork;
  readonly #acks: AckRecorder;
  readonly #writer: LocalOpWriter;
  readonly #logger: HomeLogger;
  readonly #unsubscribe: Array<() => void> = [];
  readonly #timers: NodeJS.Timeout[] = [];
  /** Rooms to look at for taking in, by account, once TAKE_IN_DELAY_MS has passed (see #followMemberships). */
  readonly #takeInSoon = new Map<string, Set<string>>();
  /** The documents room federation reads (hosted ones are kept in memory for a moment: see forgetHosted). */
  readonly #documents: FederationDocuments | undefined;
  readonly #adopting = new Set<string>();
  /** Equivocations already reported (account, seq and digests), oldest first. */
  readonly #equivocations = new Set<string>();
  /** Codes this home's user gave it for the nodes it adds; it proves them when such a node asks. */
  readonly #pairingCodes = new PairingCodes();
  readonly #pairingHandler: PairingHandler;
  /** Pairing checks one at a time: the count of wrong proofs is read and written whole. */
  #pairingTurn: Promise<unknown> = Promise.resolve();
  /** Refused adoptions already logged, by account and reason (each is logged once). */
  readonly #refusedAdoptions = new Set<string>();
  #started = false;
  #stopped = false;
  /** The last republish slot done (counted from the epoch), undefined before the first. */
  #lastSlot: number | undefined;
  /** Aborted by cancelWork() (and stop()): every DHT query of the announcements ends with it. */
  readonly #work = new AbortController();
  /** This home's PeerId. */
  readonly peerId: string;
  /** The room engine over `components.rooms` (the Matrix port's `rooms`), when the home has a room store. */
  readonly rooms: RoomEngine | undefined;
  /** Federation of the rooms with other homes (of this account and others), when the home has a room store. */
  readonly federation: RoomFederation | undefined;
  /** Typing, receipts and presence (with the EDU seams for federation), when the home has rooms and receipts. */
  readonly ephemeral: Ephemeral | undefined;
  /** To-device messages (the inbox of the devices hosted here and the outbox to other homes), with federation. */
  readonly toDevice: ToDevice | undefined;

  private constructor(
    readonly host: PolyhomeHost,
    private readonly sync: SyncService,
    readonly discovery: Discovery,
    private readonly components: HomeComponents,
    private readonly init: HomeInit,
  ) {
    this.peerId = peerIdFromPublicKey(components.nodeKey.publicKey);
    this.#logger = components.logger ?? SILENT_LOGGER;
    this.#background = new BackgroundWork(this.#logger);
    this.#acks = new AckRecorder(
      (account, peerId, vv) => this.components.store.recordAck(account, peerId, vv),
      (work) => this.#background.track(work, 'recording an ack'),
    );
    this.#writer = new LocalOpWriter(components.store, this.peerId, components.nodeKey);
    const documents =
      components.rooms === undefined ? undefined : new FederationDocuments(components.store, components.rooms);
    this.#documents = documents;
    this.rooms =
      components.rooms === undefined || documents === undefined
        ? undefined
        : new RoomEngine({
            store: components.rooms,
            documents,
            nodeKey: components.nodeKey,
            // The account's own memberships replicate as ops, so its other homes list its rooms.
            onOwnMembership: async (account, roomId, membership, event) => {
              try {
                await this.applyLocal(account, [
                  { op: 'member.set', key: roomId, body: { room_id: roomId, membership, event } },
                ]);
              } catch (err) {
                this.#logger.warn({ err, account, roomId }, 'the membership was not replicated');
              }
            },
            // A client's request for a room of the account not held here yet takes it in then and there.
            takeIn: (actor, roomId) => this.#takeInRooms(actor.serverName, [roomId]),
            ...(components.roomBlocks === undefined ? {} : { blocks: components.roomBlocks }),
          });
    this.federation =
      this.rooms === undefined || components.rooms === undefined || documents === undefined
        ? undefined
        : new RoomFederation(
            {
              host,
              engine: this.rooms,
              store: components.rooms,
              documents,
              nodeKey: components.nodeKey,
              discovery,
              hosted: () => this.hosted(),
              keys: {
                accounts: components.store,
                ...(components.oneTimeKeys !== undefined ? { oneTimeKeys: components.oneTimeKeys } : {}),
                onClaimed: (account, deviceIds) =>
                  this.events.emit('local-changed', { account, keys: deviceIds.map((d) => `keys:${d}`) }),
                onUserKeysChanged: (account, userId) =>
                  this.events.emit('local-changed', { account, keys: [`user_keys:${userId}`] }),
              },
              logger: this.#logger,
            },
            init.federation,
          );
    this.ephemeral =
      this.rooms === undefined || components.receipts === undefined
        ? undefined
        : new Ephemeral({ rooms: this.rooms, receipts: components.receipts });
    const federation = this.federation;
    this.toDevice =
      federation === undefined || components.toDevice === undefined || documents === undefined
        ? undefined
        : new ToDevice(
            {
              peerId: this.peerId,
              host,
              store: components.toDevice,
              state: (serverName) => components.store.state(serverName),
              documents,
              transmit: (peer, origin, edus, timeoutMs) => federation.sendEdus(peer, origin, edus, timeoutMs),
              logger: this.#logger,
            },
            init.toDevice,
          );
    if (this.ephemeral !== undefined || this.toDevice !== undefined) {
      federation?.carryEdus(eduCarrier(this.ephemeral, this.toDevice));
    }
    this.#pairingHandler = new PairingHandler(
      host,
      this.peerId,
      (account, joiner) => this.#pairingCodes.lookup(account, joiner),
      this.#logger,
    );
  }

  /** Starts the libp2p host and the sync service (listening; no account hosted until start()). */
  static async create(components: HomeComponents, init: HomeInit): Promise<Home> {
    const host = await createPolyhomeHost({
      ...init.host,
      ...(components.seqGuard !== undefined
        ? { recordGuard: { ...init.host?.recordGuard, store: components.seqGuard } }
        : {}),
      nodeKey: components.nodeKey,
      listen: init.listen,
      bootstrap: init.bootstrap ?? [],
      logger: components.logger,
    });
    try {
      const sync = createSyncService(host, { logger: components.logger });
      await sync.start();
      const home = new Home(host, sync, discoveryOf(host, components.logger), components, init);
      await home.#pairingHandler.start();
      return home;
    } catch (err) {
      await host.stop();
      throw err;
    }
  }

  /** The libp2p listen addresses with /p2p/<PeerId>. */
  addrs(): string[] {
    return this.host.getMultiaddrs().map((a) => a.toString());
  }

  /** Whether the libp2p host runs. */
  isRunning(): boolean {
    return this.host.status === 'started';
  }

  /** Whether a peer has an open connection to this home. */
  isConnected(peerId: string): boolean {
    return this.host.getConnections().some((c) => c.remotePeer.toString() === peerId);
  }

  /** The accounts hosted on the sync service. */
  hosted(): string[] {
    return this.sync.hosted();
  }

  /** Open sync sessions, of one account or all. */
  sessions(account?: string): SessionInfo[] {
    return this.sync.sessions(account);
  }

  /** What each connected home of the account last said it holds (from its hello and acks), by PeerId. */
  liveVectors(account: string): Map<string, VersionVector> {
    const out = new Map<string, VersionVector>();
    for (const session of this.sync.sessions(account)) out.set(session.peerId, { ...session.peerVector });
    return out;
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof HomeEventMap>(event: K, listener: (detail: HomeEventMap[K]) => void): () => void {
    return this.events.on(event, listener);
  }

  /**
   * Wires the sync events, hosts every account of the store (a page of accounts with their homes per query),
   * takes announcement jobs from the queue and starts the periodic work of the profile.
   */
  async start(): Promise<void> {
    const { sync, host } = this;
    // The homes of the hosted accounts are exempt from the connection guard's stranger limits and tagged so
    // the pruner keeps them; a revoked home is a stranger again.
    const guard = host.services.connectionGuard;
    guard.addHomes(sync.homePeers());
    this.#unsubscribe.push(
      sync.on('homes', ({ added, removed }) => {
        guard.removeHomes(removed);
        guard.addHomes(added);
      }),
      sync.on('acked', ({ account, peerId, vv, recorded }) => {
        if (recorded !== true) this.#acks.record(account, peerId, vv);
      }),
      sync.on('applied', (detail) => {
        if (detail.document !== undefined) this.#documents?.primeHosted(detail.account, detail.document);
        this.events.emit('applied', detail);
        this.#changed(detail.account, detail.changed);
        this.#deviceListChanged(detail.account, detail.changed, false);
        this.#followMemberships(detail.account, detail.changed);
      }),
      sync.on('document', (detail) => this.#documentIn(detail.account, detail)),
      sync.on('equivocation', (detail) => {
        // The root key signed two documents of one seq: its holder lost it or misuses it. The held one stays
        // in force here; the owner of the account must be told (the server flags it for its admin). Told once
        // per pair of documents, so a peer offering it again and again floods neither the log nor the flag.
        const key = `${detail.account}:${detail.seq}:${detail.digests.join(':')}`;
        if (this.#equivocations.has(key)) return;
        this.#equivocations.add(key);
        if (this.#equivocations.size > EQUIVOCATIONS_REMEMBERED) {
          this.#equivocations.delete(this.#equivocations.values().next().value!);
        }
        this.#logger.warn(
          { account: detail.account, seq: detail.seq, digests: detail.digests, peer: detail.peerId },
          'account document equivocation: the root key signed two documents with the same seq',
        );
        this.events.emit('equivocation', detail);
      }),
      sync.on('rejected', (detail) => {
        this.events.emit('rejected', detail);
        if (detail.code === NOT_A_HOME && this.init.adoptWhenEmpty === true) {
          this.#background.track(this.adopt(detail.account, detail.peerId), 'adoption');
        }
      }),
    );
    const onConnect = (event: CustomEvent<{ toString(): string }>): void =>
      this.events.emit('peer:connect', { peerId: event.detail.toString(), peers: host.getPeers().length });
    const onDisconnect = (event: CustomEvent<{ toString(): string }>): void =>
      this.events.emit('peer:disconnect', { peerId: event.detail.toString(), peers: host.getPeers().length });
    host.addEventListener('peer:connect', onConnect);
    host.addEventListener('peer:disconnect', onDisconnect);
    this.#unsubscribe.push(
      () => host.removeEventListener('peer:connect', onConnect),
      () => host.removeEventListener('peer:disconnect', onDisconnect),
    );
    const hosted = await this.hostAll();
    await this.federation?.start();
    // Rooms of the hosted accounts this home does not hold yet (added to the account, or away): taken in.
    // After the start-up (one state read per account, in turn), so that it does not slow the start itself.
    if (this.federation !== undefined) {
      const takeInAll = async (): Promise<void> => {
        const store = this.components.store;
        if (store.accountsInRooms === undefined) {
          for (const account of this.hosted()) if (!this.#stopped) await this.#takeInRooms(account);
          return;
        }
        // Only accounts in some room have rooms to take in: a page of them per query, not a state read per account.
        const hosted = new Set(this.hosted());
        let after: string | undefined;
        while (!this.#stopped) {
          const page = await store.accountsInRooms({ limit: TAKE_IN_PAGE, ...(after === undefined ? {} : { after }) });
          for (const account of page) if (!this.#stopped && hosted.has(account)) await this.#takeInRooms(account);
          if (page.length < TAKE_IN_PAGE) break;
          after = page[page.length - 1];
        }
      };
      const timer = setTimeout(() => {
        this.#timers.splice(this.#timers.indexOf(timer), 1);
        if (!this.#stopped) this.#background.track(takeInAll(), "taking in the accounts' rooms");
      }, TAKE_IN_DELAY_MS);
      timer.unref();
      this.#timers.push(timer);
    }
    this.toDevice?.start();
    this.#updateRelays();
    this.#unsubscribe.push(this.events.on('document', () => this.#updateRelays()));
    await this.#startAnnouncing();
    if (this.init.offerDocumentsAtStart === true) {
      for (const account of this.hosted()) this.#background.track(this.#offerDocument(account), 'document offer');
    }
    const reconnect = this.init.reconnectEveryMs;
    if (reconnect !== undefined) {
      const connect = (): void => {
        for (const account of this.hosted()) this.#background.track(this.sync.connectHomes(account), 'dialling');
      };
      this.#timers.push(setInterval(connect, reconnect));
    }
    this.#started = true;
    this.#logger.info({ peerId: this.peerId, addrs: this.addrs(), accounts: hosted }, 'home started');
  }

  /**
   * Aborts the DHT work under way (the `provide` and `put` of an announcement job, which on a network with
   * no DHT peer to answer runs to its 30 s query timeout) and makes later announcements fail at once. Called
   * first on a stop, before the queue drains, so the drain does not wait for the DHT; the job is run again by
   * the queue's retry or the next republish.
   */
  cancelWork(): void {
    if (!this.#work.signal.aborted) this.#work.abort(new HomeStoppingError());
  }

  /** Stops the periodic work, the sync service and the host, and waits for background work (acks written). */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.cancelWork();
    for (const timer of this.#timers.splice(0)) clearTimeout(timer);
    this.ephemeral?.stop();
    for (const off of this.#unsubscribe.splice(0)) off();
    await this.#pairingHandler.stop();
    await this.toDevice?.stop();
    await this.federation?.stop();
    await this.sync.stop();
    await this.host.stop();
    await this.#background.settle();
  }

  /** Hosts every account of the store on the sync service, a page per query; returns how many. */
  async hostAll(): Promise<number> {
    let hosted = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.components.store.listHomes({ after, limit: HOST_PAGE });
      this.sync.hostMany(page, this.components.store);
      hosted += page.length;
      if (page.length < HOST_PAGE) return hosted;
      after = page[page.length - 1]!.account;
    }
  }

  /** Takes part in the sync of an account whose document is stored. */
  async hostAccount(account: string): Promise<void> {
    this.#documents?.forgetHosted(account);
    await this.sync.host(account, this.components.store);
    if (this.#started) this.events.emit('document', { account });
  }

  /** Stops taking part in the sync of an account. */
  async unhostAccount(account: string): Promise<void> {
    this.#documents?.forgetHosted(account);
    await this.sync.unhost(account);
  }

  /** Dials the homes in the account document and opens sessions. */
  async connectHomes(account: string): Promise<void> {
    await this.sync.connectHomes(account);
  }

  /**
   * Forces a full sync of an account with one of its homes, as on first contact (SyncService.resync): resolves
   * with what was received and sent once both hold the same ops.
   */
  async resync(account: string, peerId: string, options?: ResyncOptions): Promise<ResyncProgress> {
    return this.sync.resync(account, peerId, options);
  }

  /** Dials the account's homes in the background (failures are logged). */
  connectHomesLater(account: string): void {
    this.#background.track(this.sync.connectHomes(account), 'dialling');
  }

  /**
   * Signs changes as ops of this home, stores them in one batch and pushes them to the connected homes.
   * Batches of one account are signed one after another, so no two share a seq. Throws
   * LocalChangeRefusedError when the store refuses one; nothing is applied then.
   */
  async applyLocal(account: string, changes: readonly LocalChange[]): Promise<Op[]> {
    const ops = await this.#writer.write(account, changes);
    this.sync.publish(account, ops);
    const keys = [...new Set(ops.map(stateKey))];
    this.#changed(account, keys);
    this.#deviceListChanged(account, keys, true);
    return ops;
  }

  /** Tells the homes of accounts sharing a room with the account that its device list changed (m.device_list_update). */
  #deviceListChanged(account: string, keys: readonly string[], madeHere: boolean): void {
    const federation = this.federation?.keys;
    if (federation === undefined || !keys.some((k) => k.startsWith('device:') || k.startsWith('cross_signing:')))
      return;
    this.#background.track(federation.deviceListChanged(account, keys, madeHere), 'sending a device list update');
  }

  /**
   * The document in force of a hosted account, undefined when it is not hosted. With rooms, it comes through the
   * federation documents' cache (reused for a second; a batch of ops applied puts there the document it was applied
   * with, and a new document here drops it), so work that follows each change reads nothing.
   */
  async hostedDocument(account: string): Promise<AccountDocument | undefined> {
    return this.#documents === undefined
      ? this.components.store.document(account)
      : this.#documents.hostedDocument(account);
  }

  /**
   * The account document in the store changed here (a home added or removed, a newer one taken in): re-check
   * the sessions, send it on, dial the homes, announce it.
   */
  async documentChanged(account: string): Promise<void> {
    this.#documents?.forgetHosted(account);
    await this.sync.documentChanged(account);
    this.events.emit('document', { account });
    this.connectHomesLater(account);
  }

  /**
   * Signs the account's next document and puts it in force here, then tells the sessions (see
   * changeAccountDocument; `beforeInForce` may refuse it).
   */
  async changeDocument(
    account: string,
    change: (document: AccountDocument) => AccountDocument,
    beforeInForce?: (next: AccountDocument) => Promise<void>,
  ): Promise<AccountDocument> {
    const inForce = await changeAccountDocument(this.components.store, this.peerId, account, change, beforeInForce);
    await this.documentChanged(account);
    return inForce;
  }

  /**
   * Adds a home to the account's document, signed with the root key; `enroll` runs first (see changeDocument).
   * With `home.pairingCode` (a node made with `init --join`) this home keeps the code and proves it when that
   * node asks; a home the document already lists with that role only has its code kept again (after the
   * node replaced a code it took wrong proofs for), and the document is left as it is.
   */
  async addHome(
    account: string,
    home: NewHome,
    rootKey: SecretKey,
    enroll?: (next: AccountDocument) => Promise<void>,
  ): Promise<AccountDocument> {
    if (home.pairingCode !== undefined) {
      const code = normalizePairingCode(home.pairingCode);
      if (code === undefined) throw new InvalidPairingCodeError();
      const held = await this.components.store.document(account);
      const listed = held?.homes.find((h) => h.peer_id === home.peerId);
      if (held !== undefined && listed !== undefined && listed.role === home.role) {
        this.#pairingCodes.expect(account, home.peerId, code);
        this.connectHomesLater(account);
        return held;
      }
      const inForce = await addHomeToAccount(this.components.store, this.peerId, account, home, rootKey, enroll);
      this.#pairingCodes.expect(account, home.peerId, code);
      await this.documentChanged(account);
      return inForce;
    }
    const inForce = await addHomeToAccount(this.components.store, this.peerId, account, home, rootKey, enroll);
    await this.documentChanged(account);
    return inForce;
  }

  /**
   * The account's next document without this home, revoked at its own log as held here, signed and not put in
   * force: a provider migrating the account away hands it, with the key, to the new server home (MigrationJobs).
   */
  departureDocument(account: string, rootKey: SecretKey): Promise<AccountDocument> {
    return departureDocument(this.components.store, this.peerId, account, rootKey);
  }

  /**
   * The account's joined rooms held here, and those where home `peer` lacks one of this home's latest events
   * (a migration waits for none); no rooms on a home without room federation.
   */
  async roomsBehind(account: string, peer: string): Promise<{ rooms: number; behind: string[] }> {
    return (await this.federation?.roomsBehind(account, peer)) ?? { rooms: 0, behind: [] };
  }

  /** Revokes a home, with the last op seq held from it as cutoff. Throws SelfRevocationError for this home. */
  async removeHome(account: string, peerId: string, rootKey: SecretKey): Promise<AccountDocument> {
    const inForce = await removeHomeFromAccount(this.components.store, this.peerId, account, peerId, rootKey);
    await this.documentChanged(account);
    return inForce;
  }

  /**
   * A home of an account not held here opened a session: when this home holds no account yet, ask that home
   * for the document, and take the account in when the document names this home and that home proves this
   * home's pairing code (see #paired; the code is then spent). A home that holds an account takes in no other
   * this way, and a stranger naming this node in its own account's document cannot make it take that in.
   * Resolves true when the account was taken in.
   */
  async adopt(account: string, peerId: string): Promise<boolean> {
    const key = `${account}\n${peerId}`;
    if (this.hosted().length > 0 || this.#adopting.has(key) || this.#stopped) return false;
    this.#adopting.add(key);
    try {
      const document = await this.sync.fetchDocument(peerId, account);
      if (homeStatus(document, this.peerId).kind !== 'home' || this.hosted().length > 0) return false;
      const spent = await this.#turn(() => this.#paired(account, peerId));
      if (spent === undefined) return false;
      try {
        await this.components.store.hostAccount(document, { custody: 'self', receivedFrom: peerId });
        await this.sync.host(account, this.components.store);
      } catch (err) {
        // Not taken in after all: the code stays good for the next try.
        await this.#turn(() => this.init.pairing!.write(spent));
        throw err;
      }
      this.events.emit('adopted', { account, peerId, document });
      await this.sync.connectHomes(account);
      this.events.emit('document', { account });
      return true;
    } finally {
      this.#adopting.delete(key);
    }
  }

  /**
   * Provides the account in the DHT and puts its document there. Throws NotConnectedError with no peer to
   * put them on, and the DHT's errors: the announcement job retries.
   */
  async announce(account: string, signal?: AbortSignal): Promise<void> {
    const options = { signal: this.#workSignal(signal) };
    options.signal.throwIfAborted();
    if (dhtPeerCount(this.host) === 0) throw new NotConnectedError();
    const document = await this.components.store.document(account);
    if (document === undefined) return;
    await this.discovery.provide(account, options);
    await this.discovery.publishDocument(document, options);
  }

  /** Announces every account, a page of documents per query; stops early when `signal` aborts or the home stops. */
  async announceAll(signal?: AbortSignal): Promise<void> {
    const options = { signal: this.#workSignal(signal) };
    if (options.signal.aborted) return;
    if (dhtPeerCount(this.host) === 0) throw new NotConnectedError();
    let after: string | undefined;
    for (;;) {
      const page = await this.components.store.documentsPage({ after, limit: ANNOUNCE_PAGE });
      for (const { account, document } of page) {
        if (options.signal.aborted) return;
        await this.discovery.provide(account, options);
        await this.discovery.publishDocument(document, options);
      }
      if (page.length < ANNOUNCE_PAGE) return;
      after = page[page.length - 1]!.account;
    }
  }

  /**
   * Republishes the accounts whose slot came since the last call (the current slot only, the first time): a
   * slot of the period per tick of the republish schedule, so a republish of every account is spread over the
   * period instead of a walk at start. Does nothing with no peer in the DHT routing table (nothing to put to);
   * the slots skipped then wait for the next period. One account failing does not stop the others.
   */
  async republishDue(signal?: AbortSignal, now = Date.now()): Promise<void> {
    const slots = this.#republishSlots();
    const slotMs = this.init.announceEveryMs / slots;
    const current = Math.floor(now / slotMs);
    const first = Math.max(this.#lastSlot === undefined ? current : this.#lastSlot + 1, current - slots + 1);
    if (first > current) return;
    this.#lastSlot = current;
    const due = new Set<number>();
    for (let slot = first; slot <= current; slot++) due.add(slot % slots);
    if (dhtPeerCount(this.host) === 0) {
      this.events.emit('republish', { slots: [...due], accounts: [], skipped: 'no DHT peers' });
      return;
    }
    const accounts = this.hosted().filter((account) => due.has(republishSlot(account, slots)));
    const announced: string[] = [];
    const stop = this.#workSignal(signal);
    for (const account of accounts) {
      if (stop.aborted) break;
      try {
        await this.announce(account, signal);
        announced.push(account);
      } catch (err) {
        this.#logger.debug({ account, err: (err as Error).message }, 'republish of an account failed');
      }
    }
    this.events.emit('republish', { slots: [...due], accounts: announced });
  }

  /** Queues announcing an account (after it is created, taken in or its document changes). */
  async scheduleAnnounce(account: string, delayMs = 0): Promise<void> {
    await this.components.queue
      .queue<{ account?: string }>(ANNOUNCE_QUEUE)
      .add(
        'publish',
        { account },
        { jobId: `publish.${account}`, delay: delayMs, attempts: 5, backoff: { type: 'exponential', delay: 2_000 } },
      );
  }

  /** (Re)creates the repeatable job that announces every account (after a queue lost its jobs, too). */
  async scheduleReannounce(): Promise<void> {
    await this.components.queue
      .queue<{ account?: string }>(ANNOUNCE_QUEUE)
      .upsertRepeatable(
        REANNOUNCE_SCHEDULE,
        { every: Math.max(1, Math.floor(this.init.announceEveryMs / this.#republishSlots())) },
        { name: 'republish', data: {} },
      );
  }

  #republishSlots(): number {
    return Math.max(1, Math.min(this.init.republishSlots ?? REPUBLISH_SLOTS, Math.floor(this.init.announceEveryMs)));
  }

  /**
   * A client home behind NAT reserves relay slots on the server homes of its accounts (the host's
   * relayReservations, when it runs one): their addresses from the documents held here, the first accounts' only;
   * then its bootstrap peers (a node made with `init --join` holds no document until a home of the account reaches
   * it, through a relay: the servers it was started with, which know it from the document that names it).
   */
  #updateRelays(): void {
    const service = this.host.services.relayReservations;
    if (service === undefined) return;
    const choose = async (): Promise<void> => {
      const addrs: string[] = [];
      for (const account of this.hosted().slice(0, RELAY_ACCOUNTS)) {
        const document = await this.components.store.document(account);
        for (const home of document?.homes ?? []) {
          if (home.role !== 'server') continue;
          for (const addr of home.addrs) addrs.push(addr.includes('/p2p/') ? addr : `${addr}/p2p/${home.peer_id}`);
        }
      }
      service.setRelays([...addrs, ...(this.init.bootstrap ?? [])], this.peerId);
    };
    this.#background.track(choose(), 'choosing relays');
  }

  /** Memberships another home of the account set, enacted in the rooms this home's engine holds. */
  #followMemberships(account: string, changed: readonly string[]): void {
    const engine = this.rooms;
    const rooms = changed.filter((k) => k.startsWith('member:')).map((k) => k.slice('member:'.length));
    if (engine === undefined || rooms.length === 0) return;
    const follow = async (): Promise<void> => {
      const state = await this.components.store.state(account);
      const userId = (await this.components.store.document(account))?.user_id;
      if (userId === undefined) return;
      for (const roomId of rooms) {
        const membership = state.memberships[roomId]?.['membership'];
        if (typeof membership === 'string') await engine.followOwnMembership(account, userId, roomId, membership);
      }
    };
    this.#background.track(follow(), 'following a membership set on another home');
    if (this.federation === undefined) return;
    // Coalesced per account: a burst of memberships is looked at once, after the delay.
    const pending = this.#takeInSoon.get(account);
    if (pending !== undefined) {
      for (const roomId of rooms) pending.add(roomId);
      return;
    }
    this.#takeInSoon.set(account, new Set(rooms));
    const timer = setTimeout(() => {
      this.#timers.splice(this.#timers.indexOf(timer), 1);
      const due = [...(this.#takeInSoon.get(account) ?? [])];
      this.#takeInSoon.delete(account);
      if (!this.#stopped) this.#background.track(this.#takeInRooms(account, due), "taking in the account's rooms");
    }, TAKE_IN_DELAY_MS);
    timer.unref();
    this.#timers.push(timer);
  }

  /**
   * Takes in, from the account's other homes, the rooms among `roomIds` (all when absent) its user is joined or
   * invited to by a room event (a `member.set` with its `event`) that this home's engine does not hold.
   */
  async #takeInRooms(account: string, roomIds?: readonly string[]): Promise<void> {
    const engine = this.rooms;
    const federation = this.federation;
    if (engine === undefined || federation === undefined) return;
    const memberships = (await this.components.store.state(account)).memberships;
    const missing: string[] = [];
    for (const roomId of roomIds ?? Object.keys(memberships)) {
      const body = memberships[roomId];
      const membership = body?.['membership'];
      const event = body?.['event'];
      if (membership !== 'join' && membership !== 'invite') continue;
      if (typeof event !== 'object' || event === null) continue;
      if (!(await engine.holds(roomId))) missing.push(roomId);
    }
    if (missing.length > 0) await federation.takeInRooms(account, missing);
  }

  /** The one Matrix home port, over this home and the profile's accounts. */
  matrixPort(accounts: HomeAccounts): MatrixHomePort {
    return new HomeMatrixPort(this, accounts, this.components);
  }

  /** Hashes and signs a room event as this home under the account's server name. */
  signEvent(account: string, event: MatrixEvent, roomVersion: MatrixRoomVersion): MatrixEvent {
    // The sender is the account's user: refuse to sign for a server name that is not the event's.
    if (typeof event['sender'] !== 'string' || parseUserId(event['sender']).serverName !== account) {
      throw new Error('signEvent: sender is not of this account');
    }
    return hashAndSignEvent(event, account, `ed25519:${this.peerId}`, this.components.nodeKey, roomVersion);
  }

  async #startAnnouncing(): Promise<void> {
    await this.components.queue.process<{ account?: string }>(
      ANNOUNCE_QUEUE,
      (job: Job<{ account?: string }>) =>
        job.data.account !== undefined ? this.announce(job.data.account, job.signal) : this.republishDue(job.signal),
      { concurrency: 1 },
    );
    await this.scheduleReannounce();
    const delay = this.init.announceAtStartMs;
    if (delay !== undefined) {
      for (const account of this.hosted()) await this.scheduleAnnounce(account, delay);
    }
    this.#unsubscribe.push(
      this.events.on('document', ({ account }) =>
        this.#background.track(this.scheduleAnnounce(account), 'queueing an announcement'),
      ),
    );
  }

  /** The home's work signal, and the caller's when there is one. */
  #workSignal(signal?: AbortSignal): AbortSignal {
    return signal === undefined ? this.#work.signal : AbortSignal.any([this.#work.signal, signal]);
  }

  /** Runs pairing steps one at a time. */
  #turn<T>(step: () => Promise<T>): Promise<T> {
    const run = this.#pairingTurn.then(step, step);
    this.#pairingTurn = run.catch(() => undefined);
    return run;
  }

  /**
   * Asks `peerId`, which offers `account`, to prove this home's pairing code over a fresh nonce. A right proof
   * spends the code (resolves with what was spent, to put back if hosting fails); no proof refuses the account
   * and counts nothing (another home of the account may offer it first, before the one that was given the
   * code); a wrong proof is counted, and the PAIRING_MAX_FAILURES-th replaces the code.
   */
  async #paired(account: string, peerId: string): Promise<PairingState | undefined> {
    const store = this.init.pairing;
    const state = this.hosted().length > 0 ? undefined : await store?.read();
    if (store === undefined || state === undefined) {
      this.#refuseAdoption(account, peerId, 'no-code', 'this home has no pairing code (it takes in no account)');
      return undefined;
    }
    const nonce = pairingNonce();
    const answer = await requestPairingProof(this.host, peerId, { account, nonce });
    if (!('mac' in answer)) {
      this.#refuseAdoption(
        account,
        peerId,
        'no-proof',
        `the home offering it proves no pairing code (${answer.errcode}); waiting for the home this node's pairing code was given to. If none was, add this node from a running home of the account with its pairing code (\`home add <PeerId> --role client --pairing-code <code>\`, or \`pairing_code\` in the admin API; \`polyhome pairing-code\` shows it)`,
      );
      return undefined;
    }
    if (checkPairingProof(state.code, { account, joiner: this.peerId, adder: peerId, nonce }, answer.mac)) {
      await store.clear();
      return state;
    }
    const failures = state.failures + 1;
    if (failures >= PAIRING_MAX_FAILURES) {
      await store.write({ code: newPairingCode(), failures: 0 });
      this.#logger.warn(
        { account, peer: peerId, failures },
        `${failures} wrong pairing proofs: the pairing code was replaced; give the new one (\`polyhome pairing-code\`) to the home adding this node`,
      );
    } else {
      await store.write({ code: state.code, failures });
    }
    this.#refuseAdoption(
      account,
      peerId,
      'wrong-proof',
      `the home offering it proved a wrong pairing code (${failures} of ${PAIRING_MAX_FAILURES} before the code is replaced)`,
    );
    return undefined;
  }

  /** Logs an account not taken in, once per account and reason, and tells the listeners each time. */
  #refuseAdoption(account: string, peerId: string, reason: string, why: string): void {
    this.events.emit('adoption-refused', { account, peerId, reason });
    const key = `${account}\n${reason}`;
    if (this.#refusedAdoptions.has(key)) return;
    this.#refusedAdoptions.add(key);
    this.#logger.warn({ account, peer: peerId, reason }, `account not taken in: ${why}`);
  }

  #documentIn(account: string, detail: { peerId: string; document: AccountDocument }): void {
    this.#documents?.forgetHosted(account);
    this.events.emit('document', { account, peerId: detail.peerId, document: detail.document });
  }

  #changed(account: string, keys: string[]): void {
    if (keys.length > 0) this.events.emit('changed', { account, keys });
    const devices = keys.filter((k) => k.startsWith('device:')).map((k) => k.slice('device:'.length));
    const toDevice = this.toDevice;
    if (devices.length > 0 && toDevice !== undefined) {
      this.#background.track(toDevice.devicesChanged(account, devices), 'to-device messages of changed devices');
    }
  }

  /** Dials the account's homes, offers each the held document, and opens sessions with those that took it. */
  async #offerDocument(account: string): Promise<void> {
    const document = await this.components.store.document(account);
    if (document === undefined) return;
    await this.sync.connectHomes(account);
    let accepted = 0;
    for (const home of document.homes) {
      if (home.peer_id === this.peerId) continue;
      const took = await this.sync.offerDocument(home.peer_id, document).catch((err: unknown) => {
        this.#logger.debug({ peer: home.peer_id, err: (err as Error).message }, 'document offer failed');
        return false;
      });
      if (took) accepted++;
    }
    if (accepted > 0) await this.sync.connectHomes(account);
  }
}

/** The Matrix client API's port, the same on every home: the profile gives only its accounts side. */
class HomeMatrixPort implements MatrixHomePort {
  readonly rooms: MatrixRoomsPort | undefined;
  readonly ephemeral: MatrixEphemeralPort | undefined;
  readonly remoteKeys: MatrixRemoteKeysPort | undefined;
  readonly toDevice: MatrixToDevicePort | undefined;

  constructor(
    private readonly home: Home,
    private readonly accounts: HomeAccounts,
    private readonly components: HomeComponents,
  ) {
    this.rooms = home.rooms;
    this.ephemeral = home.ephemeral;
    const keys = home.federation?.keys;
    this.remoteKeys =
      keys === undefined
        ? undefined
        : {
            query: (origin, users, timeoutMs) => keys.query(origin, users, timeoutMs),
            claim: (origin, devices, timeoutMs) => keys.claim(origin, devices, timeoutMs),
          };
    this.toDevice = home.toDevice;
  }

  get homeId(): string {
    return this.home.peerId;
  }

  checkPassword(userId: string, password: string): Promise<string | null> {
    return this.accounts.checkPassword(userId, password);
  }

  consumeLoginToken(token: string): Promise<string | null> {
    return this.accounts.consumeLoginToken(token);
  }

  async userIdsWithLocalpart(localpart: string): Promise<string[]> {
    return (await this.accounts.userIdsWithLocalpart?.(localpart)) ?? [];
  }

  async passwordLogin(): Promise<boolean> {
    return (await this.accounts.passwordLogin?.()) ?? true;
  }

  userIdOf(serverName: string): Promise<string | null> {
    return this.accounts.userIdOf(serverName);
  }

  state(serverName: string): Promise<MatrixAccountState> {
    return this.components.store.state(serverName);
  }

  stateRows(serverName: string, namespace: string, keyPrefix?: string): Promise<MatrixStateRow[]> {
    return this.components.store.stateRows(serverName, namespace, keyPrefix);
  }

  stateSummary(serverName: string, namespace: string, group: string): Promise<StateSummary> {
    return this.components.store.stateSummary(serverName, namespace, group);
  }

  async applyLocal(serverName: string, changes: MatrixLocalChange[]): Promise<void> {
    try {
      await this.home.applyLocal(serverName, changes);
    } catch (err) {
      // A change the op validator refuses is the client's bad input, told in Matrix terms.
      if (err instanceof LocalChangeRefusedError) throw new MatrixError('M_BAD_JSON', err.message);
      throw err;
    }
  }

  async crossSigningMaster(serverName: string): Promise<string | undefined> {
    return (await this.components.store.document(serverName))?.cross_signing?.master;
  }

  async bindCrossSigningMaster(serverName: string, master: string): Promise<void> {
    // Only a home holding the root key can name a master key (the server, for its hosted accounts).
    await this.accounts.bindCrossSigningMaster?.(serverName, master);
  }

  onChanged(listener: (serverName: string, keys: string[]) => void): void {
    this.home.on('changed', ({ account, keys }) => listener(account, keys));
    this.home.on('local-changed', ({ account, keys }) => listener(account, keys));
  }

  async signEvent(serverName: string, event: MatrixEvent, roomVersion: MatrixRoomVersion): Promise<MatrixEvent> {
    return this.home.signEvent(serverName, event, roomVersion);
  }
}
