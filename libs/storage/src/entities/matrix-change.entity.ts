import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * One entry of this home's change stream: a state key of an account (`device:X`, `member:!r`, `otk:X`...) that
 * changed. Its id is the /sync position, so `since` says exactly which changes a client has seen.
 */
@Entity({ name: 'matrix_change' })
@Index('matrix_change_account_idx', ['serverName', 'id'])
// Older entries of a key are dropped when it changes again (`recordChangesOf`): found by this index.
@Index('matrix_change_key_idx', ['serverName', 'key'])
export class MatrixChangeEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @Column({ type: 'varchar', length: 300 })
  key!: string;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'matrix_change_account_fk',
  })
  account?: Relation<AccountEntity>;
}
