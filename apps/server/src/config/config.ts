import { isIP } from 'node:net';
import { multiaddr } from '@multiformats/multiaddr';
import {
  HOME_CONNECTION_RESERVE,
  INBOUND_CONNECTION_THRESHOLD,
  MAX_INCOMING_PENDING_CONNECTIONS,
  MAX_CONNECTIONS,
  MAX_CONNECTIONS_PER_PEER,
  MAX_STRANGER_CONNECTIONS_PER_IP,
  RELAY_MAX_RESERVATIONS,
  RELAY_RESERVATION_TTL,
  STRANGER_IDLE_TIMEOUT,
} from '@polyhome/p2p';
import { DEFAULT_HTTP_LIMITS, type HttpLimits } from '@polyhome/home';
import { DEFAULT_MEDIA_MAX_BYTES } from '@polyhome/matrix';

/** Pino log levels accepted in LOG_LEVEL. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Who may enroll this server as a home of their account: holders of a token, anyone, or nobody. */
export const ENROLLMENT_POLICIES = ['token', 'open', 'closed'] as const;

/** An enrollment policy. */
export type EnrollmentPolicy = (typeof ENROLLMENT_POLICIES)[number];

function multiaddrs(allowEmpty: boolean): (value: string, name: string) => string[] {
  return (value, name) => {
    const addrs = value
      .split(',')
      .map((a) => a.trim())
      .filter((a) => a !== '');
    if (addrs.length === 0 && !allowEmpty) {
      throw new ConfigError(name, 'is empty; expected multiaddrs like /ip4/0.0.0.0/tcp/4001.');
    }
    for (const addr of addrs) {
      try {
        multiaddr(addr);
      } catch {
        throw new ConfigError(name, `"${addr}" is not a multiaddr; expected something like /ip4/0.0.0.0/tcp/4001.`);
      }
    }
    return addrs;
  };
}

/** P2P_ANNOUNCE: multiaddrs as P2P_LISTEN, and none of them unspecified (nobody can dial 0.0.0.0). */
function announceAddrs(value: string, name: string): string[] {
  const addrs = multiaddrs(true)(value, name);
  const unspecified = addrs.find((a) => a.includes('/0.0.0.0/') || a.includes('/::/'));
  if (unspecified !== undefined) {
    throw new ConfigError(
      name,
      `"${unspecified}" is an unspecified address nobody can dial; give the public ones, like /ip4/203.0.113.7/tcp/4001 or /dns4/home.example.org/tcp/4001.`,
    );
  }
  return addrs;
}

/** The server's configuration, validated once at boot. */
export interface AppConfig {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** Key prefix of the BullMQ queues (instances sharing a database share it). */
  queuePrefix: string;
  adminToken: string | undefined;
  logLevel: LogLevel;
  p2pListen: string[];
  p2pBootstrap: string[];
  /** Addresses put in account documents and the DHT instead of the listen addresses (empty: the listen ones). */
  p2pAnnounce: string[];
  /** libp2p connection limits (see the connection guard of @polyhome/p2p). */
  p2pMaxConnections: number;
  p2pHomeConnectionReserve: number;
  p2pMaxConnectionsPerPeer: number;
  p2pMaxStrangerConnectionsPerIp: number;
  p2pStrangerIdleTimeoutMs: number;
  p2pInboundConnectionThreshold: number;
  /** Inbound libp2p connections in their handshake at once (P2P_MAX_INCOMING_PENDING_CONNECTIONS). */
  p2pMaxIncomingPendingConnections: number;
  /** Serve the Matrix client API over libp2p (`polyhome proxy`). */
  clientApiOverP2p: boolean;
  /** The circuit relay for the homes of the hosted accounts (`relayServer` of @polyhome/p2p); off: no relay. */
  relay: {
    enabled: boolean;
    maxReservations: number;
    reservationTtl: number;
    dataLimit: number;
    durationLimit: number;
  };
  homeName: string;
  sealingKey: string | undefined;
  enrollmentPolicy: EnrollmentPolicy;
  migrationsRun: boolean;
  shutdownTimeoutMs: number;
  rateLimitPerMinute: number;
  /** The first wait of a user ID after too many wrong passwords (it doubles with each further one). */
  loginBackoffMs: number;
  metricsToken: string | undefined;
  /** Largest media upload in bytes. */
  mediaMaxBytes: number;
  /** Timeouts and connection cap of the HTTP server (slow clients). */
  http: HttpLimits;
}

