// A stranger (a peer that is no home of the account) attacks a real server process over libp2p with what used
// to cost it a point decompression per key: sync hellos naming 2,048 + 2,048 fresh PeerIds (vector and digest
// keys), and document offers with 1,024 fresh revoked PeerIds and a bad signature. Before the fix, every key
// of every hello was checked before the sender was, and the revoked entries of an offer before its signature:
// such hellos at one a second took the server's /health from a 6 ms median to 5.2 s. Now the stranger is
// refused from the document in force before any key is looked at, and an offer's signature is checked first.
//
// What is asserted is not a timing: the refusal codes, and the server's own count of curve-point checks
// (`polyhome_public_key_point_checks_total`), which must not move with the attack (before, it grew by 4,096
// per hello). The /health latencies measured during the attack are printed.
import { addHome, isPeerId, removeHome, type AccountDocument } from '@polyhome/identity';
import {
  createPolyhomeHost,
  DOCUMENT_PROTOCOL,
  MAX_VECTOR_ENTRIES,
  SYNC_PROTOCOL,
  type PolyhomeHost,
} from '@polyhome/p2p';
import { makeAccount, makeHome, type FixtureAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPeerIds } from '../support/attacks.js';
import { serverHomeOf } from '../support/client-node.js';
import { exchange, jsonFrame } from '../support/raw-sync.js';
import { median } from '../support/stats.js';
import { startFreshServer, type FreshServer, type ServerProcess } from '../support/server-process.js';

