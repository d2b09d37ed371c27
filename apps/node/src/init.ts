// `polyhome init`: a new data directory, with a new account or a node key only (--join).
import { rm } from 'node:fs/promises';
import os from 'node:os';
import {
  assertLocalpart,
  createAccountDocument,
  generateKeyPair,
  IdentityError,
  loadOrCreateNodeKey,
  peerIdFromPublicKey,
  writeNodeKeyFile,
} from '@polyhome/identity';
import { SqlReplicaStore, type Storage } from '@polyhome/storage';
import { dataDirPaths, openDataDir } from './data-dir.js';
import { CliError, EXIT_USAGE } from './errors.js';

/** What init made. */
export interface InitResult {
  data_dir: string;
  peer_id: string;
  /** Absent for `init --join`. */
  user_id?: string;
}

/** Options of init. */
export interface InitOptions {
  localpart?: string | undefined;
  join?: boolean | undefined;
  /** This home's name in the account document (default: the host name). */
  name?: string | undefined;
}

/** Home name default: the machine's host name, cut to the document's 64-character limit. */
function defaultHomeName(): string {
  const host = os
    .hostname()
    .replace(/\p{Cc}/gu, '')
    .slice(0, 64);
  return host === '' ? 'client' : host;
}

/**
 * Creates a data directory: the node key, and (without --join) a new self-custody account whose root key
 * is stored 0600 next to it, whose document names this node as its only (client) home, hosted in the
 * embedded database. Refuses a directory that already has a node key; undoes its own files on failure.
 */
export async function init(dir: string, options: InitOptions): Promise<InitResult> {
  const paths = dataDirPaths(dir);
  if (options.join !== true) {
    if (options.localpart === undefined) {
      throw new CliError('init needs --localpart NAME (or --join for a node key only).', EXIT_USAGE);
    }
    try {
      assertLocalpart(options.localpart);
    } catch (err) {
      throw new CliError(`--localpart: ${(err as Error).message}`, EXIT_USAGE);
    }
  }
  const node = await loadOrCreateNodeKey(paths.nodeKey).catch((err: unknown) => {
    throw new CliError(`Cannot create ${paths.nodeKey}: ${(err as Error).message}`);
  });
  if (!node.created) {
    throw new CliError(`${paths.dir} is already initialised (${paths.nodeKey} exists): use another --data-dir.`);
  }
  const peerId = peerIdFromPublicKey(node.secretKey.publicKey);
  if (options.join === true) return { data_dir: paths.dir, peer_id: peerId };
  let storage: Storage | undefined;
  try {
    const { secretKey: rootKey } = generateKeyPair();
    const document = createAccountDocument({
      localpart: options.localpart!,
      rootKey,
      home: { peer_id: peerId, role: 'client', name: options.name ?? defaultHomeName(), addrs: [] },
    });
    storage = await openDataDir(paths);
    await new SqlReplicaStore(storage.dataSource).hostAccount(document, { custody: 'self' });
    // The root key goes to disk last: a failed init leaves no key of an account that was never stored.
    await writeNodeKeyFile(paths.rootKey, rootKey);
    return { data_dir: paths.dir, peer_id: peerId, user_id: document.user_id };
  } catch (err) {
    await rm(paths.nodeKey, { force: true });
    throw err instanceof IdentityError ? new CliError(err.message, EXIT_USAGE) : err;
  } finally {
    await storage?.close();
  }
}
