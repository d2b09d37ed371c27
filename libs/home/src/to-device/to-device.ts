// To-device messages of a home (client-server "Send-to-Device messaging", server-server `m.direct_to_device`):
// the MatrixToDevicePort the client API uses, and the EDU side federation carries.
// - Routing: a device hosted here (its `device.put` names this home in `home`, or names none) gets the message in
//   its inbox; a device of a hosted account on another home gets it as an `m.direct_to_device` EDU sent to that
//   home; a user of an account not hosted here gets it sent to that account's homes (server homes first), which
//   route it on (they hold the account's device list).
// - Holding: EDUs owed to other homes sit in a durable outbox (to_device_outbox), retried with backoff and at once
//   when the home connects. When the device's home is away, a home that is not a server home of the recipient
//   account hands the EDU to one of the account's server homes, which hold it until that home takes it.
// - Exactly once: every message is taken once per (sender's server, message id, recipient device) on each home;
//   a client's txn id is kept as the message id, so a retried request does nothing.
// See docs/decisions.md, "To-device messages".
import { createHash } from 'node:crypto';
import { homeStatus, isServerName, type AccountDocument } from '@polyhome/identity';
import type {
  MatrixAccountState,
  MatrixToDevicePort,
  RoomActor,
  ToDeviceEvent,
  ToDeviceMessages,
} from '@polyhome/matrix';
import { MatrixError } from '@polyhome/matrix/errors';
import type { FederationResponse, PolyhomeHost } from '@polyhome/p2p';
import { isUserId, serverNameOf } from '@polyhome/rooms';
import { SILENT_LOGGER, type HomeLogger } from '../ports.js';
import type { ToDeviceInboxInput, ToDeviceKey, ToDeviceOutboxInput, ToDeviceStore } from './to-device-store.js';

/** The EDU type this carries. */
export const TO_DEVICE_EDU = 'm.direct_to_device';
/** Most messages one (recipient device, sender device) may have waiting on a home (more: 429 for the sender). */
export const DEFAULT_MAX_PENDING_PER_SENDER = 1_000;
/** Largest `m.direct_to_device` EDU taken from another home (bytes of its JSON). */
export const MAX_TO_DEVICE_EDU_BYTES = 512 * 1024;
/** Most messages (user and device pairs) in one received EDU. */
export const MAX_TO_DEVICE_EDU_MESSAGES = 1_000;
/** EDUs of one transaction (the spec's limit). */
const EDUS_PER_TXN = 100;
/** Bytes of EDUs put in one transaction (the federation body limit is 4 MiB). */
const TXN_BYTES = 1024 * 1024;
/** Transactions one delivery run sends to a destination before it lets others go. */
const BATCHES_PER_RUN = 100;
/** Destinations read from the outbox per round. */
const DESTINATIONS_PER_ROUND = 1_000;
/** Time allowed to one transaction. */
const TRANSMIT_TIMEOUT_MS = 15_000;

/** An EDU on the wire. */
export interface ToDeviceEdu {
  edu_type: string;
  content: unknown;
}

/** What `ToDevice` is built from. */
export interface ToDeviceComponents {
  /** This home's PeerId. */
  peerId: string;
  /** The libp2p host: a home connecting gets what it is owed at once. */
  host: Pick<PolyhomeHost, 'addEventListener' | 'removeEventListener'>;
  store: ToDeviceStore;
  /** The replicated state of a hosted account (its devices, each naming its home). */
  state(serverName: string): Promise<MatrixAccountState>;
  /** Account documents: held ones (`document`), and those of other accounts looked up (`resolve`). */
  documents: {
    document(serverName: string): Promise<AccountDocument | undefined>;
    resolve(serverName: string): Promise<AccountDocument | undefined>;
  };
  /** Sends one transaction of EDUs to a home as `origin` (RoomFederation.sendEdus). */
  transmit(peer: string, origin: string, edus: ToDeviceEdu[], timeoutMs: number): Promise<FederationResponse>;
  logger?: HomeLogger;
}

