// @polyhome/p2p: the libp2p host of a polyhome home, discovery of an account's homes through the
// polyhome kad-dht, and the /polyhome/sync/1.0.0 protocol that keeps the homes of an account in sync.
// Framework-free; the server and the client node wire the components' start()/stop() to their lifecycle.
import type { KadDHT } from '@libp2p/kad-dht';
import type { Libp2p, PeerId } from '@libp2p/interface';
import type { AccountDocument, HomeRole } from '@polyhome/identity';
import type { Op, ReplicaStore, VersionVector } from '@polyhome/sync';
import { DhtDiscovery } from './discovery.js';
import type { AccountRecordGuard } from './record-guard.js';
import type { UnreachablePeers } from './unreachable-peers.js';
import { EnrollmentHandler, type EnrollErrorResponse, type EnrollResponse } from './enrollment-protocol.js';
import type { P2pLogger } from './logger.js';
import { PolyhomeSync } from './sync-protocol.js';

export * from './constants.js';
export * from './errors.js';
export { silentLogger } from './logger.js';
export { isMultiaddrText, isPeerMultiaddr, rememberPeerAddresses } from './peer-addr.js';
export type { P2pLogger, P2pLogFn } from './logger.js';
export { createPolyhomeHost, privateKeyFromNodeKey, dialBootstrap } from './host.js';
export type { PolyhomeHost, PolyhomeHostInit, PolyhomeServices } from './host.js';
export {
  accountCid,
  accountRecordKey,
  encodeAccountRecord,
  decodeAccountRecord,
  accountRecordValidator,
  createAccountRecordValidator,
  accountRecordSelector,
} from './records.js';
export { ConnectionGuard } from './connection-guard.js';
export { UnreachablePeers, dhtPeerCount } from './unreachable-peers.js';
export type { UnreachableCounts, UnreachablePeersInit, WatchedNode } from './unreachable-peers.js';
export type { ConnectionGuardInit, ConnectionLimits, GuardReason, GuardedNode } from './connection-guard.js';
export { AccountRecordGuard, FileSeqGuardStore, GuardedRecordDatastore, MemorySeqGuardStore } from './record-guard.js';
export type { AccountRecordGuardInit, SeqGuardStore } from './record-guard.js';
export { decodeMessage, encodeMessage, DEFAULT_FRAME_LIMITS } from './frames.js';
export type { FrameLimits } from './frames.js';
export { NOT_A_HOME_REASON } from './sync-protocol.js';
export { fetchDocumentFrom } from './document-protocol.js';
export { createFederationServer, federationRequest } from './federation-protocol.js';
export {
  clientApiPathRefusal,
  clientApiRequest,
  createClientApiServer,
  filterResponseHeaders,
} from './client-protocol.js';
export type {
  ClientApiCounts,
  ClientApiForward,
  ClientApiRequest,
  ClientApiRequestInit,
  ClientApiResponse,
  ClientApiServer,
  ClientApiServerInit,
  HeaderPairs,
} from './client-protocol.js';
export type { StreamServer, StreamServerOptions, WireCounts } from './http-stream-server.js';
export type {
  FederationAuthorize,
  FederationClientHost,
  FederationCounts,
  FederationHandler,
  FederationRequest,
  FederationRequestHead,
  FederationRequestInit,
  FederationResponse,
  FederationServer,
  FederationServerComponents,
  FederationServerInit,
} from './federation-protocol.js';
export { decodeEnrollFrame, encodeEnrollFrame, enrollOverLibp2p } from './enrollment-protocol.js';
export { CustodyHandler, handOverCustody } from './custody-protocol.js';
export type { CustodyAnswer, CustodyErrorAnswer, CustodyRequest, ReceiveCustody } from './custody-protocol.js';
export type {
  EnrollClientHost,
  EnrollErrorResponse,
  EnrollOptions,
  EnrollRequest,
  EnrollResponse,
} from './enrollment-protocol.js';
export {
  checkPairingProof,
  newPairingCode,
  normalizePairingCode,
  NO_PAIRING,
  PAIRING_CODE_LENGTH,
  pairingNonce,
  pairingProof,
  PairingHandler,
  requestPairingProof,
} from './pairing-protocol.js';
export type { PairingAnswer, PairingChallenge, PairingCodeLookup } from './pairing-protocol.js';

// ---- Discovery ----

