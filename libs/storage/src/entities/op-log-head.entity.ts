import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * Per account and origin: the highest gapless seq held (the version vector entry) and the XOR of the
 * content hashes of the ops holding its slots (the log digest sessions compare to find split equivocation).
 * Kept in the same transaction as `op`, so reading a vector or digests never scans the log.
 */
@Entity({ name: 'op_log_head' })
export class OpLogHeadEntity {
  @PrimaryColumn({ type: 'char', length: 64 })
  account!: string;

  @PrimaryColumn({ type: 'varchar', length: 128 })
  origin!: string;

  @Column({ type: 'bigint' })
  seq!: string;

  /** 32 bytes: XOR of the SHA-256 content hashes of the ops in slots 1..seq. */
  @Column({ type: 'bytea' })
  digest!: Buffer;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'account',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'op_log_head_account_fk',
  })
  accountRow?: Relation<AccountEntity>;
}
