// `polyhome init`: a new data directory, with a new account, a node key only (--join), or an account restored
// from a `polyhome export` backup (--import).
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import {
  addHome,
  assertLocalpart,
  createAccountDocument,
  generateKeyPair,
  IdentityError,
  importSecretKey,
  loadOrCreateNodeKey,
  parseUserId,
  peerIdFromPublicKey,
  readNodeKeyFile,
  serverNameFromPublicKey,
  verifyAccountDocument,
  writeNodeKeyFile,
  type AccountDocument,
  type Home,
  type SecretKey,
} from '@polyhome/identity';
import { createRepositories, type Storage } from '@polyhome/storage';
import { dataDirPaths, openDataDir, preparePrivate, type DataDirPaths } from './data-dir.js';
import { CliError, EXIT_USAGE } from './errors.js';

/** What init made. */
export interface InitResult {
  data_dir: string;
  peer_id: string;
  /** Absent for `init --join`. */
  user_id?: string;
  /** `init --join` only: the code to give the home that adds this node (`home add ... --pairing-code`). */
  pairing_code?: string;
}

/** Options of init. */
export interface InitOptions {
  localpart?: string | undefined;
  join?: boolean | undefined;
  /** A `polyhome export` file to restore the account from, and its passphrase. */
  importFile?: string | undefined;
  passphrase?: string | undefined;
  /** This home's name in the account document (default: the host name). */
  name?: string | undefined;
  /** Progress lines for the slow steps (creating the database). */
  onProgress?: ((message: string) => void) | undefined;
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
  const restored =
    options.importFile === undefined ? undefined : await readExport(options.importFile, options.passphrase);
  if (options.join !== true && restored === undefined) {
    if (options.localpart === undefined) {
      throw new CliError('init needs --localpart NAME (or --join for a node key only).', EXIT_USAGE);
    }
    try {
      assertLocalpart(options.localpart);
    } catch (err) {
      throw new CliError(`--localpart: ${(err as Error).message}`, EXIT_USAGE);
    }
  }
  await preparePrivate(paths);
  const node = await loadOrCreateNodeKey(paths.nodeKey).catch((err: unknown) => {
    throw new CliError(`Cannot create ${paths.nodeKey}: ${(err as Error).message}`);
  });
  if (!node.created) throw new CliError(await alreadyInitialised(paths));
  const peerId = peerIdFromPublicKey(node.secretKey.publicKey);
  if (options.join === true) {
    // The home adding this node must prove this code before the node takes its account in.
    const [{ FilePairingCodeStore }, { newPairingCode }] = await Promise.all([
      import('@polyhome/home'),
      import('@polyhome/p2p'),
    ]);
    const pairingCode = newPairingCode();
    try {
      await new FilePairingCodeStore(paths.pairing).write({ code: pairingCode, failures: 0 });
    } catch (err) {
      await rm(paths.nodeKey, { force: true });
      throw new CliError(`Cannot create ${paths.pairing}: ${(err as Error).message}`);
    }
    return { data_dir: paths.dir, peer_id: peerId, pairing_code: pairingCode };
  }
  let storage: Storage | undefined;
  try {
    const home: Home = { peer_id: peerId, role: 'client', name: options.name ?? defaultHomeName(), addrs: [] };
    let rootKey: SecretKey;
    let document: AccountDocument;
    if (restored !== undefined) {
      // The backup's document with this node added: the homes learn it when this node offers it at start.
      rootKey = restored.rootKey;
      document = addHome(restored.document, home, rootKey);
    } else {
      rootKey = generateKeyPair().secretKey;
      document = createAccountDocument({ localpart: options.localpart!, rootKey, home });
    }
    storage = await openDataDir(paths, options.onProgress);
    await createRepositories(storage).replica.hostAccount(document, { custody: 'self' });
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

/**
 * Why a second init is refused, naming the account the directory holds when its root key is here (its server
 * name, read from the key without opening the database): a second `init --localpart alice` is far more often
 * a repeated command than a wish for a second `@alice`, which needs a data directory of its own.
 */
async function alreadyInitialised(paths: DataDirPaths): Promise<string> {
  const rootKey = await readNodeKeyFile(paths.rootKey).catch(() => undefined);
  const holds =
    rootKey === undefined
      ? ''
      : ` and holds the account @…:${serverNameFromPublicKey(rootKey.publicKey)} (\`polyhome status\` shows it)`;
  return `${paths.dir} is already initialised (${paths.nodeKey} exists)${holds}: use that account, or another --data-dir for a new one.`;
}

/** The pairing code of a node made with `init --join`, replaced first with `renew`. */
export async function pairingCode(
  dir: string,
  renew: boolean,
): Promise<{ pairing_code: string; wrong_proofs: number }> {
  const paths = dataDirPaths(dir);
  const [{ FilePairingCodeStore }, { newPairingCode }] = await Promise.all([
    import('@polyhome/home'),
    import('@polyhome/p2p'),
  ]);
  const store = new FilePairingCodeStore(paths.pairing);
  const held = await store.read().catch((err: unknown) => {
    throw new CliError(`Cannot read ${paths.pairing}: ${(err as Error).message}`);
  });
  if (held === undefined) {
    throw new CliError(
      `${paths.dir} has no pairing code: this node holds an account already (the code was spent), or was not made with \`polyhome init --join\`.`,
    );
  }
  if (!renew) return { pairing_code: held.code, wrong_proofs: held.failures };
  const code = newPairingCode();
  await store.write({ code, failures: 0 });
  return { pairing_code: code, wrong_proofs: 0 };
}

/** Opens a `polyhome export` file: the document verified, the root key opened and checked against it. */
async function readExport(
  file: string,
  passphrase: string | undefined,
): Promise<{ rootKey: SecretKey; document: AccountDocument }> {
  if (passphrase === undefined) throw new CliError('init --import needs the export passphrase.', EXIT_USAGE);
  let parsed: { type?: unknown; document?: unknown; root_key?: unknown };
  try {
    parsed = JSON.parse(await readFile(file, 'utf8')) as typeof parsed;
  } catch (err) {
    throw new CliError(`Cannot read ${file} as a polyhome export: ${(err as Error).message}`);
  }
  if (parsed.type !== 'polyhome.account_export' || typeof parsed.root_key !== 'string') {
    throw new CliError(`${file} is not a polyhome export (made by \`polyhome export\`).`);
  }
  let document: AccountDocument;
  try {
    document = verifyAccountDocument(parsed.document);
  } catch (err) {
    throw new CliError(`The document in ${file} does not verify: ${(err as Error).message}`);
  }
  const rootKey = await importSecretKey(parsed.root_key, passphrase).catch(() => {
    throw new CliError(`Cannot open the key in ${file}: wrong passphrase, or the file was changed.`);
  });
  if (serverNameFromPublicKey(rootKey.publicKey) !== parseUserId(document.user_id).serverName) {
    throw new CliError(`The key in ${file} is not the key of ${document.user_id}.`);
  }
  return { rootKey, document };
}
