// Rooms an operator blocked on this home (Synapse's room block): no user of an account hosted here may join
// such a room or be invited into it. The store is a port so a client home can keep blocks as a server does.
import { MatrixError } from '@polyhome/matrix/errors';

/** A room's block: why, and since when. */
export interface RoomBlock {
  roomId: string;
  reason: string;
  blockedAt: Date;
}

/** Where a home keeps its room blocks (`repositories.roomBlocks` of `@polyhome/storage`: `room_block`). */
export interface RoomBlockStore {
  /** The room's block, when it is blocked. */
  roomBlock(roomId: string): Promise<RoomBlock | undefined>;
  /** Blocks a room (held here or not), or gives a blocked room a new reason; resolves with the block kept. */
  blockRoom(roomId: string, reason: string): Promise<RoomBlock>;
  /** Lifts a room's block; resolves with whether it was blocked. */
  unblockRoom(roomId: string): Promise<boolean>;
}

/** The refusal of a join or invite of a blocked room (403). */
export function roomBlockedError(roomId: string): MatrixError {
  return new MatrixError('M_FORBIDDEN', `Room ${roomId} is blocked by the server's administrator.`);
}
