// The /polyhome/sync/1.0.0 protocol: one libp2p node serving many accounts, one session per
// (peer, account). Who may talk about an account is decided first, from the account document this
// node holds: only its homes (and revoked homes, to hand over their last ops). Anyone else gets the
// same NOT_A_HOME reply whether or not the account is hosted here, so a stranger learns nothing.
import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { LengthPrefixedStream } from '@libp2p/utils';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import {
  canonicalJson,
  documentDigest,
  homeStatus,
  isServerName,
  type AccountDocument,
  type Home,
} from '@polyhome/identity';
import type { ApplyResult, Op, ReplicaStore, SyncMessage, VersionVector } from '@polyhome/sync';
import {
  ANTI_ENTROPY_INTERVAL,
  HELLO_TIMEOUT,
  MAX_BATCHES_IN_FLIGHT,
  MAX_FRAME_BYTES,
  MAX_INBOUND_STREAMS,
  MAX_OPS_PER_FRAME,
  OPS_PER_FRAME,
  MAX_OUTBOUND_STREAMS,
  MAX_VECTOR_ENTRIES,
  OPEN_STREAM_TIMEOUT,
  OPS_FRAME_BUDGET,
  DOCUMENT_PROTOCOL,
  SESSION_IDLE_TIMEOUT,
  SESSION_OPENS_PER_PEER,
  SYNC_PROTOCOL,
  WRITE_TIMEOUT,
} from './constants.js';
import { answerDocumentRequest, fetchDocumentFrom, offerDocumentTo } from './document-protocol.js';
import {
  AccountNotHostedError,
  HomeUnreachableError,
  MalformedFrameError,
  NotStartedError,
  ResyncRefusedError,
  ResyncTimeoutError,
} from './errors.js';
import { decodeValue, encodeMessage, helloAccount, parseFrame } from './frames.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import type {
  ConnectResult,
  ResyncOptions,
  ResyncProgress,
  SessionInfo,
  SyncEventListener,
  SyncEvents,
  SyncService,
  SyncServiceComponents,
  SyncServiceInit,
} from './index.js';
import {
  closeQuietly,
  isTooLarge,
  NOT_A_HOME_TEXT,
  readLocal,
  Session,
  wrap,
  type CloseReason,
  type SessionOwner,
  type SessionSettings,
} from './session.js';

/** The reason text of every refusal of a peer that may not sync an account (identical in all cases). */
export const NOT_A_HOME_REASON = NOT_A_HOME_TEXT;

interface Hosted {
  store: ReplicaStore;
  /**
   * The other homes the document last read from the store lists (PeerIds, shared strings): whom sessions open
   * with. Only this is kept per account, never the document, so memory stays small with many accounts; who
   * may open a session is decided from the stored document when it does.
   */
  homes: readonly string[];
}

/** What a server name looks like: 64 lowercase hex digits (its root public key). */
const SERVER_NAME_FORM = /^[0-9a-f]{64}$/;
/** The account named in a refusal when the frame named none that could be trusted. */
const NO_ACCOUNT = '0'.repeat(64);

/** The libp2p implementation of SyncService (see index.ts). */
/** Close reasons after which a session is opened again if the peer is still connected. */
const REOPEN_AFTER: ReadonlySet<CloseReason> = new Set<CloseReason>(['done', 'error', 'idle']);
/** Delay before reopening, so a connection being pruned has closed and the other one is found. */
const REOPEN_DELAY_MS = 100;
/** Time allowed to peer routing for a home's fresh addresses after a dial to the held ones failed. */
const REFRESH_ADDRESSES_TIMEOUT_MS = 15_000;
/** At most this many reopenings per peer and account within REOPEN_WINDOW_MS. */
const MAX_REOPENS_PER_WINDOW = 5;
const REOPEN_WINDOW_MS = 10_000;

export class PolyhomeSync implements SyncService, SessionOwner {
  readonly localPeer: string;
  readonly #components: SyncServiceComponents;
  readonly #log: P2pLogger;
  readonly #settings: SessionSettings;
  readonly #helloTimeout: number;
  readonly #openTimeout: number;
  readonly #maxInboundStreams: number;
  readonly #maxOutboundStreams: number;
  readonly #opensPerPeer: number;
  /** Sync streams being opened to each peer, and the sessions waiting for a turn (see #openTurn). */
  readonly #opening = new Map<string, { active: number; waiting: (() => void)[] }>();
  readonly #accounts = new Map<string, Hosted>();
  /** Hosted accounts by the PeerId of a home they list, so a new connection finds its accounts at once. */
  readonly #byHome = new Map<string, Set<string>>();
  /** One string per PeerId: the same home of many accounts is held once. */
  readonly #peerIds = new Map<string, string>();
  readonly #sessions = new Map<string, Session>();
  /** When sessions per (peer, account) were last reopened after being lost; bounds reopening. */
  readonly #reopens = new Map<string, number[]>();
  readonly #listeners = new Map<keyof SyncEvents, Set<SyncEventListener<keyof SyncEvents>>>();
  /** Forced resyncs under way, by session key: the ops each has seen received and sent. */
  readonly #resyncs = new Map<string, Set<{ received: number; sent: number }>>();
  #started = false;
  /**
   * Bumped when sessions are told something changed (publish, a new document, a relayed batch): a view read before
   * that for an inbound session is not handed to it.
   */
  #changes = 0;

