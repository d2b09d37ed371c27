/**
 * The receipt store port: where a home keeps the newest read receipt of each (room, type, user, thread), in a
 * stream /sync reads. Types only: `SqlReceiptStore` of `@polyhome/storage` satisfies it (PostgreSQL or PGlite).
 */

/** A receipt to keep. `threadId` null is an unthreaded receipt. */
export interface ReceiptInput {
  roomId: string;
  receiptType: string;
  userId: string;
  threadId: string | null;
  eventId: string;
  /** Stream ordering of the event on this home, or null when the event is not held here (a remote receipt). */
  eventStream: number | null;
  /** When it was made (ms since the epoch). */
  ts: number;
}

/** A receipt as kept, with its position in the receipt stream. */
export interface StoredReceipt extends ReceiptInput {
  streamId: number;
}

/** Receipts of a home's rooms. */
export interface ReceiptStore {
  /**
   * Keeps a receipt as the newest of its (room, type, user, thread) at the next stream position, unless the one
   * held is for a later event (both held here): then nothing changes and the answer is null (receipts only move
   * forward). Positions commit in order: a reader of "after P" never misses one that commits later.
   */
  putReceipt(input: ReceiptInput): Promise<number | null>;
  /** The newest receipt stream position (0 when none). */
  receiptPosition(): Promise<number>;
  /** Receipts of these rooms with positions in (`since`, `to`], oldest first, at most `limit` (the newest ones). */
  receiptsSince(roomIds: readonly string[], since: number, to: number, limit: number): Promise<StoredReceipt[]>;
  /**
   * Per room: timeline events not sent by `userId`, of one of `types` (edits, `m.relates_to.rel_type` `m.replace`,
   * excepted), after the user's newest `m.read` or `m.read.private` receipt held here (unthreaded or `main`) or,
   * with none, after the user's current membership event; counted up to `cap`. Rooms with none are absent.
   */
  notificationCounts(
    userId: string,
    roomIds: readonly string[],
    types: readonly string[],
    cap: number,
  ): Promise<Map<string, number>>;
}
