import { Column, Entity, Index, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

/**
 * A state group: one room state, shared by every event whose state before or after it is. Either a snapshot
 * (`prev_group` null: its entries are the whole map) or a delta on `prev_group` (its entries are the changes),
 * with `delta_hops` deltas down to the snapshot, never more than the store's bound.
 */
@Entity({ name: 'room_state_group' })
export class RoomStateGroupEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' })
  id!: string;

  @Column({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  @Column({ type: 'bigint', name: 'prev_group', nullable: true })
  prevGroup!: string | null;

  /** Deltas between this group and its snapshot (0 for a snapshot). */
  @Column({ type: 'integer', name: 'delta_hops' })
  deltaHops!: number;
}

/** One entry of a state group: the key's event id, or null in a delta that removes the key. */
@Entity({ name: 'room_state_group_entry' })
export class RoomStateGroupEntryEntity {
  @PrimaryColumn({ type: 'bigint', name: 'state_group' })
  stateGroup!: string;

  @PrimaryColumn({ type: 'varchar', length: 255 })
  type!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'state_key' })
  stateKey!: string;

  @Column({ type: 'varchar', length: 255, name: 'event_id', nullable: true })
  eventId!: string | null;
}

/** A room's current state (the resolution of its forward extremities' states, as the home set it). */
@Entity({ name: 'room_current_state' })
export class RoomCurrentStateEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  @PrimaryColumn({ type: 'varchar', length: 255 })
  type!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'state_key' })
  stateKey!: string;

  @Column({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;
}

/** A change of a room's current state at a stream position, for "state changes since P" (/sync). */
@Entity({ name: 'room_current_state_delta' })
export class RoomCurrentStateDeltaEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  @PrimaryColumn({ type: 'bigint', name: 'stream_ordering' })
  streamOrdering!: string;

  @PrimaryColumn({ type: 'varchar', length: 255 })
  type!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'state_key' })
  stateKey!: string;

  /** Null when the key left the state. */
  @Column({ type: 'varchar', length: 255, name: 'event_id', nullable: true })
  eventId!: string | null;
}

/**
 * The current membership of a user in a room, kept with the current state so a server's rooms are one indexed
 * read (/sync lists an account's rooms by its server name).
 */
@Entity({ name: 'room_membership' })
@Index('room_membership_server_idx', ['serverName', 'roomId'])
export class RoomMembershipEntity {
  @PrimaryColumn({ type: 'varchar', length: 255, name: 'room_id' })
  roomId!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'user_id' })
  userId!: string;

  /** The user id's server part (an account's key here). */
  @Column({ type: 'varchar', length: 255, name: 'server_name' })
  serverName!: string;

  @Column({ type: 'varchar', length: 32 })
  membership!: string;

  @Column({ type: 'varchar', length: 255, name: 'event_id' })
  eventId!: string;

  /** The stream position of the current state change that set it. */
  @Column({ type: 'bigint', name: 'stream_ordering' })
  streamOrdering!: string;
}
