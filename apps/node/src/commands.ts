// What each command does, on a HomeContext: the same functions run in the node (control API) and in the CLI
// when no node runs. cli.ts parses arguments and prints; nothing here prints.
import type { Home as LiveHome, HomeTarget, LocalChange } from '@polyhome/home';
import {
  exportSecretKey,
  IdentityError,
  readNodeKeyFile,
  serverNameFromPublicKey,
  type AccountDocument,
  type Home,
  type HomeRole,
  type SecretKey,
  updateHome,
} from '@polyhome/identity';
import type { AccountRecord } from '@polyhome/storage';
import type { Op } from '@polyhome/sync';
import type { HomeContext } from './context.js';
import { CliError, EXIT_USAGE, storageProblem } from './errors.js';

// @polyhome/home and @polyhome/p2p (libp2p with them) are loaded by the commands that change homes or
// write ops, not by those that only read (status, export, list): loading them costs a second of CPU.
type HomeLib = typeof import('@polyhome/home');
type P2pLib = typeof import('@polyhome/p2p');
const homeLib = (): Promise<HomeLib> => import('@polyhome/home');
const p2pLib = (): Promise<P2pLib> => import('@polyhome/p2p');

/** Lifetime of a login token made by `polyhome login-token`: time to paste it into a client. */
export const LOGIN_TOKEN_LIFETIME_MS = 2 * 60 * 1000;

/** One account of the data directory, for status. */
export interface AccountStatus {
  user_id: string;
  custody: string;
  /** This node holds the account's root key (it can add and remove homes). */
  root_key: boolean;
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
  /** Set while the node runs. */
  matrix_url?: string;
  listening?: string[];
  connected_peers?: string[];
  /** Open libp2p connections: the peer, the address, and whether it goes through a relay. */
  connections?: Array<{ peer_id: string; addr: string; relayed: boolean }>;
  accounts: AccountStatus[];
}

/**
 * Puts this home's relayed addresses in its entry of the documents of the accounts whose root key this node
 * holds, when they differ from the entry's (a new document, signed here, goes out at once). Accounts whose key is
 * elsewhere are skipped: their homes find this one through the DHT. Returns the accounts whose document changed.
 */
export async function advertiseAddrs(ctx: HomeContext, addrs: readonly string[]): Promise<string[]> {
  const live = ctx.live;
  if (live === undefined) return [];
  const rootKey = await ownRootKey(ctx);
  if (rootKey === undefined) return [];
  const wanted = [...addrs].sort();
  const changed: string[] = [];
  for (const row of await accounts(ctx)) {
    if (!rootKeyMatches(rootKey, row.serverName)) continue;
    const entry = (await ctx.store.document(row.serverName))?.homes.find((h) => h.peer_id === ctx.peerId);
    if (entry === undefined || JSON.stringify([...entry.addrs].sort()) === JSON.stringify(wanted)) continue;
    await live.changeDocument(row.serverName, (d) => updateHome(d, { ...entry, addrs: wanted }, rootKey));
    changed.push(row.userId);
  }
  return changed;
}

/** The accounts of the data directory with their replicated state's size. */
export async function accountStatuses(ctx: HomeContext): Promise<AccountStatus[]> {
  const rootKey = await ownRootKey(ctx);
  const out: AccountStatus[] = [];
  for (const row of await accounts(ctx)) {
    const [document, state] = await Promise.all([ctx.store.document(row.serverName), ctx.store.state(row.serverName)]);
    out.push({
      user_id: row.userId,
      custody: row.custody,
      root_key: rootKey !== undefined && rootKeyMatches(rootKey, row.serverName),
      doc_seq: Number(row.docSeq),
      homes: document?.homes.length ?? 0,
      devices: Object.keys(state.devices).length,
      rooms: Object.keys(state.memberships).length,
    });
  }
  return out;
}

/** A home of an account as `home list` shows it. */
export interface HomeView extends Home {
  user_id: string;
  /** This node. */
  self: boolean;
}

