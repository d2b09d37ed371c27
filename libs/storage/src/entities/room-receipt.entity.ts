import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * The newest receipt of each (room, receipt type, user, thread) this home knows, made by its users or received
 * from other homes. `stream_id` orders the receipt stream /sync reads (a new or moved receipt takes the next
 * id); `event_stream` is the stream ordering of the receipted event on this home (null when it is not held),
 * which keeps receipts moving forward and bounds unread counts. `thread_id` is '' for an unthreaded receipt.
 */
@Entity({ name: 'room_receipt' })
@Index('room_receipt_stream_key', ['streamId'], { unique: true })
@Index('room_receipt_room_stream_idx', ['roomId', 'streamId'])
export class RoomReceiptEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'room_id', primaryKeyConstraintName: 'room_receipt_pkey' })
  roomId!: string;

  @PrimaryColumn({ type: 'varchar', length: 64, name: 'receipt_type', primaryKeyConstraintName: 'room_receipt_pkey' })
  receiptType!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'user_id', primaryKeyConstraintName: 'room_receipt_pkey' })
  userId!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'thread_id', primaryKeyConstraintName: 'room_receipt_pkey' })
  threadId!: string;

  @Column({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;

  /** Stream ordering of the event on this home (int8, read as text), or null when it is not held here. */
  @Column({ type: 'bigint', name: 'event_stream', nullable: true })
  eventStream!: string | null;

  /** When the receipt was made (ms since the epoch, int8 read as text). */
  @Column({ type: 'bigint' })
  ts!: string;

  @Column({ type: 'bigint', name: 'stream_id' })
  streamId!: string;
}
