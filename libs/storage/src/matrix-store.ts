import { outsideReplicationWork } from '@polyhome/sync';
import { In, type DataSource, type EntityManager, type QueryDeepPartialEntity } from 'typeorm';
import { MatrixAccessTokenEntity } from './entities/matrix-access-token.entity.js';
import { MatrixChangeEntity } from './entities/matrix-change.entity.js';
import { MatrixDeviceKeyEntity } from './entities/matrix-device-key.entity.js';
import { MatrixFilterEntity } from './entities/matrix-filter.entity.js';
import { MatrixRoomEventEntity } from './entities/matrix-room-event.entity.js';
import { PglitePool } from './pglite/pglite-pg-driver.js';

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

/**
 * Changes of one account after a position, and the position they reach. `expired` when the account's stream
 * was pruned past that position: changes after it may be missing from `keys`, so treat everything as changed.
 */
export interface ChangesSince {
  position: number;
  keys: string[];
  expired: boolean;
}

/** What /sync tells a device of its keys: unclaimed one-time keys per algorithm, unused fallback key algorithms. */
export interface DeviceKeyCounts {
  oneTime: Record<string, number>;
  unusedFallback: string[];
}

/** How many keys a device may hold here: one-time keys (all algorithms), and algorithms with a fallback key. */
export interface DeviceKeyLimits {
  oneTime: number;
  fallbackAlgorithms: number;
}

/**
 * What `uploadKeys` did: stored everything, or nothing because the device would then hold more than its limit
 * (`kind` says which; `held` is what it holds, `adding` what the upload would add).
 */
export type DeviceKeyUpload =
  { stored: true } | { stored: false; kind: 'one_time' | 'fallback'; held: number; adding: number };

/** Entries of the change stream kept per account (the newest); older ones are pruned when it grows past this. */
export const DEFAULT_CHANGES_PER_ACCOUNT = 256;

/**
 * The local tables of the Matrix client API on PostgreSQL or PGlite: hashed access tokens, one-time and
 * fallback keys, the change stream /sync reads, room events that are not replicated. It matches the
 * `MatrixStore` port of `@polyhome/matrix` structurally, so storage does not depend on the Matrix module.
 */
export class SqlMatrixStore {
  constructor(
    private readonly dataSource: DataSource,
    private readonly changesPerAccount = DEFAULT_CHANGES_PER_ACCOUNT,
  ) {
    // At least the newest entry is kept, so the stream's position never goes back.
    if (!Number.isSafeInteger(changesPerAccount) || changesPerAccount < 1)
      throw new RangeError(`changesPerAccount must be a positive integer, not ${changesPerAccount}.`);
  }

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

  /**
   * Adds one-time keys and replaces the fallback key of each algorithm given (Matrix keeps one per algorithm, the
   * last one of the upload), in one transaction, unless the device would then hold more than `limits`: then
   * nothing is stored. A one-time key id already held is kept as it was and not counted again (uploads are
   * retried by clients). Uploads of one device are serialised by an advisory lock, so two at once cannot both
   * pass the count.
   */
  async uploadKeys(
    serverName: string,
    deviceId: string,
    upload: { oneTime: StoredDeviceKey[]; fallback: StoredDeviceKey[] },
    limits: DeviceKeyLimits,
  ): Promise<DeviceKeyUpload> {
    const oneTime = upload.oneTime;
    const fallback = [...new Map(upload.fallback.map((k) => [k.algorithm, k])).values()];
    if (oneTime.length === 0 && fallback.length === 0) return { stored: true };
    return this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [serverName, deviceId]);
      const repo = manager.getRepository(MatrixDeviceKeyEntity);
      if (oneTime.length > 0) {
        const held = await repo.countBy({ serverName, deviceId, kind: 'one_time' });
        const known = await repo.countBy({
          serverName,
          deviceId,
          kind: 'one_time',
          keyId: In(oneTime.map((k) => k.keyId)),
        });
        const adding = new Set(oneTime.map((k) => k.keyId)).size - known;
        if (held + adding > limits.oneTime) return { stored: false, kind: 'one_time', held, adding };
      }
      if (fallback.length > 0) {
        const rows = await repo.find({
          select: { algorithm: true },
          where: { serverName, deviceId, kind: 'fallback' },
        });
        const algorithms = new Set(rows.map((r) => r.algorithm));
        const adding = fallback.filter((k) => !algorithms.has(k.algorithm)).length;
        if (algorithms.size + adding > limits.fallbackAlgorithms)
          return { stored: false, kind: 'fallback', held: algorithms.size, adding };
      }
      if (oneTime.length > 0) {
        await manager
          .createQueryBuilder()
          .insert()
          .into(MatrixDeviceKeyEntity)
          .values(oneTime.map((k) => rowOf(serverName, deviceId, 'one_time', k)))
          .orIgnore()
          .execute();
      }
      if (fallback.length > 0) {
        await repo.delete({ serverName, deviceId, kind: 'fallback', algorithm: In(fallback.map((k) => k.algorithm)) });
        await repo.insert(fallback.map((k) => rowOf(serverName, deviceId, 'fallback', k)));
      }
      return { stored: true };
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

