// Test support for @polyhome/p2p: real libp2p nodes on 127.0.0.1 with a MemoryReplicaStore, raw sync
// streams for hostile-peer tests, and condition polling. Source-only (not built).
import { createServer } from 'node:net';
import type { Stream } from '@libp2p/interface';
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils';
import type { SecretKey } from '@polyhome/identity';
import type { SyncMessage } from '@polyhome/sync';
import { MemoryReplicaStore } from '@polyhome/sync/testing';
import { SYNC_PROTOCOL } from '../constants.js';
import { createPolyhomeHost, type PolyhomeHost } from '../host.js';
import {
  createDiscovery,
  createSyncService,
  type Discovery,
  type SyncService,
  type SyncServiceInit,
} from '../index.js';
import { decodeMessage, encodeMessage } from '../frames.js';
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
}

/** Starts a host with sync and discovery on 127.0.0.1, with limits raised for many local nodes. */
export async function startNode(options: StartNodeOptions): Promise<TestNode> {
  const host = await createPolyhomeHost({
    nodeKey: options.nodeKey,
    listen: [`/ip4/127.0.0.1/tcp/${options.port ?? 0}`],
    bootstrap: options.bootstrap ?? [],
    inboundConnectionThreshold: 10_000,
    maxIncomingPendingConnections: 1000,
  });
  const sync = createSyncService(host, options.sync);
  await sync.start();
  const discovery = createDiscovery({
    peerId: host.peerId,
    dht: host.services.dht,
    peerStore: host.peerStore,
    getConnections: host.getConnections.bind(host),
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
