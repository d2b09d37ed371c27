// One sync session: one stream, one account, two homes. The decisions (what to send next, what a
// received message means, windows, acks, resends) are the pure session state machine of @polyhome/sync
// (initSession / generate / receive); this class is its driver: it owns the stream, the timers, the
// frame caps and the ReplicaStore calls, as libs/sync/src/session.ts describes:
//
//   open:       pump            (sends our hello)
//   each frame: receive -> carry out the effects (apply ops, offer document, ack seen, close) -> pump
//   new op:     pump            (push: anti-entropy and push are one code path)
import type { Connection, Stream } from '@libp2p/interface';
import type { LengthPrefixedStream } from '@libp2p/utils';
import { homeStatus, type AccountDocument } from '@polyhome/identity';
import {
  failSession,
  generate,
  initSession,
  opsRequest,
  receive,
  renewHello,
  type ApplyResult,
  type Op,
  type ReplicaStore,
  type SessionEffect,
  type SessionState,
  type SyncErrorCode,
  type SyncMessage,
  type VersionVector,
  adoptOps,
  verifyOpsAhead,
  heldVector,
  asReplicationWork,
  replicationTurn,
} from '@polyhome/sync';
import { lpStream } from '@libp2p/utils';
import { ANTI_ENTROPY_JITTER, MAX_ERROR_REASON_LENGTH, SYNC_PROTOCOL } from './constants.js';
import { MalformedFrameError } from './errors.js';
import { decodeValue, encodeMessage, parseFrame, TooManyOpsError } from './frames.js';
import type { FrameLimits } from './frames.js';
import { errorFields, type P2pLogger } from './logger.js';

/** Settings a session runs with (from SyncServiceInit and constants.ts). */
export interface SessionSettings {
  maxFrameBytes: number;
  opsFrameBudget: number;
  maxOpsPerBatch: number;
  maxBatchesInFlight: number;
  idleTimeout: number;
  writeTimeout: number;
  limits: FrameLimits;
  /** Anti-entropy period of a session this end opened (ms, jittered); 0 for none. */
  antiEntropyInterval: number;
}

/** What a session reports to the service that owns it. */
export interface SessionOwner {
  readonly localPeer: string;
  /** Ops were applied from this session's peer. */
  applied(session: Session, result: ApplyResult): void;
  /** The peer acknowledged holding `vv`; `recorded` when the store already recorded it. */
  acked(session: Session, vv: VersionVector, recorded?: boolean): void;
  /** Something was refused, by us or by the peer. */
  rejected(session: Session, code: string, detail: string, op?: unknown): void;
  /** A frame of `count` ops was queued to the peer (counted by forced resyncs). */
  sent?(session: Session, count: number): void;
  /** The document in force for the account changed through this session. */
  documentAccepted(session: Session, document: AccountDocument): void;
  /** The peer offered a valid document; `inForce` is the one in force after it (to tell an equivocation). */
  documentOffered(session: Session, offered: AccountDocument, inForce: AccountDocument): void;
  /** The session ended. */
  closed(session: Session): void;
}

/** Why a session stopped (for logs and tests). */
export type CloseReason =
  | 'done'
  | 'idle'
  | 'superseded'
  | 'stopped'
  | 'resync'
  | 'not_a_home'
  | 'refused_by_peer'
  | 'malformed'
  | 'too_large'
  | 'error';

/** A sync session over one stream. */
export class Session {
  readonly account: string;
  readonly remotePeer: string;
  readonly connection: Connection;
  /** True when this end opened the stream. */
  readonly initiator: boolean;
  /** Why the session ended, once it has. */
  closeReason: CloseReason | undefined;

  readonly #store: ReplicaStore;
  readonly #owner: SessionOwner;
  readonly #settings: SessionSettings;
  readonly #log: P2pLogger;
  readonly #abort = new AbortController();
  #state: SessionState;
  #lp: LengthPrefixedStream<Stream> | undefined;
  #stream: Stream | undefined;
  #writes: Promise<void> = Promise.resolve();
  #pumping = false;
  #pumpAgain = false;
  #antiEntropy: ReturnType<typeof setTimeout> | undefined;
  /**
   * The account as this session last saw it (document, vector, digests), kept between pumps so that a pump with
   * nothing new reads nothing. Dropped by trigger() and renew(), which is how every change made through this process
   * reaches the session; a change another server instance made on the same database is read at the next renew (the
   * anti-entropy period). After a batch applied through this session, it is what the store read and wrote under the
   * account's lock (ApplyResult.after).
   */
  #local: LocalView | undefined;
  /** Bumped whenever #local is dropped: a read or apply begun before a drop does not put back what it saw. */
  #localGeneration = 0;
  /** The read of #local under way, with the generation it began in. */
  #reading: { generation: number; view: Promise<LocalView | undefined> } | undefined;
  readonly #effects: { [K in SessionEffect['kind']]: (effect: Extract<SessionEffect, { kind: K }>) => Promise<void> };

