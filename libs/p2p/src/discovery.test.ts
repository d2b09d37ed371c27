// Discovery over a real DHT: nodes on 127.0.0.1 connected in a line, the lookup made from the far end.
import { canonicalJsonBytes, keyPairFromSeed, signTyped, ACCOUNT_DOCUMENT_TYPE, ROOT_KEY_ID } from '@polyhome/identity';
import { makeAccount, makeHome, seedFrom, withHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountNotFoundError } from './errors.js';
import { accountCid, accountRecordKey } from './records.js';
import { startNode, type TestNode } from './testing/index.js';

describe('discovery through the polyhome DHT', () => {
  const account = makeAccount({ seed: 'discovery', homes: 2 });
  const [homeA, homeB] = account.homes as [(typeof account.homes)[0], (typeof account.homes)[0]];
  const nodes: TestNode[] = [];
  let a: TestNode, b: TestNode, relay: TestNode, rogue: TestNode, far: TestNode;

  beforeAll(async () => {
    // Line: A - B - relay - rogue - far. Each node bootstraps from the previous one only.
    a = await startNode({ nodeKey: homeA.secretKey });
    nodes.push(a);
    b = await startNode({ nodeKey: homeB.secretKey, bootstrap: [a.addr] });
    nodes.push(b);
    relay = await startNode({ nodeKey: makeHome('discovery:relay').secretKey, bootstrap: [b.addr] });
    nodes.push(relay);
    rogue = await startNode({ nodeKey: makeHome('discovery:rogue').secretKey, bootstrap: [relay.addr] });
    nodes.push(rogue);
    far = await startNode({ nodeKey: makeHome('discovery:far').secretKey, bootstrap: [rogue.addr] });
    nodes.push(far);
    // Let identify run so every node has its neighbours in the routing table.
    await new Promise((resolve) => setTimeout(resolve, 500));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(nodes.map(async (n) => n.stop()));
  });

  it('finds the homes of an account from the user ID alone, from the far end of a line', async () => {
    expect(far.host.getConnections().map((c) => c.remotePeer.toString())).not.toContain(a.peerId);
    await a.discovery.publishDocument(account.document);
    await a.discovery.provide(account.serverName);
    await b.discovery.provide(account.serverName);
    // A node that is not a home also provides the account CID: it must be ignored.
    await rogue.discovery.provide(account.serverName);

    const found = await far.discovery.lookup(account.userId);
    expect(found.document.seq).toBe(account.document.seq);
    expect(found.document.user_id).toBe(account.userId);
    expect(found.homes.map((h) => h.peerId).sort()).toEqual([a.peerId, b.peerId].sort());
    const homeOfA = found.homes.find((h) => h.peerId === a.peerId)!;
    expect(homeOfA.addrs.some((addr) => addr.includes('/ip4/127.0.0.1/tcp/'))).toBe(true);
    expect(found.homes.map((h) => h.peerId)).not.toContain(rogue.peerId);
    expect(found.ignoredProviders).toContain(rogue.peerId);

    // The addresses found are enough to reach the home directly.
    const { multiaddr } = await import('@multiformats/multiaddr');
    const conn = await far.host.dial(
      multiaddr(`${homeOfA.addrs.find((x) => x.includes('127.0.0.1'))!}/p2p/${a.peerId}`),
    );
    expect(conn.remotePeer.toString()).toBe(a.peerId);
  }, 60_000);

  it('a forged record (signed by another key) is refused by the DHT and ignored by lookups', async () => {
    const forger = keyPairFromSeed(seedFrom('discovery:forger')).secretKey;
    const newer = withHome(account, account.document, makeHome('discovery:intruder'));
    const { signatures: _s, ...content } = newer;
    const forged = signTyped(content, ACCOUNT_DOCUMENT_TYPE, account.serverName, ROOT_KEY_ID, forger);
    // The rogue bypasses our publishDocument checks and talks to the DHT directly.
    const events: string[] = [];
    try {
      for await (const e of rogue.host.services.dht.put(
        accountRecordKey(account.serverName),
        canonicalJsonBytes(forged),
        {
          signal: AbortSignal.timeout(15_000),
        },
      )) {
        events.push(e.name);
      }
    } catch {
      // Peers refusing the record may end the put with an error: that is the point.
    }
    const found = await far.discovery.lookup(account.userId);
    expect(found.document.seq).toBe(account.document.seq);
    expect(found.document.homes.map((h) => h.peer_id)).not.toContain(makeHome('discovery:intruder').peerId);
  }, 60_000);

  it('a replayed older document does not replace the newer one (validator and selector)', async () => {
    const v3 = withHome(account, account.document, makeHome('discovery:laptop'));
    await b.discovery.publishDocument(v3);
    expect((await far.discovery.fetchDocument(account.serverName))?.seq).toBe(v3.seq);
    // The rogue replays the (validly signed) older version.
    try {
      for await (const _e of rogue.host.services.dht.put(
        accountRecordKey(account.serverName),
        canonicalJsonBytes(account.document),
        { signal: AbortSignal.timeout(15_000) },
      )) {
        // drain
      }
    } catch {
      // Refused by peers that saw v3.
    }
    const found = await far.discovery.lookup(account.serverName);
    expect(found.document.seq).toBe(v3.seq);
  }, 60_000);

  it('an account with no valid record is not found, whatever its providers say', async () => {
    const ghost = makeAccount({ seed: 'discovery:ghost', homes: 1 });
    for await (const _e of rogue.host.services.dht.provide(await accountCid(ghost.serverName), {
      signal: AbortSignal.timeout(15_000),
    })) {
      // drain
    }
    await expect(far.discovery.lookup(ghost.userId, { timeout: 5_000 })).rejects.toBeInstanceOf(AccountNotFoundError);
  }, 60_000);
});
