import { In, type DataSource, type QueryDeepPartialEntity } from 'typeorm';
import { MatrixAccessTokenEntity } from './entities/matrix-access-token.entity.js';
import { MatrixChangeEntity } from './entities/matrix-change.entity.js';
import { MatrixDeviceKeyEntity } from './entities/matrix-device-key.entity.js';
import { MatrixRoomEventEntity } from './entities/matrix-room-event.entity.js';

/** An access token as stored (its hash, never the token). */
export interface StoredAccessToken {
  tokenHash: string;
  serverName: string;
  deviceId: string;
  home: string;
}

/** A one-time or fallback key as uploaded: `keyId` is `<algorithm>:<id>`. */
export interface StoredDeviceKey {
  keyId: string;
  algorithm: string;
  value: unknown;
}

/** The advisory lock key that orders appends to the change stream (any constant unique to this use). */
const CHANGE_STREAM_LOCK = 0x70686d63; // "phmc"

/** Changes of one account after a position, and the position they reach. */
export interface ChangesSince {
  position: number;
  keys: string[];
}

/**
 * The local tables of the Matrix client API on PostgreSQL or PGlite: hashed access tokens, one-time and
 * fallback keys, the change stream /sync reads, room events that are not replicated. It matches the
 * `MatrixStore` port of `@polyhome/matrix` structurally, so storage does not depend on the Matrix module.
 */
export class SqlMatrixStore {
  constructor(private readonly dataSource: DataSource) {}

  /** Stores a new token's hash. */
  async insertAccessToken(token: StoredAccessToken): Promise<void> {
    await this.dataSource.getRepository(MatrixAccessTokenEntity).insert(token);
  }

  /** The token with this hash, if any. */
  async findAccessToken(tokenHash: string): Promise<StoredAccessToken | null> {
    const row = await this.dataSource.getRepository(MatrixAccessTokenEntity).findOneBy({ tokenHash });
    return row === null
      ? null
      : { tokenHash: row.tokenHash, serverName: row.serverName, deviceId: row.deviceId, home: row.home };
  }

  /** Deletes one token. */
  async deleteAccessToken(tokenHash: string): Promise<void> {
    await this.dataSource.getRepository(MatrixAccessTokenEntity).delete({ tokenHash });
  }

  /** Deletes every token of the given devices of an account. */
  async deleteDeviceTokens(serverName: string, deviceIds: string[]): Promise<void> {
    if (deviceIds.length === 0) return;
    await this.dataSource.getRepository(MatrixAccessTokenEntity).delete({ serverName, deviceId: In(deviceIds) });
  }

  /** Device ids of an account that hold a token issued by `home`. */
  async devicesWithTokens(serverName: string, home: string): Promise<string[]> {
    const rows = await this.dataSource
      .getRepository(MatrixAccessTokenEntity)
      .createQueryBuilder('t')
      .select('DISTINCT t.device_id', 'device_id')
      .where('t.server_name = :serverName AND t.home = :home', { serverName, home })
      .getRawMany<{ device_id: string }>();
    return rows.map((r) => r.device_id);
  }

  /** Adds one-time keys; a key id already held is kept as it was (uploads are retried by clients). */
  async addOneTimeKeys(serverName: string, deviceId: string, keys: StoredDeviceKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.dataSource
      .createQueryBuilder()
      .insert()
      .into(MatrixDeviceKeyEntity)
      .values(keys.map((k) => rowOf(serverName, deviceId, 'one_time', k)))
      .orIgnore()
      .execute();
  }

  /** Replaces the fallback key of each algorithm given (Matrix keeps one per algorithm). */
  async setFallbackKeys(serverName: string, deviceId: string, keys: StoredDeviceKey[]): Promise<void> {
    if (keys.length === 0) return;
    await this.dataSource.transaction(async (manager) => {
      const repo = manager.getRepository(MatrixDeviceKeyEntity);
      await repo.delete({ serverName, deviceId, kind: 'fallback', algorithm: In(keys.map((k) => k.algorithm)) });
      await repo.insert(keys.map((k) => rowOf(serverName, deviceId, 'fallback', k)));
    });
  }

  /** Unclaimed one-time keys per algorithm. */
  async countOneTimeKeys(serverName: string, deviceId: string): Promise<Record<string, number>> {
    const rows = await this.dataSource
      .getRepository(MatrixDeviceKeyEntity)
      .createQueryBuilder('k')
      .select('k.algorithm', 'algorithm')
      .addSelect('COUNT(*)', 'n')
      .where("k.server_name = :serverName AND k.device_id = :deviceId AND k.kind = 'one_time'", {
        serverName,
        deviceId,
      })
      .groupBy('k.algorithm')
      .getRawMany<{ algorithm: string; n: string }>();
    return Object.fromEntries(rows.map((r) => [r.algorithm, Number(r.n)]));
  }

