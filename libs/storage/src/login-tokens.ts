import { createHash, randomBytes } from 'node:crypto';
import { LessThan, type DataSource } from 'typeorm';
import { LoginTokenEntity } from './entities/index.js';

/** Prefix of login tokens, so a leaked string says what it is. */
const TOKEN_PREFIX = 'phl_';

function hashOf(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** What spending a login token found. */
export type LoginTokenUse = { ok: true; serverName: string } | { ok: false; reason: 'unknown' | 'expired' };

/**
 * Short-lived single-use `m.login.token`s (`login_token`): only their SHA-256 is stored. Shared by the server
 * (admin API) and the client-side home (`polyhome login-token`), on PostgreSQL and PGlite alike.
 */
export class SqlLoginTokens {
  constructor(private readonly dataSource: DataSource) {}

  /** Makes a token for a hosted account; drops expired tokens on the way, so no sweeper is needed. */
  async create(serverName: string, lifetimeMs: number): Promise<{ token: string; expiresAt: Date }> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const repo = this.dataSource.getRepository(LoginTokenEntity);
    await repo.delete({ expiresAt: LessThan(new Date()) });
    const expiresAt = new Date(Date.now() + lifetimeMs);
    await repo.insert({ tokenHash: hashOf(token), serverName, expiresAt });
    return { token, expiresAt };
  }

  /**
   * Spends a token. It is deleted whether valid or expired, in a transaction holding its row, so a token is
   * accepted at most once even by concurrent logins.
   */
  async consume(token: string): Promise<LoginTokenUse> {
    const found = await this.dataSource.transaction(async (manager) => {
      const repo = manager.getRepository(LoginTokenEntity);
      const row = await repo.findOne({ where: { tokenHash: hashOf(token) }, lock: { mode: 'pessimistic_write' } });
      if (row === null) return null;
      await repo.delete({ tokenHash: row.tokenHash });
      return row;
    });
    if (found === null) return { ok: false, reason: 'unknown' };
    if (found.expiresAt.getTime() <= Date.now()) return { ok: false, reason: 'expired' };
    return { ok: true, serverName: found.serverName };
  }
}
