import type { DataSource, QueryDeepPartialEntity } from 'typeorm';
import type { AccountStatus } from './entities/account.entity.js';
import { AdminAuditEntity } from './entities/admin-audit.entity.js';
import { AdminJobEntity } from './entities/admin-job.entity.js';
import type { AccountRecord } from './repositories/account.repository.js';
import { AccountEntity } from './entities/account.entity.js';
import { MatrixAccessTokenEntity } from './entities/matrix-access-token.entity.js';

/** An audit entry as written: what was done, to what, why, and what it did. */
export interface AdminAuditInput {
  action: string;
  target: string;
  reason: string;
  detail?: Record<string, unknown>;
}

/** An audit entry as stored. */
export interface AdminAuditRecord extends Required<AdminAuditInput> {
  /** Insertion order (a decimal bigint). */
  id: string;
  createdAt: Date;
}

/** A job of the admin API as stored (a forced resync): what it was asked, its state and progress. */
export interface AdminJobRecord {
  id: string;
  kind: string;
  target: string;
  state: string;
  params: Record<string, unknown>;
  progress: Record<string, unknown>;
  error: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** What may change of a stored job. */
export type AdminJobChange = Partial<Pick<AdminJobRecord, 'state' | 'progress' | 'error' | 'startedAt' | 'finishedAt'>>;

/** A room as the admin lists it. */
export interface AdminRoomSummary {
  roomId: string;
  roomVersion: string;
  createdAt: Date;
  /** The `m.room.name` of the current state, when set. */
  name: string | null;
  joinedMembers: number;
  /** Events of the room this home holds (timeline, outliers and rejected alike). */
  events: number;
  /** An operator blocked the room here (`room_block`). */
  blocked: boolean;
}

/** A member of a room, from the current state. */
export interface AdminRoomMember {
  userId: string;
  serverName: string;
  membership: string;
}

/** One event of a room's current state. */
export interface AdminStateEvent {
  type: string;
  stateKey: string;
  eventId: string;
  sender: string;
  content: unknown;
}

/** Counts over the whole database, for the statistics route. */
export interface AdminCounts {
  accounts: number;
  accountsByStatus: Record<string, number>;
  devices: number;
  rooms: number;
  events: number;
  ops: number;
}

/** What a home of the accounts on this database has not acknowledged, summed over the accounts. */
export interface DeliveryBacklog {
  peerId: string;
  accounts: number;
  pendingOps: number;
}

/** When the account last did something here. */
export interface AccountActivity {
  /** The newest op of the account this home stored (made here or received). */
  lastOpAt: Date | null;
  /** The newest access token this home issued for it. */
  lastLoginAt: Date | null;
  accessTokens: number;
}

/** Longest search string: a user ID is at most 255 characters. */
const MAX_SEARCH = 255;

/** Largest number of current-state events, and of members, a room detail returns (more: answered in part). */
export const ROOM_DETAIL_STATE_LIMIT = 1_000;

/**
 * What the admin API reads and writes beyond the other stores: the audit log, account status, searches and
 * counts across accounts and rooms. On PostgreSQL and PGlite alike; every list is keyset-paged and capped.
 */
export class SqlAdminStore {
  constructor(private readonly dataSource: DataSource) {}

  /** Appends an audit entry. */
  async recordAudit(entry: AdminAuditInput): Promise<AdminAuditRecord> {
    const saved = await this.dataSource.getRepository(AdminAuditEntity).save({
      action: entry.action,
      target: entry.target,
      reason: entry.reason,
      detail: entry.detail ?? {},
    });
    return auditOf(saved);
  }

  /** Audit entries, newest first, before the id `before` (exclusive), optionally of one target. */
  async auditPage(page: { before?: string | undefined; limit: number; target?: string | undefined }) {
    const qb = this.dataSource
      .getRepository(AdminAuditEntity)
      .createQueryBuilder('a')
      .orderBy('a.id', 'DESC')
      .take(page.limit);
    if (page.before !== undefined) qb.andWhere('a.id < :before', { before: page.before });
    if (page.target !== undefined) qb.andWhere('a.target = :target', { target: page.target });
    return (await qb.getMany()).map(auditOf);
  }

  /** Stores a new job. */
  async createJob(job: Pick<AdminJobRecord, 'id' | 'kind' | 'target' | 'state' | 'params' | 'progress'>) {
    await this.dataSource.getRepository(AdminJobEntity).save({ ...job, error: null });
  }

  /** Changes a stored job; false when there is none with that id. */
  async updateJob(id: string, change: AdminJobChange): Promise<boolean> {
    // jsonb columns: TypeORM's deep-partial type does not take a plain record, though it writes one.
    const result = await this.dataSource
      .getRepository(AdminJobEntity)
      .update({ id }, change as QueryDeepPartialEntity<AdminJobEntity>);
    return (result.affected ?? 0) > 0;
  }

  /** A stored job, or undefined. */
  async job(id: string): Promise<AdminJobRecord | undefined> {
    const row = await this.dataSource.getRepository(AdminJobEntity).findOneBy({ id });
    return row === null ? undefined : jobOf(row);
  }

