import type { DataSource } from 'typeorm';
import { RoomBlockEntity } from './entities/room-block.entity.js';

/** A room's block as kept (see `RoomBlock` of `@polyhome/home`, which this matches). */
export interface RoomBlockRow {
  roomId: string;
  reason: string;
  blockedAt: Date;
}

/**
 * The rooms an operator blocked, on PostgreSQL or PGlite (`room_block`, one row a room). It matches the
 * `RoomBlockStore` port of `@polyhome/home`.
 */
export class SqlRoomBlockStore {
  constructor(private readonly dataSource: DataSource) {}

  async roomBlock(roomId: string): Promise<RoomBlockRow | undefined> {
    const row = await this.dataSource.getRepository(RoomBlockEntity).findOneBy({ roomId });
    return row === null ? undefined : rowOf(row);
  }

  async blockRoom(roomId: string, reason: string): Promise<RoomBlockRow> {
    const [row] = (await this.dataSource.query(
      `INSERT INTO room_block (room_id, reason, blocked_at) VALUES ($1, $2, now())
       ON CONFLICT (room_id) DO UPDATE SET reason = EXCLUDED.reason, blocked_at = EXCLUDED.blocked_at
       RETURNING room_id, reason, blocked_at`,
      [roomId, reason],
    )) as Array<{ room_id: string; reason: string; blocked_at: Date | string }>;
    return { roomId: row!.room_id, reason: row!.reason, blockedAt: new Date(row!.blocked_at) };
  }

  async unblockRoom(roomId: string): Promise<boolean> {
    const result = await this.dataSource.getRepository(RoomBlockEntity).delete({ roomId });
    return (result.affected ?? 0) > 0;
  }
}

function rowOf(row: RoomBlockEntity): RoomBlockRow {
  return { roomId: row.roomId, reason: row.reason, blockedAt: row.blockedAt };
}
