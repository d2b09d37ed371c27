// What the Matrix client API needs from the home's room engine (libs/home implements it over its RoomStore
// and @polyhome/rooms). Every method acts as one user of an account hosted here; every refusal is a
// MatrixError with the spec's code (M_FORBIDDEN for an auth refusal, M_NOT_FOUND for an unknown room or event
// the user may not know of, M_BAD_JSON / M_INVALID_PARAM / M_TOO_LARGE for bad input). Events are returned
// as stored PDUs; the Matrix module turns them into client events.
import type { Pdu, RoomVersionId } from '@polyhome/rooms';

/** Who acts: a user of an account hosted here, from one device of it. */
export interface RoomActor {
  serverName: string;
  userId: string;
  deviceId: string;
}

/** An event as the engine hands it out: id, the PDU, and this home's stream position when it is in the timeline. */
export interface RoomEventView {
  eventId: string;
  pdu: Pdu;
  /** This home's stream ordering (arrival order), null for events outside the timeline. */
  streamOrdering: number | null;
  /** Set when the event was redacted: the redaction's id (the PDU is then the redacted form). */
  redactedBy?: string;
}

/** `POST /createRoom`, checked and parsed by the Matrix module (the spec's request body, typed). */
export interface CreateRoomRequest {
  preset?: 'private_chat' | 'public_chat' | 'trusted_private_chat';
  visibility?: 'public' | 'private';
  roomVersion?: RoomVersionId;
  name?: string;
  topic?: string;
  invite: string[];
  isDirect: boolean;
  /** `creation_content`, merged into the create event's content. */
  creationContent?: Record<string, unknown>;
  /** `initial_state`: state events sent after the preset's, before name and topic. */
  initialState: Array<{ type: string; stateKey: string; content: Record<string, unknown> }>;
  /** `power_level_content_override`, merged over the default power levels. */
  powerLevelOverride?: Record<string, unknown>;
}

/** A membership change one user makes (of itself, or of `target`). */
export type MembershipAction =
  | { action: 'join' }
  | { action: 'leave'; reason?: string }
  | { action: 'invite'; target: string; reason?: string }
  | { action: 'kick'; target: string; reason?: string }
  | { action: 'ban'; target: string; reason?: string }
  | { action: 'unban'; target: string; reason?: string };

/** A page of `/messages` or `/context` in topological order (the same on every home). */
export interface RoomPage {
  events: RoomEventView[];
  /** Token of the page's start (the `from` given, or where the page began). */
  start: string;
  /** Token to continue in the same direction; absent when there is nothing more that way. */
  end?: string;
}

/** What changed in one room of a user since a stream position, for `/sync`. */
export interface RoomSyncEntry {
  roomId: string;
  /** The user's membership now. */
  membership: 'join' | 'invite' | 'leave' | 'ban' | 'knock';
  /** Timeline events after the position (the newest `limit`, oldest first). */
  timeline: RoomEventView[];
  /** More events came after the position than `limit`. */
  limited: boolean;
  /** A `/messages` token just before the first timeline event (for the client to page back). */
  prevBatch: string | null;
  /**
   * State at the start of the timeline that the client does not have yet: the whole state on an initial sync
   * (or when `limited`), else the state changes the timeline does not show. Empty for invites.
   */
  state: RoomEventView[];
  /** For an invite: the stripped state the spec lists (`invite_state`), the invite event last. */
  inviteState?: RoomEventView[];
}

/** The room engine as the client API uses it. */
export interface MatrixRoomsPort {
  /** This home's newest stream position (0 when no room event was ever stored). */
  position(): Promise<number>;
  /**
   * Calls `listener` with the server names (accounts hosted here) whose rooms got events, whenever events are
   * stored here (made locally or received), so /sync long-polls wake.
   */
  onRoomEvents(listener: (serverNames: string[]) => void): void;

  createRoom(actor: RoomActor, request: CreateRoomRequest): Promise<{ roomId: string }>;
  /** Joins, leaves, invites, kicks, bans or unbans. Returns the membership event made. */
  membership(
    actor: RoomActor,
    roomId: string,
    change: MembershipAction,
    via?: readonly string[],
  ): Promise<{ eventId: string }>;
  /** `PUT /send/{type}/{txnId}` (idempotent per actor device and `txnId`) and `PUT /state/{type}/{key}`. */
  send(
    actor: RoomActor,
    roomId: string,
    event: { type: string; content: Record<string, unknown>; stateKey?: string; txnId?: string },
  ): Promise<{ eventId: string }>;
  /** `PUT /redact/{eventId}/{txnId}`. */
  redact(
    actor: RoomActor,
    roomId: string,
    eventId: string,
    reason: string | undefined,
    txnId: string,
  ): Promise<{ eventId: string }>;
  /** `POST /forget`: the user no longer sees the room (it must have left it). */
  forget(actor: RoomActor, roomId: string): Promise<void>;

  /** The rooms the user is joined to. */
  joinedRooms(actor: RoomActor): Promise<string[]>;
  /**
   * Whether this home holds the room's events. A room of the account that it does not hold (made on another
   * home of the account, while room events do not yet travel between homes) is served from the account's
   * replicated membership instead.
   */
  holds(roomId: string): Promise<boolean>;
  /**
   * The user's membership in the room as this home's copy of it says, or undefined when this home does not
   * hold the room or not yet the user's member event (it is still arriving from another home of the account).
   */
  ownMembership(actor: RoomActor, roomId: string): Promise<string | undefined>;
  /** Current state (joined), or the state when the user left; M_FORBIDDEN when the user was never in it. */
  state(actor: RoomActor, roomId: string): Promise<RoomEventView[]>;
  /** One state event, or null when that key is not set. */
  stateEvent(actor: RoomActor, roomId: string, type: string, stateKey: string): Promise<RoomEventView | null>;
  /** One event the user may see (history visibility), else M_NOT_FOUND. */
  event(actor: RoomActor, roomId: string, eventId: string): Promise<RoomEventView>;
  /** `/messages`: from a token (or the newest end for `b`, the oldest for `f`), at most `limit`. */
  messages(
    actor: RoomActor,
    roomId: string,
    options: { from?: string; dir: 'b' | 'f'; limit: number },
  ): Promise<RoomPage>;
  /** `/context/{eventId}`: `limit` events around one event, and the state at it. */
  context(
    actor: RoomActor,
    roomId: string,
    eventId: string,
    limit: number,
  ): Promise<{ event: RoomEventView; before: RoomPage; after: RoomPage; state: RoomEventView[] }>;
  /** `m.room.member` events of the current (or last seen) state. */
  members(actor: RoomActor, roomId: string): Promise<RoomEventView[]>;
  /**
   * `/sync`: the rooms of the user with anything after `since` (every room the user is in or invited to when
   * `since` is undefined; rooms left since `since` too), up to the stream position `to`.
   */
  syncRooms(
    actor: RoomActor,
    options: { since?: number; to: number; timelineLimit: number; lazyLoadMembers?: boolean },
  ): Promise<RoomSyncEntry[]>;
}