  /** Jobs not ended yet (queued or running), oldest first, at most `limit`. */
  async unfinishedJobs(limit: number): Promise<AdminJobRecord[]> {
    const rows = await this.dataSource
      .getRepository(AdminJobEntity)
      .createQueryBuilder('j')
      .where(`j.state IN ('queued', 'running')`)
      .orderBy('j.created_at', 'ASC')
      .take(limit)
      .getMany();
    return rows.map(jobOf);
  }

  /** Sets an account's status; false when no such account. */
  async setAccountStatus(serverName: string, status: AccountStatus): Promise<boolean> {
    const result = await this.dataSource.getRepository(AccountEntity).update({ serverName }, { status });
    return (result.affected ?? 0) > 0;
  }

  /**
   * Accounts in user-ID order after `after`, whose user ID contains `search` (case-insensitive substring, no
   * wildcards: `_` and `%` match themselves).
   */
  async searchAccounts(page: { search?: string | undefined; after?: string | undefined; limit: number }) {
    const qb = this.dataSource
      .getRepository(AccountEntity)
      .createQueryBuilder('a')
      .orderBy('a.user_id', 'ASC')
      .take(page.limit);
    if (page.after !== undefined) qb.andWhere('a.user_id > :after', { after: page.after });
    if (page.search !== undefined && page.search !== '') {
      qb.andWhere('strpos(lower(a.user_id), lower(:search)) > 0', { search: page.search.slice(0, MAX_SEARCH) });
    }
    const rows: AccountRecord[] = await qb.getMany();
    return rows;
  }

  /** Deletes every access token this database issued for the account; how many there were. */
  async revokeAccessTokens(serverName: string): Promise<number> {
    const result = await this.dataSource.getRepository(MatrixAccessTokenEntity).delete({ serverName });
    return result.affected ?? 0;
  }

  /** When the account last did something here. */
  async accountActivity(serverName: string): Promise<AccountActivity> {
    const [row] = (await this.dataSource.query(
      `SELECT (SELECT MAX(received_at) FROM op WHERE account = $1) AS last_op_at,
              (SELECT MAX(created_at) FROM matrix_access_token WHERE server_name = $1) AS last_login_at,
              (SELECT COUNT(*) FROM matrix_access_token WHERE server_name = $1) AS tokens`,
      [serverName],
    )) as Array<{ last_op_at: Date | string | null; last_login_at: Date | string | null; tokens: string | number }>;
    return {
      lastOpAt: dateOf(row?.last_op_at ?? null),
      lastLoginAt: dateOf(row?.last_login_at ?? null),
      accessTokens: Number(row?.tokens ?? 0),
    };
  }

  /** Rooms this home holds, in room-ID order after `after`, optionally those whose ID or name has `search`. */
  roomsPage(page: { after?: string | undefined; limit: number; search?: string | undefined }) {
    return this.roomRows(page);
  }

  private async roomRows(page: {
    after?: string | undefined;
    limit: number;
    search?: string | undefined;
    only?: string;
  }): Promise<AdminRoomSummary[]> {
    const search = page.search === undefined || page.search === '' ? null : page.search.slice(0, MAX_SEARCH);
    const rows = (await this.dataSource.query(
      `SELECT r.room_id, r.room_version, r.created_at, n.pdu AS name_pdu,
              (SELECT COUNT(*) FROM room_membership m WHERE m.room_id = r.room_id AND m.membership = 'join') AS joined,
              (SELECT COUNT(*) FROM room_event e WHERE e.room_id = r.room_id) AS events,
              EXISTS (SELECT 1 FROM room_block b WHERE b.room_id = r.room_id) AS blocked
       FROM room r
       LEFT JOIN room_current_state cs ON cs.room_id = r.room_id AND cs.type = 'm.room.name' AND cs.state_key = ''
       LEFT JOIN room_event n ON n.event_id = cs.event_id
       WHERE r.room_id > $1 AND ($4::text IS NULL OR r.room_id = $4::text)
         AND ($2::text IS NULL OR strpos(lower(r.room_id), lower($2::text)) > 0
              OR strpos(lower(COALESCE(n.pdu, '')), lower($2::text)) > 0)
       ORDER BY r.room_id LIMIT $3`,
      [page.after ?? '', search, page.limit, page.only ?? null],
    )) as Array<{
      room_id: string;
      room_version: string;
      created_at: Date | string;
      name_pdu: string | null;
      joined: string | number;
      events: string | number;
      blocked: boolean;
    }>;
    return rows.map((r) => ({
      roomId: r.room_id,
      roomVersion: r.room_version,
      createdAt: dateOf(r.created_at) ?? new Date(0),
      name: nameOf(r.name_pdu),
      joinedMembers: Number(r.joined),
      events: Number(r.events),
      blocked: r.blocked === true,
    }));
  }

