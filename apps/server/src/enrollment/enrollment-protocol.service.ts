import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { AccountDocument } from '@polyhome/identity';
import {
  createEnrollmentServer,
  enrollOverLibp2p,
  EnrollmentProtocolError,
  EnrollmentRefusedError,
  type EnrollErrorResponse,
  type EnrollmentServer,
  type EnrollResponse,
} from '@polyhome/p2p';
import { plainToInstance } from 'class-transformer';
import { validate } from 'class-validator';
import type { Logger } from 'pino';
import { AccountsService } from '../accounts/accounts.service.js';
import { ApiError, statusOf, type Errcode } from '../common/api-error.js';
import { findDroppedKey } from '../common/validation.pipe.js';
import { PINO_LOGGER } from '../logging/logger.js';
import { P2pService } from '../p2p/p2p.service.js';
import { EnrollDto } from './enrollment.dto.js';
import { EnrollmentService } from './enrollment.service.js';

/**
 * Serves /polyhome/enroll/1.0.0 on the server's libp2p node (the protocol is @polyhome/p2p's; this supplies the
 * domain: validation, token and policy, hosting), and enrolls remote servers for the admin "add a home" route
 * (AccountsService.enroller).
 */
@Injectable()
export class EnrollmentProtocolService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private server: EnrollmentServer | undefined;

  constructor(
    private readonly enrollment: EnrollmentService,
    private readonly accounts: AccountsService,
    private readonly p2p: P2pService,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const server = createEnrollmentServer(this.p2p.host, {
      redeem: async (request, from) => this.redeem(request, from),
      logger: this.logger.child({ component: 'p2p' }),
    });
    await server.start();
    this.server = server;
    this.accounts.enroller = (multiaddr, document, token) => this.enrollRemote(multiaddr, document, token);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.accounts.enroller = undefined;
    // The node may already be stopping (P2pService shuts down in the same phase); stop() allows for that.
    await this.server?.stop();
    this.server = undefined;
  }

  /**
   * Enrolls the server at `multiaddr` as a home of an account whose new document names it. A server that
   * already hosts the account counts as enrolled (it takes the new document through sync). Throws ApiError:
   * the remote's own errcode when it refuses, M_UNAVAILABLE when it cannot be reached.
   */
  async enrollRemote(multiaddr: string, document: AccountDocument, token: string | undefined): Promise<void> {
    try {
      await enrollOverLibp2p(this.p2p.host, multiaddr, token === undefined ? { document } : { document, token });
    } catch (err) {
      if (err instanceof EnrollmentRefusedError) {
        if (err.errcode === 'M_USER_IN_USE') return;
        throw new ApiError(
          knownErrcode(err.errcode),
          `The server at ${multiaddr} refused the enrollment: ${err.error}`,
        );
      }
      const reason = err instanceof EnrollmentProtocolError ? err.message : (err as Error).message;
      throw new ApiError('M_UNAVAILABLE', `Could not enroll the server at ${multiaddr}: ${reason}`);
    }
  }

  // The domain side of one libp2p enrollment request; the handler in @polyhome/p2p answers a throw M_UNKNOWN.
  private async redeem(body: Record<string, unknown>, from: string): Promise<EnrollResponse | EnrollErrorResponse> {
    try {
      // The HTTP route's rules, so both transports accept exactly the same requests. class-transformer would
      // drop these keys silently (and so alter the signed document), as Nest's pipe would over HTTP.
      const dropped = findDroppedKey(body);
      if (dropped !== undefined) throw new ApiError('M_BAD_JSON', `property ${dropped} should not exist`);
      const dto = plainToInstance(EnrollDto, body);
      const problems = await validate(dto, { whitelist: true, forbidNonWhitelisted: true });
      if (problems.length > 0) {
        const text = problems.flatMap((p) => Object.values(p.constraints ?? {})).join('; ');
        throw new ApiError('M_BAD_JSON', text || 'Malformed enrollment request.');
      }
      const result = await this.enrollment.enroll(dto, from);
      this.logger.info({ user_id: result.user_id, from }, 'enrolled over libp2p');
      return result;
    } catch (err) {
      if (err instanceof ApiError) return { errcode: err.errcode, error: err.message };
      throw err;
    }
  }
}

function knownErrcode(errcode: string): Errcode {
  try {
    statusOf(errcode as Errcode);
    return errcode as Errcode;
  } catch {
    return 'M_UNKNOWN';
  }
}