/** The homes in the account documents held here. */
export async function listHomes(ctx: HomeContext): Promise<HomeView[]> {
  const out: HomeView[] = [];
  for (const row of await accounts(ctx)) {
    const document = await ctx.store.document(row.serverName);
    for (const home of document?.homes ?? []) {
      out.push({ user_id: row.userId, ...home, self: home.peer_id === ctx.peerId });
    }
  }
  return out;
}

/** Replicated devices or memberships of the accounts held here, each entry tagged with its account. */
export async function listState(
  ctx: HomeContext,
  what: 'devices' | 'memberships',
): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const row of await accounts(ctx)) {
    const state = await ctx.store.state(row.serverName);
    const idName = what === 'devices' ? 'device_id' : 'room_id';
    for (const [key, body] of Object.entries(state[what])) out.push({ user_id: row.userId, ...body, [idName]: key });
  }
  return out;
}

/**
 * Signs changes as ops of this home, stores them in one batch and (in a running node, through its Home)
 * pushes them to the other homes. Throws CliError when the store refuses one; nothing is applied then.
 */
export async function applyLocal(ctx: HomeContext, serverName: string, changes: LocalChange[]): Promise<Op[]> {
  try {
    return await ctx.writer.write(serverName, changes);
  } catch (err) {
    if (err instanceof (await homeLib()).LocalChangeRefusedError) throw new CliError(err.message);
    throw err;
  }
}

/** Records a room membership of the account as a signed op of this home. */
export async function setMembership(
  ctx: HomeContext,
  roomId: string,
  membership: 'join' | 'leave',
  userId: string | undefined,
): Promise<{ user_id: string; room_id: string; membership: string }> {
  const row = await oneAccount(ctx, userId);
  try {
    await applyLocal(ctx, row.serverName, [{ op: 'member.set', key: roomId, body: { room_id: roomId, membership } }]);
  } catch (err) {
    if (err instanceof CliError) throw err;
    // A full or read-only disk is not the room ID's fault; anything else thrown while making the op is.
    throw (
      storageProblem(err, ctx.paths.dir) ??
      new CliError(`Cannot record ${roomId}: ${(err as Error).message}`, EXIT_USAGE)
    );
  }
  return { user_id: row.userId, room_id: roomId, membership };
}

/**
 * Removes a device of the account everywhere: a `device.delete` op, and here its access tokens and
 * one-time keys (the other homes drop theirs when the op reaches them).
 */
export async function removeDevice(
  ctx: HomeContext,
  deviceId: string,
  userId: string | undefined,
): Promise<{ user_id: string; device_id: string }> {
  const row = await oneAccount(ctx, userId);
  const state = await ctx.store.state(row.serverName);
  if (!Object.hasOwn(state.devices, deviceId)) {
    throw new CliError(`${row.userId} has no device ${deviceId} (see \`polyhome device list\`).`);
  }
  await applyLocal(ctx, row.serverName, [{ op: 'device.delete', key: deviceId, body: {} }]);
  const matrix = ctx.repositories.matrix;
  await matrix.deleteDeviceTokens(row.serverName, [deviceId]);
  await matrix.deleteDeviceKeys(row.serverName, deviceId);
  return { user_id: row.userId, device_id: deviceId };
}

/** Options of `home add`. */
export interface AddHomeOptions {
  role: HomeRole;
  token?: string | undefined;
  name?: string | undefined;
  user?: string | undefined;
  /** The pairing code a node made with `init --join` printed (client homes; needs this node running). */
  pairingCode?: string | undefined;
  /** Progress lines for the slow steps (reaching a server home to enroll). */
  onProgress?: ((message: string) => void) | undefined;
}

/**
 * Adds a home, by its multiaddr (ending in /p2p/<PeerId>) or, for a client home, by its PeerId alone. Signs
 * the next document with the root key; a server home is enrolled with it first (so a refused enrollment
 * changes nothing here); then the document is stored and, in a running node, sent to the other homes.
 */
