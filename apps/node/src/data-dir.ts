import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readNodeKeyFile, type SecretKey } from '@polyhome/identity';
import {
  assertPrivateDataDir,
  openStorage,
  preparePrivateDataDir,
  StorageError,
  type Storage,
} from '@polyhome/storage';
import { CliError, storageProblem } from './errors.js';
import { embeddedSharedBuffers } from './wasm-tiering.js';

/** The files of a data directory. */
export interface DataDirPaths {
  dir: string;
  /** This node's libp2p key (its PeerId), 32-byte seed, mode 0600. */
  nodeKey: string;
  /** The account's root key, 32-byte seed, mode 0600 (same format and checks as node.key). */
  rootKey: string;
  /** Lock file of the embedded database while a process has it open. */
  dbLock: string;
  /** While the node runs: its control API's address and secret (`{ url, token, pid }`), mode 0600. */
  control: string;
  /** The embedded database's directory (absent before the first open). */
  db: string;
  /** After `init --join`: the pairing code the home adding this node proves (`{ code, failures }`), mode 0600. */
  pairing: string;
}

/** The default data directory: $XDG_DATA_HOME/polyhome, else ~/.local/share/polyhome. */
export function defaultDataDir(): string {
  const xdg = process.env['XDG_DATA_HOME'];
  return path.join(xdg !== undefined && xdg !== '' ? xdg : path.join(os.homedir(), '.local', 'share'), 'polyhome');
}

/** The paths of the files in a data directory. */
export function dataDirPaths(dir: string): DataDirPaths {
  const abs = path.resolve(dir);
  return {
    dir: abs,
    nodeKey: path.join(abs, 'node.key'),
    rootKey: path.join(abs, 'root.key'),
    dbLock: path.join(abs, 'db.lock'),
    control: path.join(abs, 'control.json'),
    db: path.join(abs, 'db'),
    pairing: path.join(abs, 'pairing.json'),
  };
}

/**
 * Reads a key file, turning a missing one into "run polyhome init" and other failures into one line. The data
 * directory is checked first: one that group or others may use is refused (`chmod -R go-rwx`), whatever file
 * in it is open.
 */
export async function readKey(file: string, what: string, dir: string): Promise<SecretKey> {
  try {
    await assertPrivateDataDir(dir);
  } catch (err) {
    if (err instanceof StorageError) throw new CliError(err.message);
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    return await readNodeKeyFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(`${dir} has no ${what} (${file}): run \`polyhome --data-dir ${dir} init\` first.`);
    }
    throw new CliError(`Cannot read the ${what}: ${(err as Error).message}`);
  }
}

/** The PID in the database lock file when a live process holds it, else undefined. */
export async function runningPid(paths: DataDirPaths): Promise<number | undefined> {
  const pid = Number.parseInt((await readFile(paths.dbLock, 'utf8').catch(() => '')).trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined;
  }
}

/**
 * Creates the data directory owner-only (0700) when missing, and refuses one that group or others may use
 * (a one-line error naming `chmod -R go-rwx`), before anything is written in it.
 */
export async function preparePrivate(paths: DataDirPaths): Promise<void> {
  try {
    await preparePrivateDataDir(paths.dir);
  } catch (err) {
    if (err instanceof StorageError) throw new CliError(err.message);
    throw storageProblem(err, paths.dir) ?? new CliError(`Cannot use ${paths.dir}: ${(err as Error).message}`);
  }
}

/**
 * Opens the embedded database of the data directory. The database's lock refuses a second process: that
 * becomes one line naming the running node (commands reach a running node through its control API instead).
 */
export async function openDataDir(paths: DataDirPaths, onProgress?: (message: string) => void): Promise<Storage> {
  try {
    const sharedBuffers = embeddedSharedBuffers();
    return await openStorage({
      dataDir: paths.dir,
      ...(onProgress === undefined ? {} : { onProgress }),
      ...(sharedBuffers === undefined ? {} : { embeddedSharedBuffers: sharedBuffers }),
    });
  } catch (err) {
    if (err instanceof StorageError && err.code === 'DATA_DIR_LOCKED') {
      const pid = await runningPid(paths);
      throw new CliError(
        `The data directory ${paths.dir} is in use by a running polyhome node${pid === undefined ? '' : ` (pid ${pid})`}: only one node runs per data directory; stop it first (Ctrl-C or kill ${pid ?? '<pid>'}).`,
      );
    }
    if (err instanceof StorageError && err.code === 'DATA_DIR_PERMISSIONS') throw new CliError(err.message);
    throw (
      storageProblem(err, paths.dir) ??
      new CliError(`Cannot open the database in ${paths.dir}: ${(err as Error).message}`)
    );
  }
}
