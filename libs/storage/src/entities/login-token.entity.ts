import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/** A short-lived, single-use `m.login.token` for a Matrix client. Only its SHA-256 is stored. */
@Entity({ name: 'login_token' })
export class LoginTokenEntity {
  /** Hex SHA-256 of the token. */
  @PrimaryColumn({ type: 'char', length: 64, name: 'token_hash' })
  tokenHash!: string;

  @Column({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @Column({ type: 'timestamptz', name: 'expires_at' })
  expiresAt!: Date;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'login_token_account_fk',
  })
  account?: Relation<AccountEntity>;
}
