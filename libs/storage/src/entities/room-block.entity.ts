import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A room an operator blocked on this home: its users may not join it or be invited into it. */
@Entity({ name: 'room_block' })
export class RoomBlockEntity {
  /** The room, held here or not (a room can be blocked before anyone here knows it). */
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'room_id', primaryKeyConstraintName: 'room_block_pkey' })
  roomId!: string;

  /** Why, as the operator said it (also in the audit log). */
  @Column({ type: 'text' })
  reason!: string;

  /** When the block was put (or last given a new reason). */
  @Column({ type: 'timestamptz', name: 'blocked_at', default: () => 'now()' })
  blockedAt!: Date;
}
