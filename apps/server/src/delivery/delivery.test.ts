import { SecretKey, peerIdFromPublicKey } from '@polyhome/identity';
import { createPolyhomeHost, createSyncService } from '@polyhome/p2p';
import { MemoryReplicaStore } from '@polyhome/sync/testing';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountsService } from '../accounts/accounts.service.js';
import { DeliveryService } from './delivery.service.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';
import { freePort, waitFor } from '@polyhome/p2p/testing';

const ADMIN_TOKEN = 'delivery-test-admin-token';

describe.each(SERVER_BACKENDS)('store and forward through the delivery queue on $name', (backend) => {
  let server: TestServer;
  const admin = (url: string) =>
    request(server.app.getHttpServer()).get(url).set('Authorization', `Bearer ${ADMIN_TOKEN}`);

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('keeps a delivery job while a home is away, and delivers everything when it can be reached', async () => {
    const accounts = server.app.get(AccountsService);
    const created = await accounts.createHosted(`away${backend.database}`, undefined);
    const key = SecretKey.generate();
    const peerId = peerIdFromPublicKey(key.publicKey);
    const port = await freePort();
    const addr = `/ip4/127.0.0.1/tcp/${port}/p2p/${peerId}`;
    const document = await accounts.addHomeByAddress(created.user_id, {
      multiaddr: addr,
      role: 'client',
      name: 'phone',
    });
    for (let i = 0; i < 5; i++) {
      await accounts.applyLocal(created.server_name, [
        { op: 'member.set', key: `!room${i}:x`, body: { room_id: `!room${i}:x`, membership: 'join' } },
      ]);
    }
    // The home is not reachable: its delivery job waits (delayed between attempts) and shows in the admin API.
    await waitFor(async () => {
      const res = await admin('/admin/v1/queues').expect(200);
      const delivery = res.body.chunk.find((q: { name: string }) => q.name === 'delivery');
      return delivery !== undefined && delivery.waiting + delivery.delayed + delivery.active >= 1;
    }, 'a delivery job for the away home');

    // The home comes up where the document says it is; the job's next attempt reaches it.
    const host = await createPolyhomeHost({
      nodeKey: key,
      listen: [`/ip4/127.0.0.1/tcp/${port}`],
      inboundConnectionThreshold: 10_000,
    });
    const sync = createSyncService(host);
    await sync.start();
    const store = new MemoryReplicaStore();
    try {
      store.host(document);
      await sync.host(created.server_name, store);
      const self = (await admin('/admin/v1/node')).body.peer_id as string;
      await waitFor(
        async () => (await store.versionVector(created.server_name))[self] === 5,
        'the home to receive the 5 ops',
      );
      await waitFor(async () => {
        const res = await admin('/admin/v1/queues').expect(200);
        const delivery = res.body.chunk.find((q: { name: string }) => q.name === 'delivery');
        return delivery.waiting + delivery.delayed + delivery.active + delivery.failed === 0;
      }, 'the delivery job to finish');
    } finally {
      await sync.stop();
      await host.stop();
    }
  });

  it('queues no delivery to another server instance on the same database (it shares the op log)', async () => {
    const accounts = server.app.get(AccountsService);
    const created = await accounts.createHosted(`sibling${backend.database}`, undefined);
    const [sibling, other] = [SecretKey.generate(), SecretKey.generate()];
    for (const [i, key] of [sibling, other].entries()) {
      await accounts.addHomeByAddress(created.user_id, {
        multiaddr: `/ip4/127.0.0.1/tcp/${await freePort()}/p2p/${peerIdFromPublicKey(key.publicKey)}`,
        role: 'client',
        name: `home${i}`,
      });
    }
    // An instance registers in home_node when it starts on the database.
    await server.resources.repositories.homeNodes.register({
      peerId: peerIdFromPublicKey(sibling.publicKey),
      publicKey: sibling.publicKey,
      role: 'server',
    });
    await accounts.applyLocal(created.server_name, [
      { op: 'member.set', key: '!s:x', body: { room_id: '!s:x', membership: 'join' } },
    ]);
    const jobs = await server.app.get(DeliveryService).scheduleFor(created.server_name);
    expect(jobs).toEqual([`${created.server_name}.${peerIdFromPublicKey(other.publicKey)}`]);
  });
});
