// The connection guard against real libp2p nodes on 127.0.0.1: one stranger (many PeerIds from one address, or
// many connections of one PeerId) cannot take the table, idle strangers are closed, and the homes of the hosted
// accounts are tagged, always admitted and kept.
import { SecretKey } from '@polyhome/identity';
import { afterEach, describe, expect, it } from 'vitest';
import { HOME_PEER_TAG, HOME_PEER_TAG_VALUE } from './constants.js';
import { InvalidHostInitError } from './errors.js';
import { ConnectionGuard } from './connection-guard.js';
import { createPolyhomeHost, type PolyhomeHost, type PolyhomeHostInit } from './host.js';
import {
  openConnectionsTo,
  openStrangerConnection,
  startStranger,
  waitFor,
  type StrangerNode,
} from './testing/index.js';

describe('connection guard', () => {
  const hosts: PolyhomeHost[] = [];
  const strangers: StrangerNode[] = [];
  afterEach(async () => {
    await Promise.all(strangers.splice(0).map(async (s) => s.stop()));
    await Promise.all(hosts.splice(0).map(async (h) => h.stop()));
  });

  async function server(limits: PolyhomeHostInit['connectionLimits'], maxConnections?: number) {
    const host = await createPolyhomeHost({
      nodeKey: SecretKey.generate(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      inboundConnectionThreshold: 10_000,
      maxIncomingPendingConnections: 100,
      connectionLimits: limits,
      ...(maxConnections !== undefined ? { maxConnections } : {}),
    });
    hosts.push(host);
    const addr = host.getMultiaddrs()[0]!.toString();
    return { host, addr, guard: host.services.connectionGuard };
  }

  async function nodes(count: number): Promise<StrangerNode[]> {
    const started = await Promise.all(Array.from({ length: count }, async () => startStranger()));
    strangers.push(...started);
    return started;
  }

  /** The open connections of the server from peers of `from`. */
  function heldFrom(host: PolyhomeHost, from: readonly StrangerNode[]): number {
    return from.reduce((n, s) => n + openConnectionsTo(host, s.peerId.toString()), 0);
  }

  it('refuses a peer more connections than the per-peer limit', async () => {
    const { host, addr } = await server({ maxConnectionsPerPeer: 2 });
    const [stranger] = await nodes(1);
    for (let i = 0; i < 5; i++) await openStrangerConnection(stranger!, addr);
    const peer = stranger!.peerId.toString();
    await waitFor(
      () => openConnectionsTo(stranger!, host.peerId.toString()) === 2 && openConnectionsTo(host, peer) === 2,
      'the stranger to hold exactly 2 connections',
    );
  });

  it('refuses strangers from one address past the per-IP limit, and still admits a home from it', async () => {
    const { host, addr, guard } = await server({ maxStrangerConnectionsPerIp: 3 });
    const many = await nodes(6);
    for (const s of many) await openStrangerConnection(s, addr);
    await waitFor(() => heldFrom(host, many) === 3, 'the server to hold 3 strangers from 127.0.0.1');
    const [home] = await nodes(1);
    guard.addHomes([home!.peerId.toString()]);
    expect(await openStrangerConnection(home!, addr)).toBe(true);
    await guard.tagsWritten();
    const stored = await host.peerStore.get(home!.peerId);
    expect(stored.tags.get(HOME_PEER_TAG)?.value).toBe(HOME_PEER_TAG_VALUE);
    await waitFor(() => openConnectionsTo(host, home!.peerId.toString()) === 1, 'the home to stay connected');
    expect(heldFrom(host, many)).toBe(3);
  });

  it('keeps a reserve strangers cannot take, and closes strangers to let homes in', async () => {
    const { host, addr, guard } = await server({ homeReserve: 2, maxStrangerConnectionsPerIp: 100 }, 6);
    const many = await nodes(6);
    for (const s of many) await openStrangerConnection(s, addr);
    await waitFor(() => heldFrom(host, many) === 4, 'strangers to hold 6 - 2 connections');
    const homes = await nodes(3);
    guard.addHomes(homes.map((h) => h.peerId.toString()));
    for (const home of homes) expect(await openStrangerConnection(home, addr)).toBe(true);
    // Each home left fewer than 2 free slots, so a stranger was closed for it: 3 homes, 1 stranger.
    await waitFor(
      () => heldFrom(host, homes) === 3 && heldFrom(host, many) === 1,
      'the 3 homes connected and 1 stranger left',
    );
  });

  it('closes idle strangers but not idle homes, and a home removed is a stranger again', async () => {
    const { host, addr, guard } = await server({ strangerIdleTimeout: 1_000 });
    const [stranger, home] = await nodes(2);
    guard.addHomes([home!.peerId.toString()]);
    expect(await openStrangerConnection(home!, addr)).toBe(true);
    expect(await openStrangerConnection(stranger!, addr)).toBe(true);
    await waitFor(() => openConnectionsTo(host, stranger!.peerId.toString()) === 0, 'the idle stranger to be closed');
    expect(openConnectionsTo(host, home!.peerId.toString())).toBe(1);
    guard.removeHomes([home!.peerId.toString()]);
    await guard.tagsWritten();
    expect((await host.peerStore.get(home!.peerId)).tags.has(HOME_PEER_TAG)).toBe(false);
    await waitFor(() => openConnectionsTo(host, home!.peerId.toString()) === 0, 'the revoked home to be closed');
  });

  it('closes an idle stranger that keeps ping streams open (housekeeping is not work)', async () => {
    const { host, addr } = await server({ strangerIdleTimeout: 1_000 });
    const [stranger] = await nodes(1);
    const { multiaddr } = await import('@multiformats/multiaddr');
    const peer = stranger!.peerId.toString();
    // A new ping stream every 300 ms, each held open (the server echoes it for up to 10 s): the server always
    // has one of the stranger's streams open, and still closes the connection as idle.
    let opened = 0;
    const pinging = (async () => {
      for (; opened < 200; opened++) {
        try {
          await stranger!.dialProtocol(multiaddr(addr), '/ipfs/ping/1.0.0', { signal: AbortSignal.timeout(5_000) });
        } catch {
          return;
        }
        if (openConnectionsTo(stranger!, host.peerId.toString()) === 0) return;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    })();
    await waitFor(
      () => host.getConnections().some((c) => c.remotePeer.toString() === peer && c.streams.length > 0),
      "the stranger's ping stream open on the server",
    );
    await waitFor(() => openConnectionsTo(host, peer) === 0, 'the stranger holding only ping streams to be closed');
    await pinging;
    expect(opened).toBeLessThan(200);
  });

  it('refuses limits that leave strangers no slot', () => {
    expect(() => new ConnectionGuard({ maxConnections: 10, homeReserve: 10 })).toThrow(InvalidHostInitError);
    expect(() => new ConnectionGuard({ maxConnectionsPerPeer: 0 })).toThrow(InvalidHostInitError);
  });
});
