import { createHash, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { LoginTokenEntity } from '@polyhome/storage';
import { LessThan } from 'typeorm';
import { AccountsService } from '../accounts/accounts.service.js';
import { ApiError } from '../common/api-error.js';
import { StorageService } from '../storage/storage.service.js';
import type { LoginTokenDto } from './login-tokens.dto.js';

/** Lifetime of a login token: long enough to paste into a client, short enough that a leaked one is stale. */
export const LOGIN_TOKEN_LIFETIME_MS = 2 * 60 * 1000;

/** Prefix of login tokens, so a leaked string says what it is. */
const TOKEN_PREFIX = 'phl_';

function hashOf(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Short-lived single-use `m.login.token`s for Matrix clients. Only their SHA-256 is stored. */
@Injectable()
export class LoginTokensService {
  constructor(
    private readonly accounts: AccountsService,
    private readonly storage: StorageService,
  ) {}

  /** Makes a token for an account. Throws ApiError M_INVALID_PARAM (bad user ID) or M_NOT_FOUND. */
  async create(userId: string): Promise<LoginTokenDto> {
    const row = await this.accounts.rowByUserId(userId);
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const repo = this.storage.dataSource.getRepository(LoginTokenEntity);
    // Expired tokens are useless; drop them here so the table stays small without a sweeper job.
    await repo.delete({ expiresAt: LessThan(new Date()) });
    await repo.insert({
      tokenHash: hashOf(token),
      serverName: row.serverName,
      expiresAt: new Date(Date.now() + LOGIN_TOKEN_LIFETIME_MS),
    });
    return { login_token: token, expires_in_ms: LOGIN_TOKEN_LIFETIME_MS };
  }

  /**
   * Spends a token: returns the server name of its account. Deleted whether valid or expired, in a transaction
   * holding its row, so a token is accepted at most once even by concurrent logins. Throws ApiError M_FORBIDDEN
   * (unknown, used or expired), as Matrix's /login does for a bad token.
   */
  async consume(token: string): Promise<string> {
    const found = await this.storage.dataSource.transaction(async (manager) => {
      const repo = manager.getRepository(LoginTokenEntity);
      const row = await repo.findOne({ where: { tokenHash: hashOf(token) }, lock: { mode: 'pessimistic_write' } });
      if (row === null) return null;
      await repo.delete({ tokenHash: row.tokenHash });
      return row;
    });
    if (found === null) throw new ApiError('M_FORBIDDEN', 'Invalid login token.');
    if (found.expiresAt.getTime() <= Date.now()) throw new ApiError('M_FORBIDDEN', 'The login token has expired.');
    return found.serverName;
  }
}
