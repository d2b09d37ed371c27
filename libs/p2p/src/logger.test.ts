// Failures the sync service used to swallow (`.catch(() => undefined)`, an empty catch) now leave a log
// line with the peer, protocol and account. Real libp2p nodes on 127.0.0.1; the logger records.
import { multiaddr } from '@multiformats/multiaddr';
import { SecretKey } from '@polyhome/identity';
import { makeLocalOp } from '@polyhome/sync';
import { deviceBody, makeAccount, MemoryReplicaStore } from '@polyhome/sync/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { SYNC_PROTOCOL } from './constants.js';
import { createPolyhomeHost, type PolyhomeHost } from './host.js';
import { openRawSync, recordingLogger, startNode, waitFor, type TestNode } from './testing/index.js';

const nodes: TestNode[] = [];
const hosts: PolyhomeHost[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map(async (n) => n.stop()));
  await Promise.all(hosts.splice(0).map(async (h) => h.stop()));
});

describe('p2p logging', () => {
  it('a home whose node does not speak the sync protocol: the failed session open is logged', async () => {
    const account = makeAccount({ seed: 'log:no-sync', homes: 2 });
    const logger = recordingLogger();
    const store = new MemoryReplicaStore();
    store.host(account.document);
    const a = await startNode({ nodeKey: account.homes[0]!.secretKey, store, sync: { logger } });
    nodes.push(a);
    await a.sync.host(account.serverName, store);
    // The second home's node runs libp2p but no sync service, so opening a sync stream to it fails.
    const b = await createPolyhomeHost({
      nodeKey: account.homes[1]!.secretKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      inboundConnectionThreshold: 10_000,
    });
    hosts.push(b);
    await a.host.dial(multiaddr(b.getMultiaddrs()[0]!));
    await waitFor(() => logger.entries.some((e) => e.msg === 'sync session could not open'), 'the log line');
    const entry = logger.entries.find((e) => e.msg === 'sync session could not open')!;
    expect(entry.level).toBe('info');
    expect(entry.fields).toMatchObject({
      account: account.serverName,
      peer: account.homes[1]!.peerId,
      protocol: SYNC_PROTOCOL,
      err: expect.any(String),
    });
  }, 30_000);

  it('a first frame that is not JSON: the stream ends with MALFORMED and a debug line names the peer', async () => {
    const logger = recordingLogger();
    const node = await startNode({ nodeKey: SecretKey.generate(), sync: { logger } });
    nodes.push(node);
    const stranger = await createPolyhomeHost({ nodeKey: SecretKey.generate(), listen: ['/ip4/127.0.0.1/tcp/0'] });
    hosts.push(stranger);
    const raw = await openRawSync(stranger, node);
    await raw.sendBytes(new TextEncoder().encode('not json'));
    expect(await raw.next()).toMatchObject({ t: 'error', code: 'MALFORMED' });
    await waitFor(() => logger.entries.some((e) => e.msg === 'inbound sync stream ended before its hello'), 'the line');
    expect(logger.entries.find((e) => e.msg === 'inbound sync stream ended before its hello')).toMatchObject({
      level: 'debug',
      fields: { peer: stranger.peerId.toString(), protocol: SYNC_PROTOCOL, code: 'MALFORMED' },
    });
  }, 30_000);

  it('an event listener that throws is logged, and sync carries on', async () => {
    const account = makeAccount({ seed: 'log:listener', homes: 2 });
    const logger = recordingLogger();
    const [a, b] = await Promise.all(
      account.homes.map(async (home, i) => {
        const store = new MemoryReplicaStore();
        store.host(account.document);
        const node = await startNode({ nodeKey: home.secretKey, store, ...(i === 0 ? { sync: { logger } } : {}) });
        nodes.push(node);
        await node.sync.host(account.serverName, store);
        return node;
      }),
    );
    a!.sync.on('applied', () => {
      throw new Error('listener broke');
    });
    await a!.host.dial(multiaddr(b!.addr));
    const writer = account.homes[1]!;
    for (const key of ['ONE', 'TWO']) {
      const op = makeLocalOp(
        b!.store.replica(account.serverName),
        writer.secretKey,
        { op: 'device.put', key, body: { ...deviceBody(account, key) } },
        1_764_000_000_000,
      );
      await b!.store.applyOps(account.serverName, [op], b!.peerId);
      b!.sync.publish(account.serverName, [op]);
      await waitFor(
        async () => ((await a!.store.versionVector(account.serverName))[writer.peerId] ?? 0) >= op.seq,
        `op ${key} on A`,
      );
    }
    const lines = logger.entries.filter((e) => e.msg === 'sync event listener threw');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatchObject({
      level: 'error',
      fields: { event: 'applied', account: account.serverName, err: 'listener broke' },
    });
  }, 30_000);
});
