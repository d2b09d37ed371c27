// Typing, read receipts and presence of a home (the spec's ephemeral data): the MatrixEphemeralPort the client
// API uses, and the two seams federation will use to carry them between homes as EDUs:
// - `onLocalEdu(listener)`: told of every EDU a local user's action makes, in the federation format
//   (`{ edu_type, content }` of the server-server API's "Typing Notifications", "Receipts" and "Presence"),
//   with the room it concerns (typing and receipts), so a sender can fan it out to the room's other servers.
//   Private receipts (`m.read.private`) never leave the home.
// - `receiveEdu(origin, edu)`: takes in an EDU another home sent for the server (account) `origin`, checked:
//   every user it speaks for must be of `origin`, typing and receipts only for users joined to a room held here,
//   sizes capped. Never throws for bad input: it says what it took and what it refused.
// Typing and presence live in memory (best-effort, lost on restart, as the spec allows); receipts are stored
// behind the ReceiptStore port.
import type {
  EphemeralEvents,
  EphemeralPosition,
  MatrixEphemeralPort,
  PresenceState,
  PresenceView,
  ReceiptType,
  RoomActor,
  RoomEventView,
} from '@polyhome/matrix';
import { MatrixError } from '@polyhome/matrix/errors';
import { isUserId, serverNameOf } from '@polyhome/rooms';
import type { ReceiptStore, StoredReceipt } from './receipt-store.js';

/** Longest a typing notification lasts, whatever the client asks (Synapse and conduwuit cap it too). */
export const MAX_TYPING_TIMEOUT_MS = 30_000;
/** Most users shown typing in one room (more are ignored until some stop). */
export const MAX_TYPING_PER_ROOM = 100;
/** Most rooms whose typing state is kept; rooms where nobody types are dropped first. */
export const MAX_TYPING_ROOMS = 10_000;
/** Most users whose presence is kept in memory (remote ones beyond it are not taken). */
export const MAX_PRESENCE_USERS = 10_000;
/** Longest `status_msg` (characters). */
export const MAX_STATUS_MSG = 1_024;
/** Largest EDU taken from another home (bytes of its JSON). */
export const MAX_EDU_BYTES = 64 * 1024;
/** Most entries (rooms x users, or presence pushes) in one received EDU. */
export const MAX_EDU_ENTRIES = 100;
/** Most receipts one /sync response carries (the newest). */
export const MAX_SYNC_RECEIPTS = 1_000;
/** A user with no /sync in flight and no presence update for this long goes offline (Synapse: 30 s). */
export const PRESENCE_TIMEOUT_MS = 60_000;
/** How often presence timeouts are looked for. */
const PRESENCE_SWEEP_MS = 15_000;
/** Longest id (room, event, user, thread) taken in an EDU (the spec's 255-byte identifier limit). */
const MAX_ID = 255;

/** An EDU in the federation format, as this home makes and takes them. */
export type Edu =
  | { edu_type: 'm.typing'; content: { room_id: string; user_id: string; typing: boolean } }
  | { edu_type: 'm.receipt'; content: Record<string, { 'm.read': Record<string, ReceiptEduEntry> }> }
  | { edu_type: 'm.presence'; content: { push: PresenceEduEntry[] } };

/** One user's receipt in an `m.receipt` EDU. */
export interface ReceiptEduEntry {
  event_ids: string[];
  data: { ts: number; thread_id?: string };
}

/** One user's presence in an `m.presence` EDU. */
export interface PresenceEduEntry {
  user_id: string;
  presence: PresenceState;
  status_msg?: string;
  last_active_ago: number;
  currently_active?: boolean;
}

/** A local EDU as listeners get it: the room it is about (typing, receipts), for fan-out to the room's servers. */
export interface LocalEdu {
  edu: Edu;
  roomId?: string;
}

/** What `receiveEdu` did: how many entries it took, and why it refused the others. */
export interface EduOutcome {
  accepted: number;
  refused: string[];
}

