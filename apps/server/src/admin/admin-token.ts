import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

/** Where the generated admin token is kept. */
export function adminTokenPath(dataDir: string): string {
  return path.resolve(dataDir, 'admin-token');
}

/** The result of resolving the admin token at boot. */
export interface ResolvedAdminToken {
  /** The token, held only to compare against. */
  readonly verifier: AdminTokenVerifier;
  /** Where it came from: the environment, a file created now, or a file from an earlier start. */
  readonly source: 'env' | 'generated' | 'file';
  readonly file?: string;
}

/** Compares presented tokens with the admin token in constant time; never reveals the token. */
export class AdminTokenVerifier {
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = createHash('sha256').update(token).digest();
  }

  /** True when `presented` is the admin token. */
  matches(presented: string): boolean {
    const digest = createHash('sha256').update(presented).digest();
    return timingSafeEqual(digest, this.#digest);
  }

  toString(): string {
    return '[AdminTokenVerifier]';
  }

  toJSON(): string {
    return this.toString();
  }
}

/**
 * Uses ADMIN_TOKEN when set; otherwise reads DATA_DIR/admin-token, creating it (mode 0600, exclusive create)
 * at first start. A token file others can read is refused: it would let any local user administer the server.
 */
export async function resolveAdminToken(configured: string | undefined, dataDir: string): Promise<ResolvedAdminToken> {
  if (configured) return { verifier: new AdminTokenVerifier(configured), source: 'env' };
  const file = adminTokenPath(dataDir);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    const handle = await open(file, 'wx', 0o600);
    const token = randomBytes(32).toString('base64url');
    await handle.writeFile(`${token}\n`);
    await handle.close();
    await chmod(file, 0o600);
    return { verifier: new AdminTokenVerifier(token), source: 'generated', file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(`${file} is readable by others (mode ${mode.toString(8)}). Run: chmod 600 ${file}`);
  }
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length < 16)
    throw new Error(`${file} does not hold a valid admin token. Delete it to have a new one generated.`);
  return { verifier: new AdminTokenVerifier(token), source: 'file', file };
}
