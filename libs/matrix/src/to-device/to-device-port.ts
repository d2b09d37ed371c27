// What the Matrix client API needs from the home for to-device messages (libs/home's `ToDevice` implements it):
// sending them (`PUT /sendToDevice`) and handing a device what waits for it in /sync. Every method acts as one
// device of an account hosted here; refusals are MatrixErrors.
import type { RoomActor } from '../rooms/rooms-port.js';

/** Messages of one request, checked: user ID → device ID (or `*`, every device of the user) → content. */
export type ToDeviceMessages = Map<string, Map<string, Record<string, unknown>>>;

/** A to-device event as /sync gives it. */
export interface ToDeviceEvent {
  sender: string;
  type: string;
  content: Record<string, unknown>;
}

/** The to-device side of the home, as the client API uses it. */
export interface MatrixToDevicePort {
  /**
   * `PUT /sendToDevice/{eventType}/{txnId}`: routes each message to its device's home (this one, or another
   * home of the account or of another account). Idempotent per (sender device, event type, txn id): a repeat
   * does nothing. A device that would hold too many messages of this sender refuses the whole request
   * (`429 M_LIMIT_EXCEEDED`), and nothing of it is stored.
   */
  send(actor: RoomActor, eventType: string, txnId: string, messages: ToDeviceMessages): Promise<void>;
  /** The to-device stream position a /sync made now reaches. */
  position(): Promise<number>;
  /**
   * The messages waiting for the actor's device up to `to`, oldest first, at most `limit`, after deleting those
   * at or before `acknowledged` (the position of the client's `since`). `position` is what the next token
   * carries: `to`, or the last message's when more wait.
   */
  messages(
    actor: RoomActor,
    acknowledged: number | undefined,
    to: number,
    limit: number,
  ): Promise<{ events: ToDeviceEvent[]; position: number }>;
  /** Calls `listener` with the server names (hosted accounts) that have new to-device messages here. */
  onToDevice(listener: (serverNames: string[]) => void): void;
}
