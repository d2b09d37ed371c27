import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/** A secret read from, or just written to, a file in DATA_DIR. */
export interface SecretFile {
  value: string;
  /** True when the file was created now (first start). */
  created: boolean;
  file: string;
}

/**
 * Reads a one-line secret from `file`, creating it with `make()` at first start (exclusive create, mode
 * 0600, so two processes starting at once agree on one value). A file that group or others can read is
 * refused: it would hand the secret to any local user. `valid` checks what was read.
 */
export async function loadOrCreateSecretFile(
  file: string,
  make: () => string,
  valid: (value: string) => boolean,
  what: string,
): Promise<SecretFile> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    const handle = await open(file, 'wx', 0o600);
    const value = make();
    await handle.writeFile(`${value}\n`);
    await handle.close();
    await chmod(file, 0o600);
    return { value, created: true, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(`${file} is readable by others (mode ${mode.toString(8)}). Run: chmod 600 ${file}`);
  }
  const value = (await readFile(file, 'utf8')).trim();
  if (!valid(value))
    throw new Error(
      `${file} does not hold a valid ${what}. Restore it from a backup, or delete it to have a new one generated.`,
    );
  return { value, created: false, file };
}
