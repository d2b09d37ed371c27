// /polyhome/document/1.0.0 between real libp2p nodes on 127.0.0.1.
import { multiaddr } from '@multiformats/multiaddr';
import { makeAccount, makeHome, withHome } from '@polyhome/sync/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { DocumentUnavailableError } from './errors.js';
import { startNode, type TestNode } from './testing/index.js';

const nodes: TestNode[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async (n) => n.stop()));
});

async function node(secretKey: Parameters<typeof startNode>[0]['nodeKey']): Promise<TestNode> {
  const started = await startNode({ nodeKey: secretKey });
  nodes.push(started);
  return started;
}

describe('document fetch', () => {
  it('gives the held document to a peer it names as a home, verified on arrival', async () => {
    const account = makeAccount({ seed: 'doc:fetch', homes: 1 });
    const joining = makeHome('doc:fetch:joining');
    const document = withHome(account, account.document, joining);
    const holder = await node(account.homes[0]!.secretKey);
    holder.store.host(document);
    await holder.sync.host(account.serverName, holder.store);

    const newcomer = await node(joining.secretKey);
    await newcomer.host.dial(multiaddr(holder.addr));
    const fetched = await newcomer.sync.fetchDocument(holder.peerId, account.serverName);
    expect(fetched).toEqual(document);
  }, 30_000);

  it('answers a stranger the same whether or not the account is hosted, and nothing else', async () => {
    const account = makeAccount({ seed: 'doc:stranger', homes: 1 });
    const holder = await node(account.homes[0]!.secretKey);
    holder.store.host(account.document);
    await holder.sync.host(account.serverName, holder.store);
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
    const holder = await node(account.homes[0]!.secretKey);
    holder.store.host(account.document);
    await holder.sync.host(account.serverName, holder.store);
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

  it('refuses a bad account name before dialling', async () => {
    const a = await node(makeHome('doc:bad:a').secretKey);
    await expect(a.sync.fetchDocument(a.peerId, 'not a server name')).rejects.toThrow(/not a polyhome/);
  });
});