/** Finds the homes of an account through the DHT, and announces this home. */
export interface Discovery {
  /** Announces this node as a provider of the account CID (a home calls it for every account it hosts). */
  provide(serverName: string, options?: LookupOptions): Promise<void>;
  /**
   * Verifies a document and puts it in the DHT under `/polyhome/account/<server name>`; returns how many peers took
   * it (0, without an error, when this node's DHT store already holds a newer document of the account).
   */
  publishDocument(document: AccountDocument, options?: LookupOptions): Promise<number>;
  /** The best verified document in the DHT for an account, or undefined; forged records are ignored. */
  fetchDocument(serverName: string, options?: LookupOptions): Promise<AccountDocument | undefined>;
  /**
   * Finds an account's document and homes from a user ID or server name. Throws AccountNotFoundError
   * when the DHT holds no valid document (or one for another localpart), InvalidAccountIdError.
   */
  lookup(userIdOrServerName: string, options?: LookupOptions): Promise<AccountLookup>;
}

/** Options of discovery calls. */
export interface LookupOptions {
  /** Cancels the query. */
  signal?: AbortSignal;
  /** Time allowed per DHT query, ms (default DHT_QUERY_TIMEOUT). */
  timeout?: number;
  /** Ask the DHT for the addresses of homes with none known (default true). */
  findPeer?: boolean;
}

/** What lookup found. */
export interface AccountLookup {
  /** The verified account document (highest seq found). */
  document: AccountDocument;
  /** Every home the document lists, with the addresses known for it. */
  homes: LookedUpHome[];
  /** Providers of the account CID that the document does not list: ignored, reported for logs. */
  ignoredProviders: string[];
}

/** One home of a looked-up account. */
export interface LookedUpHome {
  peerId: string;
  role: HomeRole;
  name: string;
  /** From the document, the peer store, the provider records and (if none) findPeer. */
  addrs: string[];
  /** The home was found providing the account CID. */
  provider: boolean;
  /** This node has an open connection to the home. */
  connected: boolean;
}

/** Options of createDiscovery. */
export interface DiscoveryInit {
  /** Time allowed per DHT query, ms (default DHT_QUERY_TIMEOUT). */
  queryTimeout?: number;
  /** Most providers read per lookup (default MAX_PROVIDERS). */
  maxProviders?: number;
}

/** What discovery needs from the libp2p node. */
export interface DiscoveryComponents {
  peerId: PeerId;
  dht: KadDHT;
  peerStore: Libp2p['peerStore'];
  getConnections: Libp2p['getConnections'];
  /** Where query failures that lookups absorb are logged (default silent). */
  logger?: P2pLogger;
  /**
   * The host's replay guard (`host.services.recordGuard`): accounts provided, published or looked up are
   * pinned in it, so their highest seq is kept beyond the guard's cache (and across restarts with a
   * persistent SeqGuardStore). Without it the DHT store's own comparison still holds.
   */
  recordGuard?: Pick<AccountRecordGuard, 'pin'>;
  /**
   * The host's unreachable peers (`host.services.unreachablePeers`): every peer a query failed on is reported,
   * and one whose dial failed is dropped from the routing table and peer store and held back. Without it a
   * stopped peer is dialled again by every query near it.
   */
  unreachable?: Pick<UnreachablePeers, 'queryFailed'>;
}

/** Creates discovery over a polyhome host's DHT (`{ ...host, dht: host.services.dht }`). */
export function createDiscovery(components: DiscoveryComponents, init?: DiscoveryInit): Discovery {
  return new DhtDiscovery(components, init);
}

// ---- Sync ----

/** Events of the sync service. */
export interface SyncEvents {
  /** Ops accepted from a peer (wake the account's clients). */
  /** `document`: the one in force that the store read under the account's lock for the batch, when it tells it. */
  applied: { account: string; peerId: string; ops: Op[]; changed: string[]; document?: AccountDocument };
  /**
   * A peer confirmed holding `vv` (everything up to it was delivered). `recorded`: the store already recorded it
   * (in the transaction of the batch the peer sent).
   */
  acked: { account: string; peerId: string; vv: VersionVector; recorded?: boolean };
  /** Something was refused: an op (its OpRejectReason), a document, a session (NOT_A_HOME, MALFORMED, ...). */
  rejected: { account: string; peerId: string; code: string; detail: string; op?: unknown };
  /** A newer account document arrived from a peer and is now in force. */
  document: { account: string; peerId: string; document: AccountDocument };
  /** Peers became homes of a hosted account, or are no longer the home of any (revoked, or their account left). */
  homes: { added: string[]; removed: string[] };
  /**
   * A peer brought a document of the seq in force that differs from it: the root key signed two versions
   * (`digests`: the held one's first, the offered one's second; documentDigest of identity). The held one stays.
   */
  equivocation: { account: string; peerId: string; seq: number; digests: [held: string, offered: string] };
}

