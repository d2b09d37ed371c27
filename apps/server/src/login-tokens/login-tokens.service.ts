import { Injectable } from '@nestjs/common';
import type { LoginTokenRepository } from '@polyhome/storage';
import { AccountsService } from '../accounts/accounts.service.js';
import { ApiError } from '../common/api-error.js';
import { InjectRepository } from '../storage/storage.module.js';
import type { LoginTokenDto } from './login-tokens.dto.js';

/** Lifetime of a login token: long enough to paste into a client, short enough that a leaked one is stale. */
export const LOGIN_TOKEN_LIFETIME_MS = 2 * 60 * 1000;

/** Short-lived single-use `m.login.token`s for Matrix clients. Only their SHA-256 is stored. */
@Injectable()
export class LoginTokensService {
  constructor(
    private readonly accounts: AccountsService,
    @InjectRepository('loginTokens') private readonly tokens: LoginTokenRepository,
  ) {}

  /** Makes a token for an account. Throws ApiError M_INVALID_PARAM (bad user ID) or M_NOT_FOUND. */
  async create(userId: string): Promise<LoginTokenDto> {
    const row = await this.accounts.rowByUserId(userId);
    const { token } = await this.tokens.create(row.serverName, LOGIN_TOKEN_LIFETIME_MS);
    return { login_token: token, expires_in_ms: LOGIN_TOKEN_LIFETIME_MS };
  }

  /**
   * Spends a token: returns the server name of its account. Deleted whether valid or expired, in a transaction
   * holding its row, so a token is accepted at most once even by concurrent logins. Throws ApiError M_FORBIDDEN
   * (unknown, used or expired), as Matrix's /login does for a bad token.
   */
  async consume(token: string): Promise<string> {
    const use = await this.tokens.consume(token);
    if (!use.ok) {
      throw new ApiError(
        'M_FORBIDDEN',
        use.reason === 'expired' ? 'The login token has expired.' : 'Invalid login token.',
      );
    }
    return use.serverName;
  }
}
