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
// - Bounds: a device holds at most `maxPendingPerSender` messages of one sender device, a sender device has at
//   most `maxOutboxPerSender` messages in the outbox (both: the request refused whole, 429); an EDU refused for now
//   (`M_LIMIT_EXCEEDED` in the `PUT /send` answer) stays in the sender's outbox, one refused for good is dropped.
//   Messages for a device not known yet are held until its `device.put` arrives (or an hour); unfetched messages
//   and undelivered EDUs expire after 30 days (the sweep).
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
import type {
  ToDeviceHeldInput,
  ToDeviceInboxInput,
  ToDeviceKey,
  ToDeviceOutboxInput,
  ToDeviceStore,
} from './to-device-store.js';

/** The EDU type this carries. */
export const TO_DEVICE_EDU = 'm.direct_to_device';
/** Most messages one (recipient device, sender device) may have waiting on a home (more: 429 for the sender). */
export const DEFAULT_MAX_PENDING_PER_SENDER = 1_000;
/** Most messages one sender device may have waiting in this home's outbox for other homes, all together. */
export const DEFAULT_MAX_OUTBOX_PER_SENDER = 10_000;
/** How long a message for a device not known here yet is held for it to appear. */
export const DEFAULT_HOLD_UNKNOWN_MS = 60 * 60 * 1000;
/** How long a message waits for its device to fetch it, or for a home to take it (outbox). */
export const DEFAULT_TO_DEVICE_RETENTION_MS = 30 * 24 * 60 * 60 * 1000;
/** Time between two sweeps of expired messages. */
const SWEEP_EVERY_MS = 60 * 60 * 1000;
/** Devices a sweep looks at (held messages, inbox of devices gone). */
const SWEEP_DEVICES = 1_000;
/** The errcode of a received EDU refused for now (sent again later); any other refusal is for good. */
export const TO_DEVICE_RETRY_ERRCODE = 'M_LIMIT_EXCEEDED';
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
  /** Most messages one sender device may have waiting in the outbox, all destinations together. */
  maxOutboxPerSender?: number;
  /** How long a message for a device not known here yet is held, ms. */
  holdUnknownMs?: number;
  /** How long a message waits in the inbox for its device, or in the outbox for a home, ms. */
  retentionMs?: number;
  /** Time between two sweeps of expired messages, ms (0: none; `sweep()` still works). */
  sweepEveryMs?: number;
}

/** What `receiveEdu` did. */
export interface ToDeviceEduOutcome {
  accepted: number;
  refused: string[];
  /** Set when nothing of the EDU was taken for now and the sender should send it again later. */
  retry?: { reason: string; retryAfterMs: number };
}

/** What a sweep deleted, and held messages it routed (their device appeared meanwhile). */
export interface ToDeviceSweep {
  inbox: number;
  outbox: number;
  held: number;
  released: number;
  gone: number;
}

