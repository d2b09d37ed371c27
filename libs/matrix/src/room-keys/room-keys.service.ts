import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { canonicalJsonBytes } from '@polyhome/identity';
import {
  compareVersionIds,
  isBetterRoomKey,
  MAX_BODY_BYTES,
  MAX_KEY_BYTES,
  MAX_OPS_PER_BATCH,
  namespaceOf,
  parseVersionId,
  roomKeyKey,
  roomKeyPrefix,
  summaryOf,
  versionId,
  type RoomKeyBody,
  type StateSummary,
  type RoomKeyVersionBody,
} from '@polyhome/sync';
import type { MatrixSession } from '../auth/session.js';
import { MatrixError } from '../common/errors.js';
import { bodyOf, isRecord, type JsonRecord } from '../common/json.js';
import { MATRIX_HOME_PORT, type MatrixHomePort, type MatrixLocalChange, type MatrixStateRow } from '../port.js';

/** Session keys one request may upload (a 256 KiB body holds a few hundred anyway). */
export const MAX_KEYS_PER_UPLOAD = 1000;
const VERSIONS = namespaceOf('room_keys.version.put');
const KEYS = namespaceOf('room_keys.key.put');
const ROOM_ID = /^![^:]{1,255}:.{1,255}$/;
const encoder = new TextEncoder();

/** A session key as the spec's `KeyBackupData`. */
export interface KeyBackupData {
  first_message_index: number;
  forwarded_count: number;
  is_verified: boolean;
  session_data: JsonRecord;
}

/** What key uploads and deletions answer: the backup's etag and key count afterwards. */
export interface RoomKeysCount {
  etag: string;
  count: number;
}

/** Which keys a request names: all of a version, those of one room, or one session. */
interface KeysScope {
  version: string;
  roomId?: string;
  sessionId?: string;
}

interface VersionRow {
  version: string;
  body: RoomKeyVersionBody | null;
}

/**
 * Server-side key backup (`/room_keys`), replicated: a version is a `room_keys.version.put` op (a tombstone
 * deletes it), a session key a `room_keys.key.put` keyed by version, room and session. Both namespaces are lazy:
 * never in the whole state `/sync` reads, read here a version (or room) at a time through `port.stateRows`.
 * Version ids are `<counter>-<home tag>`; the current version is the greatest live id, so homes agree on it.
 * The etag is a hash of the version's keys, the same on every home holding the same ones, kept up to date by the
 * store (`stateSummary`) so `count` and `etag` cost no read of the keys.
 */
@Injectable()
export class RoomKeysService {
  // Backup writes of an account run one at a time on this home: a new version's counter and the replacement
  // rule read what the previous write made.
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(@Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort) {}

  /** POST /room_keys/version: a new version, which becomes the current one. */
  createVersion(session: MatrixSession, input: unknown): Promise<{ version: string }> {
    const body = versionBody(bodyOf(input));
    return this.serially(session.serverName, async () => {
      const rows = await this.versionRows(session.serverName);
      const n = Math.max(0, ...rows.map((r) => parseVersionId(r.version)?.n ?? 0)) + 1;
      const version = versionId(n, homeTag(this.port.homeId));
      await this.apply(session.serverName, [{ op: 'room_keys.version.put', key: version, body: { ...body } }]);
      return { version };
    });
  }

  /** GET /room_keys/version[/{version}]: the version (the current one without `version`), its count and etag. */
  async getVersion(session: MatrixSession, version?: string): Promise<JsonRecord> {
    const found = await this.liveVersion(session.serverName, version);
    return {
      algorithm: found.body.algorithm,
      auth_data: JSON.parse(found.body.auth_data_json) as JsonRecord,
      version: found.version,
      ...(await this.countOf(session.serverName, found.version)),
    };
  }

  /** PUT /room_keys/version/{version}: new `auth_data`; the algorithm cannot change. */
  updateVersion(session: MatrixSession, version: string, input: unknown): Promise<Record<string, never>> {
    const raw = bodyOf(input);
    const body = versionBody(raw);
    if (raw['version'] !== undefined && raw['version'] !== version) {
      throw new MatrixError('M_INVALID_PARAM', 'The version in the body must be the one in the path.');
    }
    return this.serially(session.serverName, async () => {
      const found = await this.liveVersion(session.serverName, version);
      if (found.body.algorithm !== body.algorithm) {
        throw new MatrixError(
          'M_INVALID_PARAM',
          `The algorithm of backup version ${version} is ${found.body.algorithm}; make a new version to change it.`,
        );
      }
      await this.apply(session.serverName, [{ op: 'room_keys.version.put', key: version, body: { ...body } }]);
      return {};
    });
  }

