// The libp2p host of a polyhome node: TCP, noise, yamux, identify, ping and the polyhome kad-dht, with
// the node's persistent key so its PeerId is the one the account documents list.
import { noise } from '@chainsafe/libp2p-noise';
import { autoNAT, type AutoNATComponents } from '@libp2p/autonat';
import { circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2';
import { dcutr } from '@libp2p/dcutr';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht';
import type { KadDHT } from '@libp2p/kad-dht';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import type { Identify } from '@libp2p/identify';
import type { ConnectionGater, Libp2p, PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import type { Ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { isMultiaddr, multiaddr } from '@multiformats/multiaddr';
import { loadOrCreateNodeKey, peerIdFromPublicKey, type SecretKey } from '@polyhome/identity';
import { createLibp2p } from 'libp2p';
import {
  DEFAULT_LISTEN,
  DHT_PROTOCOL,
  DIAL_TIMEOUT,
  INBOUND_CONNECTION_THRESHOLD,
  MAX_CONNECTIONS,
  MAX_INCOMING_PENDING_CONNECTIONS,
  MUXER_MAX_EARLY_STREAMS,
  MUXER_MAX_STREAMS,
  PING_MAX_STREAMS,
  RECORD_NAMESPACE,
} from './constants.js';
import { ConnectionGuard, type ConnectionLimits } from './connection-guard.js';
import { UnreachablePeers, type UnreachablePeersInit } from './unreachable-peers.js';
import { AccountRecordGuard, type AccountRecordGuardInit } from './record-guard.js';
import { accountRecordSelector } from './records.js';
import { InvalidHostInitError, NodeKeyMismatchError } from './errors.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';
import {
  releaseReservationsOnDisconnect,
  RelayReservations,
  relayServerLimits,
  relayService,
  type RelayClientInit,
  type RelayServerInit,
} from './relay.js';

/** The services every polyhome host runs; `ping` must keep that name, kad-dht looks it up. */
export interface PolyhomeServices extends Record<string, unknown> {
  identify: Identify;
  ping: Ping;
  dht: KadDHT;
  /** The DHT replay guard: pin the accounts this node hosts or looks up (discovery does, when given it). */
  recordGuard: AccountRecordGuard;
  /** The connection guard: per-peer and per-IP limits, a reserve for homes, idle strangers closed (see there). */
  connectionGuard: ConnectionGuard;
  /** Peers whose dial failed: dropped from the routing table and peer store, dials held back (see there). */
  unreachablePeers: UnreachablePeers;
  /** The circuit relay v2 (a server home with `relayServer`): reservations for the homes of its accounts. */
  relay?: CircuitRelayService;
  /** Reserves relay slots while this home is not reachable (a client home with `relayClient`). */
  relayReservations?: RelayReservations;
  /** AutoNAT: answers other peers' reachability checks, and asks them about this home's addresses. */
  autonat?: unknown;
  /** DCUtR: turns a relayed connection into a direct one where the network allows it (every host). */
  dcutr: unknown;
}

/** A started or stopped polyhome libp2p node. */
export type PolyhomeHost = Libp2p<PolyhomeServices>;

/** Options of createPolyhomeHost. Give exactly one of nodeKey and nodeKeyFile. */
export interface PolyhomeHostInit {
  /** The node key (an Ed25519 seed wrapped by identity). */
  nodeKey?: SecretKey;
  /** Path of the node key file; created (mode 0600) on first start, so the PeerId is stable across restarts. */
  nodeKeyFile?: string;
  /** Listen multiaddrs; default `/ip4/0.0.0.0/tcp/0`. */
  listen?: string[];
  /** Addresses to announce instead of the listen addresses (e.g. behind port forwarding). */
  announce?: string[];
  /** Which dials and connections to refuse (libp2p's gater; tests use it to keep traffic on one path). */
  connectionGater?: ConnectionGater;
  /** Multiaddrs with `/p2p/<peerId>` of DHT peers to dial at start. */
  bootstrap?: string[];
  /** Most open connections (default MAX_CONNECTIONS). */
  maxConnections?: number;
  /**
   * The connection guard's limits (defaults HOME_CONNECTION_RESERVE, MAX_CONNECTIONS_PER_PEER,
   * MAX_STRANGER_CONNECTIONS_PER_IP, STRANGER_IDLE_TIMEOUT); maxConnections is the one above.
   */
  connectionLimits?: Partial<Omit<ConnectionLimits, 'maxConnections'>>;
  /** Inbound connections being upgraded at once (default MAX_INCOMING_PENDING_CONNECTIONS). */
  maxIncomingPendingConnections?: number;
  /** Inbound connections per second from one host (default INBOUND_CONNECTION_THRESHOLD; raise in tests). */
  inboundConnectionThreshold?: number;
  /** Time allowed per dial, ms (default DIAL_TIMEOUT). */
  dialTimeout?: number;
  /** Start listening and dial bootstrap peers at once (default true). */
  start?: boolean;
  /** Where failures that do not fail the start (a bootstrap peer down) are logged (default silent). */
  logger?: P2pLogger;
  /**
   * The DHT replay guard: its SeqGuardStore (default in memory; give a persistent one so hosted and looked-up
   * accounts stay guarded across restarts) and its cache size. The DHT record store compares seqs in any case.
   */
  recordGuard?: AccountRecordGuardInit;
  /** The dial backoff of unreachable peers, ms (defaults DIAL_BACKOFF, DIAL_BACKOFF_MAX). */
  dialBackoff?: Pick<UnreachablePeersInit, 'backoff' | 'maxBackoff'>;
  /**
   * Run a circuit relay v2 for the homes of the hosted accounts (a server home). By default only those may
   * reserve (the connection guard's homes); `mayReserve` replaces that check.
   */
  relayServer?: RelayServerInit;
  /** Reserve relay slots while AutoNAT has not confirmed this home reachable (a client home). */
  relayClient?: RelayClientInit;
  /** Run AutoNAT (default true): a server answers its clients' checks, a client asks. */
  autonat?: boolean;
}

/**
 * Converts an identity node key (32-byte Ed25519 seed) into a libp2p private key, checking that libp2p
 * derives the same PeerId as identity's peerIdFromPublicKey. Throws NodeKeyMismatchError.
 */
export async function privateKeyFromNodeKey(nodeKey: SecretKey): Promise<PrivateKey> {
  const seed = nodeKey.revealSeed();
  try {
    const privateKey = await generateKeyPairFromSeed('Ed25519', seed);
    const expected = peerIdFromPublicKey(nodeKey.publicKey);
    const actual = peerIdFromPrivateKey(privateKey).toString();
    if (actual !== expected) throw new NodeKeyMismatchError(expected, actual);
    return privateKey;
  } finally {
    seed.fill(0);
  }
}

/**
 * Creates (and by default starts) the libp2p node of a polyhome home. Bootstrap peers are dialled once
 * started; one that cannot be reached does not fail the start.
 */
export async function createPolyhomeHost(init: PolyhomeHostInit): Promise<PolyhomeHost> {
  const privateKey = await resolvePrivateKey(init);
  const guard = new AccountRecordGuard({
    ...init.recordGuard,
    ...(init.logger !== undefined ? { logger: init.logger } : {}),
  });
  const connectionGuard = new ConnectionGuard({
    ...init.connectionLimits,
    maxConnections: init.maxConnections ?? MAX_CONNECTIONS,
    ...(init.logger !== undefined ? { logger: init.logger } : {}),
  });
  const unreachable = new UnreachablePeers({
    ...init.dialBackoff,
    isHome: (peerId) => connectionGuard.isHome(peerId),
    ...(init.logger !== undefined ? { logger: init.logger } : {}),
  });
  const relayLimits = init.relayServer !== undefined ? relayServerLimits(init.relayServer) : undefined;
  const mayReserve = init.relayServer?.mayReserve ?? ((peerId: string) => connectionGuard.isHome(peerId));
  const gater = unreachable.gater(connectionGuard.gater(init.connectionGater));
  const relayClient = init.relayClient;
  const node = await createLibp2p<PolyhomeServices>({
    privateKey,
    start: false,
    // kad-dht keeps its records in libp2p's datastore: this one never lets an older document replace a newer.
    datastore: guard.datastore,
    addresses: {
      listen: init.listen ?? DEFAULT_LISTEN,
      ...(init.announce !== undefined ? { announce: init.announce } : {}),
    },
    connectionGater: {
      ...gater,
      // The relay serves only the homes of the accounts hosted here: any other peer's reservation is refused.
      denyInboundRelayReservation: async (peer) =>
        (await gater.denyInboundRelayReservation?.(peer)) === true || !mayReserve(peer.toString()),
    },
    // Every home can dial a relayed address (a client home behind NAT is reached that way); only a client
    // home listens on one (relayReservations asks for it).
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    // Yamux's stream caps agree with the protocols' (constants.ts): it never refuses a stream a handler would
    // take, and the early streams allowed cover what a peer opens while this end is still setting up.
    streamMuxers: [
      yamux({
        maxEarlyStreams: MUXER_MAX_EARLY_STREAMS,
        maxInboundStreams: MUXER_MAX_STREAMS,
        maxOutboundStreams: MUXER_MAX_STREAMS,
      }),
    ],
    connectionManager: {
      maxConnections: connectionGuard.limits.maxConnections,
      maxIncomingPendingConnections: init.maxIncomingPendingConnections ?? MAX_INCOMING_PENDING_CONNECTIONS,
      inboundConnectionThreshold: init.inboundConnectionThreshold ?? INBOUND_CONNECTION_THRESHOLD,
      dialTimeout: init.dialTimeout ?? DIAL_TIMEOUT,
    },
    services: {
      identify: identify(),
      // kad-dht pings routing-table contacts over the same protocol; one stream each way (the default)
      // makes back-to-back pings fail while the previous stream is still closing.
      ping: ping({ maxInboundStreams: PING_MAX_STREAMS, maxOutboundStreams: PING_MAX_STREAMS }),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        // Homes are dialable peers (servers, and clients on a LAN): always answer queries.
        clientMode: false,
        // Keep loopback and private addresses: homes on one LAN or one machine must find each other,
        // and the default mapper drops them (then nothing is found on 127.0.0.1).
        peerInfoMapper: passthroughMapper,
        validators: { [RECORD_NAMESPACE]: guard.validate },
        selectors: { [RECORD_NAMESPACE]: accountRecordSelector },
      }),
      recordGuard: () => guard,
      connectionGuard: () => connectionGuard,
      unreachablePeers: () => unreachable,
      ...(init.autonat !== false ? { autonat: autoNATDialingBackFresh() } : {}),
      ...(relayLimits !== undefined ? { relay: relayService(relayLimits) } : {}),
      ...(relayClient !== undefined
        ? {
            relayReservations: (components: ConstructorParameters<typeof RelayReservations>[0]) =>
              new RelayReservations(components, {
                ...relayClient,
                ...(init.logger !== undefined ? { logger: init.logger } : {}),
              }),
          }
        : {}),
      // Every home: the side that received a relayed connection upgrades it, and only with a peer that speaks
      // DCUtR too (a server home dialling a laptop through a relay is upgraded by the laptop).
      dcutr: dcutr(),
    },
  });
  connectionGuard.attach(node);
  unreachable.attach(node);
  if (node.services.relay !== undefined) releaseReservationsOnDisconnect(node, node.services.relay);
  if (init.start !== false) {
    await node.start();
    await dialBootstrap(node, init.bootstrap ?? [], init.logger);
  }
  return node;
}

/**
 * js-libp2p's AutoNAT (v1, 3.0.28) answers a check by dialling the asker's address without `force` and closing
 * the connection it got: when this node already holds a connection to that very address (it dialled the asker
 * earlier, as a server does a public client home), it is handed that connection and closes it, so every check
 * cut the home's working connection (seen in test/netns/dcutr.test.ts: a public home's connections to its server
 * homes dropped every few seconds). Its dial back of one address is made with `force` here (a fresh connection,
 * then closed); its other dials (the random walk, a list of addresses) are left as they are.
 */
function autoNATDialingBackFresh(): (components: AutoNATComponents) => unknown {
  const make = autoNAT();
  return (components) => {
    const manager = components.connectionManager;
    const openConnection: typeof manager.openConnection = (target, options) =>
      manager.openConnection(target, isMultiaddr(target) ? { ...options, force: true } : options);
    const connectionManager = new Proxy(manager, {
      get: (target, key) => {
        if (key === 'openConnection') return openConnection;
        const value: unknown = Reflect.get(target, key, target);
        // Bound: the manager's methods may use private fields, which a proxy as `this` does not have.
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    return make(
      new Proxy(components, {
        get: (target, key) => (key === 'connectionManager' ? connectionManager : Reflect.get(target, key, target)),
      }),
    );
  };
}

/** Dials bootstrap multiaddrs (in parallel, each bounded by the dial timeout); returns how many connected. */
export async function dialBootstrap(
  node: PolyhomeHost,
  addrs: readonly string[],
  log: P2pLogger = silentLogger,
): Promise<number> {
  // A bootstrap peer being down must not stop this home: failures are counted and logged, not thrown.
  const results = await Promise.allSettled(addrs.map(async (addr) => node.dial(multiaddr(addr))));
  results.forEach((result, i) => {
    if (result.status === 'rejected') {
      log.warn({ ...errorFields(result.reason), addr: addrs[i] }, 'bootstrap peer not reached');
    }
  });
  return results.filter((r) => r.status === 'fulfilled').length;
}

async function resolvePrivateKey(init: PolyhomeHostInit): Promise<PrivateKey> {
  if ((init.nodeKey === undefined) === (init.nodeKeyFile === undefined)) {
    throw new InvalidHostInitError('give exactly one of nodeKey and nodeKeyFile');
  }
  if (init.nodeKey !== undefined) return privateKeyFromNodeKey(init.nodeKey);
  const { secretKey } = await loadOrCreateNodeKey(init.nodeKeyFile!);
  try {
    return await privateKeyFromNodeKey(secretKey);
  } finally {
    secretKey.destroy();
  }
}