  /** One room: its summary, members (every membership of the current state) and current state (capped). */
  async room(roomId: string): Promise<
    | {
        summary: AdminRoomSummary;
        members: AdminRoomMember[];
        state: AdminStateEvent[];
        stateTruncated: boolean;
        membersTruncated: boolean;
      }
    | undefined
  > {
    const [summary] = await this.roomRows({ only: roomId, limit: 1 });
    if (summary === undefined) return undefined;
    const members = (await this.dataSource.query(
      `SELECT user_id, server_name, membership FROM room_membership WHERE room_id = $1 ORDER BY user_id LIMIT $2`,
      [roomId, ROOM_DETAIL_STATE_LIMIT + 1],
    )) as Array<{ user_id: string; server_name: string; membership: string }>;
    const state = (await this.dataSource.query(
      `SELECT cs.type, cs.state_key, cs.event_id, e.pdu FROM room_current_state cs
       JOIN room_event e ON e.event_id = cs.event_id
       WHERE cs.room_id = $1 ORDER BY cs.type, cs.state_key LIMIT $2`,
      [roomId, ROOM_DETAIL_STATE_LIMIT + 1],
    )) as Array<{ type: string; state_key: string; event_id: string; pdu: string }>;
    return {
      summary,
      members: members
        .slice(0, ROOM_DETAIL_STATE_LIMIT)
        .map((m) => ({ userId: m.user_id, serverName: m.server_name, membership: m.membership })),
      membersTruncated: members.length > ROOM_DETAIL_STATE_LIMIT,
      state: state.slice(0, ROOM_DETAIL_STATE_LIMIT).map((s) => {
        const pdu = JSON.parse(s.pdu) as { sender?: unknown; content?: unknown };
        return {
          type: s.type,
          stateKey: s.state_key,
          eventId: s.event_id,
          sender: typeof pdu.sender === 'string' ? pdu.sender : '',
          content: pdu.content ?? {},
        };
      }),
      stateTruncated: state.length > ROOM_DETAIL_STATE_LIMIT,
    };
  }

  /** Counts for the statistics route. */
  async counts(): Promise<AdminCounts> {
    const [row] = (await this.dataSource.query(
      `SELECT (SELECT COUNT(*) FROM account) AS accounts,
              (SELECT COUNT(*) FROM account_state WHERE namespace = 'device' AND NOT deleted) AS devices,
              (SELECT COUNT(*) FROM room) AS rooms,
              (SELECT COUNT(*) FROM room_event) AS events,
              (SELECT COUNT(*) FROM op) AS ops`,
    )) as Array<Record<'accounts' | 'devices' | 'rooms' | 'events' | 'ops', string | number>>;
    const byStatus = (await this.dataSource.query(
      'SELECT status::text AS status, COUNT(*) AS n FROM account GROUP BY status ORDER BY status',
    )) as Array<{ status: string; n: string | number }>;
    return {
      accounts: Number(row?.accounts ?? 0),
      accountsByStatus: Object.fromEntries(byStatus.map((s) => [s.status, Number(s.n)])),
      devices: Number(row?.devices ?? 0),
      rooms: Number(row?.rooms ?? 0),
      events: Number(row?.events ?? 0),
      ops: Number(row?.ops ?? 0),
    };
  }

  /**
   * Per home (PeerId) of the accounts on this database: ops held here that it has not acknowledged (by its
   * recorded acks; a live session may know it holds more), summed over its accounts, at most `limit` homes with
   * the largest backlog first. A home's own ops are not counted: it made them.
   */
  async deliveryBacklog(limit: number): Promise<DeliveryBacklog[]> {
    const rows = (await this.dataSource.query(
      `SELECT d.peer_id, COUNT(DISTINCT d.account) AS accounts,
              COALESCE(SUM(GREATEST(0, h.seq - COALESCE((d.acked_vv ->> h.origin)::bigint, 0))), 0) AS pending
       FROM peer_delivery d
       JOIN op_log_head h ON h.account = d.account AND h.origin <> d.peer_id
       GROUP BY d.peer_id ORDER BY pending DESC, d.peer_id LIMIT $1`,
      [limit],
    )) as Array<{ peer_id: string; accounts: string | number; pending: string | number }>;
    return rows.map((r) => ({ peerId: r.peer_id, accounts: Number(r.accounts), pendingOps: Number(r.pending) }));
  }
}

function auditOf(row: AdminAuditEntity): AdminAuditRecord {
  return {
    id: String(row.id),
    action: row.action,
    target: row.target,
    reason: row.reason,
    detail: row.detail,
    createdAt: row.createdAt,
  };
}

function jobOf(row: AdminJobEntity): AdminJobRecord {
  return {
    id: row.id,
    kind: row.kind,
    target: row.target,
    state: row.state,
    params: row.params,
    progress: row.progress,
    error: row.error,
    createdAt: row.createdAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
  };
}

function dateOf(value: Date | string | null): Date | null {
  if (value === null) return null;
  return value instanceof Date ? value : new Date(value);
}

function nameOf(pdu: string | null): string | null {
  if (pdu === null) return null;
  const content = (JSON.parse(pdu) as { content?: { name?: unknown } }).content;
  return typeof content?.name === 'string' ? content.name : null;
}
