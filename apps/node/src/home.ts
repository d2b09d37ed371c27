// What each command does, on the data directory; cli.ts only parses arguments and prints.
import { rm } from 'node:fs/promises';
import os from 'node:os';
import { multiaddr as parseMultiaddr } from '@multiformats/multiaddr';
import {
  addHome,
  assertLocalpart,
  createAccountDocument,
  generateKeyPair,
  IdentityError,
  loadOrCreateNodeKey,
  peerIdFromPublicKey,
  removeHome,
  writeNodeKeyFile,
  type AccountDocument,
  type Home,
  type HomeRole,
  type SecretKey,
} from '@polyhome/identity';
import { createPolyhomeHost } from '@polyhome/p2p';
import { AccountEntity, SqlReplicaStore, type Storage } from '@polyhome/storage';
import { createOp } from '@polyhome/sync';
import { dataDirPaths, openDataDir, readKey, runningPid, type DataDirPaths } from './data-dir.js';
import { enroll, EnrollError } from './enroll-client.js';
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

/** One account of the data directory, for status. */
export interface AccountStatus {
  user_id: string;
  custody: string;
  doc_seq: number;
  homes: number;
  devices: number;
  rooms: number;
}

/** What status shows. */
export interface StatusResult {
  data_dir: string;
  peer_id: string;
  /** PID of the node running on this directory, or null. */
  running: number | null;
  /** Null while the node runs (its database is locked). */
  accounts: AccountStatus[] | null;
}

/** The node's identity, whether it runs, and (when it does not) its accounts. */
export async function status(dir: string): Promise<StatusResult> {
  const paths = dataDirPaths(dir);
  const nodeKey = await readKey(paths.nodeKey, 'node key', paths.dir);
  const peerId = peerIdFromPublicKey(nodeKey.publicKey);
  const pid = await runningPid(paths);
  if (pid !== undefined) return { data_dir: paths.dir, peer_id: peerId, running: pid, accounts: null };
  const accounts = await withStore(paths, async (store, storage) => {
    const rows = await storage.dataSource.getRepository(AccountEntity).find({ order: { userId: 'ASC' } });
    const out: AccountStatus[] = [];
    for (const row of rows) {
      const [document, state] = await Promise.all([store.document(row.serverName), store.state(row.serverName)]);
      out.push({
        user_id: row.userId,
        custody: row.custody,
        doc_seq: Number(row.docSeq),
        homes: document?.homes.length ?? 0,
        devices: Object.keys(state.devices).length,
        rooms: Object.keys(state.memberships).length,
      });
    }
    return out;
  });
  return { data_dir: paths.dir, peer_id: peerId, running: null, accounts };
}

/** A home of an account as `home list` shows it. */
export interface HomeView extends Home {
  user_id: string;
  /** This node. */
  self: boolean;
}

/** The homes in the account documents held here. */
export async function listHomes(dir: string): Promise<HomeView[]> {
  const paths = dataDirPaths(dir);
  const self = peerIdFromPublicKey((await readKey(paths.nodeKey, 'node key', paths.dir)).publicKey);
  return withStore(paths, async (store, storage) => {
    const out: HomeView[] = [];
    for (const row of await accounts(storage)) {
      const document = await store.document(row.serverName);
      for (const home of document?.homes ?? []) {
        out.push({ user_id: row.userId, ...home, self: home.peer_id === self });
      }
    }
    return out;
  });
}

/** Replicated devices or memberships of the accounts held here, each entry tagged with its account. */
export async function listState(dir: string, what: 'devices' | 'memberships'): Promise<Array<Record<string, unknown>>> {
  const paths = dataDirPaths(dir);
  return withStore(paths, async (store, storage) => {
    const out: Array<Record<string, unknown>> = [];
    for (const row of await accounts(storage)) {
      const state = await store.state(row.serverName);
      const idName = what === 'devices' ? 'device_id' : 'room_id';
      for (const [key, body] of Object.entries(state[what])) out.push({ user_id: row.userId, ...body, [idName]: key });
    }
    return out;
  });
}

/**
 * Records a room membership of the account as a signed op of this home. It is stored locally and reaches
 * the other homes when the node next runs (`start` pushes what a home lacks).
 */
export async function setMembership(
  dir: string,
  roomId: string,
  membership: 'join' | 'leave',
  userId: string | undefined,
): Promise<{ user_id: string; room_id: string; membership: string }> {
  const paths = dataDirPaths(dir);
  const nodeKey = await readKey(paths.nodeKey, 'node key', paths.dir);
  const origin = peerIdFromPublicKey(nodeKey.publicKey);
  return withStore(paths, async (store, storage) => {
    const row = await oneAccount(storage, userId);
    const ctx = await store.localOpContext(row.serverName, origin);
    let op;
    try {
      op = createOp(
        {
          account: row.serverName,
          origin,
          seq: ctx.seq,
          lamport: ctx.lamport,
          doc_seq: ctx.docSeq,
          ts: Date.now(),
          op: 'member.set',
          key: roomId,
          body: { room_id: roomId, membership },
        },
        nodeKey,
      );
    } catch (err) {
      throw new CliError(`Cannot record ${roomId}: ${(err as Error).message}`, EXIT_USAGE);
    }
    const result = await store.applyOps(row.serverName, [op], origin);
    const rejected = result.rejected[0];
    if (result.accepted.length !== 1) {
      throw new CliError(`Change refused: ${rejected ? `${rejected.reason}: ${rejected.detail}` : 'not applied'}`);
    }
    return { user_id: row.userId, room_id: roomId, membership };
  });
}

