import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * How far an account's change stream was pruned: every entry of the account up to `prunedThrough` may be gone,
 * so a /sync `since` before it cannot be answered change by change (the caller then treats everything as changed).
 * No row: nothing of the account was pruned.
 */
@Entity({ name: 'matrix_change_horizon' })
export class MatrixChangeHorizonEntity {
  @PrimaryColumn({
    type: 'char',
    length: 64,
    name: 'server_name',
    primaryKeyConstraintName: 'matrix_change_horizon_pkey',
  })
  serverName!: string;

  /** The highest position pruned. */
  @Column({ type: 'bigint', name: 'pruned_through' })
  prunedThrough!: string;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'matrix_change_horizon_account_fk',
  })
  account?: Relation<AccountEntity>;
}
