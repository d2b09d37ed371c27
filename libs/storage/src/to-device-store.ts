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
  /** The sending user and device ('' when not known), and the (user, device) messages the EDU carries. */
  sender: string;
  senderDevice: string;
  messages: number;
}

/** A message for a device of a hosted account not known here yet (see `ToDeviceHeldEntity`). */
export interface ToDeviceHeldRow {
  serverName: string;
  deviceId: string;
  userId: string;
  /** The account an EDU made of it speaks for. */
  origin: string;
  sender: string;
  senderDevice: string;
  type: string;
  messageId: string;
  /** JSON text. */
  content: string;
}

/** A held message with its position. */
export interface StoredToDeviceHeldRow extends ToDeviceHeldRow {
  id: number;
}

/** What `sweep` deleted. */
export interface ToDeviceSwept {
  inbox: number;
  outbox: number;
  held: number;
}

/** What `accept` stores: built from the keys that were new, inside its transaction. */
export interface ToDeviceAccept {
  /** The sender's server and the message id: with each key, what makes a message the same one. */
  origin: string;
  messageId: string;
  keys: readonly ToDeviceKey[];
  /** Most messages one (recipient device, sender, sender device) may have waiting; more refuses the whole accept. */
  maxPerSender: number;
  /**
   * Most messages (summed `messages` of outbox rows) one (sender, sender device) may have waiting for other homes,
   * all destinations together; more refuses the whole accept. Unset: no cap.
   */
  maxOutboxPerSender?: number;
  build(fresh: (key: ToDeviceKey) => boolean): {
    inbox: ToDeviceInboxRow[];
    outbox: ToDeviceOutboxRow[];
    held?: ToDeviceHeldRow[];
  };
}

