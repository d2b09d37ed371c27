// Bad input at scale on the libp2p side of a real server: frames on /polyhome/sync/1.0.0 and
// /polyhome/enroll/1.0.0 from a real libp2p peer. The sync peer holds a real home key of an account the server
// hosts (a compromised home), so its frames get past the hello check. Random bytes, truncated and oversized
// length prefixes, valid-shaped messages with mutated fields, ops with bad signatures, replayed ops and ops far
// out of order: the server answers or closes each stream, stays up, and its version vector, replicated state
// and stored ops are what they were.
import type { AccountDocument } from '@polyhome/identity';
import {
  createPolyhomeHost,
  ENROLL_MAX_FRAME_BYTES,
  ENROLL_PROTOCOL,
  MAX_FRAME_BYTES,
  MAX_OPS_PER_FRAME,
  SYNC_PROTOCOL,
  type PolyhomeHost,
} from '@polyhome/p2p';
import { SqlReplicaStore } from '@polyhome/storage';
import type { Op } from '@polyhome/sync';
import { makeHome, OpWriter, type FixtureAccount } from '@polyhome/sync/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountAdding, loopbackAddr, serverHome } from '../../apps/server/src/testing/client-home.js';
import { startTestServer, type TestServer } from '../../apps/server/src/testing/server-harness.js';
import { encoder, exchange, frame, jsonFrame, varint } from '../support/raw-sync.js';
import { databaseDigest, fuzzBackends, fuzzParams, fuzzTimeout, jsonValue, listen, send } from './support.js';

/** Tables that hold what the server knows of its accounts (a sync session may record acks elsewhere). */
const STATE_TABLES = [
  'account',
  'account_document',
  'account_state',
  'op',
  'op_log_head',
  'op_evidence',
  'enrollment_token',
];

/** The first ops the hostile home sends honestly, so the server holds something to protect. */
const HONEST_OPS = 5;

/** A copy of `op` with one signed field changed, or its signature replaced or made by another key. */
function mutatedOp(op: Op, account: FixtureAccount): fc.Arbitrary<{ op: unknown; how: string }> {
  const fields = Object.keys(op).filter((k) => k !== 'signatures');
  const changed = fc
    .tuple(fc.constantFrom(...fields), jsonValue)
    .filter(([f, v]) => JSON.stringify(v) !== JSON.stringify((op as unknown as Record<string, unknown>)[f]))
    .map(([f, v]) => ({ op: { ...op, [f]: v }, how: `op.${f} changed` }));
  const [keyId, signature] = Object.entries(op.signatures[account.serverName]!)[0]!;
  const badSignature = fc
    .oneof(
      fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64').replace(/=+$/, '')),
      fc.string({ maxLength: 100 }),
    )
    .filter((s) => s !== signature)
    .map((s) => ({ op: { ...op, signatures: { [account.serverName]: { [keyId]: s } } }, how: 'signature replaced' }));
  // Signed by a key that is not a home of the account, under its own key id or under the real home's.
  const stranger = makeHome('fuzz-stranger');
  const strangerWriter = new OpWriter(account, stranger, op.doc_seq);
  strangerWriter.seq = op.seq;
  strangerWriter.lamport = op.lamport;
  const foreign = strangerWriter.devicePut('STRANGER');
  const foreignSig = Object.values(foreign.signatures[account.serverName]!)[0]!;
  const wrongKey = fc.constantFrom(
    { op: foreign, how: 'signed by a stranger' },
    { op: { ...op, signatures: { [account.serverName]: { [keyId]: foreignSig } } }, how: 'stranger signature' },
  );
  return fc.oneof(changed, badSignature, wrongKey);
}

/** PostgreSQL by default: the sync and enrollment handlers do not depend on the engine, and it starts fast. */
const BACKENDS = fuzzBackends('postgres');

