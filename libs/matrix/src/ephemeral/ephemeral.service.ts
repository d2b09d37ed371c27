import { Inject, Injectable } from '@nestjs/common';
import { pairKey } from '@polyhome/sync';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { bodyOf, type JsonRecord } from '../common/json.js';
import { MATRIX_HOME_PORT, type MatrixHomePort } from '../port.js';
import { actorOf } from '../rooms/room-api.service.js';
import { parseEventId, parseRoomId } from '../rooms/room-requests.js';
import {
  PRESENCE_STATES,
  RECEIPT_TYPES,
  type MatrixEphemeralPort,
  type PresenceState,
  type PresenceView,
  type ReceiptType,
} from './ephemeral-port.js';

/** A typing notification lasts this long when the client gives no `timeout` (Synapse's default). */
const DEFAULT_TYPING_TIMEOUT_MS = 30_000;
/** Longest `thread_id` (the spec's identifier limit). */
const MAX_THREAD_ID = 255;

type Empty = Record<string, never>;

/**
 * Typing, receipts, read markers and presence of the client-server API ("Typing Notifications", "Receipts",
 * "Fully read markers", "Presence"), over the home's ephemeral port. Requests are checked here; what is
 * allowed (joined, visible event) is the port's to say.
 */
@Injectable()
export class EphemeralService {
  constructor(@Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort) {}

  /** PUT /rooms/{roomId}/typing/{userId} */
  async typing(session: MatrixSession, roomId: string, userId: string, input: unknown): Promise<Empty> {
    own(session, userId, 'send typing notifications for');
    const body = bodyOf(input);
    const typing = body['typing'];
    if (typeof typing !== 'boolean') throw new MatrixError('M_BAD_JSON', 'typing must be true or false.');
    const timeout = body['timeout'] ?? DEFAULT_TYPING_TIMEOUT_MS;
    if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout < 0) {
      throw new MatrixError('M_BAD_JSON', 'timeout must be a number of milliseconds.');
    }
    await this.ephemeral().setTyping(actorOf(session), parseRoomId(roomId), typing, timeout);
    return {};
  }

  /** POST /rooms/{roomId}/receipt/{receiptType}/{eventId} */
  async receipt(
    session: MatrixSession,
    roomId: string,
    receiptType: string,
    eventId: string,
    input: unknown,
  ): Promise<Empty> {
    const room = parseRoomId(roomId);
    const event = parseEventId(eventId);
    const body = input === undefined || input === null ? {} : bodyOf(input);
    const threadId = body['thread_id'];
    if (
      threadId !== undefined &&
      (typeof threadId !== 'string' || threadId === '' || threadId.length > MAX_THREAD_ID)
    ) {
      throw new MatrixError('M_INVALID_PARAM', 'thread_id must be `main` or the id of a thread root event.');
    }
    if (receiptType === 'm.fully_read') {
      if (threadId !== undefined) throw new MatrixError('M_INVALID_PARAM', 'm.fully_read takes no thread_id.');
      await this.fullyRead(session, room, event);
      return {};
    }
    if (!isReceiptType(receiptType)) {
      throw new MatrixError(
        'M_INVALID_PARAM',
        `Receipt type ${receiptType.slice(0, 80)} is not one of ${[...RECEIPT_TYPES, 'm.fully_read'].join(', ')}.`,
      );
    }
    await this.ephemeral().setReceipt(actorOf(session), room, receiptType, event, threadId);
    return {};
  }

  /** POST /rooms/{roomId}/read_markers: the fully-read marker (room account data) and receipts at once. */
  async readMarkers(session: MatrixSession, roomId: string, input: unknown): Promise<Empty> {
    const room = parseRoomId(roomId);
    const body = bodyOf(input);
    const fullyRead =
      body['m.fully_read'] === undefined ? undefined : parseEventId(body['m.fully_read'], 'm.fully_read');
    const receipts: Array<[ReceiptType, string]> = [];
    for (const type of RECEIPT_TYPES) {
      if (body[type] !== undefined) receipts.push([type, parseEventId(body[type], type)]);
    }
    if (fullyRead !== undefined) await this.fullyRead(session, room, fullyRead);
    for (const [type, event] of receipts) {
      await this.ephemeral().setReceipt(actorOf(session), room, type, event, undefined);
    }
    return {};
  }

  /** PUT /presence/{userId}/status */
  async setPresence(session: MatrixSession, userId: string, input: unknown): Promise<Empty> {
    own(session, userId, 'set the presence of');
    const body = bodyOf(input);
    const presence = body['presence'];
    if (!isPresenceState(presence)) {
      throw new MatrixError('M_BAD_JSON', `presence must be one of ${PRESENCE_STATES.join(', ')}.`);
    }
    const statusMsg = body['status_msg'];
    if (statusMsg !== undefined && statusMsg !== null && typeof statusMsg !== 'string') {
      throw new MatrixError('M_BAD_JSON', 'status_msg must be a string.');
    }
    await this.ephemeral().setPresence(actorOf(session), presence, statusMsg ?? undefined);
    return {};
  }

  /** GET /presence/{userId}/status */
  async presence(session: MatrixSession, userId: string): Promise<JsonRecord> {
    const view = await this.ephemeral().presence(actorOf(session), userId);
    if (view === null) {
      throw new MatrixError(
        'M_NOT_FOUND',
        `No presence is known for ${userId.slice(0, 300)} here (or you share no room with that user).`,
      );
    }
    return presenceContent(view, Date.now());
  }

  /** The fully-read marker as the spec keeps it: room account data `m.fully_read`, replicated as an op. */
  private async fullyRead(session: MatrixSession, roomId: string, eventId: string): Promise<void> {
    const rooms = this.port.rooms;
    if (rooms === undefined) throw unavailable();
    // Only an event the user may see (M_NOT_FOUND otherwise, as for a receipt).
    await rooms.event(actorOf(session), roomId, eventId);
    const body = { room_id: roomId, type: 'm.fully_read', content_json: JSON.stringify({ event_id: eventId }) };
    await this.port.applyLocal(session.serverName, [
      { op: 'room_account_data.put', key: pairKey(roomId, 'm.fully_read'), body },
    ]);
  }

  private ephemeral(): MatrixEphemeralPort {
    const port = this.port.ephemeral;
    if (port === undefined) throw unavailable();
    return port;
  }
}