/** What `accept` did. */
export type ToDeviceAccepted =
  | { status: 'stored'; inbox: number; outbox: number; held: number; dropped: number }
  | { status: 'duplicate' }
  | { status: 'limited'; serverName: string; deviceId: string; held: number }
  | { status: 'outbox_limited'; sender: string; senderDevice: string; held: number };

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
        const { inbox, outbox, held: unknown = [] } = input.build((k) => fresh.has(keyOf(k)));
        const none = { status: 'stored', inbox: 0, outbox: 0, held: 0, dropped: 0 } as const;
        if (inbox.length === 0 && outbox.length === 0 && unknown.length === 0) return none;
        await this.#checkCaps(m, inbox, input.maxPerSender);
        if (input.maxOutboxPerSender !== undefined) await this.#checkOutboxCap(m, outbox, input.maxOutboxPerSender);
        const held = await this.#withinHeldCap(m, unknown, input.maxPerSender);
        // Messages still held for a device this message reaches in the inbox (it became known, and their release
        // has not run yet) go first, so the device gets them in order.
        const early = await this.#takeHeldFor(m, inbox);
        const next = await this.#insert(m, position, [...early, ...inbox], outbox, held);
        await m.query('UPDATE to_device_stream SET position = $1 WHERE id = 1', [String(next)]);
        return {
          status: 'stored',
          inbox: inbox.length,
          outbox: outbox.length,
          held: held.length,
          dropped: unknown.length - held.length,
        };
      });
    } catch (err) {
      if (err instanceof Refused) return err.outcome;
      throw err;
    }
  }

  /**
   * Routes the messages held for a device that is now known: `build` makes inbox and outbox rows of them (in
   * their order), stored at new positions (a position below what a /sync acknowledged would be lost) as the held
   * rows are deleted, in one transaction. No cap applies: they were taken already.
   */
  async releaseHeld(
    serverName: string,
    deviceId: string,
    build: (held: StoredToDeviceHeldRow[]) => { inbox: ToDeviceInboxRow[]; outbox: ToDeviceOutboxRow[] },
  ): Promise<{ inbox: number; outbox: number }> {
    return this.dataSource.transaction(async (m) => {
      const position = await this.#lockPosition(m);
      const held = await this.#deleteHeld(m, [serverName], [deviceId]);
      if (held.length === 0) return { inbox: 0, outbox: 0 };
      const { inbox, outbox } = build(held);
      const next = await this.#insert(m, position, inbox, outbox, []);
      await m.query('UPDATE to_device_stream SET position = $1 WHERE id = 1', [String(next)]);
      return { inbox: inbox.length, outbox: outbox.length };
    });
  }

  /** Those of `deviceIds` (of one account) with messages in the inbox or held, in one statement. */
  async devicesWithMessages(serverName: string, deviceIds: readonly string[]): Promise<string[]> {
    if (deviceIds.length === 0) return [];
    const rows = (await this.dataSource.query(
      `SELECT d FROM unnest($2::varchar[]) AS d
       WHERE EXISTS (SELECT 1 FROM to_device_inbox i WHERE i.server_name = $1 AND i.device_id = d)
          OR EXISTS (SELECT 1 FROM to_device_held h WHERE h.server_name = $1 AND h.device_id = d)`,
      [serverName, [...new Set(deviceIds)]],
    )) as Array<{ d: string }>;
    return rows.map((r) => r.d);
  }

  /** Whether any message is held for the device (one indexed read). */
  async hasHeld(serverName: string, deviceId: string): Promise<boolean> {
    const rows = (await this.dataSource.query(
      'SELECT 1 FROM to_device_held WHERE server_name = $1 AND device_id = $2 LIMIT 1',
      [serverName, deviceId],
    )) as unknown[];
    return rows.length > 0;
  }

  /** Devices with messages held (not known here yet), at most `limit`. */
  heldDevices(limit: number): Promise<Array<{ serverName: string; deviceId: string }>> {
    return this.#devices('to_device_held', limit);
  }

  /** Devices with messages waiting in the inbox, at most `limit` (the sweep checks they still exist). */
  inboxDevices(limit: number): Promise<Array<{ serverName: string; deviceId: string }>> {
    return this.#devices('to_device_inbox', limit);
  }

  async #devices(table: string, limit: number): Promise<Array<{ serverName: string; deviceId: string }>> {
    const rows = (await this.dataSource.query(`SELECT DISTINCT server_name, device_id FROM ${table} LIMIT $1`, [
      limit,
    ])) as Array<{ server_name: string; device_id: string }>;
    return rows.map((r) => ({ serverName: r.server_name, deviceId: r.device_id }));
  }

  /**
   * Deletes inbox messages stored before `inboxBefore` (never fetched), outbox EDUs stored before `outboxBefore`
   * (no home took them) and held messages stored before `heldBefore` (their device never appeared); ms since the
   * epoch.
   */
  async sweep(before: { inbox: number; outbox: number; held: number }): Promise<ToDeviceSwept> {
    const count = async (table: string, at: number): Promise<number> => {
      const rows = (await this.dataSource.query(
        `WITH gone AS (DELETE FROM ${table} WHERE received_at < $1 RETURNING 1) SELECT COUNT(*) AS n FROM gone`,
        [new Date(at)],
      )) as Array<{ n: string }>;
      return Number(rows[0]?.n ?? 0);
    };
    return {
      inbox: await count('to_device_inbox', before.inbox),
      outbox: await count('to_device_outbox', before.outbox),
      held: await count('to_device_held', before.held),
    };
  }

  /** Inserts rows at the positions after `position`; answers the last one. */
  async #insert(
    m: EntityManager,
    position: number,
    inbox: readonly ToDeviceInboxRow[],
    outbox: readonly ToDeviceOutboxRow[],
    held: readonly ToDeviceHeldRow[],
  ): Promise<number> {
    let next = position;
    next = await insertRows(m, 'to_device_inbox', 'stream_id', INBOX_COLUMNS, inbox, next);
    next = await insertRows(m, 'to_device_outbox', 'id', OUTBOX_COLUMNS, outbox, next);
    next = await insertRows(m, 'to_device_held', 'id', HELD_COLUMNS, held, next);
    return next;
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

  /** Forgets every message waiting for a device, or held for it (it was deleted). */
  async deleteDevice(serverName: string, deviceId: string): Promise<void> {
    for (const table of ['to_device_inbox', 'to_device_held']) {
      await this.dataSource.query(`DELETE FROM ${table} WHERE server_name = $1 AND device_id = $2`, [
        serverName,
        deviceId,
      ]);
    }
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
      `SELECT id, destination, recipient, origin, edu, sender, sender_device, messages FROM to_device_outbox
       WHERE destination = $1 ORDER BY id LIMIT $2`,
      [destination, limit],
    )) as Array<Record<string, string | number>>;
    return rows.map((r) => ({
      id: Number(r['id']),
      destination: String(r['destination']),
      recipient: String(r['recipient']),
      origin: String(r['origin']),
      edu: String(r['edu']),
      sender: String(r['sender']),
      senderDevice: String(r['sender_device']),
      messages: Number(r['messages']),
    }));
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

  /** Deletes and answers the messages held for the devices (`serverNames[i]`, `deviceIds[i]`), oldest first. */
  async #deleteHeld(m: EntityManager, serverNames: string[], deviceIds: string[]): Promise<StoredToDeviceHeldRow[]> {
    const rows = (await m.query(
      `WITH taken AS (DELETE FROM to_device_held h USING unnest($1::char(64)[], $2::varchar[]) AS k(s, d)
         WHERE h.server_name = k.s AND h.device_id = k.d
         RETURNING h.id, h.server_name, h.device_id, h.user_id, h.origin, h.sender, h.sender_device, h.type,
           h.message_id, h.content)
       SELECT * FROM taken ORDER BY id`,
      [serverNames, deviceIds],
    )) as Array<Record<string, string>>;
    return rows.map((r) => ({
      id: Number(r['id']),
      serverName: r['server_name']!,
      deviceId: r['device_id']!,
      userId: r['user_id']!,
      origin: r['origin']!,
      sender: r['sender']!,
      senderDevice: r['sender_device']!,
      type: r['type']!,
      messageId: r['message_id']!,
      content: r['content']!,
    }));
  }

  /** The messages held for the devices of `inbox` rows, taken out of holding as inbox rows (oldest first). */
  async #takeHeldFor(m: EntityManager, inbox: readonly ToDeviceInboxRow[]): Promise<ToDeviceInboxRow[]> {
    if (inbox.length === 0) return [];
    const devices = [...new Map(inbox.map((r) => [keyOf(r), r])).values()];
    const held = await this.#deleteHeld(
      m,
      devices.map((r) => r.serverName),
      devices.map((r) => r.deviceId),
    );
    return held.map((h) => ({
      serverName: h.serverName,
      deviceId: h.deviceId,
      sender: h.sender,
      senderDevice: h.senderDevice,
      type: h.type,
      content: h.content,
    }));
  }

  /** Throws `outbox_limited` when a sender device would have more than `max` messages waiting for other homes. */
  async #checkOutboxCap(m: EntityManager, outbox: readonly ToDeviceOutboxRow[], max: number): Promise<void> {
    const adding = new Map<string, { sender: string; senderDevice: string; count: number }>();
    for (const row of outbox) {
      const key = JSON.stringify([row.sender, row.senderDevice]);
      const entry = adding.get(key) ?? { sender: row.sender, senderDevice: row.senderDevice, count: 0 };
      entry.count += row.messages;
      adding.set(key, entry);
    }
    for (const group of adding.values()) {
      const rows = (await m.query(
        'SELECT COALESCE(SUM(messages), 0) AS held FROM to_device_outbox WHERE sender = $1 AND sender_device = $2',
        [group.sender, group.senderDevice],
      )) as Array<{ held: string }>;
      const held = Number(rows[0]?.held ?? 0);
      if (held + group.count > max) {
        throw new Refused({ status: 'outbox_limited', sender: group.sender, senderDevice: group.senderDevice, held });
      }
    }
  }

  /**
   * The held rows that fit: a recipient account holds at most `max` messages of one (sender, sender device) for
   * devices not known here yet; the rest are dropped (as messages for unknown devices always were).
   */
  async #withinHeldCap(m: EntityManager, held: readonly ToDeviceHeldRow[], max: number): Promise<ToDeviceHeldRow[]> {
    if (held.length === 0) return [];
    const counts = new Map<string, number>();
    const kept: ToDeviceHeldRow[] = [];
    for (const row of held) {
      const key = JSON.stringify([row.serverName, row.sender, row.senderDevice]);
      let count = counts.get(key);
      if (count === undefined) {
        const rows = (await m.query(
          `SELECT COUNT(*) AS held FROM to_device_held
           WHERE server_name = $1 AND sender = $2 AND sender_device = $3`,
          [row.serverName, row.sender, row.senderDevice],
        )) as Array<{ held: string }>;
        count = Number(rows[0]?.held ?? 0);
      }
      if (count >= max) {
        counts.set(key, count);
        continue;
      }
      counts.set(key, count + 1);
      kept.push(row);
    }
    return kept;
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

