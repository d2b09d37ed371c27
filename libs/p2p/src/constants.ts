// Defaults of the polyhome libp2p host, discovery and sync protocol. Every cap and timeout lives here
// so the README can quote them and tests can lower them. Caps that the sync engine also enforces are
// taken from it, so the wire and the engine cannot disagree.
import {
  CATCH_UP_BATCH_SIZE,
  MAX_OPS_PER_BATCH,
  MAX_REASON_LENGTH,
  MAX_VV_ENTRIES,
  SESSION_WINDOW,
} from '@polyhome/sync';

/** Protocol id of the polyhome kad-dht: our own DHT, never the IPFS one (`/ipfs/kad/1.0.0`). */
export const DHT_PROTOCOL = '/polyhome/kad/1.0.0';
/** Protocol id of the sync protocol between the homes of an account. */
export const SYNC_PROTOCOL = '/polyhome/sync/1.0.0';
/** DHT record namespace: keys are `/polyhome/...`, so kad-dht picks our validator and selector by it. */
export const RECORD_NAMESPACE = 'polyhome';
/** Prefix of the DHT record key that holds an account document: `/polyhome/account/<server name>`. */
export const ACCOUNT_RECORD_PREFIX = '/polyhome/account/';
/** Prefix hashed (with the server name) into the CID that the homes of an account provide. */
export const ACCOUNT_CID_PREFIX = 'polyhome:account:';
/** Where kad-dht files DHT records in libp2p's datastore (its default `datastorePrefix` `/dht`, then `/record/`). */
export const DHT_RECORD_DATASTORE_PREFIX = '/dht/record/';
/** Accounts whose highest seq the replay guard's cache holds (the DHT store and the SeqGuardStore hold the rest). */
export const RECORD_GUARD_MAX_ACCOUNTS = 10_000;

/** Default listen address: every interface, a port chosen by the OS. */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0'];
/** Most open connections (libp2p's hard cap); a home talks to its accounts' homes and a slice of the DHT. */
export const MAX_CONNECTIONS = 300;
/**
 * Connection slots kept for the homes of the hosted accounts: a stranger's (any peer that is not such a home)
 * inbound connection is refused once the table holds MAX_CONNECTIONS - HOME_CONNECTION_RESERVE connections, and
 * when a home's connection leaves fewer free slots than this, strangers' connections are closed to make room.
 */
export const HOME_CONNECTION_RESERVE = 50;
/** Most connections one PeerId may hold with this node (a home too); a further inbound one is refused. */
export const MAX_CONNECTIONS_PER_PEER = 4;
/** Most inbound connections of strangers from one IP address (a home is not counted nor refused by it). */
export const MAX_STRANGER_CONNECTIONS_PER_IP = 16;
/** A stranger's connection with no open stream for this long is closed (ms); homes' connections are kept. */
export const STRANGER_IDLE_TIMEOUT = 60_000;
/** Peer tag that marks the homes of the hosted accounts: the connection pruner closes their connections last. */
export const HOME_PEER_TAG = 'polyhome-home';
/** Value of HOME_PEER_TAG: the highest libp2p allows (kad-dht's closest peers carry 50). */
export const HOME_PEER_TAG_VALUE = 100;
/**
 * Most inbound connections being upgraded at once (a slow-handshake flood stops here; one more is reset, and a home
 * dials again later). Also the server's cheapest admission control: twenty bench homes dialing at once at 64 were
 * all let in, and the server, busy opening their thousand sync sessions, answered pings so late that homes aborted.
 */
export const MAX_INCOMING_PENDING_CONNECTIONS = 10;
/** Inbound connections per second accepted from one host before libp2p resets them. */
export const INBOUND_CONNECTION_THRESHOLD = 5;
/** Time allowed for one dial, in ms. */
export const DIAL_TIMEOUT = 10_000;

/** Parallel ping streams per connection, each way. */
export const PING_MAX_STREAMS = 4;

/** Largest sync frame (the JSON of one message), in bytes: 1 MiB. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** Byte budget for the ops of one outgoing `ops` frame, leaving room for the envelope below MAX_FRAME_BYTES. */
export const OPS_FRAME_BUDGET = 768 * 1024;
/**
 * Most ops put in one outgoing `ops` frame: the sync engine's batch size while catching a peer up (it sends
 * SESSION_BATCH_SIZE otherwise).
 */
export const OPS_PER_FRAME = CATCH_UP_BATCH_SIZE;
/** Most ops accepted in one incoming `ops` frame (the engine's batch cap): bounds the work of one message. */
export const MAX_OPS_PER_FRAME = MAX_OPS_PER_BATCH;
/** Most `ops` frames sent and not yet acknowledged on one session (batches per round; the engine's window). */
export const MAX_BATCHES_IN_FLIGHT = SESSION_WINDOW;
/** Most entries in a received version vector (the engine's cap). */
export const MAX_VECTOR_ENTRIES = MAX_VV_ENTRIES;
/** Longest `reason` text accepted in an `error` message (the engine's cap). */
export const MAX_ERROR_REASON_LENGTH = MAX_REASON_LENGTH;

