import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * The signed op log of an account: one row per accepted op, keyed by (account, origin, seq). Because
 * `seq` is gapless per origin, `max(seq)` per origin is the version vector, and the rows above a peer's
 * vector entry are exactly what it lacks.
 */
@Entity({ name: 'op' })
@Index('op_account_kind_key_idx', ['account', 'kind', 'key'])
@Index('op_account_lamport_idx', ['account', 'lamport'])
export class OpEntity {
  /** The account's server name. */
  @PrimaryColumn({ type: 'char', length: 64 })
  account!: string;

  /** PeerId of the home that made the op. */
  @PrimaryColumn({ type: 'varchar', length: 128 })
  origin!: string;

  @PrimaryColumn({ type: 'bigint' })
  seq!: string;

  @Column({ type: 'bigint' })
  lamport!: string;

  /** `seq` of the account document the op names. */
  @Column({ type: 'bigint', name: 'doc_seq' })
  docSeq!: string;

  /** Milliseconds since the epoch, as the origin stated it (informative only). */
  @Column({ type: 'bigint' })
  ts!: string;

  /** `device.put`, `device.delete`, `member.set`, ... */
  @Column({ type: 'varchar', length: 64 })
  kind!: string;

  /** Device id or room id the op is about. */
  @Column({ type: 'varchar', length: 255 })
  key!: string;

  /** The whole signed op as received, so it can be forwarded unchanged. */
  @Column({ type: 'jsonb' })
  content!: Record<string, unknown>;

  /** SHA-256 of the op's canonical JSON (equivocation is told apart by it). */
  @Column({ type: 'bytea' })
  hash!: Buffer;

  @CreateDateColumn({ type: 'timestamptz', name: 'received_at' })
  receivedAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'account', referencedColumnName: 'serverName', foreignKeyConstraintName: 'op_account_fk' })
  accountRow?: Relation<AccountEntity>;
}
