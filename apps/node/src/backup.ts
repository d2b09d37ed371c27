// `polyhome backup` and `polyhome restore`: the whole data directory of a home in one file, and back. The
// database part is a snapshot the process holding the database takes (the running node through its control
// API, or the CLI when no node runs), never a copy of files a running node is writing. The key files go in as
// they are: the backup holds the node key and (on the device that made the account) the root key, so it is
// kept like the directory itself (mode 0600, and encrypted wherever it is stored off the machine).
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { peerIdFromPublicKey, readNodeKeyFile } from '@polyhome/identity';
import { restoreEmbeddedDatabase } from '@polyhome/storage';
import { accountStatuses } from './commands.js';
import type { HomeContext } from './context.js';
import { dataDirPaths, preparePrivate, runningPid } from './data-dir.js';
import { CliError, EXIT_USAGE, storageProblem } from './errors.js';

/** The `type` of a backup file. */
export const BACKUP_TYPE = 'polyhome.data_dir_backup';
/** The files of the data directory a backup carries besides the database (those present). */
const KEPT_FILES = ['node.key', 'root.key', 'pairing.json'] as const;

/** A backup file: JSON, the files and the database snapshot in base64. */
export interface DataDirBackup {
  type: typeof BACKUP_TYPE;
  version: 1;
  created_at: string;
  peer_id: string;
  user_ids: string[];
  /** File name → content (base64). */
  files: Record<string, string>;
  /** The embedded database: PGlite's gzipped tar of its data directory (base64). */
  db: string;
}

/** What `backup` answers. */
export interface BackupResult {
  out: string;
  bytes: number;
  peer_id: string;
  user_ids: string[];
}

/** What `restore` answers. */
export interface RestoreResult {
  data_dir: string;
  peer_id: string;
  user_ids: string[];
  created_at: string;
}

/** Writes a backup of the data directory to `out` (an absolute path, a new file, mode 0600). */
export async function backupDataDir(ctx: HomeContext, out: string): Promise<BackupResult> {
  if (!path.isAbsolute(out)) throw new CliError(`The backup file must be an absolute path (got ${out}).`, EXIT_USAGE);
  if (ctx.snapshot === undefined) throw new CliError('This data directory has no embedded database to back up.');
  if (await exists(out)) throw new CliError(`${out} exists: a backup never overwrites a file. Choose another name.`);
  const files: Record<string, string> = {};
  for (const name of KEPT_FILES) {
    const content = await readFile(path.join(ctx.paths.dir, name)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    });
    if (content !== undefined) files[name] = content.toString('base64');
  }
  const userIds = (await accountStatuses(ctx)).map((a) => a.user_id);
  const backup: DataDirBackup = {
    type: BACKUP_TYPE,
    version: 1,
    created_at: new Date().toISOString(),
    peer_id: ctx.peerId,
    user_ids: userIds,
    files,
    db: Buffer.from(await ctx.snapshot()).toString('base64'),
  };
  const text = `${JSON.stringify(backup)}\n`;
  await writeFile(out, text, { mode: 0o600, flag: 'wx' }).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CliError(`${out} exists: a backup never overwrites a file. Choose another name.`);
    }
    throw storageProblem(err, path.dirname(out)) ?? new CliError(`Cannot write ${out}: ${(err as Error).message}`);
  });
  return { out, bytes: Buffer.byteLength(text), peer_id: ctx.peerId, user_ids: userIds };
}

/**
 * Makes a data directory from a backup: only into one with no home in it (no node key, no database) and no node
 * running. The node key must give the PeerId the backup names. Whatever fails, what this wrote is removed.
 */
export async function restoreDataDir(dir: string, file: string): Promise<RestoreResult> {
  const paths = dataDirPaths(dir);
  const pid = await runningPid(paths);
  if (pid !== undefined) throw new CliError(`A polyhome node (pid ${pid}) runs on ${paths.dir}: stop it first.`);
  for (const present of [paths.nodeKey, paths.db]) {
    if (
      await stat(present).then(
        () => true,
        () => false,
      )
    ) {
      throw new CliError(
        `${paths.dir} already holds a home (${path.basename(present)}): restore into an empty data directory, ` +
          `e.g. move this one away first (mv ${paths.dir} ${paths.dir}.old).`,
      );
    }
  }
  const backup = parseBackup(
    await readFile(file, 'utf8').catch((err: unknown) => {
      throw new CliError(`Cannot read ${file}: ${(err as Error).message}`);
    }),
    file,
  );
  await preparePrivate(paths);
  const written: string[] = [];
  try {
    for (const [name, content] of Object.entries(backup.files)) {
      const target = path.join(paths.dir, name);
      written.push(target);
      await writeFile(target, Buffer.from(content, 'base64'), { mode: 0o600, flag: 'wx' });
    }
    const nodeKey = await readNodeKeyFile(paths.nodeKey);
    if (peerIdFromPublicKey(nodeKey.publicKey) !== backup.peer_id) {
      throw new CliError(`${file} is damaged: its node key is not the one of PeerId ${backup.peer_id}.`);
    }
    written.push(paths.db);
    await restoreEmbeddedDatabase(paths.dir, Buffer.from(backup.db, 'base64'));
  } catch (err) {
    for (const target of written) await rm(target, { recursive: true, force: true });
    if (err instanceof CliError) throw err;
    throw (
      storageProblem(err, paths.dir) ??
      new CliError(`Cannot restore ${file}: ${(err as Error).message} (nothing kept).`)
    );
  }
  return { data_dir: paths.dir, peer_id: backup.peer_id, user_ids: backup.user_ids, created_at: backup.created_at };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

function parseBackup(text: string, file: string): DataDirBackup {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliError(`${file} is not a polyhome backup (not JSON).`);
  }
  const b = value as Partial<DataDirBackup> | null;
  if (b === null || typeof b !== 'object' || b.type !== BACKUP_TYPE) {
    throw new CliError(`${file} is not a polyhome backup (made by \`polyhome backup\`).`);
  }
  if (b.version !== 1)
    throw new CliError(`${file} is a backup of version ${String(b.version)}; this polyhome reads 1.`);
  const files = b.files;
  if (
    typeof b.peer_id !== 'string' ||
    typeof b.db !== 'string' ||
    files === null ||
    typeof files !== 'object' ||
    typeof files['node.key'] !== 'string' ||
    Object.keys(files).some((name) => !(KEPT_FILES as readonly string[]).includes(name))
  ) {
    throw new CliError(`${file} is damaged: it lacks the node key, the database or its PeerId.`);
  }
  return b as DataDirBackup;
}