export async function addHomeByAddress(
  ctx: HomeContext,
  target: string,
  options: AddHomeOptions,
): Promise<AccountDocument> {
  const [lib, p2p] = await Promise.all([homeLib(), p2pLib()]);
  const { peerId, address } = homeTarget(lib, target, options.role);
  const row = await oneAccount(ctx, options.user);
  const rootKey = await requireRootKey(ctx, row.serverName);
  const home = {
    peerId,
    address,
    role: options.role,
    name: options.name ?? options.role,
    pairingCode: options.pairingCode,
  };
  if (options.pairingCode !== undefined) {
    if (options.role !== 'client')
      throw new CliError('--pairing-code is for a client home (--role client).', EXIT_USAGE);
    if (p2p.normalizePairingCode(options.pairingCode) === undefined) {
      throw new CliError(new lib.InvalidPairingCodeError().message, EXIT_USAGE);
    }
    if (ctx.live === undefined) {
      throw new CliError(
        'Start this node first (`polyhome start`): it proves the pairing code to the new node when they connect, so it must be running.',
      );
    }
  }
  // A server home is enrolled with the signed next document before it is put in force here.
  const enrollIt =
    options.role === 'server'
      ? (next: AccountDocument) => {
          options.onProgress?.(`Enrolling with the server ${address!}`);
          return enrollServer(lib, p2p, ctx, address!, next, options.token);
        }
      : undefined;
  return changeDocument(lib, () =>
    ctx.live === undefined
      ? lib.addHomeToAccount(ctx.store, ctx.peerId, row.serverName, home, rootKey, enrollIt)
      : ctx.live.addHome(row.serverName, home, rootKey, enrollIt),
  );
}

/** Revokes a home: signs the next document without it, with the last op seq held from it (and its log digest) as cutoff. */
export async function removeHomeByPeerId(
  ctx: HomeContext,
  peerId: string,
  user: string | undefined,
): Promise<AccountDocument> {
  const row = await oneAccount(ctx, user);
  const rootKey = await requireRootKey(ctx, row.serverName);
  const lib = await homeLib();
  return changeDocument(lib, () =>
    ctx.live === undefined
      ? lib.removeHomeFromAccount(ctx.store, ctx.peerId, row.serverName, peerId, rootKey)
      : ctx.live.removeHome(row.serverName, peerId, rootKey),
  );
}

/** A single-use `m.login.token` for a Matrix client of this home. */
export async function loginToken(
  ctx: HomeContext,
  user: string | undefined,
): Promise<{ user_id: string; login_token: string; expires_in_ms: number }> {
  const row = await oneAccount(ctx, user);
  const { token } = await ctx.repositories.loginTokens.create(row.serverName, LOGIN_TOKEN_LIFETIME_MS);
  return { user_id: row.userId, login_token: token, expires_in_ms: LOGIN_TOKEN_LIFETIME_MS };
}

/** What `polyhome export` writes: the account document and the root key sealed under a passphrase. */
export interface AccountExport {
  type: 'polyhome.account_export';
  user_id: string;
  document: AccountDocument;
  /** identity's passphrase export (scrypt + XChaCha20-Poly1305) of the root key. */
  root_key: string;
}

/** Seals the root key under a passphrase, with the account document, for a backup. */
export async function exportAccount(
  ctx: HomeContext,
  passphrase: string,
  user: string | undefined,
): Promise<AccountExport> {
  const row = await oneAccount(ctx, user);
  const rootKey = await requireRootKey(ctx, row.serverName);
  const document = await heldDocument(ctx, row.serverName);
  return {
    type: 'polyhome.account_export',
    user_id: row.userId,
    document,
    root_key: await exportSecretKey(rootKey, passphrase),
  };
}

// ---- helpers ----

/** A target of `home add`: a multiaddr ending in /p2p/<PeerId>, or (client homes only) a bare PeerId. */
function homeTarget(lib: HomeLib, target: string, role: HomeRole): HomeTarget {
  try {
    return lib.parseHomeTarget(target, role);
  } catch (err) {
    if (!(err instanceof lib.HomeAddressError)) throw err;
    switch (err.reason) {
      case 'not_peer_id':
        throw new CliError(`${target} is neither a multiaddr nor a PeerId (12D3KooW...).`, EXIT_USAGE);
      case 'server_needs_address':
        throw new CliError(
          'A server home is enrolled over the network: give its multiaddr (/ip4/.../tcp/.../p2p/<PeerId>).',
          EXIT_USAGE,
        );
      case 'not_multiaddr':
        throw new CliError(`${target} is not a multiaddr (expected /ip4/.../tcp/.../p2p/<PeerId>).`, EXIT_USAGE);
      case 'no_peer_id':
        throw new CliError(`${target} must end in /p2p/<PeerId>.`, EXIT_USAGE);
    }
  }
}

