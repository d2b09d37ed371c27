// /polyhome/document/1.0.0 between real libp2p nodes on 127.0.0.1.
import { multiaddr } from '@multiformats/multiaddr';
import { documentDigest } from '@polyhome/identity';
import { makeAccount, makeHome, withHome, type FixtureAccount } from '@polyhome/sync/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DocumentUnavailableError } from './errors.js';
import type { SyncEvents } from './index.js';
import { openRawSync, startNode, waitFor, type TestNode } from './testing/index.js';

const nodes: TestNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async (n) => n.stop()));
});

async function node(secretKey: Parameters<typeof startNode>[0]['nodeKey']): Promise<TestNode> {
  const started = await startNode({ nodeKey: secretKey });
  nodes.push(started);
  return started;
}

/** A node of the account's first home, holding and hosting `document`. */
async function holding(account: FixtureAccount, document = account.document): Promise<TestNode> {
  const holder = await node(account.homes[0]!.secretKey);
  holder.store.host(document);
  await holder.sync.host(account.serverName, holder.store);
  return holder;
}

describe('document fetch', () => {
  it('gives the held document to a peer it names as a home, verified on arrival', async () => {
    const account = makeAccount({ seed: 'doc:fetch', homes: 1 });
    const joining = makeHome('doc:fetch:joining');
    const document = withHome(account, account.document, joining);
    const holder = await holding(account, document);

    const newcomer = await node(joining.secretKey);
    await newcomer.host.dial(multiaddr(holder.addr));
    const fetched = await newcomer.sync.fetchDocument(holder.peerId, account.serverName);
    expect(fetched).toEqual(document);
  }, 30_000);

  it('answers a stranger the same whether or not the account is hosted, and nothing else', async () => {
    const account = makeAccount({ seed: 'doc:stranger', homes: 1 });
    const holder = await holding(account);
    const stranger = await node(makeHome('doc:stranger:x').secretKey);
    await stranger.host.dial(multiaddr(holder.addr));
    const other = makeAccount({ seed: 'doc:stranger:unhosted', homes: 1 });

    const messages: string[] = [];
    for (const target of [account.serverName, other.serverName]) {
      const error = await stranger.sync.fetchDocument(holder.peerId, target).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(DocumentUnavailableError);
      messages.push((error as Error).message.replace(target, '<account>'));
    }
    expect(messages[0]).toBe(messages[1]);
  }, 30_000);

  it('takes an offered newer document signed by the root key, from any peer; refuses an older or forged one', async () => {
    const account = makeAccount({ seed: 'doc:offer', homes: 1 });
    const holder = await holding(account);
    // A device restored from a backup signs a document naming itself; the holder does not know it yet.
    const restored = makeHome('doc:offer:restored');
    const next = withHome(account, account.document, restored);
    const newcomer = await node(restored.secretKey);
    await newcomer.host.dial(multiaddr(holder.addr));

    const forged = { ...next, seq: next.seq + 1 };
    expect(await newcomer.sync.offerDocument(holder.peerId, forged)).toBe(false);
    expect((await holder.store.document(account.serverName))?.seq).toBe(account.document.seq);

    expect(await newcomer.sync.offerDocument(holder.peerId, next)).toBe(true);
    expect(await holder.store.document(account.serverName)).toEqual(next);
    // Offering it again is harmless; the older one is refused (a replay cannot roll the holder back).
    expect(await newcomer.sync.offerDocument(holder.peerId, next)).toBe(true);
    expect(await newcomer.sync.offerDocument(holder.peerId, account.document)).toBe(false);
    expect(await holder.store.document(account.serverName)).toEqual(next);
    // The newcomer is now a home there: it may fetch the document.
    expect(await newcomer.sync.fetchDocument(holder.peerId, account.serverName)).toEqual(next);
  }, 30_000);

  it('answers a stranger’s offer alike whether or not the account is hosted, and still takes a newer document in', async () => {
    const account = makeAccount({ seed: 'doc:offer:stranger', homes: 1 });
    const other = makeAccount({ seed: 'doc:offer:stranger:unhosted', homes: 1 });
    const holder = await holding(account);
    const stranger = await node(makeHome('doc:offer:stranger:x').secretKey);
    await stranger.host.dial(multiaddr(holder.addr));

    // The public document of a hosted account (before: accepted) and of one not hosted: both refused alike.
    expect(await stranger.sync.offerDocument(holder.peerId, account.document)).toBe(false);
    expect(await stranger.sync.offerDocument(holder.peerId, other.document)).toBe(false);
    const next = withHome(account, account.document, makeHome('doc:offer:stranger:later'));
    expect(await stranger.sync.offerDocument(holder.peerId, next)).toBe(false);
    await waitFor(
      async () => (await holder.store.document(account.serverName))?.seq === next.seq,
      'the offer taken in',
    );
  }, 30_000);

  it('reports a second document of the seq in force, from an offer or a session, and keeps the held one', async () => {
    const account = makeAccount({ seed: 'doc:equivocation', homes: 2 });
    const holder = await holding(account);
    const seen: Array<SyncEvents['equivocation']> = [];
    holder.sync.on('equivocation', (e) => seen.push(e));
    const peer = await node(account.homes[1]!.secretKey);
    await peer.host.dial(multiaddr(holder.addr));
    // Two documents the root key signed from the same one: the same seq, other homes.
    const base = makeAccount({ seed: 'doc:equivocation', homes: 1 }).document;
    expect(base.seq).toBe(account.document.seq - 1);
    const first = withHome(account, base, makeHome('doc:equivocation:x'));
    const second = withHome(account, base, makeHome('doc:equivocation:y'));
    expect(first.seq).toBe(account.document.seq);

    // Through the document protocol (from a stranger to both of them: answered before the store is asked).
    expect(await peer.sync.offerDocument(holder.peerId, first)).toBe(false);
    await waitFor(() => seen.length === 1, 'the equivocation of the offer');
    expect(seen[0]).toEqual({
      account: account.serverName,
      peerId: peer.peerId,
      seq: account.document.seq,
      digests: [documentDigest(account.document), documentDigest(first)],
    });
    // Through a sync session: a home sends a document of the seq it said it holds.
    const raw = await openRawSync(peer.host, holder);
    await raw.send({ t: 'hello', account: account.serverName, doc_seq: account.document.seq, vv: {} });
    await raw.send({ t: 'doc', account: account.serverName, document: second });
    await waitFor(() => seen.length === 2, 'the equivocation of the session');
    expect(seen[1]).toMatchObject({
      peerId: peer.peerId,
      digests: [documentDigest(account.document), documentDigest(second)],
    });
    expect(await holder.store.document(account.serverName)).toEqual(account.document);
  }, 30_000);

  it('refuses a bad account name before dialling', async () => {
    const a = await node(makeHome('doc:bad:a').secretKey);
    await expect(a.sync.fetchDocument(a.peerId, 'not a server name')).rejects.toThrow(/not a polyhome/);
  });
});
