// The node key file: a home's libp2p Ed25519 seed, 32 raw bytes, mode 0600. Created atomically
// (written to a temporary file, then hard-linked into place, which fails rather than overwrite if
// another process won the race) and re-read on every start, so a home's PeerId is stable.
// Node-only: fs and path come through nodeFileSystem(), which throws outside Node.
import { KeyFileInvalidError, KeyFilePermissionsError } from '../errors.js';
import { SEED_LENGTH, SecretKey, secretBytes } from '../secret-key.js';
import { nodeFileSystem } from './builtins.js';

/** File mode of a node key file: owner read and write only. */
export const KEY_FILE_MODE = 0o600;

/**
 * Reads a node key file. Throws KeyFilePermissionsError when group or others have any access,
 * KeyFileInvalidError when it is not a regular file of exactly 32 bytes, and the fs error (ENOENT) when missing.
 */
export async function readNodeKeyFile(path: string): Promise<SecretKey> {
  const { fs } = nodeFileSystem();
  const handle = await fs.promises.open(path, fs.constants.O_RDONLY);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new KeyFileInvalidError(path, 'not a regular file');
    // Windows has no POSIX modes: its ACLs are the operator's job there.
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) throw new KeyFilePermissionsError(path, stat.mode);
    if (stat.size !== SEED_LENGTH) {
      throw new KeyFileInvalidError(path, `expected ${SEED_LENGTH} bytes, found ${stat.size}`);
    }
    const seed = new Uint8Array(SEED_LENGTH);
    const { bytesRead } = await handle.read(seed, 0, SEED_LENGTH, 0);
    try {
      if (bytesRead !== SEED_LENGTH) throw new KeyFileInvalidError(path, `short read of ${bytesRead} bytes`);
      return SecretKey.fromSeed(seed);
    } finally {
      seed.fill(0);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Writes a new node key file atomically with mode 0600 (creating the parent directory with 0700).
 * Never overwrites: returns false, leaving the existing file alone, if the path already exists.
 */
export async function writeNodeKeyFile(path: string, secretKey: SecretKey): Promise<boolean> {
  const { fs, path: paths } = nodeFileSystem();
  const dir = paths.dirname(path);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const random = Array.from(globalThis.crypto.getRandomValues(new Uint8Array(6)), (b) =>
    b.toString(16).padStart(2, '0'),
  );
  const temporary = `${path}.${random.join('')}.tmp`;
  const handle = await fs.promises.open(temporary, 'wx', KEY_FILE_MODE);
  try {
    // The umask can only clear bits, but set the mode explicitly so it is exactly 0600.
    await handle.chmod(KEY_FILE_MODE);
    await handle.writeFile(secretBytes(secretKey));
    await handle.sync();
  } catch (error) {
    await handle.close();
    await fs.promises.rm(temporary, { force: true });
    throw error;
  }
  await handle.close();
  try {
    await fs.promises.link(temporary, path);
  } catch (error) {
    if ((error as { code?: string }).code === 'EEXIST') return false;
    throw error;
  } finally {
    await fs.promises.rm(temporary, { force: true });
  }
  await syncDirectory(dir);
  return true;
}

/**
 * Returns the node key stored at `path`, creating it (random, mode 0600) on first start. If two
 * processes start at once, both end up with the key of whichever created the file first.
 */
export async function loadOrCreateNodeKey(path: string): Promise<{ secretKey: SecretKey; created: boolean }> {
  try {
    return { secretKey: await readNodeKeyFile(path), created: false };
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOENT') throw error;
  }
  const fresh = SecretKey.generate();
  const created = await writeNodeKeyFile(path, fresh);
  if (created) return { secretKey: fresh, created: true };
  fresh.destroy();
  return { secretKey: await readNodeKeyFile(path), created: false };
}

// Makes the new directory entry durable; some platforms cannot open a directory, which is harmless.
async function syncDirectory(dir: string): Promise<void> {
  const { fs } = nodeFileSystem();
  let handle: Awaited<ReturnType<typeof fs.promises.open>> | undefined;
  try {
    handle = await fs.promises.open(dir, fs.constants.O_RDONLY);
    await handle.sync();
  } catch {
    // Best effort: the file itself was fsynced before it was linked.
  } finally {
    await handle?.close();
  }
}
