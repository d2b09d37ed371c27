import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Connection, Stream } from '@libp2p/interface';
import { lpStream } from '@libp2p/utils';
import type { AccountDocument } from '@polyhome/identity';
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
import {
  closeQuietly,
  decodeEnrollFrame,
  encodeEnrollFrame,
  enrollOverLibp2p,
  ENROLL_MAX_FRAME_BYTES,
  ENROLL_MAX_INBOUND_STREAMS,
  ENROLL_MAX_OUTBOUND_STREAMS,
  ENROLL_PROTOCOL,
  ENROLL_TIMEOUT_MS,
  type EnrollErrorResponse,
  type EnrollResponse,
} from './enrollment-protocol.js';
import { EnrollmentProtocolError, EnrollmentRefusedError } from './errors.js';

/**
 * Serves /polyhome/enroll/1.0.0 on the server's libp2p node, and enrolls remote servers for the admin
 * "add a home" route (AccountsService.enroller).
 */
@Injectable()
export class EnrollmentProtocolService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private registered = false;

  constructor(
    private readonly enrollment: EnrollmentService,
    private readonly accounts: AccountsService,
    private readonly p2p: P2pService,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.p2p.host.handle(
      ENROLL_PROTOCOL,
      (stream, connection) => {
        this.serve(stream, connection).catch((err: unknown) => {
          stream.abort(err instanceof Error ? err : new Error(String(err)));
        });
      },
      { maxInboundStreams: ENROLL_MAX_INBOUND_STREAMS, maxOutboundStreams: ENROLL_MAX_OUTBOUND_STREAMS },
    );
    this.registered = true;
    this.accounts.enroller = (multiaddr, document, token) => this.enrollRemote(multiaddr, document, token);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.accounts.enroller = undefined;
    if (!this.registered) return;
    this.registered = false;
    // The node may already be stopping (P2pService shuts down in the same phase); nothing to unregister then.
    await this.p2p.host.unhandle(ENROLL_PROTOCOL).catch(() => undefined);
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

  // One request, one answer, then close; every wait is bounded.
  private async serve(stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: ENROLL_MAX_FRAME_BYTES });
    let answer: EnrollResponse | EnrollErrorResponse;
    try {
      const frame = await lp.read({ signal: AbortSignal.timeout(ENROLL_TIMEOUT_MS) });
      answer = await this.answer(frame.subarray(), connection.remotePeer.toString());
    } catch (err) {
      if (!isTooLarge(err)) {
        stream.abort(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      answer = { errcode: 'M_TOO_LARGE', error: `The request is larger than ${ENROLL_MAX_FRAME_BYTES} bytes.` };
    }
    await lp.write(encodeEnrollFrame(answer), { signal: AbortSignal.timeout(ENROLL_TIMEOUT_MS) });
    await closeQuietly(stream);
  }

  private async answer(bytes: Uint8Array, from: string): Promise<EnrollResponse | EnrollErrorResponse> {
    try {
      let body: Record<string, unknown>;
      try {
        body = decodeEnrollFrame(bytes);
      } catch (err) {
        throw new ApiError('M_NOT_JSON', (err as Error).message);
      }
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
      this.logger.error({ err: (err as Error).message, from }, 'enrollment over libp2p failed');
      return { errcode: 'M_UNKNOWN', error: 'Internal error.' };
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

function isTooLarge(err: unknown): boolean {
  return err instanceof Error && (err.name === 'InvalidDataLengthError' || err.name === 'InvalidDataLengthLengthError');
}
