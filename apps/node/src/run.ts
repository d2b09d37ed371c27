// `polyhome start`: the home runs until SIGINT/SIGTERM.
import { peerIdFromPublicKey } from '@polyhome/identity';
import { createPolyhomeHost, createSyncService, type PolyhomeHost, type SyncService } from '@polyhome/p2p';
import { AccountEntity, SqlReplicaStore, type Storage } from '@polyhome/storage';
import { dataDirPaths, openDataDir, readKey } from './data-dir.js';
import { CliError } from './errors.js';

/** How often the node re-dials the homes of its accounts (a dropped connection comes back within this). */
const RECONNECT_INTERVAL_MS = 30_000;

/** Options of start. */
export interface StartOptions {
  /** libp2p listen multiaddr (default /ip4/127.0.0.1/tcp/0: nothing reachable from outside unless asked). */
  p2p: string;
  bootstrap: string[];
}

/** A running home. */
export interface RunningHome {
  peerId: string;
  userIds: string[];
  /** The libp2p listen addresses with /p2p/<PeerId>. */
  addrs: string[];
  /** Stops syncing, the libp2p node and the database (releasing the data directory's lock). */
  stop(): Promise<void>;
}

/**
 * Opens the database (taking the data directory's lock, so a second `start` is refused), starts the libp2p
 * host and the sync service, hosts every account of the directory and dials their homes.
 */
export async function startHome(dir: string, options: StartOptions): Promise<RunningHome> {
  const paths = dataDirPaths(dir);
  const nodeKey = await readKey(paths.nodeKey, 'node key', paths.dir);
  const storage: Storage = await openDataDir(paths);
  let host: PolyhomeHost | undefined;
  let sync: SyncService | undefined;
  try {
    host = await createPolyhomeHost({ nodeKey, listen: [options.p2p], bootstrap: options.bootstrap }).catch(
      (err: unknown) => {
        throw new CliError(`Cannot listen on ${options.p2p}: ${(err as Error).message}. Check --p2p.`);
      },
    );
    const running = host;
    sync = createSyncService(running);
    await sync.start();
    const store = new SqlReplicaStore(storage.dataSource);
    const rows = await storage.dataSource.getRepository(AccountEntity).find({ order: { userId: 'ASC' } });
    for (const row of rows) await sync.host(row.serverName, store);
    const syncing = sync;
    const connect = (): void => {
      for (const row of rows) void syncing.connectHomes(row.serverName).catch(() => undefined);
    };
    connect();
    const timer = setInterval(connect, RECONNECT_INTERVAL_MS);
    return {
      peerId: peerIdFromPublicKey(nodeKey.publicKey),
      userIds: rows.map((r) => r.userId),
      addrs: running.getMultiaddrs().map((a) => a.toString()),
      stop: async () => {
        clearInterval(timer);
        await syncing.stop().catch(() => undefined);
        await Promise.resolve(running.stop()).catch(() => undefined);
        await storage.close();
      },
    };
  } catch (err) {
    await sync?.stop().catch(() => undefined);
    if (host !== undefined) await Promise.resolve(host.stop()).catch(() => undefined);
    await storage.close();
    throw err;
  }
}
