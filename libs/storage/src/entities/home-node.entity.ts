import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Whether a home is an always-on server or a user's client-side node. */
export type HomeRole = 'server' | 'client';

/**
 * A home process that has run on this database. Its key lives in the node key file under DATA_DIR, not
 * here; the row records the public identity so several server instances sharing one PostgreSQL are visible.
 */
@Entity({ name: 'home_node' })
export class HomeNodeEntity {
  /** The home's libp2p PeerId (base58btc). */
  @PrimaryColumn({ type: 'varchar', length: 128, name: 'peer_id' })
  peerId!: string;

  /** The raw 32-byte Ed25519 public key of the home. */
  @Column({ type: 'bytea', name: 'public_key' })
  publicKey!: Buffer;

  @Column({ type: 'enum', enum: ['server', 'client'], enumName: 'home_role' })
  role!: HomeRole;

  /** A human name for operators ("companion", "laptop"). */
  @Column({ type: 'varchar', length: 64, default: '' })
  name!: string;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @Column({ type: 'timestamptz', name: 'last_started_at' })
  lastStartedAt!: Date;
}
