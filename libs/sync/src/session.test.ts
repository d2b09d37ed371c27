import { describe, expect, it } from 'vitest';
import { CATCH_UP_BATCH_SIZE, SESSION_BATCH_SIZE, SESSION_WINDOW, MAX_OPS_PER_BATCH } from './constants.js';
import {
  applyOps,
  createReplica,
  documentOf,
  flaggedOrigins,
  logDigests,
  offerDocument,
  stateOf,
  versionVector,
  type Replica,
} from './replica.js';
import {
  admissionError,
  generate,
  initSession,
  opsRequest,
  parseSyncMessage,
  receive,
  renewHello,
  type SessionState,
} from './session.js';
import { deliver, makeAccount, makeHome, pump, withHome, withoutHome, writers } from './testing/index.js';
import { opHash } from './op.js';
import type { Op, SyncMessage } from './types.js';

const account = makeAccount({ homes: 3 });
const name = account.serverName;

interface End {
  s: SessionState;
  r: Replica;
}

function withOps(ops: Op[]): Replica {
  let r = createReplica(account.document);
  for (let i = 0; i < ops.length; i += MAX_OPS_PER_BATCH) [r] = applyOps(r, ops.slice(i, i + MAX_OPS_PER_BATCH));
  return r;
}

// Runs two ends to quiescence over a reliable in-order channel; returns the number of messages.
function exchange(a: End, b: End): number {
  const toB: SyncMessage[] = [];
  const toA: SyncMessage[] = [];
  let out: SyncMessage[];
  [a.s, out] = pump(a.s, a.r);
  toB.push(...out);
  [b.s, out] = pump(b.s, b.r);
  toA.push(...out);
  let count = 0;
  while (toA.length + toB.length > 0) {
    if (++count > 10_000) throw new Error('no quiescence');
    const [inbox, end, outbox] = toB.length > 0 ? [toB, b, toA] : [toA, a, toB];
    const d = deliver(end.s, end.r, inbox.shift());
    end.s = d.session;
    end.r = d.replica;
    outbox.push(...d.out);
  }
  return count;
}

