import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A to-device message waiting for a device hosted on this home, until its /sync acknowledges it (a later `since`
 * at or past `stream_id`). Ordered per device by `stream_id`.
 */
@Entity({ name: 'to_device_inbox' })
@Index('to_device_inbox_device_idx', ['serverName', 'deviceId', 'streamId'])
@Index('to_device_inbox_sender_idx', ['serverName', 'deviceId', 'sender', 'senderDevice'])
@Index('to_device_inbox_at_idx', ['receivedAt'])
export class ToDeviceInboxEntity {
  /** Position in this home's to-device stream (the `_d<n>` part of sync tokens). */
  @PrimaryColumn({ type: 'bigint', name: 'stream_id' })
  streamId!: string;

  /** The recipient account. */
  @Column({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @Column({ type: 'varchar', length: 255, name: 'device_id' })
  deviceId!: string;

  /** The sending user. */
  @Column({ type: 'varchar', length: 255 })
  sender!: string;

  /** The sending device when it is known ('' for messages from other homes, which do not name it). */
  @Column({ type: 'varchar', length: 255, name: 'sender_device' })
  senderDevice!: string;

  @Column({ type: 'varchar', length: 255 })
  type!: string;

  /** The content as JSON text. */
  @Column({ type: 'text' })
  content!: string;

  /** When it was stored: a message its device has not fetched for the retention time goes (periodic sweep). */
  @Column({ type: 'timestamptz', name: 'received_at', default: () => 'now()' })
  receivedAt!: Date;
}

/** The to-device stream's last position handed out (one row, id 1); its row lock orders writers. */
@Entity({ name: 'to_device_stream' })
export class ToDeviceStreamEntity {
  @PrimaryColumn({ type: 'smallint' })
  id!: number;

  @Column({ type: 'bigint' })
  position!: string;
}

/**
 * Messages taken already, so a message reaching this home twice (a retried transaction, a second forwarding path,
 * a client's retried txn id) is kept once: the sender's server and message id with the recipient device (`*`
 * for an unexpanded "all devices", '' for the sender's own transaction marker). Pruned after a retention time.
 */
@Entity({ name: 'to_device_seen' })
@Index('to_device_seen_at_idx', ['receivedAt'])
export class ToDeviceSeenEntity {
  @PrimaryColumn({ type: 'char', length: 64 })
  origin!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'message_id' })
  messageId!: string;

  @PrimaryColumn({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @PrimaryColumn({ type: 'varchar', length: 255, name: 'device_id' })
  deviceId!: string;

  @Column({ type: 'timestamptz', name: 'received_at' })
  receivedAt!: Date;
}

/**
 * An `m.direct_to_device` EDU this home owes another home: `destination` is the PeerId of the home hosting the
 * devices, or the recipient account's server name when the devices' homes are not known here (another account:
 * any of its homes routes it on). Deleted once a home took it; survives restarts.
 */
@Entity({ name: 'to_device_outbox' })
@Index('to_device_outbox_destination_idx', ['destination', 'id'])
@Index('to_device_outbox_sender_idx', ['sender', 'senderDevice'])
@Index('to_device_outbox_at_idx', ['receivedAt'])
export class ToDeviceOutboxEntity {
  /** From the to-device stream: rows go out in this order. */
  @PrimaryColumn({ type: 'bigint' })
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  destination!: string;

  /** The account the messages are for (its server homes hold them while `destination` is away). */
  @Column({ type: 'char', length: 64 })
  recipient!: string;

  /** The account this home speaks for in the transaction. */
  @Column({ type: 'char', length: 64 })
  origin!: string;

  /** The EDU's content (`sender`, `type`, `message_id`, `messages`) as JSON text. */
  @Column({ type: 'text' })
  edu!: string;

  /** The sending user and device ('' when not known: an EDU held for another home of a hosted account). */
  @Column({ type: 'varchar', length: 255, default: '' })
  sender!: string;

  @Column({ type: 'varchar', length: 255, name: 'sender_device', default: '' })
  senderDevice!: string;

  /** The (user, device) messages the EDU carries: what the per sender device cap of the outbox counts. */
  @Column({ type: 'integer', default: 1 })
  messages!: number;

  /** When it was stored: an EDU no home took for the retention time goes (periodic sweep). */
  @Column({ type: 'timestamptz', name: 'received_at', default: () => 'now()' })
  receivedAt!: Date;
}

/**
 * A message for a device of a hosted account that is not known here yet (its `device.put` has not replicated to
 * this home): held until the device appears (then routed as any message, at a new position) or it expires.
 */
@Entity({ name: 'to_device_held' })
@Index('to_device_held_device_idx', ['serverName', 'deviceId', 'id'])
@Index('to_device_held_sender_idx', ['serverName', 'sender', 'senderDevice'])
@Index('to_device_held_at_idx', ['receivedAt'])
export class ToDeviceHeldEntity {
  /** From the to-device stream: the held messages of a device are routed in this order. */
  @PrimaryColumn({ type: 'bigint', primaryKeyConstraintName: 'PK_to_device_held_id' })
  id!: string;

  /** The recipient account. */
  @Column({ type: 'char', length: 64, name: 'server_name' })
  serverName!: string;

  @Column({ type: 'varchar', length: 255, name: 'device_id' })
  deviceId!: string;

  /** The recipient user. */
  @Column({ type: 'varchar', length: 255, name: 'user_id' })
  userId!: string;

  /** The account an EDU made of it speaks for (the sender's, or the recipient's when this home forwards). */
  @Column({ type: 'char', length: 64 })
  origin!: string;

  @Column({ type: 'varchar', length: 255 })
  sender!: string;

  /** '' when not known (messages from other homes). */
  @Column({ type: 'varchar', length: 255, name: 'sender_device' })
  senderDevice!: string;

  @Column({ type: 'varchar', length: 255 })
  type!: string;

  @Column({ type: 'varchar', length: 255, name: 'message_id' })
  messageId!: string;

  /** The content as JSON text. */
  @Column({ type: 'text' })
  content!: string;

  @Column({ type: 'timestamptz', name: 'received_at', default: () => 'now()' })
  receivedAt!: Date;
}
