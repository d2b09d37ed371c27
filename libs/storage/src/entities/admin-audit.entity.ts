import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

/** One action of the admin API that changed something, with the reason its operator gave. Never updated. */
@Entity({ name: 'admin_audit' })
export class AdminAuditEntity {
  /** Insertion order: the audit log pages by it. */
  @PrimaryGeneratedColumn({ type: 'bigint', primaryKeyConstraintName: 'admin_audit_pkey' })
  id!: string;

  /** What was done: `account.deactivate`, `device.delete`, ... */
  @Column({ type: 'varchar', length: 64 })
  action!: string;

  /** What it was done to: a user ID, a room ID. */
  @Index('admin_audit_target_idx')
  @Column({ type: 'varchar', length: 255 })
  target!: string;

  @Column({ type: 'text' })
  reason!: string;

  /** What the action did (rooms left, devices deleted, tokens revoked, ...). */
  @Column({ type: 'jsonb', default: () => "'{}'" })
  detail!: Record<string, unknown>;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;
}
