import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { loadOrCreateSecretFile } from '../secrets/secret-file.js';

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
  const secret = await loadOrCreateSecretFile(
    adminTokenPath(dataDir),
    () => randomBytes(32).toString('base64url'),
    (token) => token.length >= 16,
    'admin token',
  );
  return {
    verifier: new AdminTokenVerifier(secret.value),
    source: secret.created ? 'generated' : 'file',
    file: secret.file,
  };
}
