import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * Per account, lazy namespace and group of its keys (the registry's `summaryGroup`: a key backup version), how many
 * live rows `account_state` holds and the XOR of their hashes (SHA-256 of canonical JSON `[key, value]`): what
 * answers `count` and `etag` without reading the rows. Kept in the same transaction as `account_state`; a group
 * without a row here is computed from `account_state` when first written or read.
 */
@Entity({ name: 'account_state_summary' })
export class AccountStateSummaryEntity {
  @PrimaryColumn({ type: 'char', length: 64 })
  account!: string;

  @PrimaryColumn({ type: 'varchar', length: 32 })
  namespace!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'group_key' })
  groupKey!: string;

  @Column({ type: 'bigint' })
  count!: string;

  /** 32 bytes: XOR of the SHA-256 hashes of the group's live rows. */
  @Column({ type: 'bytea' })
  digest!: Buffer;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'account',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'account_state_summary_account_fk',
  })
  accountRow?: Relation<AccountEntity>;
}