  /** DELETE /room_keys/version/{version}: the version and its keys are gone (its id is never made again). */
  deleteVersion(session: MatrixSession, version: string): Promise<Record<string, never>> {
    return this.serially(session.serverName, async () => {
      await this.liveVersion(session.serverName, version);
      await this.apply(session.serverName, [{ op: 'room_keys.version.delete', key: version, body: {} }]);
      return {};
    });
  }

  /** GET /room_keys/keys[/{roomId}[/{sessionId}]]?version=. */
  async getKeys(session: MatrixSession, scope: KeysScope): Promise<JsonRecord> {
    checkScope(scope);
    await this.liveVersion(session.serverName, scope.version);
    const rows = await this.keyRows(session.serverName, scope);
    if (scope.sessionId !== undefined) {
      const row = rows.find((r) => r.key === roomKeyKey(scope.version, scope.roomId!, scope.sessionId!));
      if (row === undefined) throw new MatrixError('M_NOT_FOUND', `No key of session ${scope.sessionId} is backed up.`);
      return { ...keyData(row.body) };
    }
    const rooms: Record<string, { sessions: Record<string, KeyBackupData> }> = {};
    for (const { body } of rows) {
      const room = (rooms[body.room_id] ??= { sessions: {} });
      room.sessions[body.session_id] = keyData(body);
    }
    if (scope.roomId !== undefined) return rooms[scope.roomId] ?? { sessions: {} };
    return { rooms };
  }

  /**
   * PUT /room_keys/keys[/{roomId}[/{sessionId}]]?version=: keys into the current version, each replacing the
   * one held only when better (the spec's rule).
   */
  putKeys(session: MatrixSession, scope: KeysScope, input: unknown): Promise<RoomKeysCount> {
    checkScope(scope);
    const uploaded = uploadedKeys(scope, bodyOf(input));
    return this.serially(session.serverName, async () => {
      const versions = await this.versionRows(session.serverName);
      const current = currentOf(versions);
      if (!versions.some((v) => v.version === scope.version && v.body !== null)) {
        throw new MatrixError('M_NOT_FOUND', `Backup version ${scope.version} does not exist.`);
      }
      if (current?.version !== scope.version) {
        throw new MatrixError(
          'M_WRONG_ROOM_KEYS_VERSION',
          `Backup version ${scope.version} is not the current one (${current?.version}).`,
          undefined,
          { current_version: current?.version },
        );
      }
      // The keys held in the rooms uploaded to: one read per room when the upload names one, else the version's.
      const held = new Map(
        (await this.keyRows(session.serverName, { version: scope.version, roomId: scope.roomId })).map((r) => [
          r.key,
          r.body,
        ]),
      );
      const changes: MatrixLocalChange[] = [];
      for (const body of uploaded) {
        const key = roomKeyKey(body.version, body.room_id, body.session_id);
        const was = held.get(key);
        if (was !== undefined && !isBetterRoomKey(body, was)) continue;
        changes.push({ op: 'room_keys.key.put', key, body: { ...body } });
      }
      if (changes.length > 0) await this.apply(session.serverName, changes);
      return this.countOf(session.serverName, scope.version);
    });
  }

  /** DELETE /room_keys/keys[/{roomId}[/{sessionId}]]?version=: tombstones for the keys named. */
  deleteKeys(session: MatrixSession, scope: KeysScope): Promise<RoomKeysCount> {
    checkScope(scope);
    return this.serially(session.serverName, async () => {
      await this.liveVersion(session.serverName, scope.version);
      const rows = await this.keyRows(session.serverName, scope);
      const gone =
        scope.sessionId === undefined
          ? rows
          : rows.filter((r) => r.key === roomKeyKey(scope.version, scope.roomId!, scope.sessionId!));
      if (gone.length > 0) {
        await this.apply(
          session.serverName,
          gone.map((r) => ({ op: 'room_keys.key.delete', key: r.key, body: {} })),
        );
      }
      return this.countOf(session.serverName, scope.version);
    });
  }

  private rows(serverName: string, namespace: string, prefix?: string): Promise<MatrixStateRow[]> {
    if (this.port.stateRows === undefined) {
      throw new MatrixError('M_UNRECOGNIZED', 'This home does not keep key backups.');
    }
    return this.port.stateRows(serverName, namespace, prefix);
  }