/** A session with no frame received for this long is closed (ms); it is reopened when there is something to send. */
export const SESSION_IDLE_TIMEOUT = 120_000;
/**
 * Anti-entropy: each end of each open session sends a new hello (vector and log digests) and compares
 * digests again after this long (ms), jittered by ANTI_ENTROPY_JITTER either way, so two homes that hold different
 * versions of a slot find out while the account is quiet. 0 turns it off.
 */
export const ANTI_ENTROPY_INTERVAL = 60_000;
/** The fraction of ANTI_ENTROPY_INTERVAL each round is moved by at random, either way (rounds of many sessions spread out). */
export const ANTI_ENTROPY_JITTER = 0.25;
/** The opening `hello` must arrive within this time on an inbound stream (ms). */
export const HELLO_TIMEOUT = 10_000;
/** Time allowed for one frame write, including waiting for the peer to drain (ms). */
export const WRITE_TIMEOUT = 30_000;
/** Time allowed to open a sync stream on an existing connection (ms). */
export const OPEN_STREAM_TIMEOUT = 10_000;
/**
 * Parallel sync streams accepted per connection: one per account two homes share (a session stays open until
 * idle for SESSION_IDLE_TIMEOUT), so a client home with a few hundred accounts on one server keeps them all open.
 * A session of a further account waits until one closes. Equal to MAX_OUTBOUND_STREAMS: what one end may open,
 * the other accepts.
 */
export const MAX_INBOUND_STREAMS = 512;
/** Parallel sync streams opened per connection (MAX_INBOUND_STREAMS, so the other end accepts them all). */
export const MAX_OUTBOUND_STREAMS = MAX_INBOUND_STREAMS;
/**
 * Sync streams being opened at once to one peer; the sessions of further accounts wait in a queue and open as
 * the peer accepts earlier ones (protocol agreed). A home connecting with 50 accounts once opened 50 streams
 * in the same instant, before the other end had finished setting the connection up, and yamux aborted the
 * whole connection (MaxEarlyStreamsError).
 */
export const SESSION_OPENS_PER_PEER = 4;
/**
 * Streams a peer may open on a new connection before this end has finished setting it up (yamux's early
 * streams; more abort the connection). Above what a polyhome peer opens in that moment: SESSION_OPENS_PER_PEER
 * sync streams, identify and its push, a few pings, DHT queries, a document fetch, an enrollment.
 */
export const MUXER_MAX_EARLY_STREAMS = 64;
/**
 * Streams per connection, all protocols, each way (yamux's own cap): the sync streams plus the caps of the
 * other protocols (DHT 32 inbound and 64 outbound, federation 32, ping, identify, document, enrollment, pairing)
 * with room to spare.
 */
export const MUXER_MAX_STREAMS = MAX_INBOUND_STREAMS + 128;

/** Time allowed for a DHT query (provide, put, get, findProviders, findPeer), in ms. */
export const DHT_QUERY_TIMEOUT = 30_000;
/** Most providers read from the DHT in one lookup. */
export const MAX_PROVIDERS = 64;

/**
 * Protocol id of the document fetch: a home of an account asks another home for the account document.
 * It lets a new home that was added by PeerId (and so holds nothing yet) take the account in.
 */
export const DOCUMENT_PROTOCOL = '/polyhome/document/1.0.0';
/** Largest request or answer frame of the document fetch (a document is at most 64 KiB). */
export const DOCUMENT_MAX_FRAME_BYTES = 128 * 1024;
/** Time allowed for a whole document fetch, ms. */
export const DOCUMENT_FETCH_TIMEOUT = 10_000;

/** Protocol id of enrollment: a home asks a server to become a home of an account whose signed document names it. */
export const ENROLL_PROTOCOL = '/polyhome/enroll/1.0.0';
/** Largest enrollment frame either way: an account document is at most 64 KiB canonical, so this leaves room for JSON spacing. */
export const ENROLL_MAX_FRAME_BYTES = 128 * 1024;
/** Time allowed for a whole enrollment exchange (open, request, answer), each side, ms. */
export const ENROLL_TIMEOUT_MS = 10_000;
/** Enrollment streams per connection: enrolling is rare, so a peer opening many at once is not enrolling. */
export const ENROLL_MAX_INBOUND_STREAMS = 2;
/** Outbound enrollment streams per connection. */
export const ENROLL_MAX_OUTBOUND_STREAMS = 2;

/**
 * Protocol id of pairing: a node made with `init --join` asks the home that offers it an account to prove
 * the node's pairing code (an HMAC over a fresh nonce), before it takes the account in.
 */
