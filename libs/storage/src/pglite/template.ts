// A new embedded database starts as a copy of a ready-made one: PGlite's initdb and the migrations take
// seconds (most of `polyhome init`), copying the result of both takes a fraction of one. The template is an
// empty, fully migrated PGlite directory, made once per build (by `npm run build`, or by the first open that
// finds none) and kept next to the build in `libs/storage/dist/.pglite-template/<key>`. Its key hashes the
// PGlite version and every migration's name and code, so a template made before a migration changed is
// never used: a new one is made under the new key. A copy is migrated on open like any database, so even
// a template that somehow lags behind comes out current.
import { createHash } from 'node:crypto';
import { constants, cpSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MIGRATIONS } from '@polyhome/migrations';

/** Where templates are kept: `dist/.pglite-template` of this package (from src/ and dist/ alike). */
export function templateRoot(): string {
  const packageDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
  return path.join(packageDir, 'dist', '.pglite-template');
}

let cachedKey: string | undefined;

/** The template's key: PGlite's version and each migration's name and code (its `up`). */
export async function templateKey(): Promise<string> {
  if (cachedKey !== undefined) return cachedKey;
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@electric-sql/pglite');
  // The entry is <package>/dist/index.*; its package.json names the version.
  const manifest = JSON.parse(await readFile(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as {
    version?: string;
  };
  const hash = createHash('sha256').update(`pglite ${manifest.version ?? 'unknown'}\n`);
  for (const migration of MIGRATIONS) {
    hash.update(`${migration.name}\n${String(migration.prototype.up)}\n`);
  }
  cachedKey = hash.digest('hex').slice(0, 16);
  return cachedKey;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/**
 * The template directory for the current key, made with `make` when missing. `make(dataDir)` must leave a
 * closed, migrated PGlite database in `<dataDir>/db`. Two processes making one at the same moment each make
 * their own and the first rename wins. Throws when the template cannot be made or kept (a read-only install).
 */
export async function ensureTemplate(
  make: (dataDir: string) => Promise<void>,
  onProgress?: (message: string) => void,
): Promise<string> {
  const root = templateRoot();
  const target = path.join(root, await templateKey());
  if (await exists(path.join(target, 'PG_VERSION'))) return target;
  onProgress?.('Preparing the empty database template (once per build)');
  await mkdir(root, { recursive: true, mode: 0o700 });
  const work = await mkdtemp(path.join(root, '.make-'));
  try {
    await make(work);
    await rename(path.join(work, 'db'), target).catch(async (err: unknown) => {
      // Another process made it first: theirs is as good.
      if (!(await exists(path.join(target, 'PG_VERSION')))) throw err;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return target;
}

/**
 * Copies the template into `dbDir` (which must not exist): into a sibling first, renamed when complete, so an
 * interrupted copy never looks like a database. Copy-on-write where the filesystem offers it.
 *
 * Synchronous: Node's `cpSync` copies the tree in native code, about 0.2 s for the template's 1,200 files
 * and 40 MB, where the promise `cp` walks it in JavaScript with a thread-pool round trip per lstat,
 * copyFile and chmod (0.7 s idle, 3 s on a loaded machine). It runs once per new database, before it opens.
 */
export async function copyTemplate(template: string, dbDir: string): Promise<void> {
  const partial = `${dbDir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  try {
    cpSync(template, partial, { recursive: true, mode: constants.COPYFILE_FICLONE });
    await rename(partial, dbDir);
  } catch (err) {
    await rm(partial, { recursive: true, force: true });
    throw err;
  }
}
