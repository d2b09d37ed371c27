// Two server homes of one account, connected and quiet, and an equivocation that reaches only one of them: a
// compromised client home signs a second version of an op both servers already hold, with a lower content
// hash, and sends it to server A alone. A takes the lower hash (the planner's rule), so its log digest for
// that origin changes while its version vector does not: nothing new to send, and before the fix nothing told
// server B. Two servers were seen holding different devices for 240 s, both with `pending_ops: 0`, until a
// later local change healed them. Now a recorded equivocation starts a new round of hellos with every home
// of the account at once (digests compared, the origin's log resent where they differ), and every open
// session does so anyway every 60 s ± 25 % (ANTI_ENTROPY_INTERVAL): the servers converge within 75 s plus
// one resend, well before the 120 s idle timeout that used to be the only thing that could heal them.
import { addHome, type AccountDocument } from '@polyhome/identity';
import {
  ANTI_ENTROPY_INTERVAL,
  ANTI_ENTROPY_JITTER,
  createPolyhomeHost,
  SYNC_PROTOCOL,
  type PolyhomeHost,
} from '@polyhome/p2p';
import { waitFor } from '@polyhome/p2p/testing';
import { opHash, type Op } from '@polyhome/sync';
import { makeAccount, OpWriter, type FixtureAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverHomeOf } from '../support/client-node.js';
import { converged, openDatabase } from '../support/convergence.js';
import { sendSyncFrames } from '../support/raw-sync.js';
import { startFreshServer, type FreshServer } from '../support/server-process.js';

/** The stated bound: one anti-entropy period at its longest, plus 15 s for the resend on a loaded machine. */
const BOUND_MS = ANTI_ENTROPY_INTERVAL * (1 + ANTI_ENTROPY_JITTER) + 15_000;

describe('an equivocation that reaches one of two quiet, connected server homes', () => {
  let a: FreshServer;
  let b: FreshServer;
  let rogue: PolyhomeHost;
  let account: FixtureAccount;
  let document: AccountDocument;
  let dbA: Awaited<ReturnType<typeof openDatabase>>;
  let dbB: Awaited<ReturnType<typeof openDatabase>>;

  beforeAll(async () => {
    [a, b] = await Promise.all([startFreshServer('split-a'), startFreshServer('split-b')]);
    account = makeAccount({ seed: `split-${process.pid}`, localpart: 'split', homes: 1, roles: ['client'] });
    document = addHome(account.document, serverHomeOf(a.server, 'server-a'), account.rootKey);
    document = addHome(document, serverHomeOf(b.server, 'server-b'), account.rootKey);
    for (const fresh of [b, a]) {
      const enrolled = await fresh.server.request('POST', '/_polyhome/v1/enroll', { document });
      expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(201);
    }
    // The client home, compromised: a real libp2p node with the home's key that sends raw frames.
    rogue = await createPolyhomeHost({ nodeKey: account.homes[0]!.secretKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
    dbA = await openDatabase(a.databaseUrl, account.serverName, 'server A');
    dbB = await openDatabase(b.databaseUrl, account.serverName, 'server B');
  }, 240_000);

  afterAll(async () => {
    await rogue?.stop();
    await dbA?.close();
    await dbB?.close();
    await Promise.all([a?.dispose(), b?.dispose()]);
  }, 60_000);

  /** Sends ops to one server only, as the client home (hello, then one ops frame). */
  async function sendTo(fresh: FreshServer, ops: Op[]): Promise<void> {
    const hello = { t: 'hello', account: account.serverName, doc_seq: document.seq, vv: {} };
    const reply = await sendSyncFrames(rogue, fresh.server.addr, SYNC_PROTOCOL, hello, [
      { t: 'ops', account: account.serverName, ops },
    ]);
    expect(reply.frames.filter((f) => (f as { t?: string }).t === 'error')).toEqual([]);
  }

  it(`converges within ${BOUND_MS / 1000} s while nothing else happens`, async () => {
    const origin = account.homes[0]!.peerId;
    // Two versions of the client home's first op: two different devices in one slot.
    const one = new OpWriter(account, account.homes[0]!, document.seq).devicePut('PHONE');
    const two = new OpWriter(account, account.homes[0]!, document.seq).devicePut('TABLET');
    const [low, high] = opHash(one) < opHash(two) ? [one, two] : [two, one];

    // The higher-hash version reaches A, and through A's session with B, B: both hold it.
    await sendTo(a, [high]);
    await waitFor(
      async () => (await dbB.versionVector())[origin] === 1 && (await converged([dbA, dbB])),
      'both servers to hold the first version',
      120_000,
    );
    const before = await dbA.logDigests();

    // The lower-hash version reaches A alone; A takes it (its digest changes, its vector does not).
    await sendTo(a, [low]);
    await waitFor(async () => (await dbA.logDigests())[origin] !== before[origin], 'A to take the lower hash', 30_000);
    const start = Date.now();
    await waitFor(async () => converged([dbA, dbB]), 'the servers to converge within the stated bound', BOUND_MS);
    const took = Date.now() - start;
    console.log(`quiet split: converged ${took} ms after server A took the lower-hash version (bound ${BOUND_MS} ms)`);
    const digestsB = await dbB.logDigests();
    expect(digestsB[origin]).toBe((await dbA.logDigests())[origin]);
    expect(digestsB[origin]).not.toBe(before[origin]);
  }, 360_000);
});
