// /polyhome/document/1.0.0 offers from a stranger to a real server process, over real libp2p.
//
// An oracle: a stranger holding an account's public document (the DHT serves it to anyone) offered it, and the
// server answered `{ accepted: true }` only when it hosted the account, `not_found` otherwise. Now a sender the
// offered document does not name is answered `not_found` before the store is asked, hosted or not; the document
// is still taken in when it is newer (the root signature is the authority).
//
// An equivocation: two different documents of one seq signed by the root key. The server kept the one it held
// and said nothing. Now it logs a warning naming the account, the seq, both digests and the peer, counts it in
// `polyhome_document_equivocations_total` (once per pair of documents) and flags the account for its admin
// (`document_equivocation` in `GET /admin/v1/accounts/:userId`).
import { addHome, documentDigest, type AccountDocument, type Home } from '@polyhome/identity';
import { createPolyhomeHost, DOCUMENT_PROTOCOL, type PolyhomeHost } from '@polyhome/p2p';
import { waitFor } from '@polyhome/p2p/testing';
import { makeAccount, makeHome, type FixtureAccount } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useHandPlayedHome } from '../support/hostile-home.js';
import { exchange, jsonFrame, type Reply } from '../support/raw-sync.js';

/** A client home entry that no test host runs. */
function elsewhere(label: string): Home {
  return makeHome(`offers-${label}-${process.pid}`).home;
}

describe('document offers from a stranger to a server process', () => {
  const account: FixtureAccount = makeAccount({
    seed: `offers-${process.pid}`,
    localpart: 'offered',
    homes: 1,
    roles: ['client'],
  });
  const suite = useHandPlayedHome('offers', account);
  let stranger: PolyhomeHost;

  beforeAll(async () => {
    stranger = await createPolyhomeHost({
      nodeKey: makeHome(`offers-stranger-${process.pid}`).secretKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
    });
  }, 60_000);

  afterAll(async () => {
    await stranger?.stop();
  }, 60_000);

  function offer(from: PolyhomeHost, name: string, document: AccountDocument): Promise<Reply> {
    return exchange(from, suite.server.addr, DOCUMENT_PROTOCOL, [jsonFrame({ account: name, document })]);
  }

  /** The document the server holds, as its home (a peer it names) fetches it. */
  async function held(): Promise<AccountDocument> {
    const reply = await exchange(suite.setup.host, suite.server.addr, DOCUMENT_PROTOCOL, [
      jsonFrame({ account: account.serverName }),
    ]);
    return (reply.frames[0] as { document: AccountDocument }).document;
  }

  async function equivocationsCounted(): Promise<number> {
    const scraped = await suite.server.request('GET', '/metrics');
    const match = /^polyhome_document_equivocations_total (\d+)/m.exec(String(scraped.body['text']));
    if (match === null)
      throw new Error(`no equivocation count in /metrics: ${String(scraped.body['text']).slice(0, 200)}`);
    return Number(match[1]);
  }

  it('answers a stranger offering a public document alike, whether or not the account is hosted', async () => {
    const other = makeAccount({ seed: `offers-other-${process.pid}`, localpart: 'elsewhere', homes: 1 });
    // The document in force of a hosted account (before: `accepted`), and one of an account not hosted here.
    const hosted = await offer(stranger, account.serverName, suite.document);
    const unhosted = await offer(stranger, other.serverName, other.document);
    expect(hosted).toEqual({ frames: [{ error: 'not_found' }], ended: 'closed' });
    expect(unhosted).toEqual(hosted);
    // A newer document from the stranger: the same answer, and yet it is taken in (the root signed it).
    const newer = addHome(suite.document, elsewhere('newer'), account.rootKey);
    expect(await offer(stranger, account.serverName, newer)).toEqual(hosted);
    await waitFor(async () => (await held()).seq === newer.seq, 'the newer document to be in force', 30_000);
    // A home the document names is still told its offer was taken.
    expect((await offer(suite.setup.host, account.serverName, newer)).frames).toEqual([{ accepted: true }]);
  }, 120_000);

  it('logs, counts and flags an equivocation of the root key once per pair, and keeps the held document', async () => {
    const inForce = await held();
    // Same seq as the one in force, other content: both signed by the root key.
    const conflicting = addHome(suite.document, elsewhere('conflicting'), account.rootKey);
    expect(conflicting.seq).toBe(inForce.seq);
    expect(documentDigest(conflicting)).not.toBe(documentDigest(inForce));
    const before = await equivocationsCounted();

    expect((await offer(stranger, account.serverName, conflicting)).frames).toEqual([{ error: 'not_found' }]);
    await waitFor(async () => (await equivocationsCounted()) === before + 1, 'the equivocation to be counted', 30_000);
    const digests = [documentDigest(inForce), documentDigest(conflicting)];
    const line = suite.server.logs.find((l) => l.includes('account document equivocation'));
    expect(line, suite.server.tail()).toBeDefined();
    const logged = JSON.parse(line!) as Record<string, unknown>;
    expect(logged).toMatchObject({
      level: 40,
      account: account.serverName,
      seq: inForce.seq,
      digests,
      peer: stranger.peerId.toString(),
    });
    await waitFor(
      async () =>
        (await suite.server.admin('GET', `/admin/v1/accounts/${encodeURIComponent(account.userId)}`)).body[
          'document_equivocation'
        ] != null,
      'the account to be flagged',
      30_000,
    );
    const flagged = await suite.server.admin('GET', `/admin/v1/accounts/${encodeURIComponent(account.userId)}`);
    expect(flagged.body['document_equivocation']).toEqual({
      seq: inForce.seq,
      digests,
      peer_id: stranger.peerId.toString(),
      seen_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) as string,
    });
    expect(flagged.body['doc_seq']).toBe(inForce.seq);

    // The same pair again is not counted again (offered by the home, which is answered only after the store
    // took the offer in); a third document of that seq is.
    expect((await offer(suite.setup.host, account.serverName, conflicting)).frames).toEqual([{ error: 'not_found' }]);
    const third = addHome(suite.document, elsewhere('third'), account.rootKey);
    await offer(stranger, account.serverName, third);
    await waitFor(async () => (await equivocationsCounted()) >= before + 2, 'the second pair to be counted', 30_000);
    expect(await equivocationsCounted()).toBe(before + 2);
    expect(suite.server.logs.filter((l) => l.includes('account document equivocation'))).toHaveLength(2);
    // The document in force never changed.
    expect(await held()).toEqual(inForce);
  }, 120_000);
});