describe.each(BACKENDS)('fuzz: libp2p sync and enrollment frames on $name', (backend) => {
  let server: TestServer;
  let store: SqlReplicaStore;
  let serverAddr: string;
  let hostile: PolyhomeHost;
  let account: FixtureAccount;
  let document: AccountDocument;
  let writer: OpWriter;
  let honest: Op[];
  let snapshot: unknown;

  /** Version vector, replicated state and the state tables of the server, as one comparable string. */
  async function stateOf(): Promise<unknown> {
    const vv = await store.versionVector(account.serverName);
    const state = await store.state(account.serverName);
    const tables = await databaseDigest(server.resources.storage.dataSource, STATE_TABLES);
    return JSON.parse(JSON.stringify({ vv, state, tables }));
  }

  const hello = (over: Record<string, unknown> = {}) => ({
    t: 'hello',
    account: account.serverName,
    doc_seq: document.seq,
    vv: {},
    ...over,
  });

  beforeAll(async () => {
    server = await startTestServer(backend, { RATE_LIMIT_PER_MINUTE: '0', ENROLLMENT_POLICY: 'open' });
    const base = await listen(server);
    store = server.app.get(SqlReplicaStore, { strict: false });
    serverAddr = loopbackAddr(server);
    ({ account, document } = accountAdding('fuzz-p2p-home', serverHome(server)));
    const enrolled = await send(base, 'POST', '/_polyhome/v1/enroll', {
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ document }),
    });
    expect(enrolled.status).toBe(201);
    // The account's client home, played by hand: a real libp2p node with the home's key, and no sync service.
    hostile = await createPolyhomeHost({ nodeKey: account.homes[0]!.secretKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
    writer = new OpWriter(account, account.homes[0]!, document.seq);
    honest = Array.from({ length: HONEST_OPS }, (_, i) => writer.devicePut(`HONEST${i}`));
    const reply = await exchange(hostile, serverAddr, SYNC_PROTOCOL, [
      jsonFrame(hello()),
      jsonFrame({ t: 'ops', account: account.serverName, ops: honest }),
    ]);
    expect(reply.frames).toContainEqual(
      expect.objectContaining({ t: 'ack', vv: expect.objectContaining({ [account.homes[0]!.peerId]: HONEST_OPS }) }),
    );
    snapshot = await stateOf();
    expect((snapshot as { vv: unknown }).vv).toEqual({ [account.homes[0]!.peerId]: HONEST_OPS });
  });
  afterAll(async () => {
    await hostile?.stop();
    await server?.close();
  });

  /** Frames of one hostile sync stream, with a label for failures. */
  function syncInput(): fc.Arbitrary<{ chunks: readonly Uint8Array[]; how: string }> {
    // The op the home would send next (not sent as it is: only its mutations are).
    const nextWriter = new OpWriter(account, account.homes[0]!, document.seq);
    nextWriter.seq = writer.seq;
    nextWriter.lamport = writer.lamport;
    const next = nextWriter.devicePut('NEXT');
    // Validly signed, but far ahead of what the server holds: they wait for a gap that never fills.
    const ahead = new OpWriter(account, account.homes[0]!, document.seq);
    ahead.seq = 1000;
    const farAhead = Array.from({ length: 3 }, (_, i) => ahead.devicePut(`AHEAD${i}`));
    const opsFrame = (ops: unknown[]) => jsonFrame({ t: 'ops', account: account.serverName, ops });
    const rawBytes = fc.uint8Array({ maxLength: 300 }).map((b) => ({ chunks: [b], how: `raw bytes ${b.length}` }));
    const badPrefix = fc
      .oneof(
        fc.integer({ min: MAX_FRAME_BYTES + 1, max: 2 ** 40 }).map((n) => [varint(n), encoder.encode('{"t":"hello"')]),
        fc.integer({ min: 10, max: 5000 }).map((n) => [varint(n), encoder.encode('{"t":')]),
        fc.constant([Uint8Array.from([0xff, 0xff, 0xff])]),
        fc.constant([Uint8Array.from(Array(12).fill(0xff))]),
      )
      .map((chunks) => ({ chunks, how: 'bad length prefix' }));
    const randomFirst = jsonValue.map((v) => ({ chunks: [jsonFrame(v)], how: `first frame ${JSON.stringify(v)}` }));
    const helloFields = ['t', 'account', 'doc_seq', 'vv', 'digests'];
    const badHello = fc
      .tuple(fc.constantFrom(...helloFields), jsonValue)
      .map(([f, v]) => ({ chunks: [jsonFrame(hello({ [f]: v }))], how: `hello.${f} = ${JSON.stringify(v)}` }));
    const afterHello = fc
      .oneof(
        mutatedOp(next, account).map(({ op, how }) => ({ chunks: [opsFrame([op])], how })),
        fc.constant({ chunks: [opsFrame(honest)], how: 'replayed ops' }),
        fc.constant({ chunks: [opsFrame([...honest].reverse())], how: 'replayed ops, reversed' }),
        fc.constant({ chunks: [opsFrame(farAhead)], how: 'ops far out of order' }),
        fc.constant({
          chunks: [opsFrame([next, next].map((o, i) => ({ ...o, seq: o.seq + i + 1 })))],
          how: 'bad seqs',
        }),
        jsonValue.map((v) => ({ chunks: [jsonFrame(v)], how: `then ${JSON.stringify(v)}` })),
        fc
          .tuple(fc.constantFrom('t', 'account', 'ops'), jsonValue)
          .filter(
            ([f, v]) =>
              JSON.stringify(v) !==
              JSON.stringify(({ t: 'ops', account: account.serverName } as Record<string, unknown>)[f]),
          )
          .map(([f, v]) => ({
            chunks: [jsonFrame({ t: 'ops', account: account.serverName, ops: [next], [f]: v })],
            how: `ops.${f} = ${JSON.stringify(v)}`,
          })),
        fc.tuple(fc.constantFrom('seq', 'homes', 'user_id', 'signatures'), jsonValue).map(([f, v]) => ({
          chunks: [jsonFrame({ t: 'doc', account: account.serverName, document: { ...document, [f]: v } })],
          how: `doc.${f} changed`,
        })),
        fc.constant({ chunks: [opsFrame(Array(MAX_OPS_PER_FRAME + 1).fill(next))], how: 'one op over the cap' }),
        fc.constant({ chunks: [frame(new Uint8Array(MAX_FRAME_BYTES + 1).fill(0x20))], how: 'oversized frame' }),
        fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => ({ chunks: [b], how: 'raw bytes after hello' })),
      )
      .map(({ chunks, how }) => ({ chunks: [jsonFrame(hello()), ...chunks], how: `hello, ${how}` }));
    return fc.oneof(rawBytes, badPrefix, randomFirst, badHello, afterHello, afterHello);
  }

  const SYNC_RUNS = 400;
  it(
    'hostile sync frames from a home of the account: answered or closed, state unchanged',
    async () => {
      await fc.assert(
        fc.asyncProperty(syncInput(), async ({ chunks, how }) => {
          const reply = await exchange(hostile, serverAddr, SYNC_PROTOCOL, chunks);
          for (const f of reply.frames) {
            expect(f, how).toEqual(
              expect.objectContaining({ t: expect.stringMatching(/^(hello|doc|ops|ack|error)$/) }),
            );
          }
          expect(await stateOf(), how).toEqual(snapshot);
        }),
        fuzzParams(SYNC_RUNS),
      );
    },
    fuzzTimeout(SYNC_RUNS, 40),
  );

  const ENROLL_RUNS = 200;
  it(
    'hostile enrollment frames: one error answer or a closed stream, nothing stored',
    async () => {
      const stranger = accountAdding('fuzz-p2p-stranger', serverHome(server)).document;
      const fields = Object.keys(stranger).filter((k) => k !== 'signatures');
      const input = fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((b) => ({ chunks: [b], how: 'raw bytes' })),
        fc
          .integer({ min: ENROLL_MAX_FRAME_BYTES + 1, max: 2 ** 32 })
          .map((n) => ({ chunks: [varint(n), encoder.encode('{"document":')], how: `length ${n}` })),
        jsonValue.map((v) => ({ chunks: [jsonFrame(v)], how: `frame ${JSON.stringify(v)}` })),
        fc
          .tuple(fc.constantFrom(...fields), jsonValue)
          .filter(([f, v]) => JSON.stringify(v) !== JSON.stringify((stranger as unknown as Record<string, unknown>)[f]))
          .map(([f, v]) => ({
            chunks: [jsonFrame({ document: { ...stranger, [f]: v } })],
            how: `document.${f} changed`,
          })),
        fc
          .tuple(fc.string({ maxLength: 10 }), jsonValue)
          .filter(([k]) => k !== 'document' && k !== 'token')
          .map(([k, v]) => ({ chunks: [jsonFrame({ document: stranger, [k]: v })], how: `unknown field ${k}` })),
        fc.constant({ chunks: [jsonFrame({ document })], how: 'the account already hosted' }),
      );
      await fc.assert(
        fc.asyncProperty(input, async ({ chunks, how }) => {
          const reply = await exchange(hostile, serverAddr, ENROLL_PROTOCOL, chunks);
          expect(reply.frames.length, how).toBeLessThanOrEqual(1);
          for (const f of reply.frames) {
            expect(f, how).toEqual({ errcode: expect.stringMatching(/^M_[A-Z_]+$/), error: expect.any(String) });
          }
          expect(await stateOf(), how).toEqual(snapshot);
        }),
        fuzzParams(ENROLL_RUNS),
      );
    },
    fuzzTimeout(ENROLL_RUNS, 30),
  );

  it('the server still takes the next honest op afterwards', async () => {
    const op = writer.devicePut('AFTER');
    const reply = await exchange(hostile, serverAddr, SYNC_PROTOCOL, [
      jsonFrame(hello({ vv: { [account.homes[0]!.peerId]: HONEST_OPS } })),
      jsonFrame({ t: 'ops', account: account.serverName, ops: [op] }),
    ]);
    expect(reply.frames).toContainEqual(
      expect.objectContaining({
        t: 'ack',
        vv: expect.objectContaining({ [account.homes[0]!.peerId]: HONEST_OPS + 1 }),
      }),
    );
    expect(await store.versionVector(account.serverName)).toEqual({ [account.homes[0]!.peerId]: HONEST_OPS + 1 });
  });
});
