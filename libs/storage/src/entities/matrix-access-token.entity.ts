import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * A Matrix access token issued by this home. Only its SHA-256 is stored; it is valid for one device of one
 * account, and only on the home that issued it (`home`), so instances sharing a database never honour each
 * other's tokens.
 */
@Entity({ name: 'matrix_access_token' })
@Index('matrix_access_token_device_idx', ['serverName', 'deviceId'])
export class MatrixAccessTokenEntity {
  /** Hex SHA-256 of the token. */
  @PrimaryColumn({ type: 'char', length: 64, name: 'token_hash' })
  tokenHash!: string;

  @Column({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @Column({ type: 'varchar', length: 255, name: 'device_id' })
  deviceId!: string;

  /** PeerId of the home that issued it. */
  @Column({ type: 'varchar', length: 128 })
  home!: string;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'matrix_access_token_account_fk',
  })
  account?: Relation<AccountEntity>;
}
