// One sync session: one stream, one account, two homes. Both ends run the same logic once the hellos
// are exchanged: send the newer document, send what the other lacks in bounded batches (at most
// MAX_BATCHES_IN_FLIGHT unacknowledged), apply what arrives through the ReplicaStore, acknowledge it.
// New ops (local or relayed) go through the same pump, so anti-entropy and push are one code path.
//
// The libs/sync package is to hold this as a pure state machine; until its session API lands this
// class drives the ReplicaStore port directly and keeps its state (peer vector, sent vector, window) here.
import type { Connection, Stream } from '@libp2p/interface';
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils';
import { homeStatus, verifyAccountDocument, type AccountDocument } from '@polyhome/identity';
import type { ApplyResult, Op, ReplicaStore, SyncErrorCode, SyncMessage, VersionVector } from '@polyhome/sync';
import { coveredBy, decodeMessage, encodeMessage, encodeOpsFrame, mergeVectors, TooManyOpsError } from './frames.js';
import type { FrameLimits, MessageOf } from './frames.js';
import { MAX_ERROR_REASON_LENGTH } from './constants.js';
import { MalformedFrameError } from './errors.js';

/** Settings a session runs with (from SyncServiceInit and constants.ts). */
export interface SessionSettings {
  maxFrameBytes: number;
  opsFrameBudget: number;
  maxOpsPerBatch: number;
  maxBatchesInFlight: number;
  idleTimeout: number;
  writeTimeout: number;
  limits: FrameLimits;
}

/** What a session reports to the service that owns it. */
export interface SessionOwner {
  readonly localPeer: string;
  /** Ops were applied from this session's peer. */
  applied(session: Session, result: ApplyResult, ops: readonly unknown[]): void;
  /** The peer acknowledged holding `vv`. */
  acked(session: Session, vv: VersionVector): void;
  /** Something was refused, by us or by the peer. */
  rejected(session: Session, code: string, detail: string, op?: unknown): void;
  /** The document in force for the account changed through this session. */
  documentAccepted(session: Session, document: AccountDocument): void;
  /** The session ended. */
  closed(session: Session): void;
}

/** Why a session stopped (for logs and tests). */
export type CloseReason =
  'done' | 'idle' | 'superseded' | 'stopped' | 'not_a_home' | 'refused_by_peer' | 'malformed' | 'too_large' | 'error';

type Handler<T extends SyncMessage['t']> = (message: MessageOf<T>) => Promise<void>;

/** A sync session over one stream. */
export class Session {
  readonly account: string;
  readonly remotePeer: string;
  readonly connection: Connection;
  /** True when this end opened the stream. */
  readonly initiator: boolean;
  /** The peer's last known version vector (from its hello, acks, and the ops it sent). */
  peerVector: VersionVector = {};
  /** Why the session ended, once it has. */
  closeReason: CloseReason | undefined;

  readonly #store: ReplicaStore;
  readonly #owner: SessionOwner;
  readonly #settings: SessionSettings;
  readonly #abort = new AbortController();
  #lp: LengthPrefixedStream<Stream> | undefined;
  #stream: Stream | undefined;
  #writes: Promise<void> = Promise.resolve();
  #sentVector: VersionVector = {};
  #peerDocSeq = -1;
  #inFlight = 0;
  #stalled = false;
  #pumping = false;
  #pumpAgain = false;
  #helloReceived = false;
  readonly #handlers: { [T in SyncMessage['t']]: Handler<T> };

