// Test support for @polyhome/p2p: real libp2p nodes on 127.0.0.1 with a MemoryReplicaStore, raw sync
// streams for hostile-peer tests, and condition polling. Source-only (not built).
import { createServer } from 'node:net';
import type { Libp2p, PeerId, Stream } from '@libp2p/interface';
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils';
import { generateKeyPair, type AccountDocument, type SecretKey } from '@polyhome/identity';
import type { SyncMessage } from '@polyhome/sync';
import { MemoryReplicaStore } from '@polyhome/sync/testing';
import { DHT_PROTOCOL, ENROLL_MAX_FRAME_BYTES, ENROLL_PROTOCOL, SYNC_PROTOCOL } from '../constants.js';
import { createPolyhomeHost, type PolyhomeHost, type PolyhomeHostInit } from '../host.js';
import type { AccountRecordGuardInit } from '../record-guard.js';
import { dhtPeerCount } from '../unreachable-peers.js';
import {
  createDiscovery,
  createSyncService,
  type Discovery,
  type SyncService,
  type SyncServiceInit,
} from '../index.js';
import { decodeMessage, encodeMessage } from '../frames.js';
import { accountRecordKey, encodeAccountRecord } from '../records.js';
import type { P2pLogger } from '../logger.js';

/** A running test node. */
export interface TestNode {
  host: PolyhomeHost;
  sync: SyncService;
  discovery: Discovery;
  store: MemoryReplicaStore;
  peerId: string;
  /** The node's first 127.0.0.1 multiaddr with /p2p/<peerId>. */
  addr: string;
  stop(): Promise<void>;
}

/** Options of startNode. */
export interface StartNodeOptions {
  nodeKey: SecretKey;
  bootstrap?: string[];
  store?: MemoryReplicaStore;
  sync?: SyncServiceInit;
  /** Reuse a port (restarts). */
  port?: number;
  /** The DHT replay guard's store and cache size (default: in memory, RECORD_GUARD_MAX_ACCOUNTS). */
  recordGuard?: AccountRecordGuardInit;
  /** The connection guard's limits (default: the host's, with the per-IP stranger limit raised). */
  connectionLimits?: PolyhomeHostInit['connectionLimits'];
}

/** Starts a host with sync and discovery on 127.0.0.1, with limits raised for many local nodes. */
export async function startNode(options: StartNodeOptions): Promise<TestNode> {
  const host = await createPolyhomeHost({
    nodeKey: options.nodeKey,
    listen: [`/ip4/127.0.0.1/tcp/${options.port ?? 0}`],
    bootstrap: options.bootstrap ?? [],
    inboundConnectionThreshold: 10_000,
    maxIncomingPendingConnections: 1000,
    // Every test node dials from 127.0.0.1: the per-IP stranger limit would count them all as one address.
    connectionLimits: { maxStrangerConnectionsPerIp: 10_000, ...options.connectionLimits },
    ...(options.recordGuard !== undefined ? { recordGuard: options.recordGuard } : {}),
  });
  const sync = createSyncService(host, options.sync);
  await sync.start();
  const discovery = createDiscovery({
    peerId: host.peerId,
    dht: host.services.dht,
    peerStore: host.peerStore,
    getConnections: host.getConnections.bind(host),
    recordGuard: host.services.recordGuard,
    unreachable: host.services.unreachablePeers,
  });
  const store = options.store ?? new MemoryReplicaStore();
  const peerId = host.peerId.toString();
  const ma = host.getMultiaddrs().find((a) => a.toString().startsWith('/ip4/127.0.0.1/'));
  if (ma === undefined) throw new Error('no loopback address');
  return {
    host,
    sync,
    discovery,
    store,
    peerId,
    addr: ma.toString(),
    async stop() {
      await sync.stop();
      await host.stop();
    },
  };
}

/** Polls `condition` every `interval` ms until it holds; throws with `what` after `timeout` ms. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeout = 20_000,
  interval = 50,
): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** A raw sync stream for playing a peer by hand (hostile frames, refusals). */
export interface RawSyncStream {
  stream: Stream;
  lp: LengthPrefixedStream<Stream>;
  send(message: SyncMessage): Promise<void>;
  sendBytes(bytes: Uint8Array): Promise<void>;
  /** The next frame decoded, or undefined when the stream ended. */
  next(timeout?: number): Promise<SyncMessage | undefined>;
}

/** Opens a raw /polyhome/sync/1.0.0 stream from `from` to `to`. */
export async function openRawSync(from: PolyhomeHost, to: TestNode): Promise<RawSyncStream> {
  const { multiaddr } = await import('@multiformats/multiaddr');
  const stream = await from.dialProtocol(multiaddr(to.addr), SYNC_PROTOCOL);
  const lp = lpStream(stream, { maxDataLength: 4 * 1024 * 1024 });
  return {
    stream,
    lp,
    send: async (message) => lp.write(encodeMessage(message)),
    sendBytes: async (bytes) => lp.write(bytes),
    async next(timeout = 10_000) {
      try {
        const frame = await lp.read({ signal: AbortSignal.timeout(timeout) });
        return decodeMessage(frame.subarray());
      } catch (error) {
        if (error instanceof Error && (error.name === 'UnexpectedEOFError' || error.name === 'StreamResetError')) {
          return undefined;
        }
        throw error;
      }
    },
  };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for a process or node started on a known address). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** One line a RecordingLogger took. */
export interface LogEntry {
  level: keyof P2pLogger;
  fields: Record<string, unknown>;
  msg: string;
}

/** A P2pLogger that keeps every line, for tests that check a failure was logged. */
export interface RecordingLogger extends P2pLogger {
  entries: LogEntry[];
}

