import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { peerIdFromPublicKey, readNodeKeyFile, SecretKey } from '@polyhome/identity';
import { afterEach, describe, expect, it } from 'vitest';
import { DHT_PROTOCOL, SYNC_PROTOCOL } from './constants.js';
import { InvalidHostInitError } from './errors.js';
import { createPolyhomeHost, privateKeyFromNodeKey, type PolyhomeHost } from './host.js';
import { createSyncService } from './index.js';

describe('polyhome host', () => {
  const hosts: PolyhomeHost[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await Promise.all(hosts.splice(0).map(async (h) => h.stop()));
    await Promise.all(dirs.splice(0).map(async (d) => rm(d, { recursive: true, force: true })));
  });

  it('derives the PeerId identity derives from the node key', async () => {
    const key = SecretKey.generate();
    const privateKey = await privateKeyFromNodeKey(key);
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
    expect(peerIdFromPrivateKey(privateKey).toString()).toBe(peerIdFromPublicKey(key.publicKey));
  });

  it('keeps a stable PeerId from its key file across restarts', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'polyhome-p2p-'));
    dirs.push(dir);
    const file = path.join(dir, 'node.key');
    const first = await createPolyhomeHost({ nodeKeyFile: file, listen: ['/ip4/127.0.0.1/tcp/0'] });
    hosts.push(first);
    const id = first.peerId.toString();
    await first.stop();
    const second = await createPolyhomeHost({ nodeKeyFile: file, listen: ['/ip4/127.0.0.1/tcp/0'] });
    hosts.push(second);
    expect(second.peerId.toString()).toBe(id);
    expect(peerIdFromPublicKey((await readNodeKeyFile(file)).publicKey)).toBe(id);
  });

  it('speaks the polyhome DHT (not the IPFS one) and, with sync started, the sync protocol', async () => {
    const host = await createPolyhomeHost({ nodeKey: SecretKey.generate(), listen: ['/ip4/127.0.0.1/tcp/0'] });
    hosts.push(host);
    const sync = createSyncService(host);
    await sync.start();
    expect(host.getProtocols()).toContain(DHT_PROTOCOL);
    expect(host.getProtocols()).toContain(SYNC_PROTOCOL);
    expect(host.getProtocols()).not.toContain('/ipfs/kad/1.0.0');
    await sync.stop();
    expect(host.getProtocols()).not.toContain(SYNC_PROTOCOL);
  });

  it('needs exactly one of nodeKey and nodeKeyFile', async () => {
    await expect(createPolyhomeHost({})).rejects.toBeInstanceOf(InvalidHostInitError);
  });
});