  constructor(params: {
    account: string;
    remotePeer: string;
    connection: Connection;
    initiator: boolean;
    store: ReplicaStore;
    owner: SessionOwner;
    settings: SessionSettings;
  }) {
    this.account = params.account;
    this.remotePeer = params.remotePeer;
    this.connection = params.connection;
    this.initiator = params.initiator;
    this.#store = params.store;
    this.#owner = params.owner;
    this.#settings = params.settings;
    // Dispatch by message type through a table, one handler per type (kad-dht's rpc habit).
    this.#handlers = {
      hello: async (m) => this.#onHello(m),
      doc: async (m) => this.#onDoc(m),
      ops: async (m) => this.#onOps(m),
      ack: async (m) => this.#onAck(m),
      error: async (m) => this.#onError(m),
    };
  }

  /** True until the session has ended. */
  get open(): boolean {
    return this.closeReason === undefined;
  }

  /** Frames sent and not yet acknowledged. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Wraps a stream whose first frame (if this end answers) has already been read by `lp`. */
  attach(stream: Stream, lp?: LengthPrefixedStream<Stream>): void {
    this.#stream = stream;
    this.#lp = lp ?? wrap(stream, this.#settings);
  }

  /**
   * Runs the session until it ends: sends our hello, handles `first` (the peer's hello when this end
   * answers), then reads frames one at a time. Never throws; the outcome is in closeReason.
   */
  async run(first?: MessageOf<'hello'>): Promise<void> {
    try {
      await this.#sendHello();
      if (first !== undefined) await this.#dispatch(first);
      while (this.open) {
        const message = await this.#read();
        if (message === undefined) break;
        await this.#dispatch(message);
      }
      this.close('done');
    } catch (error) {
      await this.#fail(error);
    }
  }

  /** Something new may be worth sending (a local op, a relayed op, a new document): run the pump. */
  trigger(): void {
    this.#stalled = false;
    this.#pump().catch(async (error: unknown) => this.#fail(error));
  }

  /** Ends the session; an unflushed write is dropped. */
  close(reason: CloseReason): void {
    if (!this.open) return;
    this.closeReason = reason;
    this.#abort.abort();
    const stream = this.#stream;
    if (stream !== undefined) {
      // Let queued frames (an ack, an error) go out first, then close gracefully; abort if that stalls.
      const flushed = this.#writes.catch(() => undefined);
      flushed
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

  async #read(): Promise<SyncMessage | undefined> {
    const lp = this.#lp!;
    const signal = AbortSignal.any([AbortSignal.timeout(this.#settings.idleTimeout), this.#abort.signal]);
    let frame;
    try {
      frame = await lp.read({ signal });
    } catch (error) {
      if (!this.open) return undefined;
      if (signal.aborted) {
        this.close('idle');
        return undefined;
      }
      // A clean end of stream surfaces as an EOF error from lpStream.
      if (isEof(error)) return undefined;
      throw error;
    }
    return decodeMessage(frame.subarray(), this.#settings.limits);
  }

  async #dispatch(message: SyncMessage): Promise<void> {
    if (message.account !== this.account) throw new MalformedFrameError('message for another account');
    const handler = this.#handlers[message.t] as Handler<typeof message.t>;
    await handler(message as never);
  }

  async #sendHello(): Promise<void> {
    const [document, vv] = await Promise.all([
      this.#store.document(this.account),
      this.#store.versionVector(this.account),
    ]);
    this.#enqueue({ t: 'hello', account: this.account, doc_seq: document?.seq ?? 0, vv });
  }

  async #onHello(message: MessageOf<'hello'>): Promise<void> {
    // A hello (first or repeated) resets what we believe the peer holds to what it says it holds.
    this.#helloReceived = true;
    this.peerVector = message.vv;
    this.#sentVector = {};
    this.#peerDocSeq = message.doc_seq;
    this.#inFlight = 0;
    this.trigger();
  }

  async #onDoc(message: MessageOf<'doc'>): Promise<void> {
    let incoming: AccountDocument;
    try {
      incoming = verifyAccountDocument(message.document, { expectedServerName: this.account });
    } catch (error) {
      this.#owner.rejected(this, 'bad_document', errorText(error), message.document);
      return;
    }
    this.#peerDocSeq = Math.max(this.#peerDocSeq, incoming.seq);
    const before = await this.#store.document(this.account);
    let inForce: AccountDocument;
    try {
      inForce = await this.#store.offerDocument(this.account, incoming, this.remotePeer);
    } catch (error) {
      // Rollback or equivocation: the store keeps what it holds and says why.
      this.#owner.rejected(this, 'document_refused', errorText(error), incoming);
      return;
    }
    if (before === undefined || inForce.seq !== before.seq) this.#owner.documentAccepted(this, inForce);
  }

  async #onOps(message: MessageOf<'ops'>): Promise<void> {
    const document = await this.#store.document(this.account);
    if (document === undefined || homeStatus(document, this.remotePeer).kind === 'unknown') {
      this.refuse('NOT_A_HOME', 'not a home of this account', 'not_a_home');
      return;
    }
    // The sender holds what it sent: do not echo it back.
    for (const op of message.ops as unknown[]) {
      const { origin, seq } = op as { origin?: unknown; seq?: unknown };
      if (typeof origin === 'string' && typeof seq === 'number' && seq > (this.peerVector[origin] ?? 0)) {
        this.peerVector = { ...this.peerVector, [origin]: seq };
      }
    }
    const result = await this.#store.applyOps(this.account, message.ops, this.remotePeer);
    const vv = await this.#store.versionVector(this.account);
    this.#enqueue({ t: 'ack', account: this.account, vv });
    this.#owner.applied(this, result, message.ops);
  }

  async #onAck(message: MessageOf<'ack'>): Promise<void> {
    this.peerVector = mergeVectors(this.peerVector, message.vv);
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    this.#owner.acked(this, message.vv);
    if (this.#inFlight === 0 && !coveredBy(this.#sentVector, this.peerVector)) {
      // The peer did not take everything sent (refused, or held back behind a gap). Resend from what
      // it really holds, but only when something new happens: a refused op is not retried in a loop.
      this.#sentVector = {};
      this.#stalled = true;
      return;
    }
    this.#pump().catch(async (error: unknown) => this.#fail(error));
  }

  async #onError(message: MessageOf<'error'>): Promise<void> {
    this.#owner.rejected(this, message.code, message.reason);
    this.close('refused_by_peer');
  }

  // Sends the document if the peer's is older, then batches of what the peer lacks while the window
  // allows. Re-entrant calls are folded into one more round.
  async #pump(): Promise<void> {
    if (!this.#helloReceived || !this.open) return;
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        await this.#pumpOnce();
      } while (this.#pumpAgain && this.open);
    } finally {
      this.#pumping = false;
    }
  }

  async #pumpOnce(): Promise<void> {
    const document = await this.#store.document(this.account);
    const status = document === undefined ? undefined : homeStatus(document, this.remotePeer);
    if (document === undefined || status === undefined || status.kind === 'unknown') {
      this.refuse('NOT_A_HOME', 'not a home of this account', 'not_a_home');
      return;
    }
    if (document.seq > this.#peerDocSeq) {
      this.#enqueue({ t: 'doc', account: this.account, document });
      this.#peerDocSeq = document.seq;
    }
    // A revoked home may still hand over its ops up to the cutoff, but is sent nothing of the account.
    if (status.kind === 'revoked') return;
    while (this.open && !this.#stalled && this.#inFlight < this.#settings.maxBatchesInFlight) {
      const known = mergeVectors(this.peerVector, this.#sentVector);
      const ops = await this.#store.opsMissing(this.account, known, this.#settings.maxOpsPerBatch);
      if (ops.length === 0 || !this.open) return;
      const batch = this.#fillBatch(ops);
      const sent: VersionVector = { ...this.#sentVector };
      for (const op of batch.ops) sent[op.origin] = Math.max(sent[op.origin] ?? 0, op.seq);
      this.#sentVector = sent;
      this.#inFlight++;
      this.#enqueueBytes(encodeOpsFrame(this.account, batch.json));
    }
  }

  // The longest prefix of `ops` that fits the frame budget. A prefix of a list in per-origin seq order
  // is still gapless per origin. A single op over budget is sent alone (the store caps op size).
  #fillBatch(ops: readonly Op[]): { ops: Op[]; json: string[] } {
    const json: string[] = [];
    const taken: Op[] = [];
    let bytes = 0;
    for (const op of ops) {
      const text = JSON.stringify(op);
      if (taken.length > 0 && bytes + text.length + 1 > this.#settings.opsFrameBudget) break;
      json.push(text);
      taken.push(op);
      bytes += text.length + 1;
    }
    return { ops: taken, json };
  }

  #enqueue(message: SyncMessage): void {
    this.#enqueueBytes(encodeMessage(message));
  }

  // Writes go out in order through one chain; reading never waits on them, so two ends that both
  // write a lot cannot deadlock on each other's flow control.
  #enqueueBytes(bytes: Uint8Array): void {
    const lp = this.#lp;
    // Frames queued before a close still go out (close waits for them): that is how `error` is delivered.
    if (lp === undefined || !this.open) return;
    this.#writes = this.#writes.then(async () => {
      await lp.write(bytes, { signal: AbortSignal.timeout(this.#settings.writeTimeout) });
    });
    this.#writes.catch(async (error: unknown) => this.#fail(error));
  }

  async #fail(error: unknown): Promise<void> {
    if (!this.open) return;
    if (error instanceof TooManyOpsError || isTooLarge(error)) {
      this.refuse('TOO_LARGE', errorText(error), 'too_large');
    } else if (error instanceof MalformedFrameError) {
      this.refuse('MALFORMED', errorText(error), 'malformed');
    } else {
      this.#owner.rejected(this, 'INTERNAL', errorText(error));
      this.close('error');
    }
  }
}

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

function isEof(error: unknown): boolean {
  return error instanceof Error && error.name === 'UnexpectedEOFError';
}

function errorText(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_REASON_LENGTH);
}