/** A logger that records instead of writing. */
export function recordingLogger(): RecordingLogger {
  const entries: LogEntry[] = [];
  const at =
    (level: keyof P2pLogger) =>
    (fields: Record<string, unknown>, msg: string): void => {
      entries.push({ level, fields, msg });
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * Sends raw bytes as one /polyhome/enroll/1.0.0 request from `from` to `addr` and returns the parsed answer.
 * Bytes over ENROLL_MAX_FRAME_BYTES go as a bare length prefix: the server must refuse on the prefix alone.
 */
export async function rawEnrollExchange(
  from: PolyhomeHost,
  addr: string,
  bytes: Uint8Array,
): Promise<{ errcode: string; error: string }> {
  const { multiaddr } = await import('@multiformats/multiaddr');
  const stream = await from.dialProtocol(multiaddr(addr), ENROLL_PROTOCOL);
  const lp = lpStream(stream, { maxDataLength: ENROLL_MAX_FRAME_BYTES * 2 });
  // A bare length prefix over the cap is enough; a body would only race the server's close.
  if (bytes.length > ENROLL_MAX_FRAME_BYTES) stream.send(varint(bytes.length));
  else await lp.write(bytes);
  const frame = await lp.read({ signal: AbortSignal.timeout(10_000) });
  await stream.close();
  return JSON.parse(new TextDecoder().decode(frame.subarray())) as { errcode: string; error: string };
}

/** An unsigned varint, as lpStream prefixes frames. */
export function varint(value: number): Uint8Array {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  out.push(rest);
  return Uint8Array.from(out);
}

/** What a put of `document` by `from` got: how many peers stored it, and how many refused it. */
export async function putDhtRecord(
  from: TestNode,
  document: AccountDocument,
): Promise<{ stored: number; refused: number }> {
  const serverName = document.user_id.slice(document.user_id.indexOf(':') + 1);
  const value = encodeAccountRecord(document);
  const stored = new Set<string>();
  const failed = new Set<string>();
  try {
    for await (const event of from.host.services.dht.put(accountRecordKey(serverName), value, {
      signal: AbortSignal.timeout(15_000),
    })) {
      // A PUT_VALUE answer echoes the record a peer stored; query errors name the peers that refused it.
      if (
        event.name === 'PEER_RESPONSE' &&
        event.messageType === 'PUT_VALUE' &&
        sameBytes(event.record?.value, value)
      ) {
        stored.add(event.from.toString());
      }
      if (event.name === 'QUERY_ERROR') failed.add(event.from.toString());
    }
  } catch {
    // kad-dht may end a put that peers refused with an error; the counts say what happened.
  }
  return { stored: stored.size, refused: [...failed].filter((p) => !stored.has(p)).length };
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.byteLength === b.byteLength && a.every((x, i) => x === b[i]);
}

/** Waits until `node` knows every one of `peers` as a DHT server (so a put reaches them all). */
export async function waitForDhtPeers(node: TestNode, peers: readonly PeerId[]): Promise<void> {
  await waitFor(async () => {
    for (const peer of peers) {
      try {
        if (!(await node.host.peerStore.get(peer)).protocols.includes(DHT_PROTOCOL)) return false;
      } catch {
        return false;
      }
    }
    return true;
  }, 'DHT peers identified');
}

/** A bare libp2p node (TCP, noise, yamux; no identify, no DHT, no protocol): a stranger that only holds connections. */
export type StrangerNode = Libp2p;

/** Starts a stranger: it listens nowhere, speaks no protocol, and keeps whatever connections it opens idle. */
export async function startStranger(): Promise<StrangerNode> {
  const [{ createLibp2p }, { tcp }, { noise }, { yamux }] = await Promise.all([
    import('libp2p'),
    import('@libp2p/tcp'),
    import('@chainsafe/libp2p-noise'),
    import('@chainsafe/libp2p-yamux'),
  ]);
  return createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 10_000 },
  });
}

/**
 * A polyhome host that joins `addr`'s DHT (both routing tables take it in, its queries answered as usual) and
 * then stops answering: its DHT handler is replaced by one that holds every stream open and never writes, so
 * every query of `addr`'s node that asks it waits for the query timeout. Resolves once it has gone silent.
 */
export async function startSilentDhtPeer(addr: string): Promise<PolyhomeHost> {
  const { multiaddr } = await import('@multiformats/multiaddr');
  const host = await createPolyhomeHost({ nodeKey: generateKeyPair().secretKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
  await host.dial(multiaddr(addr), { signal: AbortSignal.timeout(30_000) });
  await waitFor(() => dhtPeerCount(host) > 0, 'the DHT peer to take the node into its routing table', 60_000);
  // The same protocol, so identify announces no change; the node keeps it in its routing table.
  await host.handle(DHT_PROTOCOL, () => undefined, { force: true });
  return host;
}

/**
 * Opens a new connection from `stranger` to `addr` (a further one to the same peer too) and resolves whether it
 * is open once the upgrade is over (a refused one rejects or is closed at once by the far end).
 */
export async function openStrangerConnection(stranger: StrangerNode, addr: string): Promise<boolean> {
  const { multiaddr } = await import('@multiformats/multiaddr');
  try {
    const conn = await stranger.dial(multiaddr(addr), { force: true, signal: AbortSignal.timeout(10_000) });
    return conn.status === 'open';
  } catch {
    return false;
  }
}

/** The stranger's open connections to a peer. */
export function openConnectionsTo(node: Pick<Libp2p, 'getConnections'>, peerId: string): number {
  return node.getConnections().filter((c) => c.status === 'open' && c.remotePeer.toString() === peerId).length;
}
