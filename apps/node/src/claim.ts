// `polyhome claim URL --user ID`: takes custody of an account a server hosts (its root key) onto this device.
// The server's custody handover (POST /_polyhome/v1/custody, authenticated by the account's password) names
// this node as a client home in a document it signs before the key leaves, and answers the sealed key with
// that document. The node then holds the account like one made here: root key on disk, document in force.
import { randomBytes } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import {
  homeStatus,
  IdentityError,
  importSecretKey,
  loadOrCreateNodeKey,
  parseUserId,
  peerIdFromPublicKey,
  serverNameFromPublicKey,
  verifyAccountDocument,
  writeNodeKeyFile,
} from '@polyhome/identity';
import { createRepositories } from '@polyhome/storage';
import { dataDirPaths, openDataDir, preparePrivate } from './data-dir.js';
import { CliError, EXIT_USAGE } from './errors.js';

/** Time allowed for the handover request (the server runs scrypt for the password and the export). */
const CLAIM_TIMEOUT_MS = 60_000;

/** What claim did. */
export interface ClaimResult {
  data_dir: string;
  peer_id: string;
  user_id: string;
  doc_seq: number;
}

/** Options of claim. */
export interface ClaimOptions {
  userId: string;
  password: string;
  /** This home's name in the document. */
  name: string;
}

/**
 * Claims the account from the server at `url` (its HTTP address) into the data directory, which must hold no
 * account yet (an empty directory, or one made with `init --join`).
 */
export async function claim(dir: string, url: string, options: ClaimOptions): Promise<ClaimResult> {
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new CliError(
      `${url} is not a URL: give the server's HTTP address, e.g. https://home.example.org`,
      EXIT_USAGE,
    );
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new CliError(`${url}: the server's address must be http:// or https://.`, EXIT_USAGE);
  }
  try {
    parseUserId(options.userId);
  } catch (err) {
    throw new CliError(`--user: ${(err as Error).message}`, EXIT_USAGE);
  }
  const paths = dataDirPaths(dir);
  if (await exists(paths.rootKey)) {
    throw new CliError(`${paths.dir} already holds an account key (${paths.rootKey}): claim into another --data-dir.`);
  }
  // A refused claim leaves the directory as it found it: what this claim made (the directory, its node key,
  // the database) goes again.
  const hadDir = await exists(paths.dir);
  const hadDb = await exists(paths.db);
  let createdKey = false;
  const undo = async (): Promise<void> => {
    if (!hadDir) await rm(paths.dir, { recursive: true, force: true });
    else {
      if (createdKey) await rm(paths.nodeKey, { force: true });
      if (!hadDb) await rm(paths.db, { recursive: true, force: true });
    }
  };
  await preparePrivate(paths);
  const node = await loadOrCreateNodeKey(paths.nodeKey).catch(async (err: unknown) => {
    await undo();
    throw new CliError(`Cannot create ${paths.nodeKey}: ${(err as Error).message}`);
  });
  createdKey = node.created;
  const peerId = peerIdFromPublicKey(node.secretKey.publicKey);
  const storage = await openDataDir(paths).catch(async (err: unknown) => {
    await undo();
    throw err;
  });
  try {
    const repositories = createRepositories(storage);
    const store = repositories.replica;
    if ((await repositories.accounts.count()) > 0)
      throw new CliError(`${paths.dir} already holds an account: claim into another --data-dir.`);

    // The export only travels from the server to here: a fresh random passphrase protects it in transit.
    const passphrase = randomBytes(24).toString('base64url');
    const answer = await handover(base, {
      user_id: options.userId,
      password: options.password,
      passphrase,
      peer_id: peerId,
      home_name: options.name,
    });
    const rootKey = await importSecretKey(answer.export, passphrase).catch(() => {
      throw new CliError('The server sent a key export this node cannot open; the server may be broken.');
    });
    let document;
    try {
      document = verifyAccountDocument(answer.document, { expectedUserId: options.userId });
    } catch (err) {
      throw new CliError(`The server sent an account document that does not verify: ${(err as Error).message}`);
    }
    if (serverNameFromPublicKey(rootKey.publicKey) !== parseUserId(options.userId).serverName) {
      throw new CliError('The server sent the key of another account; nothing was stored.');
    }
    if (homeStatus(document, peerId).kind !== 'home') {
      throw new CliError('The server did not name this node as a home of the account; nothing was stored.');
    }
    await store.hostAccount(document, { custody: 'self' });
    await writeNodeKeyFile(paths.rootKey, rootKey);
    await storage.close();
    return { data_dir: paths.dir, peer_id: peerId, user_id: document.user_id, doc_seq: document.seq };
  } catch (err) {
    // Closed first: the database's files and lock go with it.
    await storage.close().catch(() => undefined);
    await undo();
    throw err instanceof IdentityError ? new CliError(err.message) : err;
  }
}

async function handover(base: URL, body: Record<string, string>): Promise<{ export: string; document: unknown }> {
  let response: Response;
  try {
    response = await fetch(new URL('/_polyhome/v1/custody', base), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(CLAIM_TIMEOUT_MS),
    });
  } catch (err) {
    throw new CliError(`Cannot reach ${base.origin}: ${(err as Error).message}. Check the address.`);
  }
  const answer = (await response.json().catch(() => ({}))) as {
    export?: unknown;
    document?: unknown;
    errcode?: string;
    error?: string;
  };
  if (!response.ok) {
    throw new CliError(
      `The server refused the handover (${answer.errcode ?? response.status}: ${answer.error ?? 'no reason given'}).`,
    );
  }
  if (typeof answer.export !== 'string' || answer.document === undefined) {
    throw new CliError('The server answered without a key and a document: is it a polyhome server of this version?');
  }
  return { export: answer.export, document: answer.document };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