/** Limits and retry delays. */
export interface ToDeviceInit {
  /** Most messages one (recipient device, sender device) may have waiting here. */
  maxPendingPerSender?: number;
  /** First retry delay after a failed delivery, ms (doubles per failure). */
  minBackoffMs?: number;
  /** Longest retry delay, ms. */
  maxBackoffMs?: number;
}

/** What `receiveEdu` did. */
export interface ToDeviceEduOutcome {
  accepted: number;
  refused: string[];
}

/** One message as routed here: to the inbox, or owed to a destination. */
interface Routed {
  userId: string;
  serverName: string;
  deviceId: string;
  content: Record<string, unknown>;
  /** Undefined: this home's inbox. */
  destination?: string;
  /** The deduplication keys the message is taken under (all new, or it is dropped). */
  keys: ToDeviceKey[];
}

/** To-device messages of one home (see the file comment). */
export class ToDevice implements MatrixToDevicePort {
  readonly #peerId: string;
  readonly #host: ToDeviceComponents['host'];
  readonly #store: ToDeviceStore;
  readonly #state: ToDeviceComponents['state'];
  readonly #documents: ToDeviceComponents['documents'];
  readonly #transmit: ToDeviceComponents['transmit'];
  readonly #logger: HomeLogger;
  readonly #maxPending: number;
  readonly #minBackoff: number;
  readonly #maxBackoff: number;
  readonly #listeners: Array<(serverNames: string[]) => void> = [];
  readonly #inFlight = new Set<string>();
  readonly #rerun = new Set<string>();
  readonly #backoff = new Map<string, { failures: number; timer: NodeJS.Timeout | undefined }>();
  readonly #work = new Set<Promise<unknown>>();
  #pumping = false;
  #again = false;
  #stopped = false;
  readonly #onConnect = (event: CustomEvent<{ toString(): string }>): void => {
    const peer = event.detail.toString();
    const waiting = this.#backoff.get(peer);
    if (waiting === undefined) return;
    clearTimeout(waiting.timer);
    waiting.timer = undefined;
    this.#track(this.#deliver(peer));
  };

  constructor(components: ToDeviceComponents, init: ToDeviceInit = {}) {
    this.#peerId = components.peerId;
    this.#host = components.host;
    this.#store = components.store;
    this.#state = components.state;
    this.#documents = components.documents;
    this.#transmit = components.transmit;
    this.#logger = components.logger ?? SILENT_LOGGER;
    this.#maxPending = init.maxPendingPerSender ?? DEFAULT_MAX_PENDING_PER_SENDER;
    this.#minBackoff = init.minBackoffMs ?? 1_000;
    this.#maxBackoff = init.maxBackoffMs ?? 300_000;
  }

  /** Starts delivering what the outbox holds (from before a restart too). */
  start(): void {
    this.#host.addEventListener('peer:connect', this.#onConnect);
    this.wake();
  }

  /** Stops delivering; work in flight ends. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#host.removeEventListener('peer:connect', this.#onConnect);
    for (const entry of this.#backoff.values()) clearTimeout(entry.timer);
    await Promise.allSettled([...this.#work]);
  }

  // ---- MatrixToDevicePort ----

  onToDevice(listener: (serverNames: string[]) => void): void {
    this.#listeners.push(listener);
  }

  position(): Promise<number> {
    return this.#store.position();
  }

  async messages(
    actor: RoomActor,
    acknowledged: number | undefined,
    to: number,
    limit: number,
  ): Promise<{ events: ToDeviceEvent[]; position: number }> {
    const rows = await this.#store.messages(actor.serverName, actor.deviceId, acknowledged, to, limit);
    const events = rows.map((r) => ({
      sender: r.sender,
      type: r.type,
      content: JSON.parse(r.content) as Record<string, unknown>,
    }));
    return { events, position: rows.length >= limit ? rows.at(-1)!.streamId : to };
  }

  async send(actor: RoomActor, eventType: string, txnId: string, messages: ToDeviceMessages): Promise<void> {
    const messageId = messageIdOf(actor.deviceId, eventType, txnId);
    const routed: Routed[] = [];
    for (const [userId, devices] of messages) {
      const serverName = serverNameOf(userId);
      if (serverName === undefined) continue;
      if (await this.#hostsUser(serverName, userId)) {
        routed.push(...(await this.#route(serverName, userId, devices, [])));
      } else {
        // Another account: its homes know its devices and route the messages on.
        for (const [deviceId, content] of devices) {
          routed.push({ userId, serverName, deviceId, content, destination: serverName, keys: [] });
        }
      }
    }
    const outcome = await this.#store.accept({
      origin: actor.serverName,
      messageId,
      // The sender's transaction: a retried request is the same message, taken once.
      keys: [{ serverName: actor.serverName, deviceId: '' }],
      maxPerSender: this.#maxPending,
      build: () =>
        this.#rows(
          routed,
          { sender: actor.userId, senderDevice: actor.deviceId, type: eventType, messageId },
          actor.serverName,
        ),
    });
    if (outcome.status === 'limited') {
      throw new MatrixError(
        'M_LIMIT_EXCEEDED',
        `Device ${outcome.deviceId} has ${outcome.held} messages from this device it has not fetched yet; ` +
          'send again once it has synced.',
        429,
        { retry_after_ms: 10_000 },
      );
    }
    if (outcome.status === 'stored') this.#stored(routed, outcome.outbox);
  }

  /** Forgets the messages waiting for those of `deviceIds` the account no longer has (deleted anywhere). */
  async forgetDeleted(serverName: string, deviceIds: readonly string[]): Promise<void> {
    const state = await this.#state(serverName);
    for (const deviceId of deviceIds) {
      if (!Object.hasOwn(state.devices, deviceId)) await this.#store.deleteDevice(serverName, deviceId);
    }
  }

  // ---- EDUs from other homes ----

  /**
   * Takes in an `m.direct_to_device` EDU a home sent for `origin` (the account the transaction speaks for, whose
   * home the sender is, checked by federation): `origin` must be the sender's server, or, for an EDU another home
   * of a hosted account forwards, that account with every recipient its user. Recipients must be users of
   * accounts hosted here; their devices are routed as a local send's. Never throws for bad input.
   */
  async receiveEdu(origin: string, edu: unknown): Promise<ToDeviceEduOutcome> {
    const checked = checkEdu(edu);
    if (typeof checked === 'string') return { accepted: 0, refused: [checked] };
    const { sender, type, messageId, messages } = checked;
    const senderServer = serverNameOf(sender)!;
    const users = Object.keys(messages);
    const forwarded = origin !== senderServer;
    if (forwarded && !(users.every((u) => serverNameOf(u) === origin) && (await this.#hosts(origin)))) {
      return {
        accepted: 0,
        refused: [`${origin} may send to-device messages of ${sender} only for its own user, from its homes`],
      };
    }
    const refused: string[] = [];
    const routed: Routed[] = [];
    for (const userId of users) {
      const serverName = serverNameOf(userId);
      const devices = messages[userId]!;
      if (serverName === undefined || !(await this.#hostsUser(serverName, userId))) {
        refused.push(`${userId} is not hosted here`);
        continue;
      }
      const parsed = new Map<string, Record<string, unknown>>();
      for (const [deviceId, content] of Object.entries(devices)) {
        if (!isRecord(content) || deviceId.length === 0 || deviceId.length > 255) {
          refused.push(`${userId} ${deviceId.slice(0, 64)}: the content must be an object`);
        } else parsed.set(deviceId, content);
      }
      routed.push(...(await this.#route(serverName, userId, parsed, undefined)));
    }
    if (routed.length === 0) return { accepted: 0, refused };
    const outcome = await this.#store.accept({
      origin: senderServer,
      messageId,
      keys: routed.flatMap((r) => r.keys),
      maxPerSender: this.#maxPending,
      build: (fresh) =>
        this.#rows(
          routed.filter((r) => r.keys.every(fresh)),
          { sender, senderDevice: '', type, messageId },
          undefined,
        ),
    });
    if (outcome.status === 'limited') {
      refused.push(`${outcome.serverName} ${outcome.deviceId} holds too many messages of ${sender}`);
      return { accepted: 0, refused };
    }
    if (outcome.status === 'duplicate') return { accepted: 0, refused };
    this.#stored(routed, outcome.outbox);
    return { accepted: outcome.inbox + outcome.outbox, refused };
  }

  // ---- Routing ----

  /**
   * The devices of a hosted account's user a message goes to: `*` is every device (kept as a key too, so the same
   * `*` message reaching this home twice is taken once), other ids the device when it exists (unknown ones are
   * dropped, as the spec says, and so are devices on a home the account document no longer names). `keys`
   * undefined: each message is keyed by its device (a received EDU); else every message gets `keys` (a local send,
   * keyed by its transaction).
   */
  async #route(
    serverName: string,
    userId: string,
    devices: ReadonlyMap<string, Record<string, unknown>>,
    keys: ToDeviceKey[] | undefined,
  ): Promise<Routed[]> {
    const state = await this.#state(serverName);
    const homes = new Set((await this.#documents.document(serverName))?.homes.map((h) => h.peer_id) ?? []);
    const out: Routed[] = [];
    for (const [requested, content] of devices) {
      const ids =
        requested === '*' ? Object.keys(state.devices) : Object.hasOwn(state.devices, requested) ? [requested] : [];
      for (const deviceId of ids) {
        const home = (state.devices[deviceId] as { home?: unknown } | undefined)?.home;
        const destination = typeof home === 'string' && home !== this.#peerId ? home : undefined;
        // A device of a home the account no longer has (revoked) is never reached: nothing is kept for it.
        if (destination !== undefined && !homes.has(destination)) continue;
        const own: ToDeviceKey[] = [{ serverName, deviceId }];
        if (requested === '*') own.push({ serverName, deviceId: '*' });
        out.push({
          userId,
          serverName,
          deviceId,
          content,
          ...(destination === undefined ? {} : { destination }),
          keys: keys ?? own,
        });
      }
    }
    return out;
  }

  /** Inbox rows, and one outbox EDU per (destination, recipient account). `origin`: the transaction's account. */
  #rows(
    routed: readonly Routed[],
    message: { sender: string; senderDevice: string; type: string; messageId: string },
    origin: string | undefined,
  ): { inbox: ToDeviceInboxInput[]; outbox: ToDeviceOutboxInput[] } {
    const inbox: ToDeviceInboxInput[] = [];
    const edus = new Map<
      string,
      { row: Omit<ToDeviceOutboxInput, 'edu'>; messages: Record<string, Record<string, unknown>> }
    >();
    for (const r of routed) {
      if (r.destination === undefined) {
        inbox.push({
          serverName: r.serverName,
          deviceId: r.deviceId,
          sender: message.sender,
          senderDevice: message.senderDevice,
          type: message.type,
          content: JSON.stringify(r.content),
        });
        continue;
      }
      const key = `${r.destination} ${r.serverName}`;
      // A forwarded EDU speaks for the recipient account (this home is one of its homes).
      const entry = edus.get(key) ?? {
        row: { destination: r.destination, recipient: r.serverName, origin: origin ?? r.serverName },
        messages: {},
      };
      (entry.messages[r.userId] ??= {})[r.deviceId] = r.content;
      edus.set(key, entry);
    }
    const outbox = [...edus.values()].map(({ row, messages }) => ({
      ...row,
      edu: JSON.stringify({ sender: message.sender, type: message.type, message_id: message.messageId, messages }),
    }));
    return { inbox, outbox };
  }

  /** After a store: wakes the long-polls of the accounts with new inbox messages, and delivers what is owed. */
  #stored(routed: readonly Routed[], outbox: number): void {
    const local = [...new Set(routed.filter((r) => r.destination === undefined).map((r) => r.serverName))];
    if (local.length > 0) for (const listener of this.#listeners) listener(local);
    if (outbox > 0) this.wake();
  }

  // ---- Delivery of the outbox ----

  /** Delivers what the outbox holds, to every destination not backing off. */
  wake(): void {
    if (this.#stopped) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#track(
      (async () => {
        try {
          do {
            this.#again = false;
            for (const destination of await this.#store.outboxDestinations(DESTINATIONS_PER_ROUND)) {
              if (this.#inFlight.has(destination)) {
                this.#rerun.add(destination);
                continue;
              }
              if (this.#backoff.get(destination)?.timer !== undefined) continue;
              this.#track(this.#deliver(destination));
            }
          } while (this.#again && !this.#stopped);
        } finally {
          this.#pumping = false;
        }
      })(),
    );
  }

  /** Sends what a destination is owed, oldest first; backs off when no home took it. */
  async #deliver(destination: string): Promise<void> {
    if (this.#stopped) return;
    if (this.#inFlight.has(destination)) {
      this.#rerun.add(destination);
      return;
    }
    this.#inFlight.add(destination);
    try {
      for (let batch = 0; batch < BATCHES_PER_RUN && !this.#stopped; batch++) {
        const pending = await this.#store.pendingOutbox(destination, EDUS_PER_TXN);
        if (pending.length === 0) break;
        const first = pending[0]!;
        const run: typeof pending = [];
        let bytes = 0;
        for (const row of pending) {
          if (row.origin !== first.origin || row.recipient !== first.recipient) break;
          if (run.length > 0 && bytes + row.edu.length > TXN_BYTES) break;
          bytes += row.edu.length;
          run.push(row);
        }
        const edus = run.map((r) => ({ edu_type: TO_DEVICE_EDU, content: JSON.parse(r.edu) as unknown }));
        const taker = await this.#handOver(destination, first.recipient, first.origin, edus);
        if (taker === undefined) {
          this.#failed(destination);
          return;
        }
        await this.#store.removeOutbox(run.map((r) => r.id));
        this.#backoff.delete(destination);
        if (taker !== destination) {
          this.#logger.debug({ destination, taker, edus: run.length }, 'to-device messages handed to a server home');
        }
      }
    } catch (err) {
      this.#logger.warn({ err, destination }, 'to-device delivery failed');
      this.#failed(destination);
    } finally {
      this.#inFlight.delete(destination);
      if (this.#rerun.delete(destination) && !this.#stopped && this.#backoff.get(destination)?.timer === undefined) {
        this.#track(this.#deliver(destination));
      }
    }
  }

  /** The first home that takes the EDUs: the destination, else a server home of the recipient (see `#takers`). */
  async #handOver(
    destination: string,
    recipient: string,
    origin: string,
    edus: ToDeviceEdu[],
  ): Promise<string | undefined> {
    for (const peer of await this.#takers(destination, recipient)) {
      try {
        const answer = await this.#transmit(peer, origin, edus, TRANSMIT_TIMEOUT_MS);
        if (answer.status === 200) return peer;
        this.#logger.debug({ peer, status: answer.status, body: answer.body }, 'a home refused to-device messages');
      } catch (err) {
        this.#logger.debug({ peer, err: (err as Error).message }, 'a home was not reached with to-device messages');
      }
    }
    return undefined;
  }

  /**
   * Who may take EDUs owed to a destination: an account's homes, server homes first (the destination is an
   * account); else the device's home, then, unless this home is a server home of the recipient account (it
   * holds them itself), the account's server homes, which hold them for it.
   */
  async #takers(destination: string, recipient: string): Promise<string[]> {
    if (isServerName(destination)) {
      const document = await this.#documents.resolve(destination);
      const homes = [...(document?.homes ?? [])].sort((a, b) => rank(a.role) - rank(b.role));
      return homes.map((h) => h.peer_id).filter((p) => p !== this.#peerId);
    }
    const document = await this.#documents.document(recipient);
    const status = document === undefined ? undefined : homeStatus(document, this.#peerId);
    if (status?.kind === 'home' && status.home.role === 'server') return [destination];
    const servers = (document?.homes ?? [])
      .filter((h) => h.role === 'server' && h.peer_id !== this.#peerId && h.peer_id !== destination)
      .map((h) => h.peer_id);
    return [destination, ...servers];
  }

  #failed(destination: string): void {
    if (this.#stopped) return;
    const entry = this.#backoff.get(destination) ?? { failures: 0, timer: undefined };
    entry.failures += 1;
    const delay = Math.min(this.#maxBackoff, this.#minBackoff * 2 ** Math.min(entry.failures - 1, 20));
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.#track(this.#deliver(destination));
    }, delay);
    this.#backoff.set(destination, entry);
    this.#logger.debug({ destination, retryInMs: delay }, 'to-device messages wait for their home');
  }

  // ---- Helpers ----

  /** Whether an account is hosted here. */
  async #hosts(serverName: string): Promise<boolean> {
    const document = await this.#documents.document(serverName);
    return document !== undefined && homeStatus(document, this.#peerId).kind === 'home';
  }

  /** Whether `userId` is the user of an account hosted here. */
  async #hostsUser(serverName: string, userId: string): Promise<boolean> {
    const document = await this.#documents.document(serverName);
    return document !== undefined && document.user_id === userId && homeStatus(document, this.#peerId).kind === 'home';
  }

  #track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => this.#logger.error({ err }, 'to-device work failed'));
    this.#work.add(tracked);
    void tracked.finally(() => this.#work.delete(tracked));
  }
}

/** The message id of a client's request: the same for a retry of its (device, event type, txn id). */
export function messageIdOf(deviceId: string, eventType: string, txnId: string): string {
  return createHash('sha256').update(`${deviceId}\n${eventType}\n${txnId}`).digest('base64url').slice(0, 32);
}

/** An EDU's content checked, or why it is refused. */
function checkEdu(
  edu: unknown,
): { sender: string; type: string; messageId: string; messages: Record<string, Record<string, unknown>> } | string {
  if (!isRecord(edu) || edu['edu_type'] !== TO_DEVICE_EDU) return 'not an m.direct_to_device EDU';
  const content = edu['content'];
  if (!isRecord(content)) return 'the content must be an object';
  if (JSON.stringify(content).length > MAX_TO_DEVICE_EDU_BYTES) return `larger than ${MAX_TO_DEVICE_EDU_BYTES} bytes`;
  const { sender, type, message_id: messageId, messages } = content;
  if (typeof sender !== 'string' || !isUserId(sender) || sender.length > 255 || !isServerName(serverNameOf(sender)!)) {
    return 'sender must be the user id of an account (@localpart:server name)';
  }
  if (typeof type !== 'string' || type.length === 0 || type.length > 255) return 'type must be an event type';
  if (typeof messageId !== 'string' || messageId.length === 0 || messageId.length > 255) {
    return 'message_id must be a string of 1 to 255 characters';
  }
  if (!isRecord(messages)) return 'messages must be an object';
  let count = 0;
  for (const [userId, devices] of Object.entries(messages)) {
    if (!isUserId(userId) || !isRecord(devices)) return 'messages must map user ids to objects of devices';
    count += Object.keys(devices).length;
  }
  if (count > MAX_TO_DEVICE_EDU_MESSAGES) return `more than ${MAX_TO_DEVICE_EDU_MESSAGES} messages`;
  return { sender, type, messageId, messages: messages as Record<string, Record<string, unknown>> };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function rank(role: string): number {
  return role === 'server' ? 0 : 1;
}
