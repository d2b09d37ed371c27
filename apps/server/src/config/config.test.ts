import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('configuration', () => {
  it('has working defaults on an empty environment', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8008,
      host: '127.0.0.1',
      dataDir: './data',
      databaseUrl: undefined,
      redisUrl: undefined,
      queuePrefix: 'polyhome',
      adminToken: undefined,
      logLevel: 'info',
      p2pListen: ['/ip4/0.0.0.0/tcp/4001'],
      p2pBootstrap: [],
      homeName: 'server',
      sealingKey: undefined,
      enrollmentPolicy: 'token',
      migrationsRun: true,
      rateLimitPerMinute: 120,
      metricsToken: undefined,
      p2pMaxConnections: 300,
      p2pHomeConnectionReserve: 50,
      p2pMaxConnectionsPerPeer: 4,
      p2pMaxStrangerConnectionsPerIp: 16,
      p2pStrangerIdleTimeoutMs: 60_000,
      p2pInboundConnectionThreshold: 5,
      p2pMaxIncomingPendingConnections: 10,
      relay: { enabled: true, maxReservations: 128, reservationTtl: 7_200_000, dataLimit: 0, durationLimit: 0 },
      http: {
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 30_000,
        keepAliveTimeoutMs: 5_000,
        maxRequestsPerSocket: 1_000,
        maxConnections: 1_000,
      },
    });
  });

  it('reads the libp2p connection limits, and refuses a home reserve that leaves strangers no slot', () => {
    const config = loadConfig({
      P2P_MAX_CONNECTIONS: '20',
      P2P_HOME_CONNECTION_RESERVE: '5',
      P2P_MAX_CONNECTIONS_PER_PEER: '2',
      P2P_MAX_STRANGER_CONNECTIONS_PER_IP: '3',
      P2P_STRANGER_IDLE_TIMEOUT_MS: '1000',
      P2P_INBOUND_CONNECTION_THRESHOLD: '50',
      P2P_MAX_INCOMING_PENDING_CONNECTIONS: '7',
    });
    expect(config).toMatchObject({
      p2pMaxConnections: 20,
      p2pHomeConnectionReserve: 5,
      p2pMaxConnectionsPerPeer: 2,
      p2pMaxStrangerConnectionsPerIp: 3,
      p2pStrangerIdleTimeoutMs: 1000,
      p2pInboundConnectionThreshold: 50,
      p2pMaxIncomingPendingConnections: 7,
    });
    expect(() => loadConfig({ P2P_MAX_CONNECTIONS: '20', P2P_HOME_CONNECTION_RESERVE: '20' })).toThrow(
      /P2P_HOME_CONNECTION_RESERVE: is 20, expected less than P2P_MAX_CONNECTIONS \(20\)/,
    );
  });

  it('serves the client API over libp2p unless CLIENT_API_OVER_P2P is false', () => {
    expect(loadConfig({}).clientApiOverP2p).toBe(true);
    expect(loadConfig({ CLIENT_API_OVER_P2P: 'false' }).clientApiOverP2p).toBe(false);
  });

  it('reads the relay settings', () => {
    const config = loadConfig({
      RELAY_ENABLED: 'false',
      RELAY_MAX_RESERVATIONS: '10',
      RELAY_RESERVATION_TTL_MS: '600000',
      RELAY_DATA_LIMIT_BYTES: '1048576',
      RELAY_DURATION_LIMIT_MS: '120000',
    });
    expect(config.relay).toEqual({
      enabled: false,
      maxReservations: 10,
      reservationTtl: 600_000,
      dataLimit: 1_048_576,
      durationLimit: 120_000,
    });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '0.0.0.0',
      DATA_DIR: '/var/lib/polyhome',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
      REDIS_URL: 'redis://127.0.0.1:6379',
      ADMIN_TOKEN: 'a'.repeat(32),
      LOG_LEVEL: 'debug',
      P2P_LISTEN: '/ip4/0.0.0.0/tcp/4001, /ip6/::/tcp/4001',
      P2P_ANNOUNCE: '/ip4/203.0.113.7/tcp/4001, /dns4/home.example.org/tcp/4001',
      MIGRATIONS_RUN: 'false',
      QUEUE_PREFIX: 'tenant-a',
    });
    expect(config.port).toBe(9000);
    expect(config.queuePrefix).toBe('tenant-a');
    expect(config.p2pListen).toEqual(['/ip4/0.0.0.0/tcp/4001', '/ip6/::/tcp/4001']);
    expect(config.p2pAnnounce).toEqual(['/ip4/203.0.113.7/tcp/4001', '/dns4/home.example.org/tcp/4001']);
    expect(config.migrationsRun).toBe(false);
  });

  it.each([
    ['PORT', 'abc', /PORT: got "abc", expected a whole number from 1 to 65535/],
    ['PORT', '70000', /PORT: .* from 1 to 65535/],
    ['HOST', 'not a host', /HOST: got "not a host"/],
    ['DATABASE_URL', 'mysql://x/y', /DATABASE_URL: has scheme "mysql:", expected postgres: or postgresql:/],
    ['DATABASE_URL', 'nonsense', /DATABASE_URL: is not a URL/],
    ['REDIS_URL', 'http://127.0.0.1', /REDIS_URL: has scheme "http:"/],
    ['QUEUE_PREFIX', 'a:b', /QUEUE_PREFIX: got "a:b", expected 1 to 64 characters/],
    ['ADMIN_TOKEN', 'short', /ADMIN_TOKEN: must be at least 16 characters/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL: got "loud", expected one of fatal, error/],
    ['P2P_LISTEN', '/ip4/1.2.3.4/tcp/x', /P2P_LISTEN: "\/ip4\/1.2.3.4\/tcp\/x" is not a multiaddr/],
    ['MIGRATIONS_RUN', 'yes', /MIGRATIONS_RUN: got "yes", expected true or false/],
    ['P2P_ANNOUNCE', '203.0.113.7:4001', /P2P_ANNOUNCE: "203.0.113.7:4001" is not a multiaddr/],
    ['P2P_ANNOUNCE', '/ip4/0.0.0.0/tcp/4001', /P2P_ANNOUNCE: "\/ip4\/0.0.0.0\/tcp\/4001" is an unspecified address/],
    ['P2P_BOOTSTRAP', 'nope', /P2P_BOOTSTRAP: "nope" is not a multiaddr/],
    ['SEALING_KEY', 'abc', /SEALING_KEY: must be 64 hex characters/],
    ['ENROLLMENT_POLICY', 'maybe', /ENROLLMENT_POLICY: got "maybe", expected one of token, open, closed/],
    ['HOME_NAME', 'x'.repeat(65), /HOME_NAME: must be 1 to 64 characters/],
    ['RATE_LIMIT_PER_MINUTE', '-1', /RATE_LIMIT_PER_MINUTE: got "-1", expected a whole number from 0 to 1000000/],
    ['RATE_LIMIT_PER_MINUTE', 'lots', /RATE_LIMIT_PER_MINUTE: got "lots"/],
    ['METRICS_TOKEN', 'short', /METRICS_TOKEN: must be at least 16 characters/],
    ['P2P_MAX_CONNECTIONS', '1', /P2P_MAX_CONNECTIONS: got "1", expected a whole number from 2 to 100000/],
    ['P2P_MAX_STRANGER_CONNECTIONS_PER_IP', '0', /P2P_MAX_STRANGER_CONNECTIONS_PER_IP: got "0"/],
    ['HTTP_HEADERS_TIMEOUT_MS', '0', /HTTP_HEADERS_TIMEOUT_MS: got "0", expected a whole number from 100 to 600000/],
    ['RELAY_ENABLED', 'yes', /RELAY_ENABLED: got "yes", expected true or false/],
    ['CLIENT_API_OVER_P2P', 'on', /CLIENT_API_OVER_P2P: got "on", expected true or false/],
    ['RELAY_MAX_RESERVATIONS', '0', /RELAY_MAX_RESERVATIONS: got "0", expected a whole number from 1 to 100000/],
    ['RELAY_DURATION_LIMIT_MS', '2147483648', /RELAY_DURATION_LIMIT_MS: got "2147483648"/],
    ['HTTP_MAX_CONNECTIONS', '0', /HTTP_MAX_CONNECTIONS: got "0", expected a whole number from 1 to 1000000/],
    [
      'HTTP_REQUEST_TIMEOUT_MS',
      '5000',
      /HTTP_REQUEST_TIMEOUT_MS: is 5000, shorter than HTTP_HEADERS_TIMEOUT_MS \(10000\)/,
    ],
  ])('refuses %s=%s naming the variable and what is allowed', (name, value, message) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(name);
    expect((error as ConfigError).message).toMatch(message);
  });
});
