import type { DataSource, EntityManager } from 'typeorm';

/** A deduplication key: the recipient device of one message (`*`: all devices; '': the sender's transaction). */
export interface ToDeviceKey {
  serverName: string;
  deviceId: string;
}

/** A message for a device hosted here. */
export interface ToDeviceInboxRow {
  serverName: string;
  deviceId: string;
  sender: string;
  senderDevice: string;
  type: string;
  /** JSON text. */
  content: string;
}

/** An EDU owed to another home (see `ToDeviceOutboxEntity`). */
export interface ToDeviceOutboxRow {
  destination: string;
  recipient: string;
  origin: string;
  /** The EDU content as JSON text. */
  edu: string;
}

/** What `accept` stores: built from the keys that were new, inside its transaction. */
export interface ToDeviceAccept {
  /** The sender's server and the message id: with each key, what makes a message the same one. */
  origin: string;
  messageId: string;
  keys: readonly ToDeviceKey[];
  /** Most messages one (recipient device, sender, sender device) may have waiting; more refuses the whole accept. */
  maxPerSender: number;
  build(fresh: (key: ToDeviceKey) => boolean): { inbox: ToDeviceInboxRow[]; outbox: ToDeviceOutboxRow[] };
}

/** What `accept` did. */
export type ToDeviceAccepted =
  | { status: 'stored'; inbox: number; outbox: number }
  | { status: 'duplicate' }
  | { status: 'limited'; serverName: string; deviceId: string; held: number };

/** A message as /sync hands it out. */
export interface StoredToDeviceMessage {
  streamId: number;
  sender: string;
  type: string;
  content: string;
}

/** An outbox row with its position. */
export interface StoredToDeviceOutboxRow extends ToDeviceOutboxRow {
  id: number;
}

/** How long a taken message is remembered for deduplication. */
export const TO_DEVICE_SEEN_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
/** Accepts between two prunings of the deduplication table. */
const PRUNE_EVERY = 500;

class Refused extends Error {
  constructor(readonly outcome: ToDeviceAccepted) {
    super(outcome.status);
  }
}

/**
 * To-device messages on PostgreSQL or PGlite: the inbox of devices hosted here, the outbox of EDUs owed to other
 * homes, and the keys of messages taken (deduplication). Inbox and outbox rows take positions from one counter
 * (`to_device_stream`) whose row lock is held to commit, so positions become visible in order: a reader that
 * saw position P never misses a row at or below P committing later. It matches the `ToDeviceStore` port of
 * `@polyhome/home`.
 */
export class SqlToDeviceStore {
  #accepts = 0;

  constructor(private readonly dataSource: DataSource) {}