  constructor(params: {
    account: string;
    remotePeer: string;
    connection: Connection;
    initiator: boolean;
    store: ReplicaStore;
    owner: SessionOwner;
    settings: SessionSettings;
    log: P2pLogger;
  }) {
    this.account = params.account;
    this.remotePeer = params.remotePeer;
    this.connection = params.connection;
    this.initiator = params.initiator;
    this.#store = params.store;
    this.#owner = params.owner;
    this.#settings = params.settings;
    this.#log = params.log;
    this.#state = initSession(params.account);
    // Dispatch by effect kind through a table, one handler each (kad-dht's rpc habit).
    this.#effects = {
      apply_ops: async (e) => this.#applyOps(e.ops),
      offer_document: async (e) => this.#offerDocument(e.document),
      peer_acked: async (e) => this.#owner.acked(this, e.vv),
      close: async (e) => {
        this.#closeFor(e);
      },
    };
  }

  /** True until the session has ended. */
  get open(): boolean {
    return this.closeReason === undefined;
  }

  /** What the peer is known to hold. */
  get peerVector(): VersionVector {
    return { ...this.#state.theirVv };
  }

  /** Frames of ops sent and not yet acknowledged. */
  get inFlight(): number {
    return this.#state.inFlight;
  }

  /** True once the peer's hello was received (what it holds is known from then on). */
  get helloReceived(): boolean {
    return this.#state.helloReceived;
  }

  /** The peer's last reported log digests with the vector they describe, if it sent any. */
  get peerDigests(): { vv: VersionVector; digests: Readonly<Record<string, string>> } | undefined {
    return this.#state.theirDigests;
  }

  /** The fields every log line of this session carries. */
  #context(): Record<string, unknown> {
    return { account: this.account, peer: this.remotePeer, protocol: SYNC_PROTOCOL, initiator: this.initiator };
  }

  /** Wraps a stream; pass `lp` when its first frame was already read through it. */
  attach(stream: Stream, lp?: LengthPrefixedStream<Stream>): void {
    this.#stream = stream;
    this.#lp = lp ?? wrap(stream, this.#settings);
  }

  /**
   * Runs the session until it ends: sends our hello, handles `first` (the peer's hello when this end
   * answers), then reads frames one at a time. Never throws; the outcome is in closeReason.
   */
  async run(first?: SyncMessage): Promise<void> {
    // Everything the session makes the store do waits behind clients' requests on a one-session database.
    return asReplicationWork(() => this.#run(first));
  }

  async #run(first?: SyncMessage): Promise<void> {
    this.#scheduleAntiEntropy();
    try {
      await this.#pump();
      if (first !== undefined) await this.#receive(first);
      // One frame is read ahead while the one before it is handled: a batch of ops has its signatures verified
      // on the thread pool (verifyOpsAhead) while the store applies the batch before it.
      let next = this.#readAhead();
      try {
        while (this.open) {
          next.idle.start();
          const value = await next.value;
          if (value === undefined) break;
          next = this.#readAhead();
          await this.#receive(value);
        }
      } finally {
        // The read ahead ends with the session (its signal is aborted); its outcome no longer matters.
        next.idle.stop();
        next.value.catch(() => undefined);
      }
      this.close('done');
    } catch (error) {
      this.#fail(error);
    }
  }

  /** Something new may be worth sending (a local op, a relayed op, a new document): run the pump. */
  trigger(): void {
    this.#forgetLocal();
    this.#pump().catch((error: unknown) => this.#fail(error));
  }

  /**
   * Starts a new round of hellos (renewHello): both ends compare log digests again and resend the log of an
   * origin whose digest differs. Called periodically on every session, and at once on every session
   * of an account when an equivocation was recorded (this home may now hold a version its peers lack).
   */
  renew(): void {
    if (!this.open) return;
    this.#state = renewHello(this.#state);
    this.trigger();
  }

  /**
   * Hands the session the view of its account read when the stream came in (the admission check's read), so its
   * first pump reads nothing more.
   */
  seed(view: LocalView): void {
    this.#local ??= view;
  }

  /** The view of the account this session holds, or reads (one read at a time), as its next pump would. */
  async view(): Promise<LocalView | undefined> {
    return this.#localView();
  }

  #forgetLocal(): void {
    this.#local = undefined;
    this.#localGeneration++;
  }

  // The document, vector and digests of the account: held from the last read or apply, or read in one query (a read
  // under way is shared).
  async #localView(): Promise<LocalView | undefined> {
    if (this.#local !== undefined) return this.#local;
    const generation = this.#localGeneration;
    if (this.#reading?.generation === generation) return this.#reading.view;
    const view = readLocal(this.#store, this.account);
    this.#reading = { generation, view };
    try {
      const read = await view;
      if (generation === this.#localGeneration) this.#local = read;
      return read;
    } finally {
      if (this.#reading?.view === view) this.#reading = undefined;
    }
  }

  // Both ends renew periodically: whichever holds the winning version of a slot then sees the other's digests.
  #scheduleAntiEntropy(): void {
    const interval = this.#settings.antiEntropyInterval;
    if (interval <= 0 || !this.open) return;
    const delay = interval * (1 + ANTI_ENTROPY_JITTER * (2 * Math.random() - 1));
    this.#antiEntropy = setTimeout(() => {
      this.renew();
      this.#scheduleAntiEntropy();
    }, delay);
    this.#antiEntropy.unref?.();
  }

  /** Ends the session; frames already queued (an ack, an error) are flushed first. */
  close(reason: CloseReason): void {
    if (!this.open) return;
    this.closeReason = reason;
    clearTimeout(this.#antiEntropy);
    this.#abort.abort();
    const stream = this.#stream;
    if (stream !== undefined) {
      this.#writes
        .catch((error: unknown) => {
          // The write itself was reported by #fail while the session was open; after that, only here.
          this.#log.debug({ ...this.#context(), ...errorFields(error) }, 'sync frame not written before close');
        })
        .then(async () => stream.close({ signal: AbortSignal.timeout(this.#settings.writeTimeout) }))
        .catch((error: unknown) => stream.abort(error instanceof Error ? error : new Error(String(error))));
    }
    this.#owner.closed(this);
  }

  /** Sends an `error` message, then closes. */
  refuse(code: SyncErrorCode, reason: string, closeReason: CloseReason): void {
    if (!this.open) return;
    this.#enqueue({ t: 'error', account: this.account, code, reason });
    this.close(closeReason);
  }

  // Reads the next frame. The idle clock runs only from `idle.start()`: a frame read ahead while the one before it
  // is still being handled is not idle for that time.
  async #read(idle: IdleClock): Promise<unknown> {
    const lp = this.#lp!;
    const signal = AbortSignal.any([idle.signal, this.#abort.signal]);
    let frame;
    try {
      frame = await lp.read({ signal });
    } catch (error) {
      if (!this.open) return undefined;
      if (idle.signal.aborted) {
        this.close('idle');
        return undefined;
      }
      // A clean end of stream surfaces as an EOF error from lpStream.
      if (isEof(error)) return undefined;
      throw error;
    } finally {
      idle.stop();
    }
    const value = parseFrame(frame.subarray());
    // The wire's own caps, before the engine's envelope check (on the value parsed once, not the bytes again).
    decodeValue(value, this.#settings.limits);
    return value;
  }

  #readAhead(): { value: Promise<unknown>; idle: IdleClock } {
    const idle = new IdleClock(this.#settings.idleTimeout);
    const value = this.#read(idle).then((value) => {
      const message = value as { t?: unknown; ops?: unknown } | undefined;
      if (message?.t === 'ops' && Array.isArray(message.ops)) {
        // The session parsed these ops and changes them no more: they are frozen and encoded once, for the
        // checks ahead and the store's validation both.
        adoptOps(message.ops);
        void verifyOpsAhead(message.ops);
      }
      return value;
    });
    return { value, idle };
  }

  async #receive(value: unknown): Promise<void> {
    const [state, effects] = receive(this.#state, value);
    this.#state = state;
    for (const effect of effects) {
      if (!this.open) return;
      await (this.#effects[effect.kind] as (e: SessionEffect) => Promise<void>)(effect);
    }
    await this.#pump();
  }

  async #applyOps(ops: readonly unknown[]): Promise<void> {
    // Clients' requests in flight go first: the batch (its view read, the apply, what it reports) waits for its
    // turn (replicationTurn in @polyhome/sync), then runs.
    await replicationTurn(() => this.#applyOpsNow(ops));
  }

  async #applyOpsNow(ops: readonly unknown[]): Promise<void> {
    // Checked on every batch against the document as last seen (a new one through this process drops it), and
    // again after the batch against the one the store read under the account's lock: a document put in force by
    // another server instance ends the session at the latest after one more batch.
    const view = await this.#localView();
    if (view === undefined || homeStatus(view.document, this.remotePeer).kind === 'unknown') {
      this.#failWith('NOT_A_HOME', NOT_A_HOME_TEXT);
      return;
    }
    const generation = this.#localGeneration;
    const result = await this.#store.applyOps(this.account, ops, this.remotePeer, { recordHeld: true });
    if (result.after === undefined) this.#forgetLocal();
    else if (generation === this.#localGeneration) this.#local = result.after;
    this.#owner.applied(this, result);
    if (result.after !== undefined && homeStatus(result.after.document, this.remotePeer).kind === 'unknown') {
      this.#failWith('NOT_A_HOME', NOT_A_HOME_TEXT);
      return;
    }
    // The peer sent these ops from its gapless log, and each proved genuine (accepted, or the very op held here):
    // it holds them and all before them. Its acks only cover what this home sent it, so an op it had from
    // another home would otherwise never count as delivered to it.
    const held = heldBySender(result);
    if (Object.keys(held).length > 0) this.#owner.acked(this, held, result.heldRecorded === true);
  }

  async #offerDocument(document: unknown): Promise<void> {
    const before = (await this.#localView())?.document;
    // Whatever the store does with the document, the view is read again at the next pump.
    this.#forgetLocal();
    let inForce: AccountDocument;
    try {
      inForce = await this.#store.offerDocument(this.account, document as AccountDocument, this.remotePeer);
    } catch (error) {
      // Invalid (the store verifies it): the engine's rule is to end the session.
      this.#owner.rejected(this, 'bad_document', errorText(error), document);
      this.#failWith('MALFORMED', `document refused: ${errorText(error)}`);
      return;
    }
    this.#owner.documentOffered(this, document as AccountDocument, inForce);
    if (before === undefined || inForce.seq !== before.seq) this.#owner.documentAccepted(this, inForce);
  }

  #closeFor(effect: Extract<SessionEffect, { kind: 'close' }>): void {
    if (effect.send !== undefined) this.#enqueue(effect.send);
    if (effect.by === 'peer') {
      this.#owner.rejected(this, effect.code, effect.reason);
      this.close('refused_by_peer');
      return;
    }
    this.#owner.rejected(this, effect.code, effect.reason);
    this.close(effect.code === 'TOO_LARGE' ? 'too_large' : effect.code === 'NOT_A_HOME' ? 'not_a_home' : 'malformed');
  }

  #failWith(code: SyncErrorCode, reason: string): void {
    const [state, effect] = failSession(this.#state, code, reason);
    this.#state = state;
    if (effect.kind === 'close') this.#closeFor(effect);
  }

  // Asks the engine for messages until it has none. Re-entrant calls fold into one more round, so the
  // state is only ever advanced by one pump at a time.
  async #pump(): Promise<void> {
    // Before the stream is attached there is nowhere to write: a message generated now would advance the
    // engine's state (a hello "sent") and then be dropped. run() pumps once the stream is there.
    if (!this.open || this.#lp === undefined) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        await this.#pumpRound();
      } while (this.#pumpAgain && this.open);
    } finally {
      this.#pumping = false;
    }
  }

  async #pumpRound(): Promise<void> {
    const view = await this.#localView();
    const status = view === undefined ? undefined : homeStatus(view.document, this.remotePeer);
    if (view === undefined || status === undefined || status.kind === 'unknown') {
      this.refuse('NOT_A_HOME', NOT_A_HOME_TEXT, 'not_a_home');
      return;
    }
    let current: LocalView = view;
    while (this.open) {
      // A batch applied, or a change told, while this round ran (it awaits the store) is in the view from here on:
      // an ack generated below then reports what was just applied, not what the round began with.
      current = this.#local ?? (await this.#localView()) ?? current;
      if (!this.open) return;
      const { document, vv, digests } = current;
      const request = opsRequest(this.#state, vv, digests);
      // A revoked home may hand over its last ops and is sent the document, but never an op.
      const ops =
        request === null || status.kind === 'revoked'
          ? []
          : this.#fitFrame(await this.#store.opsMissing(this.account, request.vv, request.limit));
      if (!this.open) return;
      const [state, message] = generate(this.#state, {
        document,
        vv,
        ops,
        ...(digests === undefined ? {} : { digests }),
      });
      this.#state = state;
      if (message === null) return;
      this.#enqueue(message);
      if (message.t === 'error') {
        this.close('error');
        return;
      }
    }
  }

  // The longest prefix of `ops` within the frame budget (a prefix of a per-origin seq order stays
  // gapless per origin). The engine batches by count; the wire also caps bytes.
  #fitFrame(ops: readonly Op[]): Op[] {
    const taken: Op[] = [];
    let bytes = 0;
    for (const op of ops) {
      if (taken.length >= this.#settings.maxOpsPerBatch) break;
      const size = JSON.stringify(op).length + 1;
      if (taken.length > 0 && bytes + size > this.#settings.opsFrameBudget) break;
      taken.push(op);
      bytes += size;
    }
    return taken;
  }

  // Writes go out in order through one chain; reading never waits on them, so two ends that both
  // write a lot cannot deadlock on each other's flow control.
  #enqueue(message: SyncMessage): void {
    const lp = this.#lp;
    // Frames queued before a close still go out (close waits for them): that is how `error` is delivered.
    if (lp === undefined || !this.open) return;
    const bytes = encodeMessage(message);
    if (message.t === 'ops' && message.ops.length > 0) this.#owner.sent?.(this, message.ops.length);
    this.#writes = this.#writes.then(async () => {
      await lp.write(bytes, { signal: AbortSignal.timeout(this.#settings.writeTimeout) });
    });
    this.#writes.catch((error: unknown) => this.#fail(error));
  }

  #fail(error: unknown): void {
    if (!this.open) {
      // Nothing to refuse or report any more (the peer is gone or the session was superseded); still seen.
      this.#log.debug({ ...this.#context(), ...errorFields(error) }, 'sync session failed after it closed');
      return;
    }
    if (error instanceof TooManyOpsError || isTooLarge(error)) {
      this.refuse('TOO_LARGE', errorText(error), 'too_large');
      this.#owner.rejected(this, 'TOO_LARGE', errorText(error));
    } else if (error instanceof MalformedFrameError) {
      this.refuse('MALFORMED', errorText(error), 'malformed');
      this.#owner.rejected(this, 'MALFORMED', errorText(error));
    } else {
      this.#owner.rejected(this, 'INTERNAL', errorText(error));
      this.close('error');
    }
  }
}

/** A session's view of its account: the document in force, what is held, and its log digests. */
export interface LocalView {
  readonly document: AccountDocument;
  readonly vv: VersionVector;
  readonly digests?: Record<string, string> | undefined;
}

/**
 * Reads a session's view of an account: one query on a store with `local`, else the document and the heads; undefined
 * when the account is not hosted.
 */
export async function readLocal(store: ReplicaStore, account: string): Promise<LocalView | undefined> {
  if (store.local !== undefined) return store.local(account);
  const [document, heads] = await Promise.all([
    store.document(account),
    store.heads !== undefined
      ? store.heads(account)
      : Promise.all([store.versionVector(account), store.logDigests?.(account)]).then(([vv, digests]) => ({
          vv,
          digests,
        })),
  ]);
  return document === undefined ? undefined : { document, ...heads };
}

/** The reason text of every NOT_A_HOME refusal (one text whatever the cause, see the README). */
export const NOT_A_HOME_TEXT = 'not a home of this account';

/** Wraps a stream for length-prefixed frames with the frame cap, and a read buffer that fits the window. */
export function wrap(stream: Stream, settings: SessionSettings): LengthPrefixedStream<Stream> {
  return lpStream(stream, {
    maxDataLength: settings.maxFrameBytes,
    maxBufferSize: settings.maxFrameBytes * (settings.maxBatchesInFlight + 2),
  });
}

/** True for lpStream's "frame longer than maxDataLength" errors. */
export function isTooLarge(error: unknown): boolean {
  return (
    error instanceof Error && (error.name === 'InvalidDataLengthError' || error.name === 'InvalidDataLengthLengthError')
  );
}

/** Closes a stream, aborting it when the close does not finish within `timeout` ms (the stream ends either way). */
export async function closeQuietly(stream: Stream, timeout: number): Promise<void> {
  try {
    await stream.close({ signal: AbortSignal.timeout(timeout) });
  } catch (error) {
    stream.abort(error instanceof Error ? error : new Error(String(error)));
  }
}

function isEof(error: unknown): boolean {
  return error instanceof Error && error.name === 'UnexpectedEOFError';
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_REASON_LENGTH);
}

/** Per origin, the highest seq of the ops a batch accepted or already held (duplicates are the same ops). */
function heldBySender(result: ApplyResult): VersionVector {
  return heldVector([...result.accepted, ...result.rejected.filter((r) => r.reason === 'duplicate').map((r) => r.op)]);
}

/** An idle deadline that starts when asked to, not when made; aborts its signal once it passes. */
class IdleClock {
  readonly #controller = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;

  constructor(readonly timeout: number) {}

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  start(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => this.#controller.abort(new Error('idle')), this.timeout);
    this.#timer.unref?.();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }
}