/** A listener of one sync event. */
export type SyncEventListener<K extends keyof SyncEvents> = (detail: SyncEvents[K]) => void;

/** One open session, for status pages and tests. */
export interface SessionInfo {
  account: string;
  peerId: string;
  /** This node opened the stream. */
  initiator: boolean;
  /** What the peer is known to hold. */
  peerVector: VersionVector;
  /** Ops frames sent and not yet acknowledged. */
  inFlight: number;
}

/** The outcome of dialling one home. */
export interface ConnectResult {
  peerId: string;
  connected: boolean;
  error?: string;
}

/** How far a forced resync (SyncService.resync) has got. */
export interface ResyncProgress {
  /** `connecting`: dialling the home; `exchanging`: a fresh session runs; `converged`: both hold the same ops. */
  phase: 'connecting' | 'exchanging' | 'converged';
  /** Ops received from the home and taken in here (duplicates not counted), since the resync began. */
  opsReceived: number;
  /** Ops sent to the home since the resync began. */
  opsSent: number;
  /** Ops the home holds that this one lacks, by the vectors known now (0 until its hello). */
  missingHere: number;
  /** Ops this home holds that the home has not acknowledged, by the vectors known now. */
  missingThere: number;
}

/** Options of SyncService.resync. */
export interface ResyncOptions {
  /** Ends the resync (ResyncTimeoutError): give it a bound, e.g. AbortSignal.timeout. */
  signal?: AbortSignal;
  /** Called on every change of progress (at most every `pollInterval`). */
  onProgress?: (progress: ResyncProgress) => void;
  /** How often the session is looked at (ms, default 200). */
  pollInterval?: number;
}

/** Keeps the homes of the hosted accounts in sync over /polyhome/sync/1.0.0. */
export interface SyncService {
  /** Registers the protocol handler and starts opening sessions on new connections. */
  start(): Promise<void>;
  /** Closes every session and unregisters the handler. */
  stop(): Promise<void>;
  /** Serves an account from its store; sessions open with its homes already connected. */
  host(account: string, store: ReplicaStore): Promise<void>;
  /**
   * Serves many accounts from one store without reading it: the caller passes each account's home PeerIds
   * (from one set-based query, e.g. at start). Sessions open with those already connected. Throws
   * AccountNotHostedError for a malformed server name.
   */
  hostMany(accounts: Iterable<{ account: string; homes: readonly string[] }>, store: ReplicaStore): void;
  /** Stops serving an account and closes its sessions. */
  unhost(account: string): Promise<void>;
  /** The accounts served. */
  hosted(): string[];
  /** The PeerIds of the other homes of the accounts served (the `homes` event tells changes). */
  homePeers(): string[];
  /** New local ops are in the store: push them at once to every connected home of the account. Throws AccountNotHostedError. */
  publish(account: string, ops?: readonly Op[]): void;
  /** The account document in the store changed (home added or removed): re-check sessions and send it on. */
  documentChanged(account: string): Promise<void>;
  /** Dials every home in the account document (addresses from the document and the peer store) and opens sessions. */
  connectHomes(account: string, options?: { signal?: AbortSignal }): Promise<ConnectResult[]>;
  /** Open sessions, of one account or all. */
  sessions(account?: string): SessionInfo[];
  /**
   * Asks a peer for an account document over /polyhome/document/1.0.0 and verifies it (the service also
   * answers such requests for its hosted accounts, to their homes only). Used by a home added by PeerId to
   * take in an account it does not hold yet. Throws DocumentUnavailableError or the identity errors.
   */
  fetchDocument(peerId: string, account: string, options?: { signal?: AbortSignal }): Promise<AccountDocument>;
  /**
   * Offers an account document to a peer over /polyhome/document/1.0.0: a home the peer does not know yet brings
   * it the (root-signed, newer) document that names it. Resolves true when the peer now holds it in force.
   */
  offerDocument(peerId: string, document: AccountDocument, options?: { signal?: AbortSignal }): Promise<boolean>;
  /**
   * Forces a full sync of an account with one of its homes, as on first contact: the open session with that
   * home (if any) is closed, the home is dialled, and a fresh session exchanges hellos (vectors and log digests)
   * from scratch, so each side sends whatever the other lacks. Resolves once both hold the same ops (the home
   * acknowledged everything sent, and everything it has was taken in here). Throws ResyncRefusedError (not a
   * hosted account, not a current home), HomeUnreachableError (the dial failed), ResyncTimeoutError (aborted
   * by `signal` first, with what was still missing).
   */
  resync(account: string, peerId: string, options?: ResyncOptions): Promise<ResyncProgress>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof SyncEvents>(event: K, listener: SyncEventListener<K>): () => void;
}