/** The content of an `m.presence` event, and the answer of `GET /presence/{userId}/status`. */
export function presenceContent(view: PresenceView, now: number): JsonRecord {
  const content: JsonRecord = { presence: view.presence };
  if (view.lastActiveTs !== undefined) content['last_active_ago'] = Math.max(0, now - view.lastActiveTs);
  if (view.currentlyActive !== undefined) content['currently_active'] = view.currentlyActive;
  if (view.statusMsg !== undefined) content['status_msg'] = view.statusMsg;
  return content;
}

/** The `set_presence` of a /sync (default `online`). */
export function parseSetPresence(value: unknown): PresenceState {
  if (value === undefined || value === '') return 'online';
  if (!isPresenceState(value)) {
    throw new MatrixError('M_INVALID_PARAM', `set_presence must be one of ${PRESENCE_STATES.join(', ')}.`);
  }
  return value;
}

function own(session: MatrixSession, userId: string, action: string): void {
  if (userId !== session.userId) throw new MatrixError('M_FORBIDDEN', `You cannot ${action} another user.`);
}

function unavailable(): MatrixError {
  return new MatrixError('M_UNRECOGNIZED', 'This home has no rooms, so no typing, receipts or presence.', 404);
}

function isReceiptType(value: string): value is ReceiptType {
  return (RECEIPT_TYPES as readonly string[]).includes(value);
}

function isPresenceState(value: unknown): value is PresenceState {
  return typeof value === 'string' && (PRESENCE_STATES as readonly string[]).includes(value);
}
