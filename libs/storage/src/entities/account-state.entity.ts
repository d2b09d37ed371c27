import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * The materialized state of an account: per namespace (`device`, `member`, `cross_signing`) and key, the op
 * that wins by greatest (lamport, origin). Derived from `op`, kept so reads need no fold; a delete is a
 * tombstone row (`deleted`), so a late, older put cannot resurrect the key.
 */
@Entity({ name: 'account_state' })
export class AccountStateEntity {
  @PrimaryColumn({ type: 'char', length: 64 })
  account!: string;

  @PrimaryColumn({ type: 'varchar', length: 32 })
  namespace!: string;

  @PrimaryColumn({ type: 'varchar', length: 255 })
  key!: string;

  @Column({ type: 'bigint' })
  lamport!: string;

  @Column({ type: 'varchar', length: 128 })
  origin!: string;

  /** `seq` of the winning op (with `origin`, its key in `op`). */
  @Column({ type: 'bigint' })
  seq!: string;

  @Column({ type: 'boolean', default: false })
  deleted!: boolean;

  /** The winning op's body (null for a tombstone). */
  @Column({ type: 'jsonb', nullable: true })
  value!: Record<string, unknown> | null;

  @UpdateDateColumn({ type: 'timestamptz', name: 'updated_at' })
  updatedAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'account',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'account_state_account_fk',
  })
  accountRow?: Relation<AccountEntity>;
}
