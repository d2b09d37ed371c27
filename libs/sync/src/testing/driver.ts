// A synchronous driver of sync sessions over in-memory replicas: the reference for what the libp2p
// driver does with a store, used by the convergence tests. Messages go through JSON, as on the wire.
import { DocumentRejectedError } from '../errors.js';
import {
  applyOps,
  documentOf,
  logDigests,
  offerDocument,
  opsMissing,
  versionVector,
  type Replica,
} from '../replica.js';
import { failSession, generate, opsRequest, receive, type SessionState } from '../session.js';
import type { SyncMessage } from '../types.js';

/** Bound on messages one pump may produce; the session's own window keeps real pumps far below it. */
const MAX_PUMP = 64;

/** The outcome of delivering one message to one side. */
export interface Delivery {
  session: SessionState;
  replica: Replica;
  /** Messages to send back, in order. */
  out: SyncMessage[];
  /** True when the session closed. */
  closed: boolean;
}

/** Generates everything the session has to send now (hello, document, acks, up to a window of ops). */
export function pump(session: SessionState, replica: Replica): [SessionState, SyncMessage[]] {
  const out: SyncMessage[] = [];
  let s = session;
  for (let i = 0; i < MAX_PUMP; i++) {
    const vv = versionVector(replica);
    const digests = logDigests(replica);
    const request = opsRequest(s, vv, digests);
    const ops = request === null ? [] : opsMissing(replica, request.vv, request.limit);
    const [next, message] = generate(s, { document: documentOf(replica), vv, digests, ops });
    s = next;
    if (message === null) return [s, out];
    out.push(wire(message));
  }
  throw new Error(`pump produced more than ${MAX_PUMP} messages: the session is not bounded`);
}

/** Delivers one message: receive, carry out the effects on the replica, then pump. */
export function deliver(session: SessionState, replica: Replica, message: unknown): Delivery {
  const received = receive(session, message);
  let s = received[0];
  const effects = received[1];
  let r = replica;
  const out: SyncMessage[] = [];
  let closed = false;
  for (const effect of effects) {
    if (closed) break;
    switch (effect.kind) {
      case 'apply_ops':
        [r] = applyOps(r, effect.ops);
        break;
      case 'offer_document':
        try {
          [r] = offerDocument(r, effect.document);
        } catch (error) {
          if (!(error instanceof DocumentRejectedError)) throw error;
          const [failed, close] = failSession(s, 'MALFORMED', error.message);
          s = failed;
          if (close.kind === 'close' && close.send !== undefined) out.push(wire(close.send));
          closed = true;
        }
        break;
      case 'peer_acked':
        break;
      case 'close':
        if (effect.send !== undefined) out.push(wire(effect.send));
        closed = true;
        break;
    }
  }
  if (!closed) {
    const [pumped, more] = pump(s, r);
    s = pumped;
    out.push(...more);
  }
  return { session: s, replica: r, out, closed };
}

/** A message as the peer would decode it from a frame. */
export function wire<T>(message: T): T {
  return JSON.parse(JSON.stringify(message)) as T;
}
