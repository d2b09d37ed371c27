/**
 * The to-device store port: where a home keeps the messages waiting for the devices it hosts, the EDUs it owes
 * other homes, and the keys of messages taken (deduplication). Types only: `SqlToDeviceStore` of
 * `@polyhome/storage` satisfies it (PostgreSQL or PGlite).
 */

/** A deduplication key: the recipient device of one message (`*`: all devices; '': the sender's transaction). */
export interface ToDeviceKey {
  serverName: string;
  deviceId: string;
}

/** A message for a device hosted here. */
export interface ToDeviceInboxInput {
  serverName: string;
  deviceId: string;
  sender: string;
  /** '' when not known (messages from other homes). */
  senderDevice: string;
  type: string;
  /** JSON text. */
  content: string;
}

/** An `m.direct_to_device` EDU owed to another home. */
export interface ToDeviceOutboxInput {
  /** The PeerId of the home hosting the devices, or the recipient account's server name (any of its homes). */
  destination: string;
  /** The account the messages are for. */
  recipient: string;
  /** The account this home speaks for in the transaction. */
  origin: string;
  /** The EDU content as JSON text. */
  edu: string;
  /** The sending user and device ('' when not known), and the (user, device) messages the EDU carries. */
  sender: string;
  senderDevice: string;
  messages: number;
}

/** A message for a device of a hosted account not known here yet (its `device.put` has not replicated). */
export interface ToDeviceHeldInput {
  serverName: string;
  deviceId: string;
  userId: string;
  /** The account an EDU made of it speaks for. */
  origin: string;
  sender: string;
  senderDevice: string;
  type: string;
  messageId: string;
  /** JSON text. */
  content: string;
}

/** Store outcome of one message (see `accept`). */
export type ToDeviceAcceptOutcome =
  | { status: 'stored'; inbox: number; outbox: number; held: number; dropped: number }
  | { status: 'duplicate' }
  | { status: 'limited'; serverName: string; deviceId: string; held: number }
  | { status: 'outbox_limited'; sender: string; senderDevice: string; held: number };

/** To-device messages of a home. */
export interface ToDeviceStore {
  /**
   * Marks `keys` of (`origin`, `messageId`) as taken and stores what `build` makes of those that were new, at the
   * next positions, in one transaction: nothing when all were taken before (`duplicate`) or when a device would
   * hold more than `maxPerSender` messages of one (sender, sender device) (`limited`, and no key is marked), or a
   * (sender, sender device) would have more than `maxOutboxPerSender` messages waiting in the outbox
   * (`outbox_limited`). Held rows over `maxPerSender` per (recipient account, sender, sender device) are dropped.
   */
  accept(input: {
    origin: string;
    messageId: string;
    keys: readonly ToDeviceKey[];
    maxPerSender: number;
    maxOutboxPerSender?: number;
    build(fresh: (key: ToDeviceKey) => boolean): {
      inbox: ToDeviceInboxInput[];
      outbox: ToDeviceOutboxInput[];
      held?: ToDeviceHeldInput[];
    };
  }): Promise<ToDeviceAcceptOutcome>;
  /** Routes the messages held for a device now known: rows `build` makes of them, at new positions. */
  releaseHeld(
    serverName: string,
    deviceId: string,
    build: (held: Array<ToDeviceHeldInput & { id: number }>) => {
      inbox: ToDeviceInboxInput[];
      outbox: ToDeviceOutboxInput[];
    },
  ): Promise<{ inbox: number; outbox: number }>;
  /** Those of `deviceIds` (of one account) with messages in the inbox or held: the others have nothing to route. */
  devicesWithMessages(serverName: string, deviceIds: readonly string[]): Promise<string[]>;
  /**
   * Whether any message is held for the device: asked before releaseHeld, so a device that appears with nothing held
   * for it (the usual case) costs one read, not a transaction on the stream position. Optional.
   */
  hasHeld?(serverName: string, deviceId: string): Promise<boolean>;
  /** Devices with messages held, at most `limit`. */
  heldDevices(limit: number): Promise<Array<{ serverName: string; deviceId: string }>>;
  /** Devices with messages in the inbox, at most `limit`. */
  inboxDevices(limit: number): Promise<Array<{ serverName: string; deviceId: string }>>;
  /** Deletes inbox, outbox and held rows stored before the given times (ms since the epoch). */
  sweep(before: {
    inbox: number;
    outbox: number;
    held: number;
  }): Promise<{ inbox: number; outbox: number; held: number }>;
  /** The last position handed out (0 before the first message). */
  position(): Promise<number>;
  /** Deletes the device's messages at or before `acknowledged`, then the oldest `limit` at or before `to`. */
  messages(
    serverName: string,
    deviceId: string,
    acknowledged: number | undefined,
    to: number,
    limit: number,
  ): Promise<Array<{ streamId: number; sender: string; type: string; content: string }>>;
  /** Forgets every message waiting for a device, or held for it (it was deleted). */
  deleteDevice(serverName: string, deviceId: string): Promise<void>;
  /** Destinations with EDUs owed. */
  outboxDestinations(limit: number): Promise<string[]>;
  /** The oldest `limit` EDUs owed to a destination. */
  pendingOutbox(destination: string, limit: number): Promise<Array<ToDeviceOutboxInput & { id: number }>>;
  /** Forgets EDUs a home took. */
  removeOutbox(ids: readonly number[]): Promise<void>;
}
