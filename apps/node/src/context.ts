// What every command works on: the data directory's keys and database, and (while the node runs) the live
// home that pushes changes to the other homes. Commands run in the node process (through the control API)
// or, when no node runs, in the CLI process on a database it opens itself; they are the same functions.
import type { Libp2p } from '@libp2p/interface';
import { peerIdFromPublicKey, type SecretKey } from '@polyhome/identity';
import { LocalOpWriter, SqlReplicaStore, type Storage } from '@polyhome/storage';
import type { Op } from '@polyhome/sync';
import { dataDirPaths, openDataDir, readKey, type DataDirPaths } from './data-dir.js';

/** What a running node does after a command changed something. */
export interface LiveHome {
  /** New local ops are stored: push them to the connected homes and wake the local Matrix clients. */
  published(serverName: string, ops: Op[]): void;
  /** The account document changed here: re-check sessions, dial new homes, announce it. */
  documentChanged(serverName: string): Promise<void>;
  /** The libp2p node, for enrolling a server home with this node's own connection. */
  readonly host: Pick<Libp2p, 'dialProtocol'>;
}

/** The data directory opened for commands. */
export interface HomeContext {
  readonly paths: DataDirPaths;
  readonly nodeKey: SecretKey;
  /** This node's PeerId. */
  readonly peerId: string;
  readonly storage: Storage;
  readonly store: SqlReplicaStore;
  /** Signs this home's ops, one batch after another per account (so no two share a seq). */
  readonly writer: LocalOpWriter;
  /** Set in the running node; absent when the CLI opened the directory itself. */
  readonly live?: LiveHome;
}

/** Builds the context of an open database. */
export function homeContext(paths: DataDirPaths, nodeKey: SecretKey, storage: Storage, live?: LiveHome): HomeContext {
  const peerId = peerIdFromPublicKey(nodeKey.publicKey);
  const store = new SqlReplicaStore(storage.dataSource);
  return {
    paths,
    nodeKey,
    peerId,
    storage,
    store,
    writer: new LocalOpWriter(store, peerId, nodeKey),
    ...(live === undefined ? {} : { live }),
  };
}

/** Opens the data directory (refused while a node runs on it), runs `fn`, closes it. */
export async function withOfflineContext<T>(dir: string, fn: (ctx: HomeContext) => Promise<T>): Promise<T> {
  const paths = dataDirPaths(dir);
  const nodeKey = await readKey(paths.nodeKey, 'node key', paths.dir);
  const storage = await openDataDir(paths);
  try {
    return await fn(homeContext(paths, nodeKey, storage));
  } finally {
    await storage.close();
  }
}