/** Thrown when an environment variable has a value that is not allowed; the message names it and says what is. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

interface Variable<T> {
  /** What the README's table says about it. */
  description: string;
  default: string | undefined;
  parse(value: string, name: string): T;
}

function integer(min: number, max: number): (value: string, name: string) => number {
  return (value, name) => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new ConfigError(name, `got "${value}", expected a whole number from ${min} to ${max}.`);
    }
    return Number(value);
  };
}

/** `true` or `false`, nothing else. */
function boolean(value: string, name: string): boolean {
  if (value !== 'true' && value !== 'false') throw new ConfigError(name, `got "${value}", expected true or false.`);
  return value === 'true';
}

function url(protocols: string[], example: string): (value: string, name: string) => string {
  return (value, name) => {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new ConfigError(name, `is not a URL; expected something like ${example}.`);
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new ConfigError(
        name,
        `has scheme "${parsed.protocol}", expected ${protocols.join(' or ')} (e.g. ${example}).`,
      );
    }
    return value;
  };
}

/** The configuration schema: every variable, its default, and how it is checked. */
export const CONFIG_SCHEMA = {
  PORT: {
    description: 'HTTP port of the Matrix client API, the admin API and /health.',
    default: '8008',
    parse: integer(1, 65535),
  },
  HOST: {
    description:
      'Address the HTTP server binds to. Loopback by default; set 0.0.0.0 behind a reverse proxy or in a container.',
    default: '127.0.0.1',
    parse: (value: string, name: string) => {
      if (isIP(value) === 0 && !/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}))*$/.test(value)) {
        throw new ConfigError(name, `got "${value}", expected an IP address (127.0.0.1, 0.0.0.0, ::) or a host name.`);
      }
      return value;
    },
  },
  DATA_DIR: {
    description: 'Directory for the embedded database, the node key and the generated admin token.',
    default: './data',
    parse: (value: string, name: string) => {
      if (value.trim() === '') throw new ConfigError(name, 'is empty; expected a directory path.');
      return value;
    },
  },
  DATABASE_URL: {
    description: 'PostgreSQL URL. Unset: embedded PGlite in DATA_DIR/db.',
    default: undefined,
    parse: url(['postgres:', 'postgresql:'], 'postgres://postgres@127.0.0.1:5432/polyhome'),
  },
  REDIS_URL: {
    description: 'Redis URL for BullMQ. Unset: the in-process queue.',
    default: undefined,
    parse: url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379'),
  },
  QUEUE_PREFIX: {
    description:
      'Prefix of the BullMQ keys in Redis. Server instances sharing a database share it (that is how they share jobs); separate deployments on one Redis need different ones.',
    default: 'polyhome',
    parse: (value: string, name: string) => {
      if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
        throw new ConfigError(name, `got "${value}", expected 1 to 64 characters of A-Z a-z 0-9 . _ -.`);
      }
      return value;
    },
  },
  ADMIN_TOKEN: {
    description:
      'Bearer token for /admin. Unset: generated at first start and kept in DATA_DIR/admin-token (mode 0600).',
    default: undefined,
    parse: (value: string, name: string) => {
      if (value.length < 16 || /\s/.test(value)) {
        throw new ConfigError(name, 'must be at least 16 characters with no spaces (e.g. `openssl rand -hex 32`).');
      }
      return value;
    },
  },
  LOG_LEVEL: {
    description: `Log level: ${LOG_LEVELS.join(', ')}.`,
    default: 'info',
    parse: (value: string, name: string): LogLevel => {
      if (!(LOG_LEVELS as readonly string[]).includes(value)) {
        throw new ConfigError(name, `got "${value}", expected one of ${LOG_LEVELS.join(', ')}.`);
      }
      return value as LogLevel;
    },
  },
  P2P_LISTEN: {
    description: 'Comma-separated libp2p listen multiaddrs.',
    default: '/ip4/0.0.0.0/tcp/4001',
    parse: multiaddrs(false),
  },
  P2P_ANNOUNCE: {
    description:
      'Comma-separated multiaddrs to publish in account documents and the DHT instead of the listen addresses (in a container or behind NAT: the address others dial).',
    default: '',
    parse: announceAddrs,
  },
  P2P_BOOTSTRAP: {
    description: 'Comma-separated multiaddrs (with /p2p/<PeerId>) of peers to dial at start, to join the DHT.',
    default: '',
    parse: multiaddrs(true),
  },
  P2P_MAX_CONNECTIONS: {
    description: 'Most open libp2p connections (the hard cap; 2-100000).',
    default: String(MAX_CONNECTIONS),
    parse: integer(2, 100_000),
  },
  P2P_HOME_CONNECTION_RESERVE: {
    description:
      "libp2p connection slots strangers (peers that are no home of a hosted account) may not take, kept for the accounts' homes; below P2P_MAX_CONNECTIONS.",
    default: String(HOME_CONNECTION_RESERVE),
    parse: integer(1, 100_000),
  },
  P2P_MAX_CONNECTIONS_PER_PEER: {
    description: 'Most libp2p connections one PeerId may hold with this server.',
    default: String(MAX_CONNECTIONS_PER_PEER),
    parse: integer(1, 1000),
  },
  P2P_MAX_STRANGER_CONNECTIONS_PER_IP: {
    description:
      "Most inbound libp2p connections of strangers from one IP address (the accounts' homes are not counted).",
    default: String(MAX_STRANGER_CONNECTIONS_PER_IP),
    parse: integer(1, 100_000),
  },
  P2P_STRANGER_IDLE_TIMEOUT_MS: {
    description: "A stranger's libp2p connection with no open stream for this long is closed (the homes' are kept).",
    default: String(STRANGER_IDLE_TIMEOUT),
    parse: integer(100, 86_400_000),
  },
  P2P_INBOUND_CONNECTION_THRESHOLD: {
    description: 'Inbound libp2p connections per second accepted from one IP address.',
    default: String(INBOUND_CONNECTION_THRESHOLD),
    parse: integer(1, 100_000),
  },
  P2P_MAX_INCOMING_PENDING_CONNECTIONS: {
    description:
      'Inbound libp2p connections in their handshake at once; one more is reset (its home dials again later).',
    default: String(MAX_INCOMING_PENDING_CONNECTIONS),
    parse: integer(1, 10_000),
  },
  CLIENT_API_OVER_P2P: {
    description:
      "Serve the Matrix client API (only /_matrix/client/, /_matrix/media/, /.well-known/matrix/client; never /admin) over libp2p on /polyhome/client/1.0.0, for `polyhome proxy` (true or false). Requests are forwarded to this server's own HTTP listener, which checks access tokens as for any client.",
    default: 'true',
    parse: boolean,
  },
  RELAY_ENABLED: {
    description:
      'Run a circuit relay (v2) for the homes of the hosted accounts, so client homes behind NAT can be reached (true or false). Nobody else may reserve.',
    default: 'true',
    parse: boolean,
  },
  RELAY_MAX_RESERVATIONS: {
    description: 'Most relay reservations held at once (one per client home of the hosted accounts); more are refused.',
    default: String(RELAY_MAX_RESERVATIONS),
    parse: integer(1, 100_000),
  },
  RELAY_RESERVATION_TTL_MS: {
    description: 'How long a relay reservation lasts before the client home must refresh it, ms.',
    default: String(RELAY_RESERVATION_TTL),
    parse: integer(60_000, 86_400_000),
  },
  RELAY_DATA_LIMIT_BYTES: {
    description: 'Bytes one relayed connection may carry before the relay closes it; 0: no limit.',
    default: '0',
    parse: integer(0, Number.MAX_SAFE_INTEGER),
  },
  RELAY_DURATION_LIMIT_MS: {
    description: 'How long one relayed connection may stay open before the relay closes it, ms; 0: no limit.',
    default: '0',
    parse: integer(0, 2_147_483_647),
  },
  HOME_NAME: {
    description: 'The name this server is given in the account documents it signs or joins (1-64 characters).',
    default: 'server',
    parse: (value: string, name: string) => {
      if ([...value].length > 64 || value.trim() === '') throw new ConfigError(name, 'must be 1 to 64 characters.');
      return value;
    },
  },
  SEALING_KEY: {
    description:
      "Key that seals hosted accounts' root keys at rest: 64 hex characters (32 bytes). Unset: generated into DATA_DIR/sealing-key (mode 0600). Server instances sharing a database must share it.",
    default: undefined,
    parse: (value: string, name: string) => {
      if (!/^[0-9a-fA-F]{64}$/.test(value)) {
        throw new ConfigError(name, 'must be 64 hex characters (32 bytes), e.g. `openssl rand -hex 32`.');
      }
      return value.toLowerCase();
    },
  },
  ENROLLMENT_POLICY: {
    description:
      'Who may enroll this server as a home of their account: token (with an enrollment token), open, or closed.',
    default: 'token',
    parse: (value: string, name: string): EnrollmentPolicy => {
      if (!(ENROLLMENT_POLICIES as readonly string[]).includes(value)) {
        throw new ConfigError(name, `got "${value}", expected one of ${ENROLLMENT_POLICIES.join(', ')}.`);
      }
      return value as EnrollmentPolicy;
    },
  },
  MIGRATIONS_RUN: {
    description: 'Apply pending database migrations at start (true or false).',
    default: 'true',
    parse: boolean,
  },
  SHUTDOWN_TIMEOUT_MS: {
    description: 'How long a graceful shutdown may take before the process exits anyway.',
    default: '10000',
    parse: integer(100, 600_000),
  },
  RATE_LIMIT_PER_MINUTE: {
    description:
      'Requests per minute one client address may make to each unauthenticated route (0 turns the limit off). Admin routes are not limited.',
    default: '120',
    parse: integer(0, 1_000_000),
  },
  LOGIN_BACKOFF_MS: {
    description:
      'After 5 wrong passwords for one user ID (any route, any address) it waits this long before the next guess is checked, twice as long after each further wrong one (at most 15 minutes); a right password clears it.',
    default: '1000',
    parse: integer(100, 60_000),
  },
  METRICS_TOKEN: {
    description:
      'Bearer token for GET /metrics (>= 16 characters). Unset: /metrics is open to whoever can reach HOST:PORT.',
    default: undefined,
    parse: (value: string, name: string) => {
      if (value.length < 16 || /\s/.test(value)) {
        throw new ConfigError(name, 'must be at least 16 characters with no spaces (e.g. `openssl rand -hex 32`).');
      }
      return value;
    },
  },
  MEDIA_MAX_BYTES: {
    description:
      'Largest media upload in bytes (1024-1073741824; 50 MiB by default). Larger uploads are refused with 413 M_TOO_LARGE before they are read; an upload is held in memory until it is stored.',
    default: String(DEFAULT_MEDIA_MAX_BYTES),
    parse: integer(1024, 1024 * 1024 * 1024),
  },
  HTTP_HEADERS_TIMEOUT_MS: {
    description:
      'Time a client has to send the headers of a request (counted from the connection, or the previous answer); then 408 and the connection is closed. Slow clients (slowloris) hold a connection no longer.',
    default: String(DEFAULT_HTTP_LIMITS.headersTimeoutMs),
    parse: integer(100, 600_000),
  },
  HTTP_REQUEST_TIMEOUT_MS: {
    description:
      'Time a client has to send a whole request, body included (not the answer: long polls are not cut). At least HTTP_HEADERS_TIMEOUT_MS.',
    default: String(DEFAULT_HTTP_LIMITS.requestTimeoutMs),
    parse: integer(100, 3_600_000),
  },
  HTTP_KEEP_ALIVE_TIMEOUT_MS: {
    description:
      'How long an idle keep-alive connection stays open after an answer. Behind a reverse proxy, make it longer than the proxy keeps its idle upstream connections.',
    default: String(DEFAULT_HTTP_LIMITS.keepAliveTimeoutMs),
    parse: integer(100, 600_000),
  },
  HTTP_MAX_REQUESTS_PER_SOCKET: {
    description: 'Requests on one connection before the server closes it (0: no limit).',
    default: String(DEFAULT_HTTP_LIMITS.maxRequestsPerSocket),
    parse: integer(0, 1_000_000),
  },
  HTTP_MAX_CONNECTIONS: {
    description:
      'Open HTTP connections at most; further ones are closed at once. Keeps file descriptors for the database and libp2p; keep it well under `ulimit -n`.',
    default: String(DEFAULT_HTTP_LIMITS.maxConnections),
    parse: integer(1, 1_000_000),
  },
} satisfies Record<string, Variable<unknown>>;