  /** Algorithms with a fallback key not yet handed out. */
  async unusedFallbackKeyTypes(serverName: string, deviceId: string): Promise<string[]> {
    const rows = await this.dataSource
      .getRepository(MatrixDeviceKeyEntity)
      .find({ where: { serverName, deviceId, kind: 'fallback', used: false }, order: { algorithm: 'ASC' } });
    return rows.map((r) => r.algorithm);
  }

  /**
   * Claims a key of an algorithm: a one-time key (deleted, in a transaction holding its row, so no two claims
   * get the same key), else the fallback key (marked used, kept).
   */
  async claimKey(
    serverName: string,
    deviceId: string,
    algorithm: string,
  ): Promise<{ keyId: string; value: unknown } | null> {
    return this.dataSource.transaction(async (manager) => {
      const repo = manager.getRepository(MatrixDeviceKeyEntity);
      const oneTime = await repo.findOne({
        where: { serverName, deviceId, kind: 'one_time', algorithm },
        order: { keyId: 'ASC' },
        lock: { mode: 'pessimistic_write' },
      });
      if (oneTime !== null) {
        await repo.delete({ serverName, deviceId, kind: 'one_time', keyId: oneTime.keyId });
        return { keyId: oneTime.keyId, value: oneTime.value };
      }
      const fallback = await repo.findOneBy({ serverName, deviceId, kind: 'fallback', algorithm });
      if (fallback === null) return null;
      if (!fallback.used)
        await repo.update({ serverName, deviceId, kind: 'fallback', keyId: fallback.keyId }, { used: true });
      return { keyId: fallback.keyId, value: fallback.value };
    });
  }

  /** Drops every one-time and fallback key of a device (it was deleted). */
  async deleteDeviceKeys(serverName: string, deviceId: string): Promise<void> {
    await this.dataSource.getRepository(MatrixDeviceKeyEntity).delete({ serverName, deviceId });
  }

  /**
   * Appends changed keys of an account to the change stream; returns the position reached. Appends take a
   * transaction-scoped advisory lock, so ids are handed out and committed one append at a time even when
   * several server instances share the database: a reader that sees position `p` has seen every change up to
   * `p`. (Without it, an append holding id 10 could commit after another's id 11, and a client whose `since`
   * was 11 would never see 10.)
   */
  async recordChanges(serverName: string, keys: string[]): Promise<number> {
    if (keys.length === 0) return this.position();
    return this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [CHANGE_STREAM_LOCK]);
      const result = await manager.getRepository(MatrixChangeEntity).insert(keys.map((key) => ({ serverName, key })));
      return Math.max(...result.identifiers.map((i) => Number((i as { id: string | number }).id)));
    });
  }

  /** The newest position of the whole stream (0 when empty). */
  async position(): Promise<number> {
    const row = await this.dataSource
      .getRepository(MatrixChangeEntity)
      .createQueryBuilder('c')
      .select('MAX(c.id)', 'max')
      .getRawOne<{ max: string | null }>();
    return Number(row?.max ?? 0);
  }

  /** Keys of an account changed after `since` (distinct), with the newest position of the stream. */
  async changesSince(serverName: string, since: number): Promise<ChangesSince> {
    const position = await this.position();
    const rows = await this.dataSource
      .getRepository(MatrixChangeEntity)
      .createQueryBuilder('c')
      .select('DISTINCT c.key', 'key')
      .where('c.server_name = :serverName AND c.id > :since AND c.id <= :position', {
        serverName,
        since: String(since),
        position: String(position),
      })
      .getRawMany<{ key: string }>();
    return { position, keys: rows.map((r) => r.key).sort() };
  }

  /** Stores a room event made here (create event, invites of others). */
  async saveRoomEvent(serverName: string, roomId: string, event: Record<string, unknown>): Promise<void> {
    await this.dataSource.getRepository(MatrixRoomEventEntity).insert({
      eventId: String(event['event_id']),
      serverName,
      roomId,
      event,
    } as QueryDeepPartialEntity<MatrixRoomEventEntity>);
  }

  /** The stored room events of an account in one room, oldest first. */
  async roomEvents(serverName: string, roomId: string): Promise<Array<Record<string, unknown>>> {
    const rows = await this.dataSource
      .getRepository(MatrixRoomEventEntity)
      .find({ where: { serverName, roomId }, order: { createdAt: 'ASC' } });
    return rows.map((r) => r.event);
  }
}

// TypeORM's partial-entity type cannot express a jsonb column of unknown shape; the row is complete here.
function rowOf(
  serverName: string,
  deviceId: string,
  kind: 'one_time' | 'fallback',
  key: StoredDeviceKey,
): QueryDeepPartialEntity<MatrixDeviceKeyEntity> {
  return { serverName, deviceId, kind, ...key, used: false } as QueryDeepPartialEntity<MatrixDeviceKeyEntity>;
}
