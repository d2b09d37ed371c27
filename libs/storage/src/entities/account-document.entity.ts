import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * Every signed account document accepted for an account, by `seq`. Kept, not overwritten, so a rollback
 * or an equivocating document can be checked against what was held.
 */
@Entity({ name: 'account_document' })
// GIN on `document->'homes'` (jsonb_path_ops), made by migration DocumentHomesIndex: an expression index TypeORM
// cannot declare, so it is named here and left out of synchronization.
@Index('account_document_homes_idx', { synchronize: false })
export class AccountDocumentEntity {
  @PrimaryColumn({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @PrimaryColumn({ type: 'bigint' })
  seq!: string;

  /** The signed document exactly as verified. */
  @Column({ type: 'jsonb' })
  document!: Record<string, unknown>;

  /** SHA-256 of the document's canonical JSON, to spot two different documents with one `seq`. */
  @Column({ type: 'bytea', name: 'content_hash' })
  contentHash!: Buffer;

  /** The PeerId it came from, or null when made here. */
  @Column({ type: 'varchar', length: 128, name: 'received_from', nullable: true })
  receivedFrom!: string | null;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'account_document_account_fk',
  })
  account?: Relation<AccountEntity>;
}