describe('session', () => {
  it('starts with hello and sends nothing else before the peer hello', () => {
    const r = createReplica(account.document);
    let s = initSession(name);
    let msg: SyncMessage | null;
    [s, msg] = generate(s, { document: documentOf(r), vv: {} });
    expect(msg).toEqual({ t: 'hello', account: name, doc_seq: account.document.seq, vv: {} });
    [s, msg] = generate(s, { document: documentOf(r), vv: {} });
    expect(msg).toBeNull();
    expect(opsRequest(s, { [account.homes[0]!.peerId]: 5 })).toBeNull();
  });

  it('anti-entropy: each side sends what the other lacks, in bounded batches with a window', () => {
    const [w0, w1] = writers(account);
    const many: Op[] = [];
    for (let i = 0; i < 1000; i++) many.push(w0!.deviceDelete(`D${i % 7}`));
    const a: End = { s: initSession(name), r: withOps(many) };
    const b: End = { s: initSession(name), r: withOps([w1!.devicePut('B1')]) };
    // Check that one pump never exceeds the window.
    let first: SyncMessage[];
    [a.s, first] = pump(a.s, a.r);
    expect(first.map((m) => m.t)).toEqual(['hello']);
    const [, helloB] = generate(initSession(name), { document: account.document, vv: versionVector(b.r) });
    const afterHello = deliver(a.s, a.r, helloB);
    expect(afterHello.out.filter((m) => m.t === 'ops')).toHaveLength(SESSION_WINDOW);
    // 1,000 behind is more than a window of ordinary batches: the first goes out at the catch-up size, the
    // rest (600 left to send) at the ordinary size.
    const sizes = afterHello.out.filter((m) => m.t === 'ops').map((m) => m.ops.length);
    expect(sizes).toEqual([CATCH_UP_BATCH_SIZE, SESSION_BATCH_SIZE, SESSION_BATCH_SIZE, SESSION_BATCH_SIZE]);
    // Now a full exchange from fresh sessions.
    const a2: End = { s: initSession(name), r: a.r };
    const messages = exchange(a2, b);
    expect(versionVector(a2.r)).toEqual(versionVector(b.r));
    expect(stateOf(a2.r)).toEqual(stateOf(b.r));
    // 2 hellos + 4 op batches + 4 acks from B, 1 batch + 1 ack from A.
    expect(messages).toBe(12);
  });

  it('pushes new local ops on an open session and gets them acked', () => {
    const [w0] = writers(account);
    const a: End = { s: initSession(name), r: createReplica(account.document) };
    const b: End = { s: initSession(name), r: createReplica(account.document) };
    exchange(a, b);
    [a.r] = applyOps(a.r, [w0!.devicePut('NEW')]);
    const count = exchange(a, b);
    expect(count).toBe(2); // ops, ack
    expect(Object.keys(stateOf(b.r).devices)).toEqual(['NEW']);
    expect(a.s.theirVv).toEqual(versionVector(a.r));
    expect(a.s.inFlight).toBe(0);
  });

  it('sends a newer document first, and the peer takes it', () => {
    const newcomer = makeHome('session-newcomer');
    const doc2 = withHome(account, account.document, newcomer);
    let rb = createReplica(account.document);
    [rb] = offerDocument(rb, doc2);
    const a: End = { s: initSession(name), r: createReplica(account.document) };
    const b: End = { s: initSession(name), r: rb };
    exchange(a, b);
    expect(documentOf(a.r).seq).toBe(doc2.seq);
  });

  it('tolerates duplicated and reordered messages', () => {
    const [w0, w1] = writers(account);
    const a: End = { s: initSession(name), r: withOps([w0!.devicePut('A'), w0!.devicePut('A2')]) };
    const b: End = { s: initSession(name), r: withOps([w1!.devicePut('B')]) };
    let outA: SyncMessage[];
    let outB: SyncMessage[];
    [a.s, outA] = pump(a.s, a.r);
    [b.s, outB] = pump(b.s, b.r);
    // Deliver B's hello to A twice, then A's messages to B reversed and duplicated.
    const first = deliver(a.s, a.r, outB[0]);
    const second = deliver(first.session, first.replica, outB[0]);
    expect(second.out).toEqual([]);
    const fromA = [...outA, ...first.out].reverse();
    expect(fromA.map((m) => m.t)).toEqual(['ops', 'hello']);
    for (const m of [...fromA, ...fromA]) {
      const e = deliver(b.s, b.r, m);
      [b.s, b.r] = [e.session, e.replica];
      expect(e.closed).toBe(false);
    }
    expect(Object.keys(stateOf(b.r).devices).sort()).toEqual(['A', 'A2', 'B']);
  });

  it('renewHello sends one new hello with digests, and a round between equal replicas ends there', () => {
    const [w0, w1] = writers(account);
    const ops = [w0!.devicePut('A'), w1!.devicePut('B')];
    const a: End = { s: initSession(name), r: withOps(ops) };
    const b: End = { s: initSession(name), r: withOps(ops) };
    exchange(a, b);
    expect(renewHello(initSession(name))).toEqual(initSession(name)); // nothing before the first hellos
    a.s = renewHello(a.s);
    let out: SyncMessage[];
    [a.s, out] = pump(a.s, a.r);
    expect(out).toEqual([
      { t: 'hello', account: name, doc_seq: account.document.seq, vv: versionVector(a.r), digests: logDigests(a.r) },
    ]);
    const d = deliver(b.s, b.r, out[0]);
    expect(d.out).toEqual([]);
    [a.s, out] = pump(a.s, a.r);
    expect(out).toEqual([]);
  });

  it('a slot that changed on one end after a renewed hello is resent to the peer, which takes the lower hash', () => {
    const rogue = writers(account)[2]!;
    const one = rogue.devicePut('PHONE');
    rogue.seq = 1;
    const two = rogue.devicePut('TABLET');
    const [low, high] = opHash(one) < opHash(two) ? [one, two] : [two, one];
    const a: End = { s: initSession(name), r: withOps([high]) };
    const b: End = { s: initSession(name), r: withOps([high]) };
    exchange(a, b);
    // B takes the lower hash from elsewhere; B's end is never pumped, so only A's renewed hello tells B.
    [b.r] = applyOps(b.r, [low]);
    a.s = renewHello(a.s);
    let out: SyncMessage[];
    [a.s, out] = pump(a.s, a.r);
    const d = deliver(b.s, b.r, out[0]);
    expect(d.out.map((m) => m.t)).toEqual(['ops']);
    const back = deliver(a.s, a.r, d.out[0]);
    expect(logDigests(back.replica)).toEqual(logDigests(b.r));
  });

  it('resends once what the peer did not take, then gives up on it for the session', () => {
    const [w0] = writers(account);
    const a: End = { s: initSession(name), r: withOps([w0!.devicePut('A')]) };
    let out: SyncMessage[];
    [a.s] = pump(a.s, a.r);
    const hello: SyncMessage = { t: 'hello', account: name, doc_seq: account.document.seq, vv: {} };
    const ack: SyncMessage = { t: 'ack', account: name, vv: {} };
    let d = deliver(a.s, a.r, hello);
    a.s = d.session;
    expect(d.out.map((m) => m.t)).toEqual(['ops']);
    d = deliver(a.s, a.r, ack); // the peer refused or dropped it
    a.s = d.session;
    expect(d.out.map((m) => m.t)).toEqual(['ops']);
    d = deliver(a.s, a.r, ack); // no progress again: stop
    a.s = d.session;
    expect(d.out).toEqual([]);
    [a.s, out] = pump(a.s, a.r);
    expect(out).toEqual([]);
  });

  it('closes with MALFORMED or TOO_LARGE on bad messages, and stops after an error', () => {
    const s = initSession(name);
    const cases: Array<[unknown, string]> = [
      [null, 'MALFORMED'],
      [{ t: 'nope', account: name }, 'MALFORMED'],
      [{ t: 'hello', account: name, doc_seq: 1, vv: {}, extra: 1 }, 'MALFORMED'],
      [{ t: 'hello', account: name, doc_seq: 1, vv: { x: 1 } }, 'MALFORMED'],
      [{ t: 'hello', account: name, doc_seq: 0, vv: {} }, 'MALFORMED'],
      [{ t: 'ack', account: makeAccount({ seed: 'bob', homes: 1 }).serverName, vv: {} }, 'MALFORMED'],
      [{ t: 'ops', account: name, ops: new Array(MAX_OPS_PER_BATCH + 1).fill(0) }, 'TOO_LARGE'],
      [{ t: 'error', account: name, code: 'WHAT', reason: '' }, 'MALFORMED'],
    ];
    for (const [message, code] of cases) {
      const [next, effects] = receive(s, message);
      expect(next.phase).toBe('closed');
      expect(effects).toEqual([expect.objectContaining({ kind: 'close', by: 'us', code })]);
      expect(receive(next, { t: 'hello', account: name, doc_seq: 1, vv: {} })[1]).toEqual([]);
      expect(generate(next, { document: account.document, vv: {} })[1]).toBeNull();
    }
    const [closed, effects] = receive(s, { t: 'error', account: name, code: 'NOT_A_HOME', reason: 'no' });
    expect(closed.phase).toBe('closed');
    expect(effects).toEqual([{ kind: 'close', by: 'peer', code: 'NOT_A_HOME', reason: 'no' }]);
  });

  it('a forged document from the peer closes the session', () => {
    const a: End = { s: initSession(name), r: createReplica(account.document) };
    [a.s] = pump(a.s, a.r);
    let d = deliver(a.s, a.r, { t: 'hello', account: name, doc_seq: 9, vv: {} });
    a.s = d.session;
    d = deliver(a.s, a.r, { t: 'doc', account: name, document: { ...account.document, seq: 9 } });
    expect(d.closed).toBe(true);
    expect(d.out).toEqual([expect.objectContaining({ t: 'error', code: 'MALFORMED' })]);
  });

  it('replicas holding different versions of one seq find out through digests and converge', () => {
    const home = account.homes[1]!;
    const x = writers(account)[1]!.devicePut('DEV', { display_name: 'x' });
    const y = writers(account)[1]!.devicePut('DEV', { display_name: 'y' });
    const a: End = { s: initSession(name), r: withOps([x]) };
    const b: End = { s: initSession(name), r: withOps([y]) };
    expect(versionVector(a.r)).toEqual(versionVector(b.r));
    exchange(a, b);
    expect(stateOf(a.r)).toEqual(stateOf(b.r));
    expect(flaggedOrigins(a.r)).toEqual([home.peerId]);
    expect(flaggedOrigins(b.r)).toEqual([home.peerId]);
    expect(logDigests(a.r)).toEqual(logDigests(b.r));
    // Once per origin per session: a new exchange on the same sessions sends nothing more.
    expect(exchange(a, b)).toBe(0);
  });

  it('admits only current homes', () => {
    expect(admissionError(account.document, name, account.homes[0]!.peerId)).toBeNull();
    expect(admissionError(account.document, name, makeHome('outsider').peerId)).toMatchObject({
      t: 'error',
      code: 'NOT_A_HOME',
    });
    const doc2 = withoutHome(account, account.document, account.homes[2]!.peerId, 0);
    expect(admissionError(doc2, name, account.homes[2]!.peerId)).toMatchObject({ code: 'NOT_A_HOME' });
  });

  it('parseSyncMessage accepts each message kind', () => {
    const vv = { [account.homes[0]!.peerId]: 3 };
    for (const m of [
      { t: 'hello', account: name, doc_seq: 1, vv },
      { t: 'doc', account: name, document: account.document },
      { t: 'ops', account: name, ops: [] },
      { t: 'ack', account: name, vv },
      { t: 'ack', account: name, vv, doc_seq: 2 },
      { t: 'error', account: name, code: 'INTERNAL', reason: 'x' },
    ]) {
      expect(parseSyncMessage(m, name)).toBe(m);
    }
  });
});
