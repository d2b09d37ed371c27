import type { DataSource } from 'typeorm';

/** A receipt to keep (see `ReceiptInput` of `@polyhome/home`, which this matches). */
export interface ReceiptRow {
  roomId: string;
  receiptType: string;
  userId: string;
  threadId: string | null;
  eventId: string;
  eventStream: number | null;
  ts: number;
}

/** A receipt as kept, with its receipt stream position. */
export interface StoredReceiptRow extends ReceiptRow {
  streamId: number;
}

/**
 * The advisory lock that orders receipt stream positions: taken in a put and held to its commit, so positions
 * become visible in order (as the room stream's, in room-store.ts).
 */
const RECEIPT_STREAM_LOCK = 0x70687263; // "phrc"

/** Receipt types that move the read position unread counts start from. */
const READ_TYPES = ['m.read', 'm.read.private'];

/**
 * Receipts on PostgreSQL or PGlite (`room_receipt`): one row per (room, type, user, thread), rewritten at a new
 * stream position when the receipt moves forward. It matches the `ReceiptStore` port of `@polyhome/home`.
 */
export class SqlReceiptStore {
  constructor(private readonly dataSource: DataSource) {}

  /** Keeps the receipt at the next position unless the held one is for a later event; null when nothing changed. */
  async putReceipt(input: ReceiptRow): Promise<number | null> {
    return this.dataSource.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock($1)', [RECEIPT_STREAM_LOCK]);
      const rows = (await m.query(
        `INSERT INTO room_receipt AS r (room_id, receipt_type, user_id, thread_id, event_id, event_stream, ts, stream_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT COALESCE(MAX(stream_id), 0) + 1 FROM room_receipt))
         ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE
           SET event_id = EXCLUDED.event_id, event_stream = EXCLUDED.event_stream, ts = EXCLUDED.ts,
               stream_id = EXCLUDED.stream_id
           WHERE r.event_id <> EXCLUDED.event_id
             AND (r.event_stream IS NULL OR EXCLUDED.event_stream IS NULL OR EXCLUDED.event_stream > r.event_stream)
         RETURNING stream_id`,
        [
          input.roomId,
          input.receiptType,
          input.userId,
          input.threadId ?? '',
          input.eventId,
          input.eventStream === null ? null : String(input.eventStream),
          String(input.ts),
        ],
      )) as Array<{ stream_id: string }>;
      return rows[0] === undefined ? null : Number(rows[0].stream_id);
    });
  }

  /** The newest receipt stream position (0 when none). */
  async receiptPosition(): Promise<number> {
    const [row] = (await this.dataSource.query('SELECT COALESCE(MAX(stream_id), 0) AS p FROM room_receipt')) as Array<{
      p: string;
    }>;
    return Number(row?.p ?? 0);
  }

  /** Receipts of the rooms in (`since`, `to`], oldest first, the newest `limit` of them. */
  async receiptsSince(
    roomIds: readonly string[],
    since: number,
    to: number,
    limit: number,
  ): Promise<StoredReceiptRow[]> {
    if (roomIds.length === 0 || to <= since) return [];
    const rows = (await this.dataSource.query(
      `SELECT room_id, receipt_type, user_id, thread_id, event_id, event_stream, ts, stream_id FROM room_receipt
       WHERE room_id = ANY($1::varchar[]) AND stream_id > $2 AND stream_id <= $3
       ORDER BY stream_id DESC LIMIT $4`,
      [[...roomIds], String(since), String(to), Math.max(0, Math.floor(limit))],
    )) as Array<Record<string, string | null>>;
    return rows.reverse().map((r) => ({
      roomId: r['room_id']!,
      receiptType: r['receipt_type']!,
      userId: r['user_id']!,
      threadId: r['thread_id'] === '' ? null : r['thread_id']!,
      eventId: r['event_id']!,
      eventStream: r['event_stream'] === null ? null : Number(r['event_stream']),
      ts: Number(r['ts']),
      streamId: Number(r['stream_id']),
    }));
  }

  /**
   * Per room, events of `types` by others after the user's read position (its newest read receipt, unthreaded
   * or `main`, or its current membership event), edits excepted, counted up to `cap`. One query for all rooms.
   */
  async notificationCounts(
    userId: string,
    roomIds: readonly string[],
    types: readonly string[],
    cap: number,
  ): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    if (roomIds.length === 0 || types.length === 0 || cap <= 0) return counts;
    const rows = (await this.dataSource.query(
      `SELECT f.room_id, (
         SELECT COUNT(*) FROM (
           SELECT 1 FROM room_event e
           WHERE e.room_id = f.room_id AND e.stream_ordering > f.floor AND e.sender <> $1
             AND e.type = ANY($3::varchar[]) AND e.rejection_code IS NULL AND NOT e.outlier
             AND (e.pdu::jsonb #>> '{content,m.relates_to,rel_type}') IS DISTINCT FROM 'm.replace'
           LIMIT $4
         ) n
       ) AS count
       FROM (
         SELECT m.room_id, GREATEST(m.stream_ordering, COALESCE((
           SELECT MAX(r.event_stream) FROM room_receipt r
           WHERE r.room_id = m.room_id AND r.user_id = $1 AND r.receipt_type = ANY($5::varchar[])
             AND r.thread_id IN ('', 'main')
         ), 0)) AS floor
         FROM room_membership m WHERE m.user_id = $1 AND m.room_id = ANY($2::varchar[])
       ) f`,
      [userId, [...roomIds], [...types], Math.floor(cap), READ_TYPES],
    )) as Array<{ room_id: string; count: string | number }>;
    for (const row of rows) {
      const n = Number(row.count);
      if (n > 0) counts.set(row.room_id, n);
    }
    return counts;
  }
}