/** Options of createSyncService; every default is in constants.ts. */
export interface SyncServiceInit {
  maxFrameBytes?: number;
  opsFrameBudget?: number;
  opsPerFrame?: number;
  maxOpsPerFrame?: number;
  maxBatchesInFlight?: number;
  maxVectorEntries?: number;
  idleTimeout?: number;
  /**
   * How often (ms, jittered by a quarter either way) each end of an open session sends a new hello and
   * compares log digests again; 0 turns it off. A recorded equivocation does it at once.
   */
  antiEntropyInterval?: number;
  helloTimeout?: number;
  writeTimeout?: number;
  openStreamTimeout?: number;
  maxInboundStreams?: number;
  maxOutboundStreams?: number;
  /**
   * Sync streams being opened at once to one peer (default SESSION_OPENS_PER_PEER); the sessions of further
   * accounts wait and open as the peer accepts earlier ones.
   */
  sessionOpensPerPeer?: number;
  /** Where failures that do not reach a caller (a session that could not open, a refusal not delivered) are logged (default silent). */
  logger?: P2pLogger;
}

/** What the sync service needs from the libp2p node (a PolyhomeHost has all of it). */
export type SyncServiceComponents = Pick<
  Libp2p,
  | 'peerId'
  | 'handle'
  | 'unhandle'
  | 'dial'
  | 'dialProtocol'
  | 'getConnections'
  | 'peerStore'
  | 'addEventListener'
  | 'removeEventListener'
> &
  Partial<Pick<Libp2p, 'peerRouting'>>;

/** Creates the sync service on a libp2p node; call start() (and stop()) with the node's lifecycle. */
export function createSyncService(components: SyncServiceComponents, init?: SyncServiceInit): SyncService {
  return new PolyhomeSync(components, init);
}

// ---- Enrollment ----

/** Serves /polyhome/enroll/1.0.0: a home asks this node to become a home of an account whose document names it. */
export interface EnrollmentServer {
  /** Registers the handler (ENROLL_MAX_INBOUND_STREAMS per connection, ENROLL_TIMEOUT_MS per exchange). */
  start(): Promise<void>;
  /** Unregisters the handler; a node already stopping is not an error. */
  stop(): Promise<void>;
}

/**
 * The domain side of enrollment: checks and carries out one request (a JSON object, not yet validated) from
 * the PeerId `from`. Resolves with the answer, or a refusal `{ errcode, error }`; a throw is answered
 * `M_UNKNOWN` and logged as an error.
 */
export type RedeemEnrollment = (
  request: Record<string, unknown>,
  from: string,
) => Promise<EnrollResponse | EnrollErrorResponse>;

/** Options of createEnrollmentServer; the caps default to constants.ts. */
export interface EnrollmentServerInit {
  /** Redeems one request (the server's enrollment service). */
  redeem: RedeemEnrollment;
  /** Where failures are logged (default silent). */
  logger?: P2pLogger;
  /** Time allowed for one exchange, ms (default ENROLL_TIMEOUT_MS). */
  timeout?: number;
  /** Largest request frame (default ENROLL_MAX_FRAME_BYTES); a longer one is answered M_TOO_LARGE. */
  maxFrameBytes?: number;
  maxInboundStreams?: number;
  maxOutboundStreams?: number;
}

/** What the enrollment server needs from the libp2p node. */
export type EnrollmentServerComponents = Pick<Libp2p, 'handle' | 'unhandle'>;

/** Creates the enrollment handler on a libp2p node; start() it with the node, stop() it before. */
export function createEnrollmentServer(
  components: EnrollmentServerComponents,
  init: EnrollmentServerInit,
): EnrollmentServer {
  return new EnrollmentHandler(components, init);
}
export { RelayReservations, isRelayedAddr, relayReservations, relayServerLimits } from './relay.js';
export type { RelayClientInit, RelayReservationInfo, RelayServerInit, RelayServerLimits } from './relay.js';
