import { Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { AccountEntity } from './account.entity.js';

/**
 * A signed room event this home made for an account that is not the account's own membership (that one is
 * replicated in `member.set`): a room's create event, invites of other users. Local to this home.
 */
@Entity({ name: 'matrix_room_event' })
@Index('matrix_room_event_room_idx', ['serverName', 'roomId'])
export class MatrixRoomEventEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;

  @Column({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @Column({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  @Column({ type: 'jsonb' })
  event!: Record<string, unknown>;

  @CreateDateColumn({ type: 'timestamptz', name: 'created_at' })
  createdAt!: Date;

  @ManyToOne(() => AccountEntity, { onDelete: 'CASCADE' })
  @JoinColumn({
    name: 'server_name',
    referencedColumnName: 'serverName',
    foreignKeyConstraintName: 'matrix_room_event_account_fk',
  })
  account?: Relation<AccountEntity>;
}
