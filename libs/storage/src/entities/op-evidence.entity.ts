import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * An op that lost its slot to another op with the same (origin, seq): equivocation evidence. The op with the
 * lower content hash holds the slot in `op` on every replica; the other is kept here so the owner can see
 * what the origin signed, and the origin is reported for revocation.
 */
@Entity({ name: 'op_evidence' })
export class OpEvidenceEntity {
  @PrimaryColumn({ type: 'char', length: 64 })
  account!: string;

  @PrimaryColumn({ type: 'varchar', length: 128 })
  origin!: string;

  @PrimaryColumn({ type: 'bigint' })
  seq!: string;

  /** SHA-256 of the op's signed content. */
  @PrimaryColumn({ type: 'bytea' })
  hash!: Buffer;

  /** The whole signed op. */
  @Column({ type: 'jsonb' })
  content!: Record<string, unknown>;

  /** PeerId it came from, or null when it was displaced here. */
  @Column({ type: 'varchar', length: 128, name: 'received_from', nullable: true })
  receivedFrom!: string | null;

  @CreateDateColumn({ type: 'timestamptz', name: 'detected_at' })
  detectedAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'account',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'op_evidence_account_fk',
  })
  accountRow?: Relation<AccountEntity>;
}
