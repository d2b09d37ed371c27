import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * The DHT replay guard's memory (SqlSeqGuardStore): per account this node hosts or has looked up, the highest
 * account document seq seen. No foreign key: a looked-up account is not hosted here.
 */
@Entity({ name: 'dht_seq_guard' })
export class DhtSeqGuardEntity {
  @PrimaryColumn({ name: 'server_name', type: 'char', length: 64, primaryKeyConstraintName: 'dht_seq_guard_pkey' })
  serverName!: string;

  @Column({ type: 'bigint' })
  seq!: string;
}