/** What ephemeral data needs from the room engine. */
export interface EphemeralRooms {
  /** The users joined to a room held here ([] when it is not held). */
  joinedMembers(roomId: string): Promise<string[]>;
  /** The rooms held here that users of `serverName` are joined to. */
  joinedRoomsOfServer(serverName: string): Promise<string[]>;
  /** The rooms the actor is joined to. */
  joinedRooms(actor: RoomActor): Promise<string[]>;
  /** An event the actor may see in the room (M_NOT_FOUND otherwise). */
  event(actor: RoomActor, roomId: string, eventId: string): Promise<RoomEventView>;
  /** The stream ordering of a held timeline event of the room, or null. */
  streamOrderingOf(roomId: string, eventId: string): Promise<number | null>;
}

/** What `Ephemeral` is built from. */
export interface EphemeralComponents {
  rooms: EphemeralRooms;
  receipts: ReceiptStore;
  /** The clock (tests pin it). */
  now?: () => number;
}

/** Types that notify under the spec's default push rules (`.m.rule.message`, `.m.rule.encrypted`). */
const NOTIFYING_TYPES = ['m.room.message', 'm.room.encrypted'];

interface RoomTyping {
  /** The memory serial of the room's last typing change. */
  serial: number;
  /** Who types, with the timer that ends it. */
  users: Map<string, ReturnType<typeof setTimeout>>;
}

interface Presence {
  presence: PresenceState;
  statusMsg?: string;
  lastActiveTs: number;
  currentlyActive: boolean;
  serial: number;
  /** A user of another home: its home says when it goes offline. */
  remote: boolean;
  /** /syncs in flight. */
  syncing: number;
}

/** Typing, receipts and presence of one home (see the file comment). */
export class Ephemeral implements MatrixEphemeralPort {
  readonly #rooms: EphemeralRooms;
  readonly #receipts: ReceiptStore;
  readonly #now: () => number;
  readonly #typing = new Map<string, RoomTyping>();
  readonly #presence = new Map<string, Presence>();
  readonly #wakeListeners: Array<(serverNames: string[]) => void> = [];
  readonly #eduListeners: Array<(edu: LocalEdu) => void> = [];
  readonly #sweep: ReturnType<typeof setInterval>;
  /** Serial of in-memory changes (typing, presence): from the boot's wall clock, so it grows across restarts. */
  #serial: number;

  constructor(components: EphemeralComponents) {
    this.#rooms = components.rooms;
    this.#receipts = components.receipts;
    this.#now = components.now ?? Date.now;
    this.#serial = this.#now();
    this.#sweep = setInterval(() => void this.#expirePresence(), PRESENCE_SWEEP_MS);
    this.#sweep.unref();
  }

