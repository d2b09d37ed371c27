import { Column, CreateDateColumn, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * The event a client send made, by the client's transaction id: a retried `PUT .../send/{type}/{txnId}` returns
 * the same event instead of sending it twice (client-server API, "Transaction identifiers").
 */
@Entity({ name: 'room_txn' })
export class RoomTxnEntity {
  @PrimaryColumn({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'device_id' })
  deviceId!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'txn_id' })
  txnId!: string;

  @Column({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'room_txn_account_fk',
  })
  account?: Relation<AccountEntity>;
}