  constructor(components: SyncServiceComponents, init: SyncServiceInit = {}) {
    this.#components = components;
    this.localPeer = components.peerId.toString();
    this.#log = init.logger ?? silentLogger;
    const maxFrameBytes = init.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.#settings = {
      maxFrameBytes,
      opsFrameBudget: Math.min(init.opsFrameBudget ?? OPS_FRAME_BUDGET, Math.floor(maxFrameBytes * 0.75)),
      maxOpsPerBatch: init.opsPerFrame ?? OPS_PER_FRAME,
      maxBatchesInFlight: init.maxBatchesInFlight ?? MAX_BATCHES_IN_FLIGHT,
      idleTimeout: init.idleTimeout ?? SESSION_IDLE_TIMEOUT,
      antiEntropyInterval: init.antiEntropyInterval ?? ANTI_ENTROPY_INTERVAL,
      writeTimeout: init.writeTimeout ?? WRITE_TIMEOUT,
      limits: {
        maxOpsPerBatch: init.maxOpsPerFrame ?? MAX_OPS_PER_FRAME,
        maxVectorEntries: init.maxVectorEntries ?? MAX_VECTOR_ENTRIES,
      },
    };
    this.#helloTimeout = init.helloTimeout ?? HELLO_TIMEOUT;
    this.#openTimeout = init.openStreamTimeout ?? OPEN_STREAM_TIMEOUT;
    this.#maxInboundStreams = init.maxInboundStreams ?? MAX_INBOUND_STREAMS;
    this.#maxOutboundStreams = init.maxOutboundStreams ?? MAX_OUTBOUND_STREAMS;
    this.#opensPerPeer = Math.max(1, init.sessionOpensPerPeer ?? SESSION_OPENS_PER_PEER);
  }

  async start(): Promise<void> {
    if (this.#started) return;
    await this.#components.handle(
      SYNC_PROTOCOL,
      (stream, connection) => {
        this.#handleInbound(stream, connection).catch((error: unknown) => {
          // Reading the held document failed (the store), or the stream broke before a session took it over.
          this.#log.warn(
            { ...errorFields(error), peer: connection.remotePeer.toString(), protocol: SYNC_PROTOCOL },
            'inbound sync stream failed before its session started',
          );
          stream.abort(error instanceof Error ? error : new Error(String(error)));
        });
      },
      // A relay with a data or duration limit makes its connections "limited": sync runs on them all the same
      // (a home behind NAT may have no other path), and the limit ends the connection, not the protocol.
      {
        maxInboundStreams: this.#maxInboundStreams,
        maxOutboundStreams: this.#maxOutboundStreams,
        runOnLimitedConnection: true,
      },
    );
    await this.#components.handle(
      DOCUMENT_PROTOCOL,
      (stream, connection) => {
        void answerDocumentRequest(
          stream,
          connection,
          this.#log,
          async (account) => {
            const hosted = this.#accounts.get(account);
            return hosted === undefined ? undefined : hosted.store.document(account);
          },
          async (account, document, from) => {
            const hosted = this.#accounts.get(account);
            if (hosted === undefined) return false;
            const before = (await hosted.store.document(account))?.seq ?? 0;
            const inForce = await hosted.store.offerDocument(account, document, from);
            this.#noticeEquivocation(account, from, document, inForce);
            if (inForce.seq > before) {
              this.#emit('document', { account, peerId: from, document: inForce });
              await this.documentChanged(account);
            }
            return canonicalJson(inForce) === canonicalJson(document);
          },
        );
      },
      { maxInboundStreams: 4, maxOutboundStreams: 4, runOnLimitedConnection: true },
    );
    this.#components.addEventListener('connection:open', this.#onConnectionOpen);
    this.#started = true;
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#components.removeEventListener('connection:open', this.#onConnectionOpen);
    await this.#components.unhandle(SYNC_PROTOCOL);
    await this.#components.unhandle(DOCUMENT_PROTOCOL);
    for (const session of [...this.#sessions.values()]) session.close('stopped');
    this.#sessions.clear();
  }

  async host(account: string, store: ReplicaStore): Promise<void> {
    if (!isServerName(account)) throw new AccountNotHostedError(String(account).slice(0, 80));
    const document = await store.document(account);
    this.#setHosted(account, store, document === undefined ? [] : document.homes.map((h) => h.peer_id));
    this.#openSessions(account);
  }

  hostMany(accounts: Iterable<{ account: string; homes: readonly string[] }>, store: ReplicaStore): void {
    const open = this.#openConnections();
    for (const { account, homes } of accounts) {
      // The form only: isServerName also checks the key is a curve point, which costs too much per account at
      // start, and these accounts come from the caller's store, where they were checked when first hosted.
      if (!SERVER_NAME_FORM.test(account)) throw new AccountNotHostedError(String(account).slice(0, 80));
      this.#setHosted(account, store, homes);
      if (open.size > 0) this.#openSessions(account, open);
    }
  }

  async unhost(account: string): Promise<void> {
    this.#setHosted(account, undefined, []);
    for (const session of this.#sessionsOf(account)) session.close('stopped');
  }

  hosted(): string[] {
    return [...this.#accounts.keys()];
  }

  homePeers(): string[] {
    return [...this.#byHome.keys()];
  }

  publish(account: string, _ops?: readonly Op[]): void {
    this.#hosted(account);
    // The ops are already in the store; each session sends what its peer lacks, starting now.
    this.#changes++;
    this.#openSessions(account);
    for (const session of this.#sessionsOf(account)) session.trigger();
  }

  async documentChanged(account: string): Promise<void> {
    const hosted = this.#hosted(account);
    this.#changes++;
    const document = await hosted.store.document(account);
    this.#setHomes(account, hosted, document);
    for (const session of this.#sessionsOf(account)) {
      if (document === undefined || homeStatus(document, session.remotePeer).kind === 'unknown') {
        session.refuse('NOT_A_HOME', NOT_A_HOME_REASON, 'not_a_home');
      } else {
        session.trigger();
      }
    }
    this.#openSessions(account);
  }

  async connectHomes(account: string, options?: { signal?: AbortSignal }): Promise<ConnectResult[]> {
    this.#requireStarted();
    const hosted = this.#hosted(account);
    const document = await hosted.store.document(account);
    this.#setHomes(account, hosted, document);
    if (document === undefined) return [];
    const results = await Promise.all(
      document.homes
        .filter((home) => home.peer_id !== this.localPeer)
        .map(async (home): Promise<ConnectResult> => {
          try {
            const connection = await this.#dialHome(document, home, options?.signal);
            await this.#ensureSession(account, home.peer_id, connection);
            return { peerId: home.peer_id, connected: true };
          } catch (error) {
            return { peerId: home.peer_id, connected: false, error: error instanceof Error ? error.message : 'failed' };
          }
        }),
    );
    return results;
  }

  // Dials one home of the account, with the addresses its document gives merged into the peer store.
  async #dialHome(document: AccountDocument, home: Home, signal: AbortSignal | undefined): Promise<Connection> {
    const peerId = peerIdFromString(home.peer_id);
    if (home.addrs.length > 0) {
      await this.#components.peerStore.merge(peerId, { multiaddrs: home.addrs.map((a) => multiaddr(a)) });
    }
    const options = signal === undefined ? undefined : { signal };
    try {
      return await this.#components.dial(peerId, options);
    } catch (error) {
      // The addresses held of a client home may be stale or private (behind NAT): it reserves
      // relay slots on its account's server homes, so it is dialled through them; then peer routing,
      // past its cache, may know current addresses. The home is dialled once more with those.
      // A server home is reachable at the addresses its document gives, or down: nothing to refresh.
      if (home.role !== 'client') throw error;
      const relayed = await this.#relayAddresses(document, home.peer_id);
      const routed = await this.#refreshAddresses(peerId, signal);
      if (!relayed && !routed) throw error;
      return this.#components.dial(peerId, options);
    }
  }

  async resync(account: string, peerId: string, options: ResyncOptions = {}): Promise<ResyncProgress> {
    this.#requireStarted();
    const hosted = this.#accounts.get(account);
    const document = hosted === undefined ? undefined : await hosted.store.document(account);
    if (hosted === undefined || document === undefined) {
      throw new ResyncRefusedError(`the account ${account.slice(0, 80)} is not hosted here`);
    }
    const home = document.homes.find((h) => h.peer_id === peerId);
    if (peerId === this.localPeer) throw new ResyncRefusedError('a home cannot resync with itself');
    if (home === undefined || homeStatus(document, peerId).kind !== 'home') {
      throw new ResyncRefusedError(`${peerId.slice(0, 80)} is not a current home of the account`);
    }
    const key = sessionKey(peerId, account);
    const counts = { received: 0, sent: 0 };
    const counters = this.#resyncs.get(key) ?? new Set();
    counters.add(counts);
    this.#resyncs.set(key, counters);
    const signal = options.signal;
    let last = '';
    const report = (progress: ResyncProgress): ResyncProgress => {
      const text = JSON.stringify(progress);
      if (text !== last) options.onProgress?.(progress);
      last = text;
      return progress;
    };
    const progressOf = (phase: ResyncProgress['phase'], gaps = { here: 0, there: 0 }): ResyncProgress => ({
      phase,
      opsReceived: counts.received,
      opsSent: counts.sent,
      missingHere: gaps.here,
      missingThere: gaps.there,
    });
    try {
      report(progressOf('connecting'));
      // The session with that home ends here (it does not reopen by itself): the one that follows starts
      // from fresh hellos on both ends, as on first contact.
      this.#sessions.get(key)?.close('resync');
      let connection: Connection;
      try {
        connection = await this.#dialHome(document, home, signal);
      } catch (error) {
        throw new HomeUnreachableError(peerId, error instanceof Error ? error.message : String(error));
      }
      let fresh: Session | undefined = await this.#ensureSession(account, peerId, connection);
      for (;;) {
        if (signal?.aborted === true) {
          const session = this.#sessions.get(key);
          const gaps = session?.open === true ? await this.#gaps(hosted.store, account, session) : undefined;
          throw new ResyncTimeoutError(
            gaps === undefined
              ? 'no sync session with the home was open when the time ran out'
              : `the homes had not converged when the time ran out: ${gaps.here} ops of the home still missing here, ` +
                  `${gaps.there} ops of this home not acknowledged by it`,
          );
        }
        const session = this.#sessions.get(key);
        if (session === undefined || !session.open) {
          if (fresh?.closeReason === 'refused_by_peer' || fresh?.closeReason === 'not_a_home') {
            throw new HomeUnreachableError(
              peerId,
              'the home refused the sync session: it does not hold this account, or its account document does ' +
                'not list this server as a home (check its document with the account holder)',
            );
          }
          // Lost (the peer's own fresh session won the tie-break, or the stream failed): open another.
          if (connection.status !== 'open') connection = await this.#dialHome(document, home, signal);
          fresh = await this.#ensureSession(account, peerId, connection).catch(() => fresh);
        } else if (session.helloReceived) {
          const gaps = await this.#gaps(hosted.store, account, session);
          if (gaps.converged) return report(progressOf('converged', gaps));
          report(progressOf('exchanging', gaps));
        }
        await sleep(options.pollInterval ?? RESYNC_POLL_MS, signal);
      }
    } finally {
      counters.delete(counts);
      if (counters.size === 0) this.#resyncs.delete(key);
    }
  }

  // How far apart this home and a session's peer are: ops each holds that the other lacks (by the vectors),
  // and whether they hold the same (equal vectors, nothing in flight, equal digests when the peer gave some).
  async #gaps(
    store: ReplicaStore,
    account: string,
    session: Session,
  ): Promise<{ here: number; there: number; converged: boolean }> {
    const [local, digests] = await Promise.all([store.versionVector(account), store.logDigests?.(account)]);
    const theirs = session.peerVector;
    let here = 0;
    let there = 0;
    for (const origin of new Set([...Object.keys(local), ...Object.keys(theirs)])) {
      const diff = (theirs[origin] ?? 0) - (local[origin] ?? 0);
      if (diff > 0) here += diff;
      else there -= diff;
    }
    const reported = session.peerDigests;
    const sameDigests =
      digests === undefined ||
      reported === undefined ||
      !sameVector(reported.vv, local) ||
      Object.entries(digests).every(([origin, digest]) => reported.digests[origin] === digest);
    return { here, there, converged: here === 0 && there === 0 && session.inFlight === 0 && sameDigests };
  }

  /**
   * Puts into the peer store the addresses of `peerId` through the circuit relays of the account's server homes
   * (`<server address>/p2p/<server>/p2p-circuit/p2p/<peerId>`); true when there is at least one.
   */
  async #relayAddresses(document: AccountDocument, peerId: string): Promise<boolean> {
    const addrs: string[] = [];
    for (const server of document.homes) {
      if (server.role !== 'server' || server.peer_id === peerId || server.peer_id === this.localPeer) continue;
      for (const addr of server.addrs) {
        if (addr.includes('/p2p-circuit')) continue;
        const base = addr.includes('/p2p/') ? addr : `${addr}/p2p/${server.peer_id}`;
        addrs.push(`${base}/p2p-circuit/p2p/${peerId}`);
      }
    }
    if (addrs.length === 0) return false;
    try {
      await this.#components.peerStore.merge(peerIdFromString(peerId), { multiaddrs: addrs.map((a) => multiaddr(a)) });
      return true;
    } catch {
      return false;
    }
  }

  /** Asks peer routing (the DHT, not its cache) for a peer's addresses; true when it gave some. */
  async #refreshAddresses(peerId: PeerId, signal: AbortSignal | undefined): Promise<boolean> {
    const routing = this.#components.peerRouting;
    if (routing === undefined) return false;
    const limit = AbortSignal.timeout(REFRESH_ADDRESSES_TIMEOUT_MS);
    try {
      const found = await routing.findPeer(peerId, {
        signal: signal === undefined ? limit : AbortSignal.any([signal, limit]),
        useCache: false,
      });
      return found.multiaddrs.length > 0;
    } catch {
      return false;
    }
  }

  sessions(account?: string): SessionInfo[] {
    return [...this.#sessions.values()]
      .filter((s) => s.open && (account === undefined || s.account === account))
      .map((s) => ({
        account: s.account,
        peerId: s.remotePeer,
        initiator: s.initiator,
        peerVector: { ...s.peerVector },
        inFlight: s.inFlight,
      }));
  }

  async offerDocument(peerId: string, document: AccountDocument, options?: { signal?: AbortSignal }): Promise<boolean> {
    this.#requireStarted();
    return offerDocumentTo(this.#components, peerIdFromString(peerId), document, { ...options, logger: this.#log });
  }

  async fetchDocument(peerId: string, account: string, options?: { signal?: AbortSignal }): Promise<AccountDocument> {
    this.#requireStarted();
    return fetchDocumentFrom(this.#components, peerIdFromString(peerId), account, { ...options, logger: this.#log });
  }

  on<K extends keyof SyncEvents>(event: K, listener: SyncEventListener<K>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as SyncEventListener<keyof SyncEvents>);
    return () => set.delete(listener as SyncEventListener<keyof SyncEvents>);
  }

  // SessionOwner: what sessions report.

  applied(session: Session, result: ApplyResult): void {
    for (const r of result.rejected) {
      // A duplicate is the normal outcome of two homes relaying the same op; not worth an event.
      if (r.reason === 'duplicate') continue;
      this.#emit('rejected', {
        account: session.account,
        peerId: session.remotePeer,
        code: r.reason,
        detail: r.detail,
        op: r.op,
      });
    }
    for (const e of result.equivocations) {
      this.#emit('rejected', {
        account: session.account,
        peerId: session.remotePeer,
        code: 'equivocation',
        detail: `origin ${e.origin} signed two ops with seq ${e.seq}`,
      });
    }
    // A slot may now hold another version than before (the lower hash won) with no new op to send: the
    // vectors still match, so nothing would tell the other homes. A new round of hellos with every home of
    // the account compares digests and resends the origin's log where they differ (also to the sender, which
    // may hold the losing version).
    if (result.equivocations.length > 0) for (const other of this.#sessionsOf(session.account)) other.renew();
    if (result.accepted.length === 0) return;
    for (const counts of this.#resyncs.get(sessionKey(session.remotePeer, session.account)) ?? []) {
      counts.received += result.accepted.length;
    }
    this.#emit('applied', {
      account: session.account,
      peerId: session.remotePeer,
      ops: result.accepted,
      changed: result.changed,
      ...(result.after === undefined ? {} : { document: result.after.document }),
    });
    // Store and forward: what one home sent is relayed to the other homes this node talks to.
    this.#changes++;
    for (const other of this.#sessionsOf(session.account)) if (other !== session) other.trigger();
  }

  sent(session: Session, count: number): void {
    for (const counts of this.#resyncs.get(sessionKey(session.remotePeer, session.account)) ?? []) counts.sent += count;
  }

  acked(session: Session, vv: VersionVector, recorded = false): void {
    this.#emit('acked', {
      account: session.account,
      peerId: session.remotePeer,
      vv,
      ...(recorded ? { recorded } : {}),
    });
  }

  rejected(session: Session, code: string, detail: string, op?: unknown): void {
    this.#emit('rejected', { account: session.account, peerId: session.remotePeer, code, detail, op });
  }

  documentOffered(session: Session, offered: AccountDocument, inForce: AccountDocument): void {
    this.#noticeEquivocation(session.account, session.remotePeer, offered, inForce);
  }

  documentAccepted(session: Session, document: AccountDocument): void {
    const hosted = this.#accounts.get(session.account);
    if (hosted !== undefined) this.#setHomes(session.account, hosted, document);
    this.#emit('document', { account: session.account, peerId: session.remotePeer, document });
    this.documentChanged(session.account).catch((error: unknown) => {
      // The new document is stored, but sessions were not re-checked against it nor sent it: the next
      // documentChanged, publish or reconnect does it.
      this.#log.warn(
        { ...errorFields(error), account: session.account, peer: session.remotePeer, protocol: SYNC_PROTOCOL },
        'sessions not updated after a new account document',
      );
    });
  }

  closed(session: Session): void {
    const key = sessionKey(session.remotePeer, session.account);
    if (this.#sessions.get(key) === session) this.#sessions.delete(key);
    // A session lost while the peer stays connected (its connection was pruned as a duplicate, or both ends
    // opened at once and the kept stream failed) is opened again on a connection that is still open:
    // otherwise neither end would sync until something new happened. Bounded per peer and account, so a
    // peer that keeps ending sessions cannot make this loop.
    if (!this.#started || !REOPEN_AFTER.has(session.closeReason ?? 'stopped')) return;
    const now = Date.now();
    const recent = (this.#reopens.get(key) ?? []).filter((t) => now - t < REOPEN_WINDOW_MS);
    if (recent.length >= MAX_REOPENS_PER_WINDOW) return;
    recent.push(now);
    this.#reopens.set(key, recent);
    const timer = setTimeout(() => {
      this.#openSessions(session.account);
      // Nothing reopened (the peer is gone): the history is not needed to bound a loop, and kept it would stay for
      // every account a departed peer once synced (issue 14). A session reopened keeps it.
      if (!this.#sessions.has(key)) this.#reopens.delete(key);
    }, REOPEN_DELAY_MS);
    timer.unref?.();
  }

  // Inbound: the first frame must be a hello for an account this node hosts, from one of its homes. Who is
  // asking is decided before anything costly: the frame is parsed as JSON (bounded by the frame cap), the
  // account is read by its form only, and a stranger is refused from the document in force before any key
  // in the frame is checked (a PeerId check is a point decompression: 4,096 of them per hello, the cache
  // size, once took a server's /health from 6 ms to 5 s). A home's hello has its key counts bounded by
  // counting before it is decoded.
  async #handleInbound(stream: Stream, connection: Connection): Promise<void> {
    const remote = connection.remotePeer.toString();
    const lp = wrap(stream, this.#settings);
    let value: unknown;
    try {
      const frame = await lp.read({ signal: AbortSignal.timeout(this.#helloTimeout) });
      value = parseFrame(frame.subarray());
    } catch (error) {
      await this.#refuseBeforeHello(lp, stream, remote, error);
      return;
    }
    const account = helloAccount(value);
    if (account === undefined) {
      const named = (value as { account?: unknown } | null)?.account;
      await this.#reply(lp, remote, {
        t: 'error',
        account: typeof named === 'string' && SERVER_NAME_FORM.test(named) ? named : NO_ACCOUNT,
        code: 'MALFORMED',
        reason: 'expected hello',
      });
      await closeQuietly(stream, this.#settings.writeTimeout);
      return;
    }
    const hosted = this.#accounts.get(account);
    // One read serves the admission check and the session's first pump (the view is handed to it).
    const key = sessionKey(remote, account);
    // Both ends often open a session for the account at once: the one this end opened may hold the view already.
    const opened = this.#sessions.get(key);
    const changes = this.#changes;
    const view =
      hosted === undefined
        ? undefined
        : opened?.open === true
          ? await opened.view()
          : await readLocal(hosted.store, account);
    if (hosted === undefined || view === undefined || homeStatus(view.document, remote).kind === 'unknown') {
      // One reply for "not hosted here" and "not a home": the code and reason never differ.
      await this.#reply(lp, remote, { t: 'error', account, code: 'NOT_A_HOME', reason: NOT_A_HOME_REASON });
      await closeQuietly(stream, this.#settings.writeTimeout);
      this.#emit('rejected', { account, peerId: remote, code: 'NOT_A_HOME', detail: 'session refused' });
      return;
    }
    let first: SyncMessage;
    try {
      first = decodeValue(value, this.#settings.limits);
    } catch (error) {
      await this.#refuseBeforeHello(lp, stream, remote, error);
      return;
    }
    const existing = this.#sessions.get(key);
    if (existing !== undefined && existing.open) {
      // Both ends opened at once: keep the session opened by the lower PeerId, on both ends alike.
      const existingOpener = existing.initiator ? this.localPeer : remote;
      if (existingOpener < remote) {
        // The kept session may not have read the view yet (it waits for its turn to open a stream): it takes this one.
        if (changes === this.#changes) existing.seed(view);
        await closeQuietly(stream, this.#settings.writeTimeout);
        return;
      }
      existing.close('superseded');
    }
    const session = this.#newSession(account, remote, connection, false, hosted.store);
    if (changes === this.#changes) session.seed(view);
    session.attach(stream, lp);
    this.#sessions.set(key, session);
    await session.run(first);
  }

  // A first frame that is no sync message (or none in time): only this stream ends, and the reply names no
  // account (it may be unknown or not to be trusted yet).
  async #refuseBeforeHello(
    lp: LengthPrefixedStream<Stream>,
    stream: Stream,
    remote: string,
    error: unknown,
  ): Promise<void> {
    const code = isTooLarge(error) ? 'TOO_LARGE' : error instanceof MalformedFrameError ? 'MALFORMED' : undefined;
    this.#log.debug(
      { ...errorFields(error), peer: remote, protocol: SYNC_PROTOCOL, code },
      'inbound sync stream ended before its hello',
    );
    if (code !== undefined)
      await this.#reply(lp, remote, { t: 'error', account: NO_ACCOUNT, code, reason: code.toLowerCase() });
    await closeQuietly(stream, this.#settings.writeTimeout);
  }

  // Sends the one `error` frame of a refused inbound stream. The peer may hang up first; that ends nothing
  // of ours, so it is a debug line, not a failure.
  async #reply(lp: LengthPrefixedStream<Stream>, remote: string, message: SyncMessage & { t: 'error' }): Promise<void> {
    try {
      await lp.write(encodeMessage(message), { signal: AbortSignal.timeout(this.#settings.writeTimeout) });
    } catch (error) {
      this.#log.debug(
        { ...errorFields(error), peer: remote, account: message.account, code: message.code, protocol: SYNC_PROTOCOL },
        'sync refusal not delivered',
      );
    }
  }

  // Opens sessions for an account with every connected peer that its document lists as a home.
  // `open` (connections by PeerId) spares callers that go through many accounts a lookup each.
  #openSessions(account: string, open = this.#openConnections()): void {
    if (!this.#started) return;
    const hosted = this.#accounts.get(account);
    if (hosted === undefined) return;
    for (const home of hosted.homes) {
      if (this.#sessions.get(sessionKey(home, account))?.open === true) continue;
      const connection = open.get(home);
      if (connection === undefined) continue;
      this.#openSession(account, home, connection);
    }
  }

  // Open connections by remote PeerId, from the connection list: parsing a PeerId string checks its public
  // key (an Ed25519 point decompression), far too slow to do per home of 100,000 accounts.
  #openConnections(): Map<string, Connection> {
    const open = new Map<string, Connection>();
    for (const connection of this.#components.getConnections()) {
      if (connection.status !== 'open') continue;
      const remote = connection.remotePeer.toString();
      if (!open.has(remote)) open.set(remote, connection);
    }
    return open;
  }

  readonly #onConnectionOpen = (event: CustomEvent<Connection>): void => {
    const remote = event.detail.remotePeer.toString();
    for (const account of this.#byHome.get(remote) ?? []) {
      this.#openSession(account, remote, event.detail);
    }
  };

  // Records (store defined) or forgets (store undefined) a hosted account and its other homes, index included.
  // Peers that became or stopped being a home of some hosted account are told in a `homes` event.
  #setHosted(account: string, store: ReplicaStore | undefined, homes: readonly string[]): void {
    const before = new Set<string>();
    const previous = this.#accounts.get(account);
    for (const home of previous?.homes ?? []) {
      const accounts = this.#byHome.get(home);
      accounts?.delete(account);
      if (accounts?.size === 0) {
        before.add(home);
        this.#byHome.delete(home);
        this.#peerIds.delete(home);
      }
    }
    if (store === undefined) {
      this.#accounts.delete(account);
      this.#homesChanged(before, []);
      return;
    }
    const added: string[] = [];
    const others: string[] = [];
    for (const home of homes) {
      if (home === this.localPeer || others.includes(home)) continue;
      let shared = this.#peerIds.get(home);
      if (shared === undefined) {
        shared = home;
        this.#peerIds.set(home, home);
      }
      others.push(shared);
      let accounts = this.#byHome.get(shared);
      if (accounts === undefined) {
        accounts = new Set();
        this.#byHome.set(shared, accounts);
        if (!before.delete(shared)) added.push(shared);
      }
      accounts.add(account);
    }
    this.#accounts.set(account, { store, homes: others });
    this.#homesChanged(before, added);
  }

  #homesChanged(removed: Set<string>, added: string[]): void {
    if (removed.size > 0 || added.length > 0) this.#emit('homes', { added, removed: [...removed] });
  }

  #setHomes(account: string, hosted: Hosted, document: AccountDocument | undefined): void {
    this.#setHosted(account, hosted.store, document === undefined ? [] : document.homes.map((h) => h.peer_id));
  }

  // #ensureSession in the background: a stream that cannot be opened (the connection closed, the peer is slow)
  // is logged, and the next publish, reconnect or new connection tries again.
  #openSession(account: string, remote: string, connection: Connection): void {
    this.#ensureSession(account, remote, connection).catch((error: unknown) => {
      this.#log.info(
        { ...errorFields(error), account, peer: remote, protocol: SYNC_PROTOCOL },
        'sync session could not open',
      );
    });
  }

  async #ensureSession(account: string, remote: string, connection: Connection): Promise<Session | undefined> {
    const key = sessionKey(remote, account);
    const existing = this.#sessions.get(key);
    if (existing !== undefined && existing.open) return existing;
    const hosted = this.#accounts.get(account);
    if (hosted === undefined || !this.#started) return undefined;
    // Registered before the stream opens, so a simultaneous inbound open meets it and the tie-break applies.
    const session = this.#newSession(account, remote, connection, true, hosted.store);
    this.#sessions.set(key, session);
    // At most #opensPerPeer streams are being opened to one peer; the rest wait their turn here. A session
    // closed while it waited (the peer's own stream for the account won the tie-break, stop) opens nothing.
    const done = await this.#openTurn(remote);
    let stream: Stream;
    try {
      if (!session.open) return this.#sessions.get(key);
      stream = await connection.newStream(SYNC_PROTOCOL, {
        signal: AbortSignal.timeout(this.#openTimeout),
        runOnLimitedConnection: true,
      });
    } catch (error) {
      session.close('error');
      throw error;
    } finally {
      done();
    }
    if (!session.open) {
      await closeQuietly(stream, this.#settings.writeTimeout);
      return undefined;
    }
    session.attach(stream);
    session.run().catch((error: unknown) => {
      // run() reports every failure through closeReason and `rejected`; reaching here is a bug.
      this.#log.error(
        { ...errorFields(error), stack: (error as Error).stack, account, peer: remote, protocol: SYNC_PROTOCOL },
        'sync session threw',
      );
    });
    return session;
  }

  // Waits until fewer than #opensPerPeer sync streams are being opened to `remote`, then takes a turn; the
  // returned function gives it back once the stream is open (the peer agreed on the protocol, so its end of
  // the connection is set up and takes further streams) or failed. Turns are given in the order asked.
  async #openTurn(remote: string): Promise<() => void> {
    let peer = this.#opening.get(remote);
    if (peer === undefined) {
      peer = { active: 0, waiting: [] };
      this.#opening.set(remote, peer);
    }
    const turns = peer;
    if (turns.active >= this.#opensPerPeer) {
      await new Promise<void>((resolve) => turns.waiting.push(resolve));
    } else {
      turns.active++;
    }
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const next = turns.waiting.shift();
      // The turn passes straight to the next waiting session (active stays the same), or is given back.
      if (next !== undefined) next();
      else if (--turns.active === 0) this.#opening.delete(remote);
    };
  }

  #newSession(
    account: string,
    remote: string,
    connection: Connection,
    initiator: boolean,
    store: ReplicaStore,
  ): Session {
    return new Session({
      account,
      remotePeer: remote,
      connection,
      initiator,
      store,
      owner: this,
      settings: this.#settings,
      log: this.#log,
    });
  }

  #sessionsOf(account: string): Session[] {
    return [...this.#sessions.values()].filter((s) => s.account === account && s.open);
  }

  #hosted(account: string): Hosted {
    const hosted = this.#accounts.get(account);
    if (hosted === undefined) throw new AccountNotHostedError(String(account).slice(0, 80));
    return hosted;
  }

  #requireStarted(): void {
    if (!this.#started) throw new NotStartedError();
  }

  /** Reports an offered (verified) document of the seq in force that is not the one in force. */
  #noticeEquivocation(account: string, peerId: string, offered: AccountDocument, inForce: AccountDocument): void {
    if (offered.seq !== inForce.seq) return;
    const digests: [string, string] = [documentDigest(inForce), documentDigest(offered)];
    if (digests[0] === digests[1]) return;
    this.#emit('equivocation', { account, peerId, seq: inForce.seq, digests });
  }

  #emit<K extends keyof SyncEvents>(event: K, detail: SyncEvents[K]): void {
    for (const listener of this.#listeners.get(event) ?? []) {
      try {
        (listener as SyncEventListener<K>)(detail);
      } catch (error) {
        // A listener's failure is its own; the protocol carries on, and the failure is seen.
        this.#log.error(
          {
            ...errorFields(error),
            stack: (error as Error).stack,
            event,
            account: 'account' in detail ? detail.account : undefined,
          },
          'sync event listener threw',
        );
      }
    }
  }
}

function sessionKey(peer: string, account: string): string {
  return `${peer}/${account}`;
}

/** How often a forced resync looks at its session. */
const RESYNC_POLL_MS = 200;

function sameVector(a: VersionVector, b: VersionVector): boolean {
  const origins = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...origins].every((origin) => (a[origin] ?? 0) === (b[origin] ?? 0));
}

/** Waits `ms`, or less when `signal` aborts (never throws). */
async function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
