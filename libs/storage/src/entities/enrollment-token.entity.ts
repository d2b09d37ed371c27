import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * A token that lets the holder of an account enroll this server as one of its homes. Only its SHA-256 is
 * stored; the token itself is shown once, when it is made.
 */
@Entity({ name: 'enrollment_token' })
export class EnrollmentTokenEntity {
  /** Hex SHA-256 of the token. */
  @PrimaryColumn({ type: 'char', length: 64, name: 'token_hash' })
  tokenHash!: string;

  /** A short public id operators use to list and delete tokens without seeing them. */
  @Column({ type: 'varchar', length: 32, unique: true })
  id!: string;

  @Column({ type: 'integer', name: 'uses_left' })
  usesLeft!: number;

  @Column({ type: 'timestamptz', name: 'expires_at', nullable: true })
  expiresAt!: Date | null;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;
}