  /** The spec's `count` and an `etag` of a version's keys, from the summary the store keeps (O(1) reads). */
  private async countOf(serverName: string, version: string): Promise<RoomKeysCount> {
    const group = roomKeyPrefix(version);
    const summary =
      this.port.stateSummary === undefined
        ? summaryOf(await this.rows(serverName, KEYS, group))
        : await this.port.stateSummary(serverName, KEYS, group);
    return { etag: etagOf(summary), count: summary.count };
  }

  /** Every version ever made, deleted ones with a null body (their counters are never used again). */
  private async versionRows(serverName: string): Promise<VersionRow[]> {
    return (await this.rows(serverName, VERSIONS)).map((r) => ({
      version: r.key,
      body: r.value as unknown as RoomKeyVersionBody | null,
    }));
  }

  /** The live keys of a version (of one room when `roomId` is given). */
  private async keyRows(serverName: string, scope: KeysScope): Promise<Array<{ key: string; body: RoomKeyBody }>> {
    const rows = await this.rows(serverName, KEYS, roomKeyPrefix(scope.version, scope.roomId));
    const out: Array<{ key: string; body: RoomKeyBody }> = [];
    for (const row of rows)
      if (row.value !== null) out.push({ key: row.key, body: row.value as unknown as RoomKeyBody });
    return out;
  }

  /** The version named (the current one when undefined), or 404. */
  private async liveVersion(
    serverName: string,
    version: string | undefined,
  ): Promise<{ version: string; body: RoomKeyVersionBody }> {
    const versions = await this.versionRows(serverName);
    const found = version === undefined ? currentOf(versions) : versions.find((v) => v.version === version);
    if (found?.body == null) {
      throw new MatrixError(
        'M_NOT_FOUND',
        version === undefined ? 'No backup version exists.' : `Backup version ${version} does not exist.`,
      );
    }
    return { version: found.version, body: found.body };
  }

  private async apply(serverName: string, changes: MatrixLocalChange[]): Promise<void> {
    for (const change of changes) {
      const bytes = canonicalJsonBytes(change.body as never).length;
      if (bytes > MAX_BODY_BYTES) {
        throw new MatrixError('M_TOO_LARGE', `A backed-up item is ${bytes} bytes as JSON; at most ${MAX_BODY_BYTES}.`);
      }
    }
    // A batch of ops holds at most MAX_OPS_PER_BATCH: larger uploads and deletions go in several (each whole).
    for (let i = 0; i < changes.length; i += MAX_OPS_PER_BATCH) {
      await this.port.applyLocal(serverName, changes.slice(i, i + MAX_OPS_PER_BATCH));
    }
  }

  private serially<T>(serverName: string, run: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(serverName) ?? Promise.resolve();
    const next = previous.then(run, run);
    const settled = next.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(serverName, settled);
    void settled.then(() => {
      if (this.queues.get(serverName) === settled) this.queues.delete(serverName);
    });
    return next;
  }
}

/** The greatest live version: the current one on every home holding the same versions. */
function currentOf(versions: VersionRow[]): { version: string; body: RoomKeyVersionBody } | undefined {
  let best: { version: string; body: RoomKeyVersionBody } | undefined;
  for (const { version, body } of versions) {
    if (body !== null && (best === undefined || compareVersionIds(version, best.version) > 0)) best = { version, body };
  }
  return best;
}

/**
 * The etag of a version's keys: from their count and the XOR of their row hashes, so it changes whenever a key is
 * added, replaced or deleted and is the same on every home holding the same winning keys.
 */
function etagOf(summary: StateSummary): string {
  return createHash('sha256')
    .update(`${summary.count}:${Buffer.from(summary.digest).toString('hex')}`)
    .digest('base64url')
    .slice(0, 22);
}

/** The 8 hex digits of a home in the version ids it makes. */
function homeTag(homeId: string): string {
  return createHash('sha256').update(homeId).digest('hex').slice(0, 8);
}

function versionBody(body: JsonRecord): RoomKeyVersionBody {
  const algorithm = body['algorithm'];
  if (algorithm === undefined) throw new MatrixError('M_MISSING_PARAM', 'algorithm is required.');
  if (typeof algorithm !== 'string' || algorithm.length === 0 || encoder.encode(algorithm).length > 255) {
    throw new MatrixError('M_BAD_JSON', 'algorithm must be a string of 1 to 255 bytes.');
  }
  const authData = body['auth_data'];
  if (authData === undefined) throw new MatrixError('M_MISSING_PARAM', 'auth_data is required.');
  if (!isRecord(authData)) throw new MatrixError('M_BAD_JSON', 'auth_data must be an object.');
  return { algorithm, auth_data_json: JSON.stringify(authData) };
}