function read<T>(env: Env, name: string, variable: Variable<T>): T | undefined {
  const raw = env[name];
  const value = raw === undefined || raw === '' ? variable.default : raw;
  return value === undefined ? undefined : variable.parse(value, name);
}

/** Validates the environment against the schema; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env): AppConfig {
  const s = CONFIG_SCHEMA;
  const config: AppConfig = {
    port: read(env, 'PORT', s.PORT)!,
    host: read(env, 'HOST', s.HOST)!,
    dataDir: read(env, 'DATA_DIR', s.DATA_DIR)!,
    databaseUrl: read(env, 'DATABASE_URL', s.DATABASE_URL),
    redisUrl: read(env, 'REDIS_URL', s.REDIS_URL),
    queuePrefix: read(env, 'QUEUE_PREFIX', s.QUEUE_PREFIX)!,
    adminToken: read(env, 'ADMIN_TOKEN', s.ADMIN_TOKEN),
    logLevel: read(env, 'LOG_LEVEL', s.LOG_LEVEL)!,
    p2pListen: read(env, 'P2P_LISTEN', s.P2P_LISTEN)!,
    p2pBootstrap: read(env, 'P2P_BOOTSTRAP', s.P2P_BOOTSTRAP)!,
    p2pAnnounce: read(env, 'P2P_ANNOUNCE', s.P2P_ANNOUNCE)!,
    p2pMaxConnections: read(env, 'P2P_MAX_CONNECTIONS', s.P2P_MAX_CONNECTIONS)!,
    p2pHomeConnectionReserve: read(env, 'P2P_HOME_CONNECTION_RESERVE', s.P2P_HOME_CONNECTION_RESERVE)!,
    p2pMaxConnectionsPerPeer: read(env, 'P2P_MAX_CONNECTIONS_PER_PEER', s.P2P_MAX_CONNECTIONS_PER_PEER)!,
    p2pMaxStrangerConnectionsPerIp: read(
      env,
      'P2P_MAX_STRANGER_CONNECTIONS_PER_IP',
      s.P2P_MAX_STRANGER_CONNECTIONS_PER_IP,
    )!,
    p2pStrangerIdleTimeoutMs: read(env, 'P2P_STRANGER_IDLE_TIMEOUT_MS', s.P2P_STRANGER_IDLE_TIMEOUT_MS)!,
    p2pInboundConnectionThreshold: read(env, 'P2P_INBOUND_CONNECTION_THRESHOLD', s.P2P_INBOUND_CONNECTION_THRESHOLD)!,
    p2pMaxIncomingPendingConnections: read(
      env,
      'P2P_MAX_INCOMING_PENDING_CONNECTIONS',
      s.P2P_MAX_INCOMING_PENDING_CONNECTIONS,
    )!,
    relay: {
      enabled: read(env, 'RELAY_ENABLED', s.RELAY_ENABLED)!,
      maxReservations: read(env, 'RELAY_MAX_RESERVATIONS', s.RELAY_MAX_RESERVATIONS)!,
      reservationTtl: read(env, 'RELAY_RESERVATION_TTL_MS', s.RELAY_RESERVATION_TTL_MS)!,
      dataLimit: read(env, 'RELAY_DATA_LIMIT_BYTES', s.RELAY_DATA_LIMIT_BYTES)!,
      durationLimit: read(env, 'RELAY_DURATION_LIMIT_MS', s.RELAY_DURATION_LIMIT_MS)!,
    },
    homeName: read(env, 'HOME_NAME', s.HOME_NAME)!,
    sealingKey: read(env, 'SEALING_KEY', s.SEALING_KEY),
    enrollmentPolicy: read(env, 'ENROLLMENT_POLICY', s.ENROLLMENT_POLICY)!,
    migrationsRun: read(env, 'MIGRATIONS_RUN', s.MIGRATIONS_RUN)!,
    shutdownTimeoutMs: read(env, 'SHUTDOWN_TIMEOUT_MS', s.SHUTDOWN_TIMEOUT_MS)!,
    rateLimitPerMinute: read(env, 'RATE_LIMIT_PER_MINUTE', s.RATE_LIMIT_PER_MINUTE)!,
    loginBackoffMs: read(env, 'LOGIN_BACKOFF_MS', s.LOGIN_BACKOFF_MS)!,
    metricsToken: read(env, 'METRICS_TOKEN', s.METRICS_TOKEN),
    mediaMaxBytes: read(env, 'MEDIA_MAX_BYTES', s.MEDIA_MAX_BYTES)!,
    clientApiOverP2p: read(env, 'CLIENT_API_OVER_P2P', s.CLIENT_API_OVER_P2P)!,
    http: readHttpLimits(env),
  };
  if (config.p2pHomeConnectionReserve >= config.p2pMaxConnections) {
    throw new ConfigError(
      'P2P_HOME_CONNECTION_RESERVE',
      `is ${config.p2pHomeConnectionReserve}, expected less than P2P_MAX_CONNECTIONS (${config.p2pMaxConnections}), or strangers (the DHT) get no connection.`,
    );
  }
  return config;
}

function readHttpLimits(env: Env): HttpLimits {
  const s = CONFIG_SCHEMA;
  const limits: HttpLimits = {
    headersTimeoutMs: read(env, 'HTTP_HEADERS_TIMEOUT_MS', s.HTTP_HEADERS_TIMEOUT_MS)!,
    requestTimeoutMs: read(env, 'HTTP_REQUEST_TIMEOUT_MS', s.HTTP_REQUEST_TIMEOUT_MS)!,
    keepAliveTimeoutMs: read(env, 'HTTP_KEEP_ALIVE_TIMEOUT_MS', s.HTTP_KEEP_ALIVE_TIMEOUT_MS)!,
    maxRequestsPerSocket: read(env, 'HTTP_MAX_REQUESTS_PER_SOCKET', s.HTTP_MAX_REQUESTS_PER_SOCKET)!,
    maxConnections: read(env, 'HTTP_MAX_CONNECTIONS', s.HTTP_MAX_CONNECTIONS)!,
  };
  if (limits.requestTimeoutMs < limits.headersTimeoutMs) {
    throw new ConfigError(
      'HTTP_REQUEST_TIMEOUT_MS',
      `is ${limits.requestTimeoutMs}, shorter than HTTP_HEADERS_TIMEOUT_MS (${limits.headersTimeoutMs}); make it at least as long.`,
    );
  }
  return limits;
}

/** Injection token of the AppConfig. */
export const APP_CONFIG = Symbol('APP_CONFIG');
