import { createHash, randomBytes } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { EnrollmentTokenEntity } from '@polyhome/storage';
import type { EntityManager } from 'typeorm';
import { ApiError } from '../common/api-error.js';
import { decodeCursor, encodeCursor, type Page, type PageQueryDto } from '../common/pagination.js';
import { StorageService } from '../storage/storage.service.js';
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
export function toEnrollmentTokenDto(row: EnrollmentTokenEntity): EnrollmentTokenDto {
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
  constructor(private readonly storage: StorageService) {}

  /** Makes a token; the answer is the only place the token itself appears. */
  async create(input: CreateEnrollmentTokenDto): Promise<CreatedEnrollmentTokenDto> {
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const uses = input.uses ?? 1;
    const expiresAt = new Date(Date.now() + (input.expires_in ?? DEFAULT_TOKEN_LIFETIME_S) * 1000);
    const id = randomBytes(8).toString('hex');
    await this.tokens().insert({ tokenHash: tokenHash(token), id, usesLeft: uses, expiresAt });
    return { token, id, uses, expires_at: expiresAt.toISOString() };
  }

  /** Lists tokens by id (used-up and expired ones too, until deleted), one page after the cursor. */
  async list(query: PageQueryDto): Promise<Page<EnrollmentTokenDto>> {
    const qb = this.tokens()
      .createQueryBuilder('t')
      .orderBy('t.id', 'ASC')
      .take(query.limit + 1);
    if (query.from !== undefined) qb.where('t.id > :from', { from: decodeCursor(query.from) });
    const rows = await qb.getMany();
    const chunk = rows.slice(0, query.limit).map(toEnrollmentTokenDto);
    const last = chunk.at(-1);
    return rows.length > query.limit && last ? { chunk, next_from: encodeCursor(last.id) } : { chunk };
  }

  /** Deletes a token by its public id. Throws ApiError M_NOT_FOUND. */
  async remove(id: string): Promise<void> {
    const result = await this.tokens().delete({ id });
    if (!result.affected) throw new ApiError('M_NOT_FOUND', `No enrollment token with id ${id}.`);
  }

  /**
   * Checks, without spending it, that a token can be used now; throws ApiError M_FORBIDDEN saying why not.
   * Called before any other work, so a caller without a valid token learns nothing about the account.
   */
  async assertUsable(token: string, manager: EntityManager = this.storage.dataSource.manager): Promise<void> {
    const row = await manager.getRepository(EnrollmentTokenEntity).findOneBy({ tokenHash: tokenHash(token) });
    if (row === null) throw new ApiError('M_FORBIDDEN', 'Unknown enrollment token.');
    if (row.expiresAt !== null && row.expiresAt.getTime() <= Date.now()) {
      throw new ApiError('M_FORBIDDEN', `The enrollment token expired at ${row.expiresAt.toISOString()}.`);
    }
    if (row.usesLeft <= 0) throw new ApiError('M_FORBIDDEN', 'The enrollment token has been used up.');
  }

  /**
   * Spends one use of a token within the caller's transaction. One conditional UPDATE, so two enrollments
   * racing for the last use cannot both win; the loser gets ApiError M_FORBIDDEN and its transaction rolls back.
   */
  async consumeIn(manager: EntityManager, token: string): Promise<void> {
    const result = await manager
      .createQueryBuilder()
      .update(EnrollmentTokenEntity)
      .set({ usesLeft: () => 'uses_left - 1' })
      .where('token_hash = :hash AND uses_left > 0 AND (expires_at IS NULL OR expires_at > :now)', {
        hash: tokenHash(token),
        now: new Date(),
      })
      .execute();
    if (result.affected === 1) return;
    await this.assertUsable(token, manager);
    throw new ApiError('M_FORBIDDEN', 'The enrollment token is no longer valid.');
  }

  private tokens() {
    return this.storage.dataSource.getRepository(EnrollmentTokenEntity);
  }
}