export const PAIRING_PROTOCOL = '/polyhome/pairing/1.0.0';
/** Largest pairing frame either way (a server name, a nonce, a MAC: well under 1 KiB). */
export const PAIRING_MAX_FRAME_BYTES = 2048;
/** Time allowed for a whole pairing exchange, each side, ms. */
export const PAIRING_TIMEOUT_MS = 10_000;
/** Pairing streams per connection, each way: a joining node asks once per account offered. */
export const PAIRING_MAX_STREAMS = 2;

/**
 * A peer whose dial failed is not dialled again for this long, ms (doubled on each further failure, up to
 * DIAL_BACKOFF_MAX); it is dropped from the DHT routing table and the peer store at once (homes of hosted
 * accounts stay in the peer store and are never held back).
 */
export const DIAL_BACKOFF = 60_000;
/** The longest dial backoff, ms. */
export const DIAL_BACKOFF_MAX = 30 * 60_000;
/** Peers whose dial backoff is remembered at most (the oldest is forgotten first). */
export const DIAL_BACKOFF_MAX_PEERS = 10_000;

/**
 * Protocol id of the Matrix server-server API between homes: one HTTP/1.1 request and its answer per stream
 * (`/_matrix/federation/v1/...` paths, JSON bodies), the caller authenticated by the PeerId noise proved.
 */
export const FEDERATION_PROTOCOL = '/polyhome/federation/1.0.0';
/**
 * Largest request body, bytes: 4 MiB. A spec transaction holds at most 50 PDUs of at most 64 KiB and 100 EDUs
 * (3.2 MiB of PDUs at most, EDUs a few KiB each), so the largest legal `/send` fits with room for JSON spacing.
 */