async function heldDocument(ctx: HomeContext, serverName: string): Promise<AccountDocument> {
  const document = await ctx.store.document(serverName);
  if (document === undefined) throw new CliError('The account has no document: the data directory is damaged.');
  return document;
}

/** The root key file of the data directory, when there is one. */
async function ownRootKey(ctx: HomeContext): Promise<SecretKey | undefined> {
  try {
    return await readNodeKeyFile(ctx.paths.rootKey);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`Cannot read the root key: ${(err as Error).message}`);
  }
}

function rootKeyMatches(rootKey: SecretKey, serverName: string): boolean {
  return serverNameFromPublicKey(rootKey.publicKey) === serverName;
}

async function requireRootKey(ctx: HomeContext, serverName: string): Promise<SecretKey> {
  const rootKey = await ownRootKey(ctx);
  if (rootKey === undefined || !rootKeyMatches(rootKey, serverName)) {
    throw new CliError(
      'This node does not hold the account root key: change the homes from the device that does (the one where `polyhome init --localpart` ran).',
    );
  }
  return rootKey;
}

// Runs a document change, turning its refusals (home exists, last home, this node itself) into one-line errors.
async function changeDocument(lib: HomeLib, change: () => Promise<AccountDocument>): Promise<AccountDocument> {
  try {
    return await change();
  } catch (err) {
    if (err instanceof IdentityError) throw new CliError(err.message);
    if (err instanceof lib.SelfRevocationError) {
      throw new CliError('This node cannot revoke itself: run `home remove` on another home of the account.');
    }
    if (err instanceof lib.AccountNotHeldError) {
      throw new CliError('The account has no document: the data directory is damaged.');
    }
    throw err;
  }
}

async function enrollServer(
  lib: HomeLib,
  p2p: P2pLib,
  ctx: HomeContext,
  address: string,
  document: AccountDocument,
  token: string | undefined,
): Promise<void> {
  const run = async (host: LiveHome['host']): Promise<void> => {
    try {
      await p2p.enrollOverLibp2p(host, address, token === undefined ? { document } : { document, token });
    } catch (err) {
      if (err instanceof p2p.EnrollmentRefusedError) {
        throw new CliError(`The server refused the enrollment (${err.errcode}: ${err.error}); check --token.`);
      }
      throw new CliError(
        `Cannot reach ${address}: ${(err as Error).message}. Check the address and that the server runs.`,
      );
    }
  };
  // A running node enrolls over its own libp2p node; otherwise a short-lived one with this home's key, so the
  // server sees the enrolling home's own PeerId either way.
  if (ctx.live !== undefined) return run(ctx.live.host);
  return lib.withTransientHost({ nodeKey: ctx.nodeKey }, ({ host }) => run(host));
}

/** The accounts of the data directory. */
export async function accounts(ctx: HomeContext): Promise<AccountRecord[]> {
  return ctx.repositories.accounts.listByUserId();
}

/** The account a command is about: the one named by --user, or the only one. */
export async function oneAccount(ctx: HomeContext, userId: string | undefined): Promise<AccountRecord> {
  const rows = await accounts(ctx);
  if (userId !== undefined) {
    const row = rows.find((r) => r.userId === userId);
    if (row === undefined)
      throw new CliError(`${userId} is not an account of this data directory (see \`polyhome status\`).`);
    return row;
  }
  const [first, second] = rows;
  if (first === undefined) {
    throw new CliError(
      'This data directory has no account yet: run `polyhome init --localpart NAME`, or (after `init --join`) add this node from a home of the account and start it.',
    );
  }
  if (second !== undefined)
    throw new CliError('This data directory has several accounts: name one with --user.', EXIT_USAGE);
  return first;
}