  /**
   * What /sync tells a device of its keys, in one statement: its unclaimed one-time keys per algorithm, and the
   * algorithms with a fallback key not yet handed out (sorted).
   */
  async deviceKeyCounts(serverName: string, deviceId: string): Promise<DeviceKeyCounts> {
    const rows = await this.dataSource.query<KeyCountsRow[]>(`SELECT ${keyCountColumns('$2')}`, [serverName, deviceId]);
    return keyCountsOf(rows[0]);
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

  /** Appends changed keys of one account to the change stream (`recordChangesOf` with one account). */
  async recordChanges(serverName: string, keys: string[]): Promise<number> {
    return this.recordChangesOf(new Map([[serverName, keys]]));
  }

  /**
   * Appends changed keys of any number of accounts to the change stream in one transaction (the change feed's
   * group commit); returns the position reached. Appends take a transaction-scoped advisory lock, so ids are
   * handed out and committed one append at a time even when several server instances share the database: a
   * reader that sees position `p` has seen every change up to `p`. (Without it, an append holding id 10 could
   * commit after another's id 11, and a client whose `since` was 11 would never see 10.)
   *
   * The stream stays bounded in the same transaction: a key's older entries are dropped (any `since` before
   * them is also before its new entry, so no answer changes), and an account keeps its newest
   * `changesPerAccount` entries; the ones pruned beyond that move the account's horizon, and `changesSince`
   * answers a position before it as expired. The newest entry of the stream is never pruned, so the position
   * never goes back. Whatever the number of accounts, it is the same two statements inside the transaction (one on
   * the embedded database, which takes no lock).
   *
   * `readable`, when given, is called once a read sent from then on sees the append: after the commit, or on the
   * embedded database right after the append statement, before the commit. There the one session is the
   * transaction's until it commits, so a read sent meanwhile waits for the commit and runs next: readers woken then
   * are served before work queued later, without reading anything that is not committed. Not called when nothing
   * is appended, nor when the append fails.
   */
  async recordChangesOf(changes: ReadonlyMap<string, readonly string[]>, readable?: () => void): Promise<number> {
    const servers: string[] = [];
    const keys: string[] = [];
    const quota: { servers: string[]; keep: number[]; whole: boolean[] } = { servers: [], keep: [], whole: [] };
    for (const [serverName, changed] of changes) {
      const unique = [...new Set(changed)];
      if (unique.length === 0) continue;
      // More keys than the bound: only the newest are appended, and every position before them expires.
      const kept = unique.slice(-this.changesPerAccount);
      servers.push(...kept.map(() => serverName));
      keys.push(...kept);
      quota.servers.push(serverName);
      quota.keep.push(this.changesPerAccount - kept.length);
      quota.whole.push(kept.length < unique.length);
    }
    if (keys.length === 0) return this.position();
    // Clients wait on this (their /sync, a new room, uploaded keys), even when replication reported the change.
    const oneSession = this.oneSession();
    const beforeCommit = oneSession ? readable : undefined;
    const position = await outsideReplicationWork(() =>
      this.appendChanges(servers, keys, quota, { lock: !oneSession, appended: beforeCommit }),
    );
    if (beforeCommit === undefined) readable?.();
    return position;
  }

  /** Whether the database is the embedded one: one session, leased to one transaction or query at a time. */
  private oneSession(): boolean {
    return (this.dataSource.driver as unknown as { master?: unknown }).master instanceof PglitePool;
  }

  private async appendChanges(
    servers: string[],
    keys: string[],
    quota: { servers: string[]; keep: number[]; whole: boolean[] },
    options: { lock: boolean; appended: (() => void) | undefined },
  ): Promise<number> {
    return this.dataSource.transaction(async (manager) => {
      // The embedded database needs no lock: its one session is this transaction's, and no other process opens it.
      if (options.lock) await manager.query('SELECT pg_advisory_xact_lock($1)', [CHANGE_STREAM_LOCK]);
      // One statement: its parts see the stream as it was before it, so the new entries are never dropped here.
      // - added: the entries, ids in the order the changes were reported (unnest keeps the rows' order);
      // - superseded: older entries of the same keys (any since before them is before the new one too);
      // - cut: per account, the newest older entry beyond what the bound leaves room for (or, for an append past
      //   the bound, every position before it); pruned drops it and all before it; its id raises the horizon.
      const rows = await manager.query<Array<{ last: string | null }>>(
        `WITH batch AS MATERIALIZED (
           SELECT b.s, b.k, b.n FROM unnest($1::varchar[], $2::varchar[]) WITH ORDINALITY AS b(s, k, n)),
         added AS (
           INSERT INTO matrix_change (server_name, key) SELECT s, k FROM batch ORDER BY n RETURNING id),
         superseded AS (
           DELETE FROM matrix_change c USING batch WHERE c.server_name = batch.s AND c.key = batch.k),
         cut AS MATERIALIZED (
           SELECT q.s, CASE WHEN q.whole THEN (SELECT MIN(id) FROM added) ELSE (
             SELECT c.id FROM matrix_change c
             WHERE c.server_name = q.s
               AND NOT EXISTS (SELECT 1 FROM batch b WHERE b.s = c.server_name AND b.k = c.key)
             ORDER BY c.id DESC OFFSET q.keep LIMIT 1) END AS id
           FROM unnest($3::varchar[], $4::int[], $5::boolean[]) AS q(s, keep, whole)),
         pruned AS (
           DELETE FROM matrix_change c USING cut
           WHERE cut.id IS NOT NULL AND c.server_name = cut.s AND c.id <= cut.id
             AND NOT EXISTS (SELECT 1 FROM batch b WHERE b.s = c.server_name AND b.k = c.key)),
         horizon AS (
           INSERT INTO matrix_change_horizon (server_name, pruned_through)
           SELECT s, id FROM cut WHERE id IS NOT NULL
           ON CONFLICT (server_name) DO UPDATE
             SET pruned_through = GREATEST(matrix_change_horizon.pruned_through, EXCLUDED.pruned_through))
         SELECT MAX(id) AS last FROM added`,
        [servers, keys, quota.servers, quota.keep, quota.whole],
      );
      options.appended?.();
      return Number(rows[0]?.last ?? 0);
    });
  }

  /** The newest position of the whole stream (0 when empty). */
  async position(): Promise<number> {
    return positionOf(this.dataSource.manager);
  }

  /**
   * Keys of an account changed after `since` (distinct), with the newest position of the stream; expired when
   * the account's stream was pruned past `since`. Read in one snapshot, so an append or a prune committing
   * meanwhile cannot make the answer skip an entry.
   */
  async changesSince(serverName: string, since: number): Promise<ChangesSince> {
    return (await this.readChanges(serverName, since, undefined)).changes;
  }

  /** `changesSince` and the device's `deviceKeyCounts`, in the same statement: what a woken /sync reads first. */
  async changesAndKeyCounts(
    serverName: string,
    since: number,
    deviceId: string,
  ): Promise<ChangesSince & { deviceKeys: DeviceKeyCounts }> {
    const { changes, deviceKeys } = await this.readChanges(serverName, since, deviceId);
    return { ...changes, deviceKeys: deviceKeys! };
  }

  private async readChanges(
    serverName: string,
    since: number,
    deviceId: string | undefined,
  ): Promise<{ changes: ChangesSince; deviceKeys?: DeviceKeyCounts }> {
    const keyCounts = deviceId === undefined ? '' : `, ${keyCountColumns('$3')}`;
    // One statement, so one snapshot: an append or a prune committing meanwhile is wholly in it or not.
    const rows = await this.dataSource.query<
      Array<{ position: string | null; horizon: string | null; keys: string[] | null } & Partial<KeyCountsRow>>
    >(
      `WITH p AS MATERIALIZED (SELECT COALESCE(MAX(id), 0) AS position FROM matrix_change)
       SELECT p.position,
              (SELECT h.pruned_through FROM matrix_change_horizon h WHERE h.server_name = $1) AS horizon,
              ARRAY(SELECT DISTINCT c.key FROM matrix_change c
                    WHERE c.server_name = $1 AND c.id > $2 AND c.id <= p.position) AS keys${keyCounts}
       FROM p`,
      deviceId === undefined ? [serverName, String(since)] : [serverName, String(since), deviceId],
    );
    const row = rows[0];
    const position = Number(row?.position ?? 0);
    const expired = row?.horizon !== null && row?.horizon !== undefined && since < Number(row.horizon);
    const changes = { position, keys: [...(row?.keys ?? [])].sort(), expired };
    if (deviceId === undefined) return { changes };
    return { changes, deviceKeys: keyCountsOf(row) };
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

  async saveFilter(serverName: string, filterId: string, filter: Record<string, unknown>): Promise<void> {
    await this.dataSource
      .getRepository(MatrixFilterEntity)
      .insert({ serverName, filterId, filter } as QueryDeepPartialEntity<MatrixFilterEntity>);
  }

  async getFilter(serverName: string, filterId: string): Promise<Record<string, unknown> | null> {
    const row = await this.dataSource.getRepository(MatrixFilterEntity).findOneBy({ serverName, filterId });
    return row?.filter ?? null;
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

async function positionOf(manager: EntityManager): Promise<number> {
  const row = await manager
    .getRepository(MatrixChangeEntity)
    .createQueryBuilder('c')
    .select('MAX(c.id)', 'max')
    .getRawOne<{ max: string | null }>();
  return Number(row?.max ?? 0);
}

/** The columns of a device's key counts, for `$1` the account's server name and `device` the device id's parameter. */
function keyCountColumns(device: string): string {
  return `(SELECT COALESCE(jsonb_object_agg(k.algorithm, k.n), '{}'::jsonb) FROM (
             SELECT algorithm, COUNT(*) AS n FROM matrix_device_key
             WHERE server_name = $1 AND device_id = ${device} AND kind = 'one_time' GROUP BY algorithm) k) AS one_time,
          ARRAY(SELECT algorithm FROM matrix_device_key
                WHERE server_name = $1 AND device_id = ${device} AND kind = 'fallback' AND NOT used
                ORDER BY algorithm) AS fallback`;
}

/** A row of `keyCountColumns`. */
interface KeyCountsRow {
  one_time: Record<string, number | string> | null;
  fallback: string[] | null;
}

/** What /sync tells a device of its keys, from a row of `keyCountColumns`. */
function keyCountsOf(row: Partial<KeyCountsRow> | undefined): DeviceKeyCounts {
  return {
    oneTime: Object.fromEntries(Object.entries(row?.one_time ?? {}).map(([a, n]) => [a, Number(n)])),
    unusedFallback: [...(row?.fallback ?? [])],
  };
}
