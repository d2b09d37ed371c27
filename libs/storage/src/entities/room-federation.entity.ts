import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * An event this home owes another home (the durable outbox of federation): one row per destination home and
 * event, written by the fan-out from the timeline and deleted when the destination took the event. Rows outlive
 * restarts, so every accepted event is still delivered after a crash.
 */
@Entity({ name: 'room_outbox' })
@Index('room_outbox_order_idx', ['destination', 'streamOrdering'])
export class RoomOutboxEntity {
  /** The destination home's PeerId. */
  @PrimaryColumn({ type: 'varchar', length: 128 })
  destination!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;

  /** The event's position in this home's timeline stream: deliveries go out in this order. */
  @Column({ type: 'bigint', name: 'stream_ordering' })
  streamOrdering!: string;

  /** The account this home speaks for when it delivers the event (the `origin` of the transaction). */
  @Column({ type: 'char', length: 64 })
  origin!: string;
}

/** How far the fan-out has read the timeline stream (one row, id 1). */
@Entity({ name: 'room_fanout_cursor' })
export class RoomFanoutCursorEntity {
  @PrimaryColumn({ type: 'smallint' })
  id!: number;

  @Column({ type: 'bigint' })
  position!: string;
}

/**
 * Account documents of other accounts (those in rooms with the accounts hosted here), as verified when fetched:
 * they say which homes sign for a server and where its events go. The newest seq wins.
 */
@Entity({ name: 'foreign_account_document' })
export class ForeignAccountDocumentEntity {
  @PrimaryColumn({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @Column({ type: 'bigint' })
  seq!: string;

  /** The document as JSON text. */
  @Column({ type: 'text' })
  document!: string;

  @Column({ type: 'timestamptz', name: 'fetched_at' })
  fetchedAt!: Date;
}
