import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/** Whether a stored key is a one-time key (spent once) or a fallback key (reused until replaced). */
export type MatrixDeviceKeyKind = 'one_time' | 'fallback';

/**
 * A one-time or fallback key a device uploaded to this home. Local, not replicated: a key claimed on one home
 * must never be handed out by another, so each home hands out only the keys uploaded to it.
 */
@Entity({ name: 'matrix_device_key' })
export class MatrixDeviceKeyEntity {
  @PrimaryColumn({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'device_id' })
  deviceId!: string;

  @PrimaryColumn({ type: 'varchar', length: 16 })
  kind!: MatrixDeviceKeyKind;

  /** `<algorithm>:<key id>`, as uploaded. */
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'key_id' })
  keyId!: string;

  @Column({ type: 'varchar', length: 128 })
  algorithm!: string;

  /** The key object or string, as uploaded. */
  @Column({ type: 'jsonb' })
  value!: unknown;

  /** A fallback key handed out at least once (Matrix: then it is no longer "unused"). */
  @Column({ type: 'boolean', default: false })
  used!: boolean;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'matrix_device_key_account_fk',
  })
  account?: Relation<AccountEntity>;
}
