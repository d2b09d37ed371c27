// A data directory holds keys and the embedded database: it and everything in it are its owner's alone
// (directories 0700, files 0600). PGlite (Emscripten's NODEFS) creates its files with an explicit chmod to
// 0666 whatever the umask, and rewrites some at each open with 0644, so its directory is made owner-only
// again after it opens; a directory that others can read is refused at start, before anything is written.
import { chmodSync, lstatSync, readdirSync } from 'node:fs';
import { chmod, mkdir, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { StorageError } from './errors.js';

/** Permission bits of group and others. */
const OPEN_BITS = 0o077;

/** Entries found with group or other permissions: path and mode. */
interface OpenEntry {
  path: string;
  mode: number;
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Calls `visit` with the path and mode of `dir` and of every directory and file under it (not following
 * symbolic links, whose own mode means nothing). Entries that vanish during the walk are skipped.
 *
 * Synchronous on purpose: a PGlite directory holds a thousand files or more, and the walk runs at every open
 * and close. One thread-pool round trip per lstat, readdir and chmod took 1 to 2 s of `polyhome init` on a
 * loaded machine (each hand-off waits for a time slice); the same calls made in line take milliseconds.
 */
function walk(dir: string, visit: (entry: string, mode: number) => void): void {
  const pending = [dir];
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    let info;
    try {
      info = lstatSync(current);
    } catch (err) {
      if (isMissing(err)) continue;
      throw err;
    }
    if (info.isSymbolicLink()) continue;
    visit(current, info.mode);
    if (!info.isDirectory()) continue;
    try {
      for (const name of readdirSync(current)) pending.push(path.join(current, name));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  }
}

function octal(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/**
 * Refuses a data directory that group or others may use: one line naming the first such entry and the fix
 * (`chmod -R go-rwx <dir>`). Changes nothing.
 */
export async function assertPrivateDataDir(dir: string): Promise<void> {
  const root = path.resolve(dir);
  if (!(await stat(root)).isDirectory()) {
    throw new StorageError('DATA_DIR_PERMISSIONS', `${root} is not a directory: choose a directory for the data.`);
  }
  const open: OpenEntry[] = [];
  walk(root, (entry, mode) => {
    if ((mode & OPEN_BITS) !== 0) open.push({ path: entry, mode });
  });
  if (open.length === 0) return;
  const first = open[0]!;
  const more = open.length > 1 ? ` and ${open.length - 1} more` : '';
  throw new StorageError(
    'DATA_DIR_PERMISSIONS',
    `The data directory ${root} is open to other users (${first.path} has mode ${octal(first.mode)}${more}): ` +
      `run \`chmod -R go-rwx ${root}\` and start again.`,
  );
}

/** Kernel filesystems that hold no files of ours (statfs magic numbers): proc, sysfs, cgroup, cgroup2, debugfs. */
const PSEUDO_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
]);

/** The kernel pseudo filesystem `dir` (or its nearest existing parent) is on, if any. */
async function pseudoFilesystem(dir: string): Promise<string | undefined> {
  for (let current = dir; ; current = path.dirname(current)) {
    try {
      return PSEUDO_FILESYSTEMS.get(Number((await statfs(current)).type));
    } catch (err) {
      if (!isMissing(err) || path.dirname(current) === current) return undefined;
    }
  }
}

/** Creates the data directory owner-only when it is missing, then refuses it if others may use it. */
export async function preparePrivateDataDir(dir: string): Promise<void> {
  const root = path.resolve(dir);
  const pseudo = await pseudoFilesystem(root);
  if (pseudo !== undefined) {
    throw new StorageError(
      'DATA_DIR_UNUSABLE',
      `${root} is on the kernel's ${pseudo} filesystem, which holds no data: choose a directory on a disk.`,
    );
  }
  const created = await mkdir(root, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new StorageError(
      'DATA_DIR_UNUSABLE',
      `Cannot create the data directory ${root} (${code}): choose a directory this user may create and write.`,
    );
  });
  // mkdir's mode passes through the umask; the owner needs all of 0700 (a umask like 0277 would take it).
  if (created !== undefined) await chmod(root, 0o700);
  await assertPrivateDataDir(root);
}

/** Takes group and other permissions off `dir` and everything under it (PGlite's own 0666 and 0644 files). */
export async function restrictDataDir(dir: string): Promise<void> {
  walk(path.resolve(dir), (entry, mode) => {
    if ((mode & OPEN_BITS) === 0) return;
    try {
      chmodSync(entry, mode & 0o7777 & ~OPEN_BITS);
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
  });
}
