import { open, readFile, rm } from 'node:fs/promises';
import { StorageError } from './errors.js';

/** A held lock on a data directory; `release()` removes it. */
export interface DataDirLock {
  readonly path: string;
  release(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes an exclusive lock on an embedded database directory. Two processes writing one PGlite directory
 * corrupt it, so a second opener is refused; a lock left by a process that no longer runs is taken over.
 */
export async function lockDataDir(lockPath: string): Promise<DataDirLock> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return {
        path: lockPath,
        release: async () => {
          await rm(lockPath, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number.parseInt((await readFile(lockPath, 'utf8').catch(() => '')).trim(), 10);
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new StorageError(
          'DATA_DIR_LOCKED',
          `The data directory is in use by process ${pid} (lock ${lockPath}). Stop that process, or use another DATA_DIR.`,
        );
      }
      if (pid === process.pid) {
        throw new StorageError(
          'DATA_DIR_LOCKED',
          `The data directory is already open in this process (lock ${lockPath}). Close the other DataSource first.`,
        );
      }
      await rm(lockPath, { force: true });
    }
  }
  throw new StorageError('DATA_DIR_LOCKED', `Could not lock ${lockPath}. Remove it if no polyhome process is running.`);
}
