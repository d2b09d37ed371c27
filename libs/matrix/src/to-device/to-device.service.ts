import { Inject, Injectable } from '@nestjs/common';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { bodyOf, isRecord } from '../common/json.js';
import { MATRIX_HOME_PORT, type MatrixHomePort } from '../port.js';
import { actorOf } from '../rooms/room-api.service.js';
import { parseContent, parseEventType, parseTxnId, parseUserId } from '../rooms/room-requests.js';
import type { ToDeviceMessages } from './to-device-port.js';

/** Most messages (user and device pairs, `*` counting once) one request may carry. */
export const MAX_TO_DEVICE_MESSAGES = 1_000;
/** Most to-device events one /sync response carries (the rest come with the next). */
export const MAX_SYNC_TO_DEVICE = 100;

// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
const DEVICE_ID = /^[^\x00-\x1f\x7f]+$/u;

/**
 * Parses `PUT /sendToDevice` bodies: `messages` must be an object of user IDs to objects of device IDs (or `*`)
 * to content objects (each at most 60,000 bytes as JSON), at most MAX_TO_DEVICE_MESSAGES in all.
 */
export function parseToDeviceMessages(body: unknown): ToDeviceMessages {
  const messages = bodyOf(body)['messages'];
  if (messages === undefined) throw new MatrixError('M_MISSING_PARAM', 'messages is required.');
  if (!isRecord(messages)) {
    throw new MatrixError('M_BAD_JSON', 'messages must be an object of user IDs to objects of device IDs.');
  }
  const parsed: ToDeviceMessages = new Map();
  let count = 0;
  for (const [userId, devices] of Object.entries(messages)) {
    parseUserId(userId, `messages key ${JSON.stringify(userId.slice(0, 64))}`);
    if (!isRecord(devices)) throw new MatrixError('M_BAD_JSON', `messages.${userId} must be an object of device IDs.`);
    const perUser = new Map<string, Record<string, unknown>>();
    for (const [deviceId, content] of Object.entries(devices)) {
      if (!DEVICE_ID.test(deviceId) || new TextEncoder().encode(deviceId).length > 255) {
        throw new MatrixError('M_INVALID_PARAM', `messages.${userId}: device IDs must be 1 to 255 bytes, or *.`);
      }
      count += 1;
      if (count > MAX_TO_DEVICE_MESSAGES) {
        throw new MatrixError(
          'M_TOO_LARGE',
          `A request may carry at most ${MAX_TO_DEVICE_MESSAGES} messages; send the rest in another request.`,
        );
      }
      perUser.set(deviceId, parseContent(content, `messages.${userId}.${deviceId}`));
    }
    if (perUser.size > 0) parsed.set(userId, perUser);
  }
  return parsed;
}

/** `PUT /sendToDevice`: checked here, sent by the home's to-device port. */
@Injectable()
export class ToDeviceService {
  constructor(@Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort) {}

  async send(session: MatrixSession, eventType: string, txnId: string, body: unknown): Promise<Record<string, never>> {
    const toDevice = this.port.toDevice;
    if (toDevice === undefined) {
      throw new MatrixError('M_UNRECOGNIZED', 'This home does not carry to-device messages.', 404);
    }
    const type = parseEventType(eventType);
    const txn = parseTxnId(txnId);
    const messages = parseToDeviceMessages(body);
    if (messages.size > 0) await toDevice.send(actorOf(session), type, txn, messages);
    return {};
  }
}
