import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A job an operator started through the admin API (a forced resync of an account with one of its homes): its
 * state and progress, written by whichever instance runs it, read by the API. The queue carries only the id.
 */
@Entity({ name: 'admin_job' })
export class AdminJobEntity {
  /** The job id, also the queue job id (`resync-<uuid>`). */
  @PrimaryColumn({ type: 'varchar', length: 64, primaryKeyConstraintName: 'admin_job_pkey' })
  id!: string;

  /** What the job does: `account.resync`. */
  @Column({ type: 'varchar', length: 64 })
  kind!: string;

  /** What it works on: a user ID. */
  @Index('admin_job_target_idx')
  @Column({ type: 'varchar', length: 255 })
  target!: string;

  /** `queued`, `running`, `done` or `failed`. */
  @Column({ type: 'varchar', length: 16 })
  state!: string;

  /** What the job was asked to do (account, home, reason). */
  @Column({ type: 'jsonb', default: () => "'{}'" })
  params!: Record<string, unknown>;

  /** How far it got (phase, ops received and sent, ...). */
  @Column({ type: 'jsonb', default: () => "'{}'" })
  progress!: Record<string, unknown>;

  /** Why it failed and what to do, when it did. */
  @Column({ type: 'text', nullable: true })
  error!: string | null;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', name: 'started_at', nullable: true })
  startedAt!: Date | null;

  @Column({ type: 'timestamptz', name: 'finished_at', nullable: true })
  finishedAt!: Date | null;
}