export const FEDERATION_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Largest answer body a caller reads by default, bytes (a `send_join` answer carries the room's state: 16 MiB). */
export const FEDERATION_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** Largest request line plus headers (and status line plus headers of an answer), bytes; more is answered 431. */
export const FEDERATION_MAX_HEAD_BYTES = 16 * 1024;
/** Deepest nesting of arrays and objects accepted in a JSON body; deeper is answered 400 M_BAD_JSON. */
export const FEDERATION_MAX_JSON_DEPTH = 64;
/** The request line and headers must arrive within this time of the stream opening (ms); else 408 and abort. */
export const FEDERATION_HEAD_TIMEOUT = 10_000;
/** The whole request (headers and body) must arrive within this time of the stream opening (ms); else 408. */
export const FEDERATION_READ_TIMEOUT = 30_000;
/** The answer must be written within this time of the stream opening (ms); a handler still running gets 504. */
export const FEDERATION_REQUEST_TIMEOUT = 60_000;
/** Time a caller waits for a whole exchange by default (dial, request, answer), ms. */
export const FEDERATION_CLIENT_TIMEOUT = 60_000;
/** Requests served at once for one peer (all its connections); more are answered 429 M_LIMIT_EXCEEDED. */
export const FEDERATION_MAX_CONCURRENT_PER_PEER = 16;
/** Requests served at once for all peers together; more are answered 429 M_LIMIT_EXCEEDED. */
export const FEDERATION_MAX_CONCURRENT = 256;
/**
 * Bytes of request bodies being read or held at once, all peers together (each request reserves its
 * Content-Length before its body is read); a request over the budget is answered 429. Without it, the
 * concurrency caps times the body cap (256 × 4 MiB) would be the memory a flood could pin.
 */
export const FEDERATION_MAX_BODY_BYTES_IN_FLIGHT = 64 * 1024 * 1024;
/** After the answer, a caller that has not closed its end within this time has its stream aborted (ms). */
export const FEDERATION_LINGER_TIMEOUT = 2_000;
/** The `retry_after_ms` of a 429 answer. */
export const FEDERATION_RETRY_AFTER_MS = 1_000;
/**
 * Federation streams per connection, each way (libp2p resets the ones beyond): above the per-peer cap, so a
 * peer over it is answered 429 rather than reset; inside the 128 streams MUXER_MAX_STREAMS leaves to protocols
 * other than sync.
 */
export const FEDERATION_MAX_STREAMS = 32;

/** Reservations a server home's relay holds at most (one per client home of its accounts; more are refused). */
export const RELAY_MAX_RESERVATIONS = 128;
/** How long a relay reservation lasts before the client refreshes it, ms (libp2p's default: 2 hours). */
export const RELAY_RESERVATION_TTL = 2 * 60 * 60_000;
/** Relayed connections a peer may open at once through one connection to the relay (hop streams). */
export const RELAY_MAX_CIRCUITS_PER_CONNECTION = 32;
/** Relays a client home that is not reachable holds a reservation on (two: one server home may go down). */
export const RELAY_CLIENT_RESERVATIONS = 2;
/** Time after start before a client home judges whether it is reachable (AutoNAT's first answers), ms. */
export const RELAY_CHECK_DELAY = 3_000;
/** How often a client home looks for missing relay reservations, and the first retry delay of a failed relay, ms. */
export const RELAY_RETRY_INTERVAL = 10_000;
/** The longest delay before a client home tries a failed relay again, ms (doubling from RELAY_RETRY_INTERVAL). */
export const RELAY_RETRY_INTERVAL_MAX = 5 * 60_000;
/** Time allowed for one relay reservation (dial and reserve), ms; past it the relay counts as failed. */
export const RELAY_RESERVE_TIMEOUT = 30_000;

/**
 * Protocol id of the Matrix client API over libp2p (`polyhome proxy`): one HTTP/1.1 request and its answer per
 * stream, binary bodies, a whitelist of headers; the home forwards it to its own Matrix client API. Only paths
 * under CLIENT_API_PATH_PREFIXES are served.
 */
export const CLIENT_API_PROTOCOL = '/polyhome/client/1.0.0';
/** Paths a home serves over CLIENT_API_PROTOCOL (anything else, `/admin/...` above all, is refused 403). */
export const CLIENT_API_PATH_PREFIXES: readonly string[] = Object.freeze([
  '/_matrix/client/',
  '/_matrix/media/',
  '/.well-known/matrix/client',
]);
/** Methods a client may send; others are answered 405. */
export const CLIENT_API_METHODS: readonly string[] = Object.freeze(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS']);
/** Request headers carried to the home (lower case); any other is dropped. Content-Length is the body's own. */
export const CLIENT_API_REQUEST_HEADERS: readonly string[] = Object.freeze([
  'authorization',
  'content-type',
  'accept',
  'accept-language',
  'user-agent',
  'origin',
  'access-control-request-method',
  'access-control-request-headers',
  'if-none-match',
  'if-modified-since',
  'range',
]);
/** Answer headers carried back to the client (lower case, and every `access-control-*`); any other is dropped. */
export const CLIENT_API_RESPONSE_HEADERS: readonly string[] = Object.freeze([
  'content-type',
  'content-disposition',
  'content-range',
  'accept-ranges',
  'cache-control',
  'etag',
  'last-modified',
  'expires',
  'vary',
  'retry-after',
  'location',
  'www-authenticate',
  'content-security-policy',
  'cross-origin-resource-policy',
  'x-content-type-options',
]);
/** Largest request body a home reads, bytes (the default media upload cap: 50 MiB; the apps pass their own cap). */
export const CLIENT_API_MAX_BODY_BYTES = 50 * 1024 * 1024;
/** Largest answer body, bytes, each way (a media download of the largest upload, with room). */
export const CLIENT_API_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Bytes of request bodies held at once by a home, all peers together; a request over it is answered 429. */
export const CLIENT_API_MAX_BODY_BYTES_IN_FLIGHT = 128 * 1024 * 1024;
/** The request line and headers must arrive within this time of the stream opening (ms); else 408. */
export const CLIENT_API_HEAD_TIMEOUT = 10_000;
/** The whole request must arrive within this time of the stream opening (ms): a 50 MiB upload on a slow link. */
export const CLIENT_API_READ_TIMEOUT = 120_000;
/**
 * The answer must be written within this time of the stream opening (ms); else 504. Above the longest /sync
 * long poll a client asks for (matrix-js-sdk: 30 s; at most 120 s is sensible) with a margin.
 */
export const CLIENT_API_REQUEST_TIMEOUT = 150_000;
/** Time a caller (the proxy) waits for a whole exchange, ms: the home's deadline and the transfer. */
export const CLIENT_API_CLIENT_TIMEOUT = 160_000;
/** Requests served at once for one peer; more are answered 429 (a client's /sync, key queries and uploads). */
export const CLIENT_API_MAX_CONCURRENT_PER_PEER = 32;
/** Requests served at once for all peers together; more are answered 429. */
export const CLIENT_API_MAX_CONCURRENT = 256;
/** Client API streams per connection, each way: above the per-peer cap (429 rather than reset), in MUXER_MAX_STREAMS' room. */
export const CLIENT_API_MAX_STREAMS = 40;

/** A leaving home hands an account's root key to another server home of it (provider migration). */
export const CUSTODY_PROTOCOL = '/polyhome/custody/1.0.0';
/** Largest frame of the custody protocol (a document is at most 64 KiB canonical; the key is 43 characters). */
export const CUSTODY_MAX_FRAME_BYTES = 128 * 1024;
/** Time allowed to one custody exchange, each way (the receiver seals and stores in it). */
export const CUSTODY_TIMEOUT_MS = 20_000;
/** Custody streams a connection may hold at once, each way. */
export const CUSTODY_MAX_STREAMS = 2;