function checkScope(scope: KeysScope): void {
  if (scope.version === '') throw new MatrixError('M_MISSING_PARAM', 'The version query parameter is required.');
  if (parseVersionId(scope.version) === undefined) {
    throw new MatrixError('M_NOT_FOUND', `Backup version ${scope.version.slice(0, 80)} does not exist.`);
  }
  if (scope.roomId !== undefined) checkRoomId(scope.roomId);
  if (scope.sessionId !== undefined) checkSessionId(scope.sessionId);
}

function checkRoomId(roomId: string): void {
  if (!ROOM_ID.test(roomId)) throw new MatrixError('M_INVALID_PARAM', `${roomId.slice(0, 80)} is not a room ID.`);
}

function checkSessionId(sessionId: string): void {
  if (sessionId.length === 0 || encoder.encode(sessionId).length > 255) {
    throw new MatrixError('M_INVALID_PARAM', 'A session ID is 1 to 255 bytes.');
  }
}

/** The keys of an upload as op bodies, checked; the body's shape follows the path (all, one room, one session). */
function uploadedKeys(scope: KeysScope, body: JsonRecord): RoomKeyBody[] {
  const out: RoomKeyBody[] = [];
  const add = (roomId: string, sessionId: string, data: unknown): void => {
    checkRoomId(roomId);
    checkSessionId(sessionId);
    if (out.length >= MAX_KEYS_PER_UPLOAD) {
      throw new MatrixError('M_TOO_LARGE', `At most ${MAX_KEYS_PER_UPLOAD} keys per upload; send them in batches.`);
    }
    const key = roomKeyKey(scope.version, roomId, sessionId);
    if (encoder.encode(key).length > MAX_KEY_BYTES) {
      throw new MatrixError('M_INVALID_PARAM', `Room ${roomId.slice(0, 80)} and session ${sessionId} are too long.`);
    }
    out.push({ version: scope.version, room_id: roomId, session_id: sessionId, ...keyBody(data, sessionId) });
  };
  const sessionsOf = (roomId: string, room: unknown): void => {
    const sessions = isRecord(room) ? room['sessions'] : undefined;
    if (!isRecord(sessions)) throw new MatrixError('M_BAD_JSON', `sessions of room ${roomId} must be an object.`);
    for (const [sessionId, data] of Object.entries(sessions)) add(roomId, sessionId, data);
  };
  if (scope.sessionId !== undefined) add(scope.roomId!, scope.sessionId, body);
  else if (scope.roomId !== undefined) sessionsOf(scope.roomId, body);
  else {
    const rooms = body['rooms'];
    if (!isRecord(rooms)) throw new MatrixError('M_BAD_JSON', 'rooms must be an object.');
    for (const [roomId, room] of Object.entries(rooms)) sessionsOf(roomId, room);
  }
  return out;
}

function keyBody(data: unknown, sessionId: string): Omit<RoomKeyBody, 'version' | 'room_id' | 'session_id'> {
  if (!isRecord(data)) throw new MatrixError('M_BAD_JSON', `The key of session ${sessionId} must be an object.`);
  const count = (field: string): number => {
    const value = data[field];
    if (value === undefined) throw new MatrixError('M_MISSING_PARAM', `${field} is required (session ${sessionId}).`);
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new MatrixError('M_BAD_JSON', `${field} must be a non-negative integer (session ${sessionId}).`);
    }
    return value;
  };
  const firstMessageIndex = count('first_message_index');
  const forwardedCount = count('forwarded_count');
  const verified = data['is_verified'];
  if (verified === undefined)
    throw new MatrixError('M_MISSING_PARAM', `is_verified is required (session ${sessionId}).`);
  if (typeof verified !== 'boolean') {
    throw new MatrixError('M_BAD_JSON', `is_verified must be a boolean (session ${sessionId}).`);
  }
  const sessionData = data['session_data'];
  if (sessionData === undefined) {
    throw new MatrixError('M_MISSING_PARAM', `session_data is required (session ${sessionId}).`);
  }
  if (!isRecord(sessionData)) {
    throw new MatrixError('M_BAD_JSON', `session_data must be an object (session ${sessionId}).`);
  }
  return {
    first_message_index: firstMessageIndex,
    forwarded_count: forwardedCount,
    is_verified: verified,
    session_data_json: JSON.stringify(sessionData),
  };
}

function keyData(body: RoomKeyBody): KeyBackupData {
  return {
    first_message_index: body.first_message_index,
    forwarded_count: body.forwarded_count,
    is_verified: body.is_verified,
    session_data: JSON.parse(body.session_data_json) as JsonRecord,
  };
}
