// What every command works on: the data directory's keys and database, and (while the node runs) the live
// home that pushes changes to the other homes. Commands run in the node process (through the control API)
// or, when no node runs, in the CLI process on a database it opens itself; they are the same functions.
import type { Home, LocalOpWriter } from '@polyhome/home';
import { peerIdFromPublicKey, type SecretKey } from '@polyhome/identity';
import { createRepositories, type SqlReplicaStore, type Storage, type StorageRepositories } from '@polyhome/storage';
import { dataDirPaths, openDataDir, readKey, type DataDirPaths } from './data-dir.js';

/** The data directory opened for commands. */
export interface HomeContext {
  readonly paths: DataDirPaths;
  readonly nodeKey: SecretKey;
  /** This node's PeerId. */
  readonly peerId: string;
  /** The repositories of the open database (accounts, login tokens, the Matrix store, ...); never its DataSource. */
  readonly repositories: StorageRepositories;
  /** The replica store (`repositories.replica`), which the Home runs on. */
  readonly store: SqlReplicaStore;
  /**
   * Signs this home's ops, one batch after another per account, and stores them: in a running node the Home's
   * `applyLocal` (which also pushes them), otherwise a writer of its own. Never both in one process.
   */
  readonly writer: Pick<LocalOpWriter, 'write'>;
  /** The running Home (it signs, stores and pushes changes); absent when the CLI opened the directory itself. */
  readonly live?: Home;
  /** A consistent copy of the embedded database, taken by the process that has it open (Storage.snapshot). */
  readonly snapshot?: () => Promise<Uint8Array>;
}

/** Builds the context of an open database. */
export function homeContext(
  paths: DataDirPaths,
  nodeKey: SecretKey,
  storage: Storage,
  live?: { home: Home; repositories: StorageRepositories },
): HomeContext {
  const peerId = peerIdFromPublicKey(nodeKey.publicKey);
  const repositories = live?.repositories ?? createRepositories(storage);
  const store = repositories.replica;
  return {
    paths,
    nodeKey,
    peerId,
    repositories,
    store,
    writer:
      live === undefined
        ? lazyWriter(store, peerId, nodeKey)
        : { write: (account, changes) => live.home.applyLocal(account, changes) },
    ...(live === undefined ? {} : { live: live.home }),
    ...(storage.snapshot === undefined ? {} : { snapshot: storage.snapshot }),
  };
}

/**
 * The CLI's own op writer, made at its first write: `@polyhome/home` (and libp2p with it) is loaded only by
 * commands that change something, not by those that read.
 */
function lazyWriter(store: SqlReplicaStore, peerId: string, nodeKey: SecretKey): Pick<LocalOpWriter, 'write'> {
  let writer: Promise<LocalOpWriter> | undefined;
  return {
    write: async (account, changes) => {
      writer ??= import('@polyhome/home').then(({ LocalOpWriter }) => new LocalOpWriter(store, peerId, nodeKey));
      return (await writer).write(account, changes);
    },
  };
}

/**
 * Opens the data directory (refused while a node runs on it), runs `fn`, closes it. `onProgress` hears that
 * the database is being opened (a second or more).
 */
export async function withOfflineContext<T>(
  dir: string,
  fn: (ctx: HomeContext) => Promise<T>,
  onProgress?: (message: string) => void,
): Promise<T> {
  const paths = dataDirPaths(dir);
  const nodeKey = await readKey(paths.nodeKey, 'node key', paths.dir);
  onProgress?.(`Opening the database in ${paths.db}`);
  const storage = await openDataDir(paths, onProgress);
  try {
    return await fn(homeContext(paths, nodeKey, storage));
  } finally {
    await storage.close();
  }
}
