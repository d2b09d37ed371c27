import { Inject, Injectable } from '@nestjs/common';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { isRecord, type JsonRecord } from '../common/json.js';
import { ruleset } from '../account/push-rules.js';
import {
  accountDataOf as accountDataBodies,
  contentOf,
  pushRulesOf,
  roomAccountDataOf,
} from '../account/state-views.js';
import {
  MATRIX_HOME_PORT,
  MATRIX_STORE,
  type MatrixAccountState,
  type MatrixHomePort,
  type MatrixStore,
} from '../port.js';
import { clientEvent, strippedEvent } from '../rooms/room-events.js';
import { ChangeFeedService } from './change-feed.service.js';
import { parseSyncToken, syncToken } from './sync-token.js';

/** Longest a /sync waits, whatever the client asks: proxies and clients time out beyond this. */
export const MAX_SYNC_TIMEOUT_MS = 30_000;

/**
 * /sync over this home's change stream: an initial sync gives the whole account view; an incremental one
 * the rooms and device lists changed after `since`, waiting up to `timeout` for a change when there is none.
 */
@Injectable()
export class SyncService {
  constructor(
    @Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort,
    @Inject(MATRIX_STORE) private readonly store: MatrixStore,
    private readonly feed: ChangeFeedService,
  ) {}

  /** GET /sync with the query as given (`filter`, `set_presence`, `full_state` are accepted and ignored). */
  async sync(session: MatrixSession, query: Record<string, unknown>): Promise<JsonRecord> {
    const since = query['since'] === undefined ? undefined : parseSyncToken(query['since'], 'since');
    const timeout = parseTimeout(query['timeout']);
    if (since === undefined) return this.build(session, await this.store.position(), undefined);
    const deadline = Date.now() + timeout;
    for (;;) {
      const wait = this.feed.waitForChange(session.serverName, Math.max(0, deadline - Date.now()));
      const changes = await this.store.changesSince(session.serverName, since);
      if (changes.expired || changes.keys.length > 0 || Date.now() >= deadline) {
        wait.cancel();
        return this.build(session, changes.position, changes.expired ? 'expired' : changes.keys);
      }
      await wait.promise;
    }
  }

  /**
   * The response at `position`: `changed` lists the keys changed since the client's token (undefined: initial
   * sync; 'expired': the stream was pruned past the token, so every room and the device list count as changed,
   * left rooms included, and timelines are marked limited, as Synapse answers a token older than its caches).
   */
  private async build(
    session: MatrixSession,
    position: number,
    changed: string[] | 'expired' | undefined,
  ): Promise<JsonRecord> {
    const state = await this.port.state(session.serverName);
    const rooms: { join: JsonRecord; invite: JsonRecord; leave: JsonRecord; knock: JsonRecord } = {
      join: {},
      invite: {},
      leave: {},
      knock: {},
    };
    const roomIds =
      changed === undefined || changed === 'expired'
        ? Object.keys(state.memberships)
        : [
            ...new Set([
              ...changed
                .filter((k) => k.startsWith('member:') || k.startsWith('room:'))
                .map((k) => k.slice(k.indexOf(':') + 1)),
              ...changed.filter((k) => k.startsWith('room_account_data:')).flatMap(roomOfAccountDataKey),
            ]),
          ];
    for (const roomId of roomIds) {
      const membership = state.memberships[roomId];
      if (membership === undefined) continue;
      const event = isRecord(membership['event']) ? clientEvent(membership['event']) : undefined;
      const timeline = { events: event === undefined ? [] : [event], limited: changed === 'expired' };
      switch (membership['membership']) {
        case 'join': {
          const others = (await this.store.roomEvents(session.serverName, roomId)).map(clientEvent);
          rooms.join[roomId] = {
            state: { events: others },
            timeline,
            ephemeral: { events: [] },
            account_data: { events: [] },
            unread_notifications: { highlight_count: 0, notification_count: 0 },
            summary: {},
          };
          break;
        }
        case 'invite':
          rooms.invite[roomId] = { invite_state: { events: event === undefined ? [] : [strippedEvent(event)] } };
          break;
        case 'knock':
          rooms.knock[roomId] = { knock_state: { events: event === undefined ? [] : [strippedEvent(event)] } };
          break;
        default:
          // Left and banned rooms are news only to an incremental sync; an initial one leaves them out, as Matrix does.
          if (changed !== undefined) rooms.leave[roomId] = { state: { events: [] }, timeline };
      }
    }
    const accountData = accountDataOf(session.userId, state, changed);
    for (const [roomId, events] of accountData.rooms) {
      const joined = rooms.join[roomId];
      if (isRecord(joined)) joined['account_data'] = { events };
    }
    const devicesChanged =
      changed === 'expired' || (changed ?? []).some((k) => k.startsWith('device:') || k.startsWith('cross_signing:'));
    return {
      next_batch: syncToken(position),
      rooms,
      device_lists: { changed: devicesChanged ? [session.userId] : [], left: [] },
      device_one_time_keys_count: await this.store.countOneTimeKeys(session.serverName, session.deviceId),
      device_unused_fallback_key_types: await this.store.unusedFallbackKeyTypes(session.serverName, session.deviceId),
      account_data: { events: accountData.global },
      presence: { events: [] },
      to_device: { events: [] },
    };
  }
}

/**
 * The account-data events of a sync: all of them on an initial (or expired) sync, else those whose keys
 * changed; `m.push_rules` is the whole ruleset whenever any rule changed. Per-room events go to the rooms the
 * response lists as joined.
 */
function accountDataOf(
  userId: string,
  state: MatrixAccountState,
  changed: string[] | 'expired' | undefined,
): { global: JsonRecord[]; rooms: Map<string, JsonRecord[]> } {
  const all = changed === undefined || changed === 'expired';
  const keys = all ? [] : changed;
  const has = (prefix: string, key: string): boolean => all || keys.includes(`${prefix}:${key}`);
  const global: JsonRecord[] = [];
  for (const [type, body] of Object.entries(accountDataBodies(state))) {
    if (has('account_data', type)) global.push({ type, content: contentOf(body) });
  }
  if (all || keys.some((k) => k.startsWith('push_rule:'))) {
    global.push({ type: 'm.push_rules', content: { global: ruleset(userId, pushRulesOf(state)) } });
  }
  const rooms = new Map<string, JsonRecord[]>();
  for (const [key, body] of Object.entries(roomAccountDataOf(state))) {
    if (!has('room_account_data', key)) continue;
    const list = rooms.get(body.room_id) ?? [];
    list.push({ type: body.type, content: contentOf(body) });
    rooms.set(body.room_id, list);
  }
  return { global, rooms };
}

/** The room of a changed `room_account_data:<["room","type"]>` key. */
function roomOfAccountDataKey(key: string): string[] {
  try {
    const pair: unknown = JSON.parse(key.slice('room_account_data:'.length));
    return Array.isArray(pair) && typeof pair[0] === 'string' ? [pair[0]] : [];
  } catch {
    return [];
  }
}

function parseTimeout(value: unknown): number {
  if (value === undefined || value === '') return 0;
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value))
    throw new MatrixError('M_INVALID_PARAM', 'timeout must be milliseconds.');
  return Math.min(Number(value), MAX_SYNC_TIMEOUT_MS);
}