  /**
   * Marks the keys as taken, then stores what `build` makes of the new ones, in one transaction: nothing when
   * every key was taken before (`duplicate`), or when a device would hold more than `maxPerSender` messages of
   * one sender (`limited`: nothing is stored, no key is marked).
   */
  async accept(input: ToDeviceAccept): Promise<ToDeviceAccepted> {
    if (++this.#accepts % PRUNE_EVERY === 0) await this.prune(Date.now() - TO_DEVICE_SEEN_RETENTION_MS);
    try {
      return await this.dataSource.transaction(async (m) => {
        const position = await this.#lockPosition(m);
        const fresh = await this.#markSeen(m, input);
        if (fresh.size === 0) throw new Refused({ status: 'duplicate' });
        const { inbox, outbox } = input.build((k) => fresh.has(keyOf(k)));
        if (inbox.length === 0 && outbox.length === 0) return { status: 'stored', inbox: 0, outbox: 0 };
        await this.#checkCaps(m, inbox, input.maxPerSender);
        let next = position;
        if (inbox.length > 0) {
          await m.query(
            `INSERT INTO to_device_inbox (stream_id, server_name, device_id, sender, sender_device, type, content)
             SELECT * FROM unnest($1::bigint[], $2::char(64)[], $3::varchar[], $4::varchar[], $5::varchar[],
               $6::varchar[], $7::text[])`,
            [
              inbox.map(() => String(++next)),
              inbox.map((r) => r.serverName),
              inbox.map((r) => r.deviceId),
              inbox.map((r) => r.sender),
              inbox.map((r) => r.senderDevice),
              inbox.map((r) => r.type),
              inbox.map((r) => r.content),
            ],
          );
        }
        if (outbox.length > 0) {
          await m.query(
            `INSERT INTO to_device_outbox (id, destination, recipient, origin, edu)
             SELECT * FROM unnest($1::bigint[], $2::varchar[], $3::char(64)[], $4::char(64)[], $5::text[])`,
            [
              outbox.map(() => String(++next)),
              outbox.map((r) => r.destination),
              outbox.map((r) => r.recipient),
              outbox.map((r) => r.origin),
              outbox.map((r) => r.edu),
            ],
          );
        }
        await m.query('UPDATE to_device_stream SET position = $1 WHERE id = 1', [String(next)]);
        return { status: 'stored', inbox: inbox.length, outbox: outbox.length };
      });
    } catch (err) {
      if (err instanceof Refused) return err.outcome;
      throw err;
    }
  }

  /** The last position handed out (0 before the first message). */
  async position(): Promise<number> {
    const rows = (await this.dataSource.query('SELECT position FROM to_device_stream WHERE id = 1')) as Array<{
      position: string;
    }>;
    return rows[0] === undefined ? 0 : Number(rows[0].position);
  }

  /**
   * Deletes the device's messages at or before `acknowledged` (what its client has had), then answers the oldest
   * `limit` still waiting at or before `to`.
   */
  async messages(
    serverName: string,
    deviceId: string,
    acknowledged: number | undefined,
    to: number,
    limit: number,
  ): Promise<StoredToDeviceMessage[]> {
    if (acknowledged !== undefined && acknowledged > 0) {
      await this.dataSource.query(
        'DELETE FROM to_device_inbox WHERE server_name = $1 AND device_id = $2 AND stream_id <= $3',
        [serverName, deviceId, String(acknowledged)],
      );
    }
    const rows = (await this.dataSource.query(
      `SELECT stream_id, sender, type, content FROM to_device_inbox
       WHERE server_name = $1 AND device_id = $2 AND stream_id <= $3 ORDER BY stream_id LIMIT $4`,
      [serverName, deviceId, String(to), limit],
    )) as Array<{ stream_id: string; sender: string; type: string; content: string }>;
    return rows.map((r) => ({ streamId: Number(r.stream_id), sender: r.sender, type: r.type, content: r.content }));
  }

  /** Forgets every message waiting for a device (it was deleted). */
  async deleteDevice(serverName: string, deviceId: string): Promise<void> {
    await this.dataSource.query('DELETE FROM to_device_inbox WHERE server_name = $1 AND device_id = $2', [
      serverName,
      deviceId,
    ]);
  }

  /** Destinations with EDUs owed, at most `limit`. */
  async outboxDestinations(limit: number): Promise<string[]> {
    const rows = (await this.dataSource.query(
      'SELECT destination FROM to_device_outbox GROUP BY destination ORDER BY MIN(id) LIMIT $1',
      [limit],
    )) as Array<{ destination: string }>;
    return rows.map((r) => r.destination);
  }

  /** The oldest `limit` EDUs owed to a destination. */
  async pendingOutbox(destination: string, limit: number): Promise<StoredToDeviceOutboxRow[]> {
    const rows = (await this.dataSource.query(
      `SELECT id, destination, recipient, origin, edu FROM to_device_outbox WHERE destination = $1
       ORDER BY id LIMIT $2`,
      [destination, limit],
    )) as Array<{ id: string; destination: string; recipient: string; origin: string; edu: string }>;
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  /** Forgets EDUs a home took. */
  async removeOutbox(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.dataSource.query('DELETE FROM to_device_outbox WHERE id = ANY($1::bigint[])', [ids.map(String)]);
  }

  /** Forgets deduplication keys taken before `before` (ms since the epoch). */
  async prune(before: number): Promise<void> {
    await this.dataSource.query('DELETE FROM to_device_seen WHERE received_at < $1', [new Date(before)]);
  }

  /** Takes the counter's row lock (held to commit) and answers its position. */
  async #lockPosition(m: EntityManager): Promise<number> {
    const rows = (await m.query(
      `INSERT INTO to_device_stream (id, position) VALUES (1, 0)
       ON CONFLICT (id) DO UPDATE SET position = to_device_stream.position RETURNING position`,
    )) as Array<{ position: string }>;
    return Number(rows[0]!.position);
  }

  /** Inserts the keys; answers those that were new. */
  async #markSeen(m: EntityManager, input: ToDeviceAccept): Promise<Set<string>> {
    const unique = [...new Map(input.keys.map((k) => [keyOf(k), k])).values()];
    if (unique.length === 0) return new Set();
    const rows = (await m.query(
      `INSERT INTO to_device_seen (origin, message_id, server_name, device_id, received_at)
       SELECT $1, $2, s, d, now() FROM unnest($3::char(64)[], $4::varchar[]) AS k(s, d)
       ON CONFLICT DO NOTHING RETURNING server_name, device_id`,
      [input.origin, input.messageId, unique.map((k) => k.serverName), unique.map((k) => k.deviceId)],
    )) as Array<{ server_name: string; device_id: string }>;
    return new Set(rows.map((r) => keyOf({ serverName: r.server_name, deviceId: r.device_id })));
  }

  /** Throws `limited` when a device would hold more than `max` messages of one sender device. */
  async #checkCaps(m: EntityManager, inbox: readonly ToDeviceInboxRow[], max: number): Promise<void> {
    const adding = new Map<string, { row: ToDeviceInboxRow; count: number }>();
    for (const row of inbox) {
      const key = JSON.stringify([row.serverName, row.deviceId, row.sender, row.senderDevice]);
      const entry = adding.get(key) ?? { row, count: 0 };
      entry.count += 1;
      adding.set(key, entry);
    }
    const groups = [...adding.values()];
    const held = (await m.query(
      `SELECT k.i, COUNT(t.stream_id) AS held
       FROM unnest($1::char(64)[], $2::varchar[], $3::varchar[], $4::varchar[]) WITH ORDINALITY AS k(s, d, u, v, i)
       LEFT JOIN to_device_inbox t
         ON t.server_name = k.s AND t.device_id = k.d AND t.sender = k.u AND t.sender_device = k.v
       GROUP BY k.i`,
      [
        groups.map((g) => g.row.serverName),
        groups.map((g) => g.row.deviceId),
        groups.map((g) => g.row.sender),
        groups.map((g) => g.row.senderDevice),
      ],
    )) as Array<{ i: string; held: string }>;
    for (const row of held) {
      const group = groups[Number(row.i) - 1]!;
      if (Number(row.held) + group.count > max) {
        throw new Refused({
          status: 'limited',
          serverName: group.row.serverName,
          deviceId: group.row.deviceId,
          held: Number(row.held),
        });
      }
    }
  }
}

function keyOf(key: ToDeviceKey): string {
  return `${key.serverName.trim()}\u0000${key.deviceId}`;
}
