import { createHash, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import type { EnrollmentTokenRecord, EnrollmentTokenRepository, StorageTransaction } from '@polyhome/storage';
import { ApiError } from '../common/api-error.js';
import { decodeCursor, encodeCursor, type Page, type PageQueryDto } from '../common/pagination.js';
import { InjectRepository } from '../storage/storage.module.js';
import {
  DEFAULT_TOKEN_LIFETIME_S,
  type CreatedEnrollmentTokenDto,
  type CreateEnrollmentTokenDto,
  type EnrollmentTokenDto,
} from './enrollment-tokens.dto.js';

/** Prefix of enrollment tokens, so secret scanners and people can tell what a leaked string is. */
const TOKEN_PREFIX = 'phe_';

/** Hex SHA-256 of a token: what is stored and looked up. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Maps a row to its listed form. */
export function toEnrollmentTokenDto(row: EnrollmentTokenRecord): EnrollmentTokenDto {
  return {
    id: row.id,
    uses_left: row.usesLeft,
    expires_at: row.expiresAt?.toISOString() ?? null,
    created_at: row.createdAt.toISOString(),
  };
}

/** Enrollment tokens: made and listed by operators, spent by enrollments. Only hashes are stored. */
@Injectable()
export class EnrollmentTokensService {
  constructor(@InjectRepository('enrollmentTokens') private readonly tokens: EnrollmentTokenRepository) {}

  /** Makes a token; the answer is the only place the token itself appears. */
  async create(input: CreateEnrollmentTokenDto): Promise<CreatedEnrollmentTokenDto> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const uses = input.uses ?? 1;
    const expiresAt = new Date(Date.now() + (input.expires_in ?? DEFAULT_TOKEN_LIFETIME_S) * 1000);
    const id = randomBytes(8).toString('hex');
    await this.tokens.create({ tokenHash: tokenHash(token), id, usesLeft: uses, expiresAt });
    return { token, id, uses, expires_at: expiresAt.toISOString() };
  }

  /** Lists tokens by id (used-up and expired ones too, until deleted), one page after the cursor. */
  async list(query: PageQueryDto): Promise<Page<EnrollmentTokenDto>> {
    const rows = await this.tokens.page({
      after: query.from === undefined ? undefined : decodeCursor(query.from),
      limit: query.limit + 1,
    });
    const chunk = rows.slice(0, query.limit).map(toEnrollmentTokenDto);
    const last = chunk.at(-1);
    return rows.length > query.limit && last ? { chunk, next_from: encodeCursor(last.id) } : { chunk };
  }

  /** Deletes a token by its public id. Throws ApiError M_NOT_FOUND. */
  async remove(id: string): Promise<void> {
    if (!(await this.tokens.removeById(id))) throw new ApiError('M_NOT_FOUND', `No enrollment token with id ${id}.`);
  }

  /**
   * Checks, without spending it, that a token can be used now; throws ApiError M_FORBIDDEN saying why not.
   * Called before any other work, so a caller without a valid token learns nothing about the account.
   */
  async assertUsable(token: string, tx?: StorageTransaction): Promise<void> {
    const row = await this.tokens.findByHash(tokenHash(token), tx);
    if (row === undefined) throw new ApiError('M_FORBIDDEN', 'Unknown enrollment token.');
    if (row.expiresAt !== null && row.expiresAt.getTime() <= Date.now()) {
      throw new ApiError('M_FORBIDDEN', `The enrollment token expired at ${row.expiresAt.toISOString()}.`);
    }
    if (row.usesLeft <= 0) throw new ApiError('M_FORBIDDEN', 'The enrollment token has been used up.');
  }

  /**
   * Spends one use of a token within the caller's transaction. One conditional UPDATE, so two enrollments
   * racing for the last use cannot both win; the loser gets ApiError M_FORBIDDEN and its transaction rolls back.
   */
  async consumeIn(tx: StorageTransaction, token: string): Promise<void> {
    if (await this.tokens.spend(tokenHash(token), new Date(), tx)) return;
    await this.assertUsable(token, tx);
    throw new ApiError('M_FORBIDDEN', 'The enrollment token is no longer valid.');
  }
}