/** Columns of an insert: name, SQL type, value of a row. */
type Columns<T> = ReadonlyArray<readonly [string, string, (row: T) => string | number]>;

const INBOX_COLUMNS: Columns<ToDeviceInboxRow> = [
  ['server_name', 'char(64)', (r) => r.serverName],
  ['device_id', 'varchar', (r) => r.deviceId],
  ['sender', 'varchar', (r) => r.sender],
  ['sender_device', 'varchar', (r) => r.senderDevice],
  ['type', 'varchar', (r) => r.type],
  ['content', 'text', (r) => r.content],
];
const OUTBOX_COLUMNS: Columns<ToDeviceOutboxRow> = [
  ['destination', 'varchar', (r) => r.destination],
  ['recipient', 'char(64)', (r) => r.recipient],
  ['origin', 'char(64)', (r) => r.origin],
  ['edu', 'text', (r) => r.edu],
  ['sender', 'varchar', (r) => r.sender],
  ['sender_device', 'varchar', (r) => r.senderDevice],
  ['messages', 'integer', (r) => r.messages],
];
const HELD_COLUMNS: Columns<ToDeviceHeldRow> = [
  ['server_name', 'char(64)', (r) => r.serverName],
  ['device_id', 'varchar', (r) => r.deviceId],
  ['user_id', 'varchar', (r) => r.userId],
  ['origin', 'char(64)', (r) => r.origin],
  ['sender', 'varchar', (r) => r.sender],
  ['sender_device', 'varchar', (r) => r.senderDevice],
  ['type', 'varchar', (r) => r.type],
  ['message_id', 'varchar', (r) => r.messageId],
  ['content', 'text', (r) => r.content],
];

/** Inserts `rows` into `table` at the positions after `next` (column `id`); answers the last one. */
async function insertRows<T>(
  m: EntityManager,
  table: string,
  id: string,
  columns: Columns<T>,
  rows: readonly T[],
  next: number,
): Promise<number> {
  if (rows.length === 0) return next;
  const ids = rows.map(() => String(++next));
  const names = [id, ...columns.map(([name]) => name)].join(', ');
  const types = ['bigint', ...columns.map(([, type]) => type)].map((t, i) => `$${i + 1}::${t}[]`).join(', ');
  await m.query(`INSERT INTO ${table} (${names}) SELECT * FROM unnest(${types})`, [
    ids,
    ...columns.map(([, , value]) => rows.map(value)),
  ]);
  return next;
}

function keyOf(key: ToDeviceKey): string {
  return `${key.serverName.trim()}\u0000${key.deviceId}`;
}
