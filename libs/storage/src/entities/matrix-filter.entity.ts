import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/** A filter a Matrix client stored on this home (`POST /user/{userId}/filter`). Local to this home. */
@Entity({ name: 'matrix_filter' })
export class MatrixFilterEntity {
  @PrimaryColumn({ type: 'char', length: 64, name: 'server_name', primaryKeyConstraintName: 'matrix_filter_pkey' })
  serverName!: string;

  @PrimaryColumn({ type: 'varchar', length: 64, name: 'filter_id', primaryKeyConstraintName: 'matrix_filter_pkey' })
  filterId!: string;

  @Column({ type: 'jsonb' })
  filter!: Record<string, unknown>;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'matrix_filter_account_fk',
  })
  account?: Relation<AccountEntity>;
}
