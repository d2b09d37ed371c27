// What the Matrix client API needs from the home for typing, receipts, read markers and presence (libs/home's
// `Ephemeral` implements it). Typing and presence live in memory (they are best-effort, as the spec has them);
// receipts are stored. Every method acts as one user of an account hosted here; refusals are MatrixErrors.
import type { RoomActor } from '../rooms/rooms-port.js';

/** Receipt types a client may send (`m.read.private` is never shown to anyone but its owner). */
export const RECEIPT_TYPES = ['m.read', 'm.read.private'] as const;
/** A receipt type of `RECEIPT_TYPES`. */
export type ReceiptType = (typeof RECEIPT_TYPES)[number];

/** Presence states of the spec. */
export const PRESENCE_STATES = ['online', 'offline', 'unavailable'] as const;
/** A presence state of `PRESENCE_STATES`. */
export type PresenceState = (typeof PRESENCE_STATES)[number];

/** A user's presence as the home knows it (absent fields are unknown). */
export interface PresenceView {
  userId: string;
  presence: PresenceState;
  statusMsg?: string;
  /** When the user was last active (ms since the epoch). */
  lastActiveTs?: number;
  currentlyActive?: boolean;
}

/**
 * Where a /sync response stands in the ephemeral streams: `receipt` is the stored receipt stream's position,
 * `memory` the in-memory serial of typing and presence changes (it starts at the boot's wall clock, so it
 * only grows across restarts in practice; a token ahead of it is answered as an initial sync of these streams).
 */
export interface EphemeralPosition {
  receipt: number;
  memory: number;
}

/** What `ephemeralOf` answers for one room: its `ephemeral` events in client format. */
export type EphemeralEvents = Map<string, Array<Record<string, unknown>>>;

/** The ephemeral side of the home, as the client API uses it. */
export interface MatrixEphemeralPort {
  /** The positions a /sync made now reaches. */
  position(): Promise<EphemeralPosition>;
  /** Calls `listener` with the server names (hosted accounts) whose /sync has ephemeral news, to wake long-polls. */
  onEphemeral(listener: (serverNames: string[]) => void): void;

  /** `PUT /rooms/{roomId}/typing/{userId}`: `timeoutMs` is capped by the home. The user must be joined. */
  setTyping(actor: RoomActor, roomId: string, typing: boolean, timeoutMs: number): Promise<void>;
  /**
   * `POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`: the event must be one the user may see in a room it
   * is joined to. A receipt for an event older than the user's current one (same type and thread) is kept as it
   * is (receipts only move forward), as Synapse does.
   */
  setReceipt(
    actor: RoomActor,
    roomId: string,
    receiptType: ReceiptType,
    eventId: string,
    threadId: string | undefined,
  ): Promise<void>;

  /**
   * The `ephemeral` events of the user's joined rooms `roomIds` after `since` (all current ones when
   * undefined), up to `to`: `m.typing` for rooms whose typing changed (on an initial sync, only where someone
   * types), `m.receipt` with the receipts stored since (private ones only the user's own). Rooms with nothing
   * are absent.
   */
  ephemeralOf(
    actor: RoomActor,
    roomIds: string[],
    since: EphemeralPosition | undefined,
    to: EphemeralPosition,
  ): Promise<EphemeralEvents>;
  /**
   * `unread_notifications.notification_count` of the user in each room: events of others after the user's
   * newest read receipt (public or private) or, without one, after the user's join, that the spec's default
   * push rules make notify (`m.room.message` except edits, `m.room.encrypted`). Capped at `cap`.
   */
  notificationCounts(actor: RoomActor, roomIds: string[], cap: number): Promise<Map<string, number>>;

  /** `PUT /presence/{userId}/status` (only the user's own). */
  setPresence(actor: RoomActor, presence: PresenceState, statusMsg: string | undefined): Promise<void>;
  /** A /sync with `set_presence` (default `online`): marks the user active and `presence` unless `offline`. */
  syncing(actor: RoomActor, presence: PresenceState): void;
  /** Ends what `syncing` began once the /sync answers (a user with no /sync in flight goes offline later). */
  syncDone(actor: RoomActor): void;
  /** `GET /presence/{userId}/status`: the user's own, or one sharing a room with `actor`; null when unknown. */
  presence(actor: RoomActor, userId: string): Promise<PresenceView | null>;
  /** The `presence` events of a /sync: the user's own and those of users sharing a joined room, changed after `since`. */
  presenceOf(actor: RoomActor, since: EphemeralPosition | undefined, to: EphemeralPosition): Promise<PresenceView[]>;
}
