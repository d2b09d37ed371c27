import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { RoomEntity } from './room.entity.js';

/**
 * A PDU this home holds: accepted (in the timeline, with a stream ordering and its state), an outlier (held for
 * checks, not in the timeline) or rejected (kept as evidence with the reason, never in the timeline or state).
 */
@Entity({ name: 'room_event' })
// Topological order (/messages, /context): depth, then event id, the same on every home.
@Index('room_event_topological_idx', ['roomId', 'depth', 'eventId'])
// Stream order per room (/sync): this home's arrival order.
@Index('room_event_stream_idx', ['roomId', 'streamOrdering'])
@Index('room_event_stream_ordering_key', ['streamOrdering'], { unique: true })
export class RoomEventEntity {
  /** Byte order ("C" collation), so topological order ties break the same way on every home. */
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'event_id', collation: 'C' })
  eventId!: string;

  @Column({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  /** The PDU as JSON text, exactly as given (never re-serialised by the database, unlike jsonb). */
  @Column({ type: 'text' })
  pdu!: string;

  @Column({ type: 'varchar', length: 255 })
  type!: string;

  /** Null for message events. */
  @Column({ type: 'varchar', length: 255, name: 'state_key', nullable: true })
  stateKey!: string | null;

  @Column({ type: 'varchar', length: 255 })
  sender!: string;

  @Column({ type: 'bigint' })
  depth!: string;

  @Column({ type: 'bigint', name: 'origin_server_ts' })
  originServerTs!: string;

  @Column({ type: 'boolean' })
  outlier!: boolean;

  /** The refusal code when the home rejected the event. */
  @Column({ type: 'varchar', length: 255, name: 'rejection_code', nullable: true })
  rejectionCode!: string | null;

  @Column({ type: 'text', name: 'rejection_message', nullable: true })
  rejectionMessage!: string | null;

  /** This home's timeline position; null for outliers and rejected events. */
  @Column({ type: 'bigint', name: 'stream_ordering', nullable: true })
  streamOrdering!: string | null;

  /** The state group of the state before the event (null for outliers). */
  @Column({ type: 'bigint', name: 'state_group_before', nullable: true })
  stateGroupBefore!: string | null;

  /** The state group after it: the one before, or a delta adding the event when it is an accepted state event. */
  @Column({ type: 'bigint', name: 'state_group_after', nullable: true })
  stateGroupAfter!: string | null;

  @ManyToOne(() => RoomEntity, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'room_id', referencedColumnName: 'roomId', foreignKeyConstraintName: 'room_event_room_fk' })
  room?: Relation<RoomEntity>;
}

/** A `prev_events` edge of a held event (the prev event may not be held). */
@Entity({ name: 'room_event_edge' })
// "Is this event referenced by a held event?": the extremity update and gap checks look edges up by prev.
@Index('room_event_edge_prev_idx', ['prevEventId'])
export class RoomEventEdgeEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'prev_event_id' })
  prevEventId!: string;

  @Column({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;
}

/** An `auth_events` edge of a held event. */
@Entity({ name: 'room_event_auth' })
export class RoomEventAuthEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'auth_event_id' })
  authEventId!: string;

  @Column({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;
}

/** A forward extremity: a timeline event of the room that no held timeline event references as a prev event. */
@Entity({ name: 'room_forward_extremity' })
export class RoomForwardExtremityEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;
}

/** A gap: a prev event of a timeline event that is not held in the timeline (a backward extremity). */
@Entity({ name: 'room_missing_prev' })
export class RoomMissingPrevEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;
}
