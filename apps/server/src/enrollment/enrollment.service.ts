import { Inject, Injectable } from '@nestjs/common';
import { parseUserId } from '@polyhome/identity';
import type { EnrollRequest, EnrollResponse } from '@polyhome/p2p';
import type { StorageTransaction } from '@polyhome/storage';
import type { Logger } from 'pino';
import { AccountsService } from '../accounts/accounts.service.js';
import { ApiError } from '../common/api-error.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { PINO_LOGGER } from '../logging/logger.js';
import { P2pService } from '../p2p/p2p.service.js';
import { EnrollmentTokensService } from './enrollment-tokens.service.js';

/**
 * Enrollment: a user who holds an account's key makes this server a home of it (co-hosting) by sending the
 * signed account document that names this server. The same service answers HTTP and libp2p.
 */
@Injectable()
export class EnrollmentService {
  constructor(
    private readonly accounts: AccountsService,
    private readonly tokens: EnrollmentTokensService,
    private readonly p2p: P2pService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Enrolls (see `#enroll`); a refusal is logged as one warn line with its reason, how it came and from whom,
   * so an operator sees who is trying and why they fail.
   */
  async enroll(request: EnrollRequest, from: string | null): Promise<EnrollResponse> {
    try {
      return await this.#enroll(request, from);
    } catch (err) {
      if (err instanceof ApiError) {
        const userId = (request.document as { user_id?: unknown } | null)?.user_id;
        this.logger.warn(
          {
            errcode: err.errcode,
            via: from === null ? 'http' : 'libp2p',
            ...(from === null ? {} : { peer_id: from }),
            ...(typeof userId === 'string' ? { user_id: userId.slice(0, 255) } : {}),
          },
          `enrollment refused: ${err.message}`,
        );
      }
      throw err;
    }
  }

  /**
   * Checks the policy (and the token before anything else), then verifies and hosts the account, spending
   * one token use in the same transaction: a refused enrollment leaves no account row and spends nothing.
   * `from` is the PeerId that asked over libp2p, null over HTTP. Throws ApiError.
   */
  async #enroll(request: EnrollRequest, from: string | null): Promise<EnrollResponse> {
    const token = request.token;
    let alongside: ((tx: StorageTransaction) => Promise<void>) | undefined;
    switch (this.config.enrollmentPolicy) {
      case 'closed':
        throw new ApiError('M_FORBIDDEN', 'This server does not accept enrollments (ENROLLMENT_POLICY=closed).');
      case 'token':
        if (token === undefined) {
          throw new ApiError('M_FORBIDDEN', 'This server enrolls only with an enrollment token from its operator.');
        }
        await this.tokens.assertUsable(token);
        alongside = (tx) => this.tokens.consumeIn(tx, token);
        break;
      case 'open':
        // A token given anyway is neither needed nor spent.
        break;
    }
    const serverName = await this.accounts.hostCoHosted(request.document, from, alongside);
    // hostCoHosted verified the document, so its user_id is well formed and belongs to serverName.
    const userId = (request.document as { user_id: string }).user_id;
    if (parseUserId(userId).serverName !== serverName) throw new Error('enrolled account does not match its document');
    return { user_id: userId, peer_id: this.p2p.peerId, addrs: [...this.accounts.selfHome().addrs] };
  }
}