/** Options of `home add`. */
export interface AddHomeOptions {
  role: HomeRole;
  token?: string | undefined;
  name?: string | undefined;
  user?: string | undefined;
}

/**
 * Adds a home by its multiaddr: signs the next document with the root key, enrolls a server home with it
 * (before putting it in force here, so a refused enrollment changes nothing), then stores it.
 */
export async function addHomeByAddress(
  dir: string,
  address: string,
  options: AddHomeOptions,
): Promise<AccountDocument> {
  let peerId: string;
  try {
    peerId =
      parseMultiaddr(address)
        .getComponents()
        .findLast((c) => c.name === 'p2p')?.value ?? '';
  } catch {
    throw new CliError(`${address} is not a multiaddr (expected /ip4/.../tcp/.../p2p/<PeerId>).`, EXIT_USAGE);
  }
  if (peerId === '') throw new CliError(`${address} must end in /p2p/<PeerId>.`, EXIT_USAGE);
  const paths = dataDirPaths(dir);
  const nodeKey = await readKey(paths.nodeKey, 'node key', paths.dir);
  const rootKey = await readKey(paths.rootKey, 'root key', paths.dir);
  const home: Home = { peer_id: peerId, role: options.role, name: options.name ?? options.role, addrs: [address] };
  return withStore(paths, async (store, storage) => {
    const row = await oneAccount(storage, options.user);
    const document = await heldDocument(store, row.serverName);
    const next = sign(() => addHome(document, home, rootKey));
    if (options.role === 'server') await enrollServer(nodeKey, address, next, options.token);
    return store.offerDocument(row.serverName, next, peerIdFromPublicKey(nodeKey.publicKey));
  });
}

/** Revokes a home: signs the next document without it, with the last op seq held from it as cutoff. */
export async function removeHomeByPeerId(
  dir: string,
  peerId: string,
  user: string | undefined,
): Promise<AccountDocument> {
  const paths = dataDirPaths(dir);
  const nodeKey = await readKey(paths.nodeKey, 'node key', paths.dir);
  if (peerId === peerIdFromPublicKey(nodeKey.publicKey)) {
    throw new CliError('This node cannot revoke itself: run `home remove` on another home of the account.');
  }
  const rootKey = await readKey(paths.rootKey, 'root key', paths.dir);
  return withStore(paths, async (store, storage) => {
    const row = await oneAccount(storage, user);
    const vv = await store.versionVector(row.serverName);
    const document = await heldDocument(store, row.serverName);
    const next = sign(() => removeHome(document, peerId, vv[peerId] ?? 0, rootKey));
    return store.offerDocument(row.serverName, next, peerIdFromPublicKey(nodeKey.publicKey));
  });
}

// ---- helpers ----

async function heldDocument(store: SqlReplicaStore, serverName: string): Promise<AccountDocument> {
  const document = await store.document(serverName);
  if (document === undefined) throw new CliError('The account has no document: the data directory is damaged.');
  return document;
}

// Runs a document change, turning identity's refusals (home exists, last home, ...) into one-line errors.
function sign(change: () => AccountDocument): AccountDocument {
  try {
    return change();
  } catch (err) {
    if (err instanceof IdentityError) throw new CliError(err.message);
    throw err;
  }
}

async function enrollServer(
  nodeKey: SecretKey,
  address: string,
  document: AccountDocument,
  token: string | undefined,
): Promise<void> {
  // A short-lived libp2p node with this home's key: the server sees the enrolling home's own PeerId.
  const host = await createPolyhomeHost({ nodeKey, listen: [] });
  try {
    await enroll(host, address, document, token);
  } catch (err) {
    if (err instanceof EnrollError) {
      throw new CliError(`The server refused the enrollment (${err.errcode}: ${err.message}); check --token.`);
    }
    throw new CliError(
      `Cannot reach ${address}: ${(err as Error).message}. Check the address and that the server runs.`,
    );
  } finally {
    await host.stop();
  }
}

async function accounts(storage: Storage): Promise<AccountEntity[]> {
  return storage.dataSource.getRepository(AccountEntity).find({ order: { userId: 'ASC' } });
}

async function oneAccount(storage: Storage, userId: string | undefined): Promise<AccountEntity> {
  const rows = await accounts(storage);
  if (userId !== undefined) {
    const row = rows.find((r) => r.userId === userId);
    if (row === undefined)
      throw new CliError(`${userId} is not an account of this data directory (see \`polyhome status\`).`);
    return row;
  }
  const [first, second] = rows;
  if (first === undefined)
    throw new CliError('This data directory has no account: run `polyhome init --localpart NAME`.');
  if (second !== undefined)
    throw new CliError('This data directory has several accounts: name one with --user.', EXIT_USAGE);
  return first;
}

async function withStore<T>(
  paths: DataDirPaths,
  fn: (store: SqlReplicaStore, storage: Storage) => Promise<T>,
): Promise<T> {
  const storage = await openDataDir(paths);
  try {
    return await fn(new SqlReplicaStore(storage.dataSource), storage);
  } finally {
    await storage.close();
  }
}