/** Hellos the stranger sends, each with keys never seen before. */
const HELLOS = 6;
/** Document offers the stranger sends. */
const OFFERS = 6;
describe('a stranger attacking a server process with costly hellos and document offers', () => {
  let fresh: FreshServer;
  let server: ServerProcess;
  let stranger: PolyhomeHost;
  let home: PolyhomeHost;
  let account: FixtureAccount;
  let document: AccountDocument;

  beforeAll(async () => {
    fresh = await startFreshServer('stranger');
    server = fresh.server;
    account = makeAccount({ seed: `stranger-${process.pid}`, localpart: 'quiet', homes: 1, roles: ['client'] });
    document = addHome(account.document, serverHomeOf(server, 'server'), account.rootKey);
    const enrolled = await server.request('POST', '/_polyhome/v1/enroll', { document });
    expect(enrolled.status, JSON.stringify(enrolled.body)).toBe(201);
    stranger = await createPolyhomeHost({
      nodeKey: makeHome(`stranger-${process.pid}`).secretKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
    });
    home = await createPolyhomeHost({ nodeKey: account.homes[0]!.secretKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
  }, 180_000);

  afterAll(async () => {
    await stranger?.stop();
    await home?.stop();
    await fresh?.dispose();
  }, 60_000);

  /** The server's count of public keys checked as curve points, from /metrics. */
  async function pointChecks(): Promise<number> {
    const scraped = await server.request('GET', '/metrics');
    const match = /^polyhome_public_key_point_checks_total (\d+)/m.exec(String(scraped.body['text']));
    if (match === null)
      throw new Error(`no point-check count in /metrics: ${String(scraped.body['text']).slice(0, 200)}`);
    return Number(match[1]);
  }

  /** Runs `attack` while /health is asked every 50 ms; resolves with the attack's result and the latencies. */
  async function underProbe<T>(attack: () => Promise<T>): Promise<{ result: T; latencies: number[] }> {
    const latencies: number[] = [];
    let done = false;
    const probe = (async () => {
      while (!done) {
        const start = performance.now();
        const answer = await server.request('GET', '/health');
        latencies.push(performance.now() - start);
        expect(answer.status).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      return { result: await attack(), latencies };
    } finally {
      done = true;
      await probe;
    }
  }

  it('refuses hellos from a stranger before checking any of their keys', async () => {
    // Baseline: /health with nothing going on.
    const { latencies: quiet } = await underProbe(() => new Promise((resolve) => setTimeout(resolve, 1_500)));
    const hellos = Array.from({ length: HELLOS }, (_, i) => {
      const keys = freshPeerIds(2 * MAX_VECTOR_ENTRIES);
      const vv = Object.fromEntries(keys.slice(0, MAX_VECTOR_ENTRIES).map((k) => [k, 1]));
      const digests = Object.fromEntries(keys.slice(MAX_VECTOR_ENTRIES).map((k) => [k, '0'.repeat(32)]));
      // Half for the hosted account, half for one the server does not host: both answered alike.
      const named = i % 2 === 0 ? account.serverName : 'ab'.repeat(32);
      return { t: 'hello', account: named, doc_seq: 1, vv, digests };
    });
    expect(isPeerId(Object.keys(hellos[0]!.vv)[0]!)).toBe(true);
    const before = await pointChecks();
    const { result: replies, latencies } = await underProbe(async () => {
      const out = [];
      for (const hello of hellos) out.push(await exchange(stranger, server.addr, SYNC_PROTOCOL, [jsonFrame(hello)]));
      return out;
    });
    const after = await pointChecks();
    console.log(
      `stranger hellos: ${HELLOS} x (${MAX_VECTOR_ENTRIES} + ${MAX_VECTOR_ENTRIES} fresh PeerIds); point checks ` +
        `${before} -> ${after}; /health median ${median(quiet).toFixed(1)} ms quiet, ` +
        `${median(latencies).toFixed(1)} ms (max ${Math.max(...latencies).toFixed(1)} ms, ${latencies.length} probes) ` +
        `under attack`,
    );
    replies.forEach((reply, i) => {
      expect(reply.frames).toEqual([
        { t: 'error', account: hellos[i]!.account, code: 'NOT_A_HOME', reason: expect.any(String) as string },
      ]);
    });
    // The reason is the same whether or not the account is hosted here.
    expect((replies[0]!.frames[0] as { reason: string }).reason).toBe(
      (replies[1]!.frames[0] as { reason: string }).reason,
    );
    // Not one key per hello was checked (before the fix: 4,096 per hello).
    expect(after - before).toBeLessThan(HELLOS);
  }, 180_000);

  it('bounds the keys of a home’s hello by counting them before checking any', async () => {
    const keys = freshPeerIds(2 * MAX_VECTOR_ENTRIES + 1);
    const hello = {
      t: 'hello',
      account: account.serverName,
      doc_seq: document.seq,
      vv: Object.fromEntries(keys.slice(0, MAX_VECTOR_ENTRIES).map((k) => [k, 1])),
      // One digest too many.
      digests: Object.fromEntries(keys.slice(MAX_VECTOR_ENTRIES).map((k) => [k, '0'.repeat(32)])),
    };
    const before = await pointChecks();
    const reply = await exchange(home, server.addr, SYNC_PROTOCOL, [jsonFrame(hello)]);
    const after = await pointChecks();
    expect(reply.frames).toEqual([{ t: 'error', account: '0'.repeat(64), code: 'MALFORMED', reason: 'malformed' }]);
    // Before the fix the 2,048 vector keys were checked before the digests were counted.
    expect(after - before).toBeLessThan(MAX_VECTOR_ENTRIES / 2);
  }, 120_000);

  it('checks the signature of an offered document before its 1,024 revoked entries', async () => {
    // The next version (removing the client home), then 1,023 more revoked homes added after it was signed:
    // 1,024 revoked entries under a signature that no longer matches.
    const next = removeHome(document, account.homes[0]!.peerId, 0, account.rootKey);
    const offers = Array.from({ length: OFFERS }, () => {
      const revoked = Object.fromEntries(freshPeerIds(1023).map((k) => [k, 0]));
      return { account: account.serverName, document: { ...next, revoked: { ...next.revoked, ...revoked } } };
    });
    const before = await pointChecks();
    const { result: replies, latencies } = await underProbe(async () => {
      const out = [];
      for (const offer of offers)
        out.push(await exchange(stranger, server.addr, DOCUMENT_PROTOCOL, [jsonFrame(offer)]));
      return out;
    });
    const after = await pointChecks();
    console.log(
      `forged offers: ${OFFERS} x 1024 revoked PeerIds (1023 fresh); point checks ${before} -> ${after}; /health median ` +
        `${median(latencies).toFixed(1)} ms (max ${Math.max(...latencies).toFixed(1)} ms) under attack`,
    );
    for (const reply of replies) expect(reply.frames).toEqual([{ error: 'not_found' }]);
    expect(after - before).toBeLessThan(OFFERS);
    // The held document is unchanged.
    const held = await exchange(home, server.addr, DOCUMENT_PROTOCOL, [jsonFrame({ account: account.serverName })]);
    expect((held.frames[0] as { document: AccountDocument }).document.seq).toBe(document.seq);
  }, 120_000);
});