  /** Stops the timers (typing expiries, presence sweep). */
  stop(): void {
    clearInterval(this.#sweep);
    for (const room of this.#typing.values()) for (const timer of room.users.values()) clearTimeout(timer);
    this.#typing.clear();
  }

  /** Calls `listener` with every EDU a local user's action makes (the seam federation sends from). */
  onLocalEdu(listener: (edu: LocalEdu) => void): void {
    this.#eduListeners.push(listener);
  }

  onEphemeral(listener: (serverNames: string[]) => void): void {
    this.#wakeListeners.push(listener);
  }

  async position(): Promise<EphemeralPosition> {
    return { receipt: await this.#receipts.receiptPosition(), memory: this.#serial };
  }

  async setTyping(actor: RoomActor, roomId: string, typing: boolean, timeoutMs: number): Promise<void> {
    await this.#requireJoined(actor.userId, roomId);
    if (this.#applyTyping(roomId, actor.userId, typing, timeoutMs)) {
      this.#emit({
        edu: { edu_type: 'm.typing', content: { room_id: roomId, user_id: actor.userId, typing } },
        roomId,
      });
      await this.#wakeRoom(roomId);
    }
  }

  async setReceipt(
    actor: RoomActor,
    roomId: string,
    receiptType: ReceiptType,
    eventId: string,
    threadId: string | undefined,
  ): Promise<void> {
    await this.#requireJoined(actor.userId, roomId);
    const event = await this.#rooms.event(actor, roomId, eventId);
    const ts = this.#now();
    const stored = await this.#receipts.putReceipt({
      roomId,
      receiptType,
      userId: actor.userId,
      threadId: threadId ?? null,
      eventId,
      eventStream: event.streamOrdering,
      ts,
    });
    if (stored === null) return;
    if (receiptType === 'm.read') {
      const data: ReceiptEduEntry['data'] = threadId === undefined ? { ts } : { ts, thread_id: threadId };
      const content = { [roomId]: { 'm.read': { [actor.userId]: { event_ids: [eventId], data } } } };
      this.#emit({ edu: { edu_type: 'm.receipt', content }, roomId });
      await this.#wakeRoom(roomId);
    } else {
      // A private receipt is news to its owner's /sync only.
      this.#wake([actor.serverName]);
    }
  }

  async ephemeralOf(
    actor: RoomActor,
    roomIds: string[],
    since: EphemeralPosition | undefined,
    to: EphemeralPosition,
  ): Promise<EphemeralEvents> {
    const out: EphemeralEvents = new Map();
    const add = (roomId: string, event: Record<string, unknown>): void => {
      const list = out.get(roomId) ?? [];
      list.push(event);
      out.set(roomId, list);
    };
    // A memory serial ahead of this home's (a token from before a restart whose clock ran behind): start over.
    const memorySince = since === undefined || since.memory > this.#serial ? undefined : since.memory;
    for (const roomId of roomIds) {
      const typing = this.#typing.get(roomId);
      if (typing === undefined) continue;
      const news = memorySince === undefined ? typing.users.size > 0 : typing.serial > memorySince;
      if (news) add(roomId, { type: 'm.typing', content: { user_ids: [...typing.users.keys()] } });
    }
    const receiptSince = since === undefined || since.receipt > to.receipt ? 0 : since.receipt;
    const receipts = await this.#receipts.receiptsSince(roomIds, receiptSince, to.receipt, MAX_SYNC_RECEIPTS);
    for (const [roomId, content] of receiptContents(receipts, actor.userId)) {
      add(roomId, { type: 'm.receipt', content });
    }
    return out;
  }

  notificationCounts(actor: RoomActor, roomIds: string[], cap: number): Promise<Map<string, number>> {
    return this.#receipts.notificationCounts(actor.userId, roomIds, NOTIFYING_TYPES, cap);
  }

  async setPresence(actor: RoomActor, presence: PresenceState, statusMsg: string | undefined): Promise<void> {
    if (statusMsg !== undefined && statusMsg.length > MAX_STATUS_MSG) {
      throw new MatrixError('M_TOO_LARGE', `status_msg is longer than ${MAX_STATUS_MSG} characters.`);
    }
    const now = this.#now();
    const held = this.#presence.get(actor.userId);
    const changed = held?.presence !== presence || held.statusMsg !== statusMsg;
    const next: Presence = {
      presence,
      lastActiveTs: now,
      currentlyActive: presence === 'online',
      serial: changed ? this.#next() : (held?.serial ?? this.#next()),
      remote: false,
      syncing: held?.syncing ?? 0,
    };
    if (statusMsg !== undefined) next.statusMsg = statusMsg;
    this.#keepPresence(actor.userId, next);
    if (changed) await this.#presenceChanged(actor.userId, next);
  }

  /**
   * As Synapse: a /sync brings a user from offline (or unknown) to its `set_presence`, and to `unavailable`
   * when it asks so; it never overrides a presence the user set (a /sync as `online` keeps `unavailable`).
   */
  syncing(actor: RoomActor, presence: PresenceState): void {
    // `set_presence=offline`: the client does not want to be seen online; the /sync changes nothing.
    if (presence === 'offline') return;
    const held = this.#presence.get(actor.userId);
    const now = this.#now();
    const moves = held === undefined || held.presence === 'offline' || presence === 'unavailable';
    if (held !== undefined && (!moves || held.presence === presence)) {
      held.syncing++;
      held.lastActiveTs = now;
      if (presence === 'online') held.currentlyActive = held.presence === 'online';
      return;
    }
    const next: Presence = {
      presence,
      lastActiveTs: now,
      currentlyActive: presence === 'online',
      serial: this.#next(),
      remote: false,
      syncing: (held?.syncing ?? 0) + 1,
    };
    if (held?.statusMsg !== undefined) next.statusMsg = held.statusMsg;
    this.#keepPresence(actor.userId, next);
    void this.#presenceChanged(actor.userId, next);
  }

  syncDone(actor: RoomActor): void {
    const held = this.#presence.get(actor.userId);
    if (held === undefined || held.syncing === 0) return;
    held.syncing--;
    held.lastActiveTs = Math.max(held.lastActiveTs, this.#now());
  }

  async presence(actor: RoomActor, userId: string): Promise<PresenceView | null> {
    if (userId !== actor.userId && !(await this.#sharesRoom(actor, userId))) return null;
    const held = this.#presence.get(userId);
    return held === undefined ? null : presenceView(userId, held);
  }

  async presenceOf(
    actor: RoomActor,
    since: EphemeralPosition | undefined,
    _to: EphemeralPosition,
  ): Promise<PresenceView[]> {
    const memorySince = since === undefined || since.memory > this.#serial ? 0 : since.memory;
    const changed = [...this.#presence].filter(([, p]) => p.serial > memorySince);
    if (changed.length === 0) return [];
    const own = changed.filter(([userId]) => userId === actor.userId);
    const others = changed.filter(([userId]) => userId !== actor.userId);
    const visible = others.length === 0 ? new Set<string>() : await this.#roomMates(actor);
    return [...own, ...others.filter(([userId]) => visible.has(userId))].map(([userId, p]) => presenceView(userId, p));
  }

  /**
   * Takes in an EDU another home sent for the server `origin` (see the file comment). Typing and receipts
   * count only for users of `origin` joined to a room held here; presence only for users of `origin`.
   */
  async receiveEdu(origin: string, edu: unknown): Promise<EduOutcome> {
    const outcome: EduOutcome = { accepted: 0, refused: [] };
    let size: number;
    try {
      size = Buffer.byteLength(JSON.stringify(edu) ?? '');
    } catch {
      return { accepted: 0, refused: ['the EDU is not JSON'] };
    }
    if (size > MAX_EDU_BYTES) return { accepted: 0, refused: [`the EDU is larger than ${MAX_EDU_BYTES} bytes`] };
    if (!isObject(edu) || !isObject(edu['content'])) return { accepted: 0, refused: ['the EDU has no content object'] };
    const content = edu['content'];
    switch (edu['edu_type']) {
      case 'm.typing':
        await this.#receiveTyping(origin, content, outcome);
        break;
      case 'm.receipt':
        await this.#receiveReceipts(origin, content, outcome);
        break;
      case 'm.presence':
        await this.#receivePresence(origin, content, outcome);
        break;
      default:
        outcome.refused.push(`unknown edu_type ${JSON.stringify(edu['edu_type'])}`);
    }
    return outcome;
  }

  async #receiveTyping(origin: string, content: Record<string, unknown>, outcome: EduOutcome): Promise<void> {
    const { room_id: roomId, user_id: userId, typing } = content;
    if (!isId(roomId) || !isId(userId) || typeof typing !== 'boolean') {
      outcome.refused.push('m.typing needs room_id, user_id and typing');
      return;
    }
    if (!(await this.#remoteMember(origin, userId, roomId, outcome))) return;
    if (this.#applyTyping(roomId, userId, typing, MAX_TYPING_TIMEOUT_MS)) await this.#wakeRoom(roomId);
    outcome.accepted++;
  }

  async #receiveReceipts(origin: string, content: Record<string, unknown>, outcome: EduOutcome): Promise<void> {
    const entries: Array<[string, string, unknown]> = [];
    for (const [roomId, byType] of Object.entries(content)) {
      if (!isObject(byType)) {
        outcome.refused.push(`receipts of ${roomId} are not an object`);
        continue;
      }
      for (const [type, byUser] of Object.entries(byType)) {
        // Only public read receipts travel between servers.
        if (type !== 'm.read' || !isObject(byUser)) {
          outcome.refused.push(`receipt type ${type} is not taken from other homes`);
          continue;
        }
        for (const [userId, entry] of Object.entries(byUser)) entries.push([roomId, userId, entry]);
      }
    }
    if (entries.length > MAX_EDU_ENTRIES) {
      outcome.refused.push(`more than ${MAX_EDU_ENTRIES} receipts in one EDU`);
      return;
    }
    const woken = new Set<string>();
    for (const [roomId, userId, entry] of entries) {
      const eventId = isObject(entry) && Array.isArray(entry['event_ids']) ? entry['event_ids'][0] : undefined;
      const data = isObject(entry) && isObject(entry['data']) ? entry['data'] : undefined;
      const ts = data?.['ts'];
      const threadId = data?.['thread_id'];
      if (!isId(roomId) || !isId(eventId) || typeof ts !== 'number' || !Number.isSafeInteger(ts)) {
        outcome.refused.push(`the receipt of ${userId} in ${roomId} needs one event id and data.ts`);
        continue;
      }
      if (threadId !== undefined && !isId(threadId)) {
        outcome.refused.push(`the receipt of ${userId} in ${roomId} has a bad thread_id`);
        continue;
      }
      if (!(await this.#remoteMember(origin, userId, roomId, outcome))) continue;
      const stored = await this.#receipts.putReceipt({
        roomId,
        receiptType: 'm.read',
        userId,
        threadId: threadId ?? null,
        eventId,
        eventStream: await this.#rooms.streamOrderingOf(roomId, eventId),
        ts,
      });
      outcome.accepted++;
      if (stored !== null) woken.add(roomId);
    }
    for (const roomId of woken) await this.#wakeRoom(roomId);
  }

  async #receivePresence(origin: string, content: Record<string, unknown>, outcome: EduOutcome): Promise<void> {
    const push = content['push'];
    if (!Array.isArray(push)) {
      outcome.refused.push('m.presence needs a push list');
      return;
    }
    if (push.length > MAX_EDU_ENTRIES) {
      outcome.refused.push(`more than ${MAX_EDU_ENTRIES} presence updates in one EDU`);
      return;
    }
    for (const entry of push) {
      const userId = isObject(entry) ? entry['user_id'] : undefined;
      const presence = isObject(entry) ? entry['presence'] : undefined;
      const ago = isObject(entry) ? entry['last_active_ago'] : undefined;
      const statusMsg = isObject(entry) ? entry['status_msg'] : undefined;
      if (
        !isId(userId) ||
        !isPresenceState(presence) ||
        typeof ago !== 'number' ||
        !Number.isSafeInteger(ago) ||
        ago < 0 ||
        (statusMsg !== undefined && (typeof statusMsg !== 'string' || statusMsg.length > MAX_STATUS_MSG))
      ) {
        outcome.refused.push('a presence update needs user_id, presence, last_active_ago and a short status_msg');
        continue;
      }
      if (serverNameOf(userId) !== origin) {
        outcome.refused.push(`${userId} is not a user of ${origin}`);
        continue;
      }
      if (!this.#presence.has(userId) && this.#presence.size >= MAX_PRESENCE_USERS) {
        outcome.refused.push('this home keeps no more presence');
        continue;
      }
      const next: Presence = {
        presence,
        lastActiveTs: this.#now() - ago,
        currentlyActive: isObject(entry) && entry['currently_active'] === true,
        serial: this.#next(),
        remote: true,
        syncing: 0,
      };
      if (typeof statusMsg === 'string') next.statusMsg = statusMsg;
      this.#presence.set(userId, next);
      outcome.accepted++;
      await this.#wakeServersOf(origin);
    }
  }

  /** Whether `userId` is of `origin` and joined to `roomId` here; says why not in `outcome`. */
  async #remoteMember(origin: string, userId: string, roomId: string, outcome: EduOutcome): Promise<boolean> {
    if (!isUserId(userId) || serverNameOf(userId) !== origin) {
      outcome.refused.push(`${userId} is not a user of ${origin}`);
      return false;
    }
    if (!isId(roomId) || !(await this.#rooms.joinedMembers(roomId)).includes(userId)) {
      outcome.refused.push(`${userId} is not joined to ${roomId} on this home`);
      return false;
    }
    return true;
  }

  /** Sets or clears one user's typing in a room; whether anything changed. */
  #applyTyping(roomId: string, userId: string, typing: boolean, timeoutMs: number): boolean {
    let room = this.#typing.get(roomId);
    const timer = room?.users.get(userId);
    if (timer !== undefined) clearTimeout(timer);
    if (!typing) {
      if (room === undefined || timer === undefined) return false;
      room.users.delete(userId);
      room.serial = this.#next();
      return true;
    }
    if (room === undefined) {
      this.#dropIdleTypingRooms();
      room = { serial: 0, users: new Map() };
      this.#typing.set(roomId, room);
    }
    if (timer === undefined && room.users.size >= MAX_TYPING_PER_ROOM) return false;
    const ms = Math.max(0, Math.min(timeoutMs, MAX_TYPING_TIMEOUT_MS));
    const expiry = setTimeout(() => {
      if (this.#applyTyping(roomId, userId, false, 0)) void this.#wakeRoom(roomId);
    }, ms);
    expiry.unref();
    room.users.set(userId, expiry);
    // A renewal (still typing) is no news; only a start is.
    if (timer === undefined) room.serial = this.#next();
    return timer === undefined;
  }

  /** Keeps the typing map bounded: drops the rooms where nobody types, oldest change first. */
  #dropIdleTypingRooms(): void {
    if (this.#typing.size < MAX_TYPING_ROOMS) return;
    const idle = [...this.#typing].filter(([, r]) => r.users.size === 0).sort((a, b) => a[1].serial - b[1].serial);
    for (const [roomId] of idle.slice(0, Math.max(1, Math.floor(MAX_TYPING_ROOMS / 10)))) this.#typing.delete(roomId);
  }

  #keepPresence(userId: string, presence: Presence): void {
    // Local users are always kept (they are hosted here, so bounded by the accounts).
    this.#presence.set(userId, presence);
  }

  async #presenceChanged(userId: string, presence: Presence): Promise<void> {
    const entry: PresenceEduEntry = {
      user_id: userId,
      presence: presence.presence,
      last_active_ago: Math.max(0, this.#now() - presence.lastActiveTs),
      currently_active: presence.currentlyActive,
    };
    if (presence.statusMsg !== undefined) entry.status_msg = presence.statusMsg;
    this.#emit({ edu: { edu_type: 'm.presence', content: { push: [entry] } } });
    const server = serverNameOf(userId);
    if (server !== undefined) await this.#wakeServersOf(server);
  }

  /** Local users with no /sync in flight and no update for PRESENCE_TIMEOUT_MS go offline. */
  async #expirePresence(): Promise<void> {
    const now = this.#now();
    for (const [userId, p] of this.#presence) {
      if (p.remote || p.presence === 'offline' || p.syncing > 0 || now - p.lastActiveTs < PRESENCE_TIMEOUT_MS) continue;
      const next: Presence = { ...p, presence: 'offline', currentlyActive: false, serial: this.#next() };
      this.#presence.set(userId, next);
      await this.#presenceChanged(userId, next).catch(() => undefined);
    }
  }

  async #requireJoined(userId: string, roomId: string): Promise<void> {
    if (!(await this.#rooms.joinedMembers(roomId)).includes(userId)) {
      throw new MatrixError('M_FORBIDDEN', `You are not joined to ${roomId}.`);
    }
  }

  /** The users sharing a joined room with the actor. */
  async #roomMates(actor: RoomActor): Promise<Set<string>> {
    const mates = new Set<string>();
    for (const roomId of await this.#rooms.joinedRooms(actor)) {
      for (const userId of await this.#rooms.joinedMembers(roomId)) mates.add(userId);
    }
    return mates;
  }

  async #sharesRoom(actor: RoomActor, userId: string): Promise<boolean> {
    for (const roomId of await this.#rooms.joinedRooms(actor)) {
      if ((await this.#rooms.joinedMembers(roomId)).includes(userId)) return true;
    }
    return false;
  }

  #next(): number {
    this.#serial++;
    return this.#serial;
  }

  #emit(edu: LocalEdu): void {
    for (const listener of this.#eduListeners) listener(edu);
  }

  #wake(serverNames: string[]): void {
    if (serverNames.length === 0) return;
    for (const listener of this.#wakeListeners) listener(serverNames);
  }

  /** Wakes the /syncs of every server with a user joined to the room. */
  async #wakeRoom(roomId: string): Promise<void> {
    const servers = new Set<string>();
    for (const userId of await this.#rooms.joinedMembers(roomId)) {
      const server = serverNameOf(userId);
      if (server !== undefined) servers.add(server);
    }
    this.#wake([...servers]);
  }

  /** Wakes the /syncs of every server sharing a room with users of `serverName` (and its own). */
  async #wakeServersOf(serverName: string): Promise<void> {
    const servers = new Set<string>([serverName]);
    for (const roomId of await this.#rooms.joinedRoomsOfServer(serverName)) {
      for (const userId of await this.#rooms.joinedMembers(roomId)) {
        const server = serverNameOf(userId);
        if (server !== undefined) servers.add(server);
      }
    }
    this.#wake([...servers]);
  }
}

/** `m.receipt` contents per room (`{ eventId: { type: { userId: { ts, thread_id? } } } }`); private ones of `viewer` only. */
function receiptContents(receipts: StoredReceipt[], viewer: string): Map<string, Record<string, unknown>> {
  const rooms = new Map<string, Record<string, Record<string, Record<string, Record<string, unknown>>>>>();
  for (const r of receipts) {
    if (r.receiptType === 'm.read.private' && r.userId !== viewer) continue;
    const content = rooms.get(r.roomId) ?? {};
    const byType = (content[r.eventId] ??= {});
    const byUser = (byType[r.receiptType] ??= {});
    byUser[r.userId] = r.threadId === null ? { ts: r.ts } : { ts: r.ts, thread_id: r.threadId };
    rooms.set(r.roomId, content);
  }
  return rooms;
}

function presenceView(userId: string, p: Presence): PresenceView {
  const view: PresenceView = {
    userId,
    presence: p.presence,
    lastActiveTs: p.lastActiveTs,
    currentlyActive: p.currentlyActive,
  };
  if (p.statusMsg !== undefined) view.statusMsg = p.statusMsg;
  return view;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && Buffer.byteLength(value) <= MAX_ID;
}

function isPresenceState(value: unknown): value is PresenceState {
  return value === 'online' || value === 'offline' || value === 'unavailable';
}
