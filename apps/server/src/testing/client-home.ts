// Test support for enrollment: a client home (real libp2p node, in-memory store) whose user holds the
// account key and signs a document adding the server under test as a home.
import { multiaddr } from '@multiformats/multiaddr';
import { addHome, type AccountDocument, type Home } from '@polyhome/identity';
import { createPolyhomeHost, createSyncService, type PolyhomeHost, type SyncService } from '@polyhome/p2p';
import {
  MemoryReplicaStore,
  OpWriter,
  makeAccount,
  type FixtureAccount,
  type FixtureHome,
} from '@polyhome/sync/testing';
import type { TestServer } from './server-harness.js';

/** The server under test as a home entry of a document (its PeerId and loopback address). */
export function serverHome(server: TestServer): Home {
  return { peer_id: server.resources.p2p.peerId, role: 'server', name: 'companion', addrs: [loopbackAddr(server)] };
}

/** The server's 127.0.0.1 listen address with /p2p/<PeerId>. */
export function loopbackAddr(server: TestServer): string {
  const addr = server.resources.p2p.host.getMultiaddrs().find((a) => a.toString().startsWith('/ip4/127.0.0.1/'));
  if (addr === undefined) throw new Error('the server has no loopback address');
  return addr.toString();
}

/** An account whose only home is a client, and its next document adding `home` (signed by the root key). */
export function accountAdding(seed: string, home: Home): { account: FixtureAccount; document: AccountDocument } {
  const account = makeAccount({
    seed,
    localpart: seed.replace(/[^a-z0-9]/g, '').slice(0, 32) || 'user',
    homes: 1,
    roles: ['client'],
  });
  return { account, document: addHome(account.document, home, account.rootKey) };
}

/** A running client home of an account. */
export interface ClientHome {
  account: FixtureAccount;
  home: FixtureHome;
  /** The document naming the server too. */
  document: AccountDocument;
  host: PolyhomeHost;
  sync: SyncService;
  store: MemoryReplicaStore;
  /** Makes the client's ops (stamped with the new document's seq). */
  writer: OpWriter;
  /** Dials the server and opens the account's sync sessions (after the server enrolled it). */
  join(server: TestServer): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a client home on 127.0.0.1 for a fresh account whose next document names the server. */
export async function startClientHome(seed: string, server: TestServer): Promise<ClientHome> {
  const { account, document } = accountAdding(seed, serverHome(server));
  const home = account.homes[0]!;
  const host = await createPolyhomeHost({
    nodeKey: home.secretKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
  });
  const sync = createSyncService(host);
  await sync.start();
  const store = new MemoryReplicaStore();
  // The user adopts the document naming the server before enrolling it, as a real client home would.
  store.host(document);
  await sync.host(account.serverName, store);
  return {
    account,
    home,
    document,
    host,
    sync,
    store,
    writer: new OpWriter(account, home, document.seq),
    async join(target) {
      await host.dial(multiaddr(loopbackAddr(target)));
      await sync.connectHomes(account.serverName);
    },
    async stop() {
      await sync.stop();
      await host.stop();
    },
  };
}

/** Polls a condition until it holds (shared with the libp2p tests). */
export { waitFor } from '@polyhome/p2p/testing';
