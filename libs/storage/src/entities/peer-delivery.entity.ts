import { Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * What each other home of an account has acknowledged, so delivery resumes from there after a restart or a
 * disconnect instead of resending everything, and operators can see what is pending for whom.
 */
@Entity({ name: 'peer_delivery' })
export class PeerDeliveryEntity {
  @PrimaryColumn({ type: 'char', length: 64 })
  account!: string;

  @PrimaryColumn({ type: 'varchar', length: 128, name: 'peer_id' })
  peerId!: string;

  /** The peer's acknowledged version vector `{ origin: seq }`. */
  @Column({ type: 'jsonb', name: 'acked_vv', default: () => "'{}'" })
  ackedVv!: Record<string, number>;

  @Column({ type: 'timestamptz', name: 'last_connected_at', nullable: true })
  lastConnectedAt!: Date | null;

  @Column({ type: 'timestamptz', name: 'last_seen_at', nullable: true })
  lastSeenAt!: Date | null;

  @UpdateDateColumn({ type: 'timestamptz', name: 'updated_at' })
  updatedAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'account',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'peer_delivery_account_fk',
  })
  accountRow?: Relation<AccountEntity>;
}
