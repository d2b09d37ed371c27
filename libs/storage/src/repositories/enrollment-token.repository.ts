import type { DataSource } from 'typeorm';
import { EnrollmentTokenEntity } from '../entities/enrollment-token.entity.js';
import { managerOf, type StorageTransaction } from './transaction.js';

/** An enrollment token as stored: its hash, never the token. */
export interface EnrollmentTokenRecord {
  /** Hex SHA-256 of the token. */
  tokenHash: string;
  /** Public id operators list and delete by. */
  id: string;
  usesLeft: number;
  expiresAt: Date | null;
  createdAt: Date;
}

/** Enrollment tokens (`enrollment_token`). */
export interface EnrollmentTokenRepository {
  /** Stores a new token by its hash. */
  create(token: { tokenHash: string; id: string; usesLeft: number; expiresAt: Date | null }): Promise<void>;
  /** Tokens in id order after `after`, at most `limit`. */
  page(page: { after?: string | undefined; limit: number }): Promise<EnrollmentTokenRecord[]>;
  /** The token with this hash, read within `tx` when given. */
  findByHash(tokenHash: string, tx?: StorageTransaction): Promise<EnrollmentTokenRecord | undefined>;
  /**
   * Spends one use within `tx`: one conditional UPDATE (uses left, not expired at `now`), so two spenders
   * racing for the last use cannot both win. True when a use was spent.
   */
  spend(tokenHash: string, now: Date, tx: StorageTransaction): Promise<boolean>;
  /** Deletes a token by its public id. True when there was one. */
  removeById(id: string): Promise<boolean>;
}

/** EnrollmentTokenRepository on TypeORM (PostgreSQL and PGlite). */
export class SqlEnrollmentTokenRepository implements EnrollmentTokenRepository {
  constructor(private readonly dataSource: DataSource) {}

  async create(token: { tokenHash: string; id: string; usesLeft: number; expiresAt: Date | null }): Promise<void> {
    await this.repo().insert(token);
  }

  async page(page: { after?: string | undefined; limit: number }): Promise<EnrollmentTokenRecord[]> {
    const qb = this.repo().createQueryBuilder('t').orderBy('t.id', 'ASC').take(page.limit);
    if (page.after !== undefined) qb.where('t.id > :after', { after: page.after });
    return qb.getMany();
  }

  async findByHash(tokenHash: string, tx?: StorageTransaction): Promise<EnrollmentTokenRecord | undefined> {
    const manager = tx === undefined ? this.dataSource.manager : managerOf(tx);
    return (await manager.getRepository(EnrollmentTokenEntity).findOneBy({ tokenHash })) ?? undefined;
  }

  async spend(tokenHash: string, now: Date, tx: StorageTransaction): Promise<boolean> {
    const result = await managerOf(tx)
      .createQueryBuilder()
      .update(EnrollmentTokenEntity)
      .set({ usesLeft: () => 'uses_left - 1' })
      .where('token_hash = :hash AND uses_left > 0 AND (expires_at IS NULL OR expires_at > :now)', {
        hash: tokenHash,
        now,
      })
      .execute();
    return result.affected === 1;
  }

  async removeById(id: string): Promise<boolean> {
    const result = await this.repo().delete({ id });
    return (result.affected ?? 0) > 0;
  }

  private repo() {
    return this.dataSource.getRepository(EnrollmentTokenEntity);
  }
}