/** One message as routed here: to the inbox, or owed to a destination. */
interface Routed {
  userId: string;
  serverName: string;
  deviceId: string;
  content: Record<string, unknown>;
  /** Undefined: this home's inbox. */
  destination?: string;
  /** The device is not known here yet: the message is held for it. */
  held?: true;
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
  readonly #maxOutbox: number;
  readonly #holdUnknown: number;
  readonly #retention: number;
  readonly #sweepEvery: number;
  #sweepTimer: NodeJS.Timeout | undefined;
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
    this.#maxOutbox = init.maxOutboxPerSender ?? DEFAULT_MAX_OUTBOX_PER_SENDER;
    this.#holdUnknown = init.holdUnknownMs ?? DEFAULT_HOLD_UNKNOWN_MS;
    this.#retention = init.retentionMs ?? DEFAULT_TO_DEVICE_RETENTION_MS;
    this.#sweepEvery = init.sweepEveryMs ?? SWEEP_EVERY_MS;
  }

  /** Starts delivering what the outbox holds (from before a restart too). */
  start(): void {
    this.#host.addEventListener('peer:connect', this.#onConnect);
    this.wake();
    if (this.#sweepEvery > 0) {
      // Once at start too: what was held for a device whose arrival was applied just before a crash is routed.
      this.#track(this.sweep());
      this.#sweepTimer = setInterval(() => this.#track(this.sweep()), this.#sweepEvery);
      this.#sweepTimer.unref();
    }
  }

  /** Stops delivering; work in flight ends. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#host.removeEventListener('peer:connect', this.#onConnect);
    clearInterval(this.#sweepTimer);
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
      maxOutboxPerSender: this.#maxOutbox,
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
    if (outcome.status === 'outbox_limited') {
      throw new MatrixError(
        'M_LIMIT_EXCEEDED',
        `This device has ${outcome.held} messages waiting for other homes to take them; send again later.`,
        429,
        { retry_after_ms: 10_000 },
      );
    }
    if (outcome.status === 'stored') this.#stored(routed, outcome.outbox);
  }

  /**
   * After `device:` changes of an account: forgets the messages waiting for those of `deviceIds` it no longer has
   * (deleted anywhere), and routes the messages held for those now known.
   */
  async devicesChanged(serverName: string, deviceIds: readonly string[]): Promise<void> {
    // Most device changes (a new device, new keys) concern devices with nothing waiting or held: one read.
    const withMessages = await this.#store.devicesWithMessages(serverName, deviceIds);
    if (withMessages.length === 0) return;
    const state = await this.#state(serverName);
    for (const deviceId of withMessages) {
      if (!Object.hasOwn(state.devices, deviceId)) await this.#store.deleteDevice(serverName, deviceId);
      else await this.#release(serverName, deviceId, state);
    }
  }

  /**
   * Deletes messages no device fetched within the retention time, EDUs no home took within it, and messages held
   * for devices that did not appear within the hold time; routes held messages whose device is known now, and
   * forgets the inbox of devices the account no longer has (deleted while no change reached this ToDevice).
   */
  async sweep(now = Date.now()): Promise<ToDeviceSweep> {
    // Held messages whose device is known now first: they are routed, not expired.
    let released = 0;
    for (const { serverName, deviceId } of await this.#store.heldDevices(SWEEP_DEVICES)) {
      if (!(await this.#hosts(serverName))) continue;
      const state = await this.#state(serverName);
      if (Object.hasOwn(state.devices, deviceId)) released += await this.#release(serverName, deviceId, state);
    }
    const swept = await this.#store.sweep({
      inbox: now - this.#retention,
      outbox: now - this.#retention,
      held: now - this.#holdUnknown,
    });
    let gone = 0;
    for (const { serverName, deviceId } of await this.#store.inboxDevices(SWEEP_DEVICES)) {
      if (!(await this.#hosts(serverName))) continue;
      const state = await this.#state(serverName);
      if (Object.hasOwn(state.devices, deviceId)) continue;
      await this.#store.deleteDevice(serverName, deviceId);
      gone += 1;
    }
    const outcome = { ...swept, released, gone };
    if (swept.inbox + swept.outbox + swept.held + gone > 0) {
      this.#logger.info(outcome, 'expired to-device messages deleted');
    }
    return outcome;
  }

  /** Routes the messages held for a device now in the state (inbox, or an EDU to its home); answers how many. */
  async #release(serverName: string, deviceId: string, state: MatrixAccountState): Promise<number> {
    // Nothing held (a device appearing, or a device put again): nothing to route, nothing to lock. A message held
    // right after this read is routed by the sweep, as one held while a release ran always was.
    if (this.#store.hasHeld !== undefined && !(await this.#store.hasHeld(serverName, deviceId))) return 0;
    const home = (state.devices[deviceId] as { home?: unknown } | undefined)?.home;
    const destination = typeof home === 'string' && home !== this.#peerId ? home : undefined;
    const homes = new Set((await this.#documents.document(serverName))?.homes.map((h) => h.peer_id) ?? []);
    // A device of a home the account no longer has (revoked) is never reached: what was held for it goes.
    const reachable = destination === undefined || homes.has(destination);
    const outcome = await this.#store.releaseHeld(serverName, deviceId, (held) => {
      if (!reachable) return { inbox: [], outbox: [] };
      const inbox: ToDeviceInboxInput[] = [];
      const outbox: ToDeviceOutboxInput[] = [];
      for (const row of held) {
        if (destination === undefined) {
          inbox.push({
            serverName,
            deviceId,
            sender: row.sender,
            senderDevice: row.senderDevice,
            type: row.type,
            content: row.content,
          });
          continue;
        }
        const edu = {
          sender: row.sender,
          type: row.type,
          message_id: row.messageId,
          messages: { [row.userId]: { [deviceId]: JSON.parse(row.content) as unknown } },
        };
        outbox.push({
          destination,
          recipient: serverName,
          origin: row.origin,
          edu: JSON.stringify(edu),
          sender: row.sender,
          senderDevice: row.senderDevice,
          messages: 1,
        });
      }
      return { inbox, outbox };
    });
    if (outcome.inbox > 0) for (const listener of this.#listeners) listener([serverName]);
    if (outcome.outbox > 0) this.wake();
    if (outcome.inbox + outcome.outbox > 0) {
      this.#logger.debug({ serverName, deviceId, ...outcome }, 'held to-device messages routed to a device now known');
    }
    return outcome.inbox + outcome.outbox;
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
      maxOutboxPerSender: this.#maxOutbox,
      build: (fresh) =>
        this.#rows(
          routed.filter((r) => r.keys.every(fresh)),
          { sender, senderDevice: '', type, messageId },
          undefined,
        ),
    });
    // Over a cap: nothing was taken (no key marked), so the sending home keeps the EDU and sends it again later.
    if (outcome.status === 'limited') {
      const reason = `${outcome.serverName} ${outcome.deviceId} holds too many messages of ${sender}`;
      return { accepted: 0, refused: [...refused, reason], retry: { reason, retryAfterMs: 10_000 } };
    }
    if (outcome.status === 'outbox_limited') {
      const reason = `this home holds too many messages of ${sender} for other homes`;
      return { accepted: 0, refused: [...refused, reason], retry: { reason, retryAfterMs: 10_000 } };
    }
    if (outcome.status === 'duplicate') return { accepted: 0, refused };
    if (outcome.dropped > 0) refused.push(`${outcome.dropped} messages for unknown devices over the hold cap`);
    this.#stored(routed, outcome.outbox);
    return { accepted: outcome.inbox + outcome.outbox + outcome.held, refused };
  }

  // ---- Routing ----

  /**
   * The devices of a hosted account's user a message goes to: `*` is every device (kept as a key too, so the same
   * `*` message reaching this home twice is taken once), other ids the device when it exists; an id not in the
   * state is held (its `device.put` may not have replicated here yet) until it appears or the hold expires.
   * Devices on a home the account document no longer names are dropped. `keys`
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
      if (requested !== '*' && !Object.hasOwn(state.devices, requested)) {
        const own: ToDeviceKey[] = [{ serverName, deviceId: requested }];
        out.push({ userId, serverName, deviceId: requested, content, held: true, keys: keys ?? own });
        continue;
      }
      const ids = requested === '*' ? Object.keys(state.devices) : [requested];
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

  /**
   * Inbox rows, held rows, and one outbox EDU per (destination, recipient account). `origin`: the transaction's
   * account.
   */
  #rows(
    routed: readonly Routed[],
    message: { sender: string; senderDevice: string; type: string; messageId: string },
    origin: string | undefined,
  ): { inbox: ToDeviceInboxInput[]; outbox: ToDeviceOutboxInput[]; held: ToDeviceHeldInput[] } {
    const inbox: ToDeviceInboxInput[] = [];
    const held: ToDeviceHeldInput[] = [];
    const edus = new Map<
      string,
      {
        row: Omit<ToDeviceOutboxInput, 'edu' | 'messages'>;
        messages: Record<string, Record<string, unknown>>;
        count: number;
      }
    >();
    for (const r of routed) {
      if (r.held === true) {
        held.push({
          serverName: r.serverName,
          deviceId: r.deviceId,
          userId: r.userId,
          origin: origin ?? r.serverName,
          sender: message.sender,
          senderDevice: message.senderDevice,
          type: message.type,
          messageId: message.messageId,
          content: JSON.stringify(r.content),
        });
        continue;
      }
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
        row: {
          destination: r.destination,
          recipient: r.serverName,
          origin: origin ?? r.serverName,
          sender: message.sender,
          senderDevice: message.senderDevice,
        },
        messages: {},
        count: 0,
      };
      (entry.messages[r.userId] ??= {})[r.deviceId] = r.content;
      entry.count += 1;
      edus.set(key, entry);
    }
    const outbox = [...edus.values()].map(({ row, messages, count }) => ({
      ...row,
      messages: count,
      edu: JSON.stringify({ sender: message.sender, type: message.type, message_id: message.messageId, messages }),
    }));
    return { inbox, outbox, held };
  }

  /** After a store: wakes the long-polls of the accounts with new inbox messages, and delivers what is owed. */
  #stored(routed: readonly Routed[], outbox: number): void {
    const local = [
      ...new Set(routed.filter((r) => r.destination === undefined && r.held !== true).map((r) => r.serverName)),
    ];
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
        const taken = await this.#handOver(destination, first.recipient, first.origin, edus);
        if (taken === undefined) {
          this.#failed(destination);
          return;
        }
        // What the home refused for now stays (sent again after a backoff, in order); what it refused for good goes.
        const kept = run.filter((_, i) => taken.refusals.get(i)?.errcode === TO_DEVICE_RETRY_ERRCODE);
        for (const [i, refusal] of taken.refusals) {
          if (refusal.errcode === TO_DEVICE_RETRY_ERRCODE) continue;
          this.#logger.warn(
            {
              destination,
              peer: taken.peer,
              messageId: (edus[i]?.content as { message_id?: unknown }).message_id,
              ...refusal,
            },
            'a home refused to-device messages for good: they are dropped',
          );
        }
        await this.#store.removeOutbox(run.filter((r) => !kept.includes(r)).map((r) => r.id));
        if (taken.peer !== destination) {
          this.#logger.debug(
            { destination, taker: taken.peer, edus: run.length },
            'to-device messages handed to a server home',
          );
        }
        if (kept.length > 0) {
          this.#logger.debug(
            {
              destination,
              peer: taken.peer,
              kept: kept.length,
              reason: taken.refusals.get(run.indexOf(kept[0]!))?.error,
            },
            'a home refused to-device messages for now: they are kept and sent again',
          );
          this.#failed(destination);
          return;
        }
        this.#backoff.delete(destination);
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

  /**
   * The first home that answers the EDUs: the destination, else a server home of the recipient (see `#takers`),
   * with the EDUs it refused (by index in `edus`; the answer's `edus`, see `eduRefusals`).
   */
  async #handOver(
    destination: string,
    recipient: string,
    origin: string,
    edus: ToDeviceEdu[],
  ): Promise<{ peer: string; refusals: Map<number, EduRefusal> } | undefined> {
    for (const peer of await this.#takers(destination, recipient)) {
      try {
        const answer = await this.#transmit(peer, origin, edus, TRANSMIT_TIMEOUT_MS);
        if (answer.status === 200) return { peer, refusals: eduRefusals(answer.body, edus.length) };
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

/** An EDU a home refused, as its `PUT /send` answer names it. */
export interface EduRefusal {
  errcode: string;
  error: string;
  retry_after_ms?: number;
}

/**
 * The EDUs a `PUT /send` answer says were refused: `edus` maps the index of each refused EDU in the transaction to
 * `{ errcode, error, retry_after_ms? }` (a polyhome addition to the spec's answer, which names only PDUs);
 * `M_LIMIT_EXCEEDED` is a refusal for now (send it again later), any other errcode one for good. An answer without
 * it (another implementation) refuses nothing.
 */
export function eduRefusals(body: unknown, count: number): Map<number, EduRefusal> {
  const out = new Map<number, EduRefusal>();
  const edus = isRecord(body) ? body['edus'] : undefined;
  if (!isRecord(edus)) return out;
  for (const [key, value] of Object.entries(edus)) {
    const index = Number(key);
    if (!Number.isInteger(index) || index < 0 || index >= count || !isRecord(value)) continue;
    if (typeof value['errcode'] !== 'string') continue;
    const refusal: EduRefusal = { errcode: value['errcode'], error: String(value['error'] ?? '') };
    if (typeof value['retry_after_ms'] === 'number') refusal.retry_after_ms = value['retry_after_ms'];
    out.set(index, refusal);
  }
  return out;
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
