import { Injectable } from '@nestjs/common';
import type { HomeAccounts } from '@polyhome/home';
import { MatrixError } from '@polyhome/matrix/errors';
import type { AccountRepository } from '@polyhome/storage';
import { AccountsService } from '../accounts/accounts.service.js';
import { ApiError, RateLimitedError } from '../common/api-error.js';
import { LoginTokensService } from '../login-tokens/login-tokens.service.js';
import { InjectRepository } from '../storage/storage.module.js';

/**
 * The server's side of the Matrix home port: its accounts have password hashes and login tokens. The port
 * itself is the Home's (`home.matrixPort(...)`), the same on every home.
 */
@Injectable()
export class ServerHomeAccounts implements HomeAccounts {
  constructor(
    private readonly accounts: AccountsService,
    private readonly loginTokens: LoginTokensService,
    @InjectRepository('accounts') private readonly rows: AccountRepository,
  ) {}

  async checkPassword(userId: string, password: string): Promise<string | null> {
    try {
      return (await this.accounts.checkPassword(userId, password)).serverName;
    } catch (err) {
      // The user ID waits out its backoff: Matrix's 429 with how long (login and user-interactive auth alike).
      if (err instanceof RateLimitedError) {
        throw new MatrixError('M_LIMIT_EXCEEDED', err.message, 429, { retry_after_ms: err.retryAfterMs });
      }
      if (err instanceof ApiError) return null;
      throw err;
    }
  }

  async consumeLoginToken(token: string): Promise<string | null> {
    try {
      return await this.loginTokens.consume(token);
    } catch (err) {
      if (err instanceof ApiError) return null;
      throw err;
    }
  }

  async userIdsWithLocalpart(localpart: string): Promise<string[]> {
    return (await this.rows.withLocalpart(localpart)).filter((r) => r.status === 'active').map((r) => r.userId);
  }

  /** Hosted accounts have passwords (set here, or replicated from another home). */
  passwordLogin(): Promise<boolean> {
    return Promise.resolve(true);
  }

  async userIdOf(serverName: string): Promise<string | null> {
    const row = await this.rows.findByServerName(serverName);
    return row === undefined || row.status !== 'active' ? null : row.userId;
  }

  bindCrossSigningMaster(serverName: string, master: string): Promise<void> {
    return this.accounts.bindCrossSigningMaster(serverName, master);
  }
}
