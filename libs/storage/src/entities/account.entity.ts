import { Column, CreateDateColumn, Entity, Index, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/** Who holds the account's root key: this home (sealed at rest) or the user. */
export type AccountCustody = 'hosted' | 'self';

/**
 * Whether the account is served: `active`; `deactivated` (its admin ended it: logins refused, rooms left);
 * `taken_down` (this server stopped serving it, its data kept); `migrating` (moving to another provider: not
 * served while the new server home takes the key); `migrated` (moved away: its data kept, its key erased);
 * `suspended` (reserved, never set).
 */
export type AccountStatus = 'active' | 'suspended' | 'deactivated' | 'taken_down' | 'migrating' | 'migrated';

/** A root-document equivocation seen for an account: two documents of `seq` with these content digests. */
export interface DocumentEquivocation {
  seq: number;
  /** documentDigest of the document held (in force), then of the one a peer offered. */
  digests: [string, string];
  /** The peer that offered the second one. */
  peer_id: string;
  /** ISO 8601. */
  seen_at: string;
}

/** An account hosted by this home. Its server name is the hex of its root public key, so it is the key. */
@Entity({ name: 'account' })
export class AccountEntity {
  /** Lowercase hex of the 32-byte root public key. */
  @PrimaryColumn({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  /** `@<localpart>:<server name>`, bound in the signed account document. */
  @Index('account_user_id_key', { unique: true })
  @Column({ type: 'varchar', length: 160, name: 'user_id' })
  userId!: string;

  @Column({ type: 'enum', enum: ['hosted', 'self'], enumName: 'account_custody' })
  custody!: AccountCustody;

  /** The root secret key sealed with the configured key (hosted custody only); never logged. */
  @Column({ type: 'bytea', name: 'sealed_root_key', nullable: true })
  sealedRootKey!: Buffer | null;

  /** scrypt hash of the account's password (hosted accounts that have one), in `scrypt$N$r$p$salt$hash` form. */
  @Column({ type: 'text', name: 'password_hash', nullable: true })
  passwordHash!: string | null;

  @Column({
    type: 'enum',
    enum: ['active', 'suspended', 'deactivated', 'taken_down', 'migrating', 'migrated'],
    enumName: 'account_status',
    default: 'active',
  })
  status!: AccountStatus;

  /** `seq` of the account document currently in force (0 before the first one). */
  @Column({ type: 'bigint', name: 'doc_seq', default: 0 })
  docSeq!: string;

  /** The last root-document equivocation seen (null: none), for the admin API. */
  @Column({ type: 'jsonb', name: 'document_equivocation', nullable: true })
  documentEquivocation!: DocumentEquivocation | null;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @UpdateDateColumn({ type: 'timestamptz', name: 'updated_at' })
  updatedAt!: Date;
}
