// The relay of a server home on 127.0.0.1: a home of a hosted account reserves a slot and is reached through
// it; a stranger's reservation is refused; the admin view lists the reservation.
import { multiaddr } from '@multiformats/multiaddr';
import { generateKeyPair } from '@polyhome/identity';
import { afterEach, describe, expect, it } from 'vitest';
import { createPolyhomeHost, type PolyhomeHost, type PolyhomeHostInit } from './host.js';
import { isRelayedAddr, relayReservations, relayServerLimits } from './relay.js';
import { InvalidHostInitError } from './errors.js';
import { waitFor } from './testing/index.js';

const hosts: PolyhomeHost[] = [];

async function host(init: Partial<PolyhomeHostInit> = {}): Promise<PolyhomeHost> {
  const h = await createPolyhomeHost({
    nodeKey: generateKeyPair().secretKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    inboundConnectionThreshold: 10_000,
    connectionLimits: { maxStrangerConnectionsPerIp: 10_000 },
    ...init,
  });
  hosts.push(h);
  return h;
}

function relayed(h: PolyhomeHost): string[] {
  return h
    .getMultiaddrs()
    .map((a) => a.toString())
    .filter(isRelayedAddr);
}

afterEach(async () => {
  await Promise.allSettled(hosts.splice(0).map(async (h) => h.stop()));
});

describe('relay of a server home', () => {
  it('reserves for a home of a hosted account, refuses a stranger, and carries a connection to the home', async () => {
    const server = await host({ relayServer: {} });
    const home = await host({ relayClient: { checkDelay: 10, retryInterval: 100 } });
    const stranger = await host({ relayClient: { checkDelay: 10, retryInterval: 100 } });
    const serverAddr = server.getMultiaddrs()[0]!;
    // The home asks before the server knows it as a home: refused, and asked again once it is one.
    home.services.relayReservations!.setRelays([serverAddr.toString()]);
    stranger.services.relayReservations!.setRelays([serverAddr.toString()]);
    await waitFor(() => stranger.services.relayReservations!.requested, 'the stranger to ask', 15_000);
    await waitFor(() => home.services.relayReservations!.requested, 'the home to ask', 15_000);
    server.services.connectionGuard.addHomes([home.peerId.toString()]);

    await waitFor(() => relayed(home).length > 0, 'the home to hold a relayed address', 15_000);
    const addr = relayed(home)[0]!;
    expect(addr).toContain(`/p2p/${server.peerId.toString()}/p2p-circuit/p2p/${home.peerId.toString()}`);
    expect(home.services.relayReservations?.requested).toBe(true);
    expect(home.services.relayReservations?.reachable()).toBe(false);

    const held = relayReservations(server.services.relay);
    expect(held.map((r) => r.peer_id)).toEqual([home.peerId.toString()]);
    expect(held[0]!.limit).toBeUndefined();
    expect(Date.parse(held[0]!.expires_at)).toBeGreaterThan(Date.now());

    // The stranger asked too, and is refused.
    expect(relayed(stranger)).toEqual([]);

    // A third peer that can reach only the relay address reaches the home through the relay.
    const homePort = home.getMultiaddrs()[0]!.toString().split('/')[4];
    const caller = await host({
      connectionGater: { denyDialMultiaddr: (ma) => !isRelayedAddr(ma) && ma.toString().includes(`/tcp/${homePort}/`) },
    });
    const connection = await caller.dial(multiaddr(addr));
    expect(connection.remotePeer.toString()).toBe(home.peerId.toString());
    expect(isRelayedAddr(connection.remoteAddr)).toBe(true);
    // Unlimited: the relay runs without data or duration limits by default, so every protocol may use it.
    expect(connection.limits).toBeUndefined();
    expect(relayReservations(server.services.relay).map((r) => r.peer_id)).not.toContain(stranger.peerId.toString());
  });

  it('sets limits per relayed connection when configured, and the connection is limited', async () => {
    const server = await host({ relayServer: { dataLimit: 1 << 20, durationLimit: 0 } });
    const home = await host({ relayClient: { checkDelay: 10 } });
    server.services.connectionGuard.addHomes([home.peerId.toString()]);
    home.services.relayReservations!.setRelays([server.getMultiaddrs()[0]!.toString()]);
    await waitFor(() => relayed(home).length > 0, 'the home to hold a relayed address', 15_000);
    const [held] = relayReservations(server.services.relay);
    expect(held!.limit?.data).toBe(String(1 << 20));
    const caller = await host();
    const connection = await caller.dial(multiaddr(relayed(home)[0]!));
    expect(connection.limits).toBeDefined();
  });

  it('holds two reservations, and replaces a relay that goes away with the next one of the list', async () => {
    const relays = [await host({ relayServer: {} }), await host({ relayServer: {} }), await host({ relayServer: {} })];
    const home = await host({ relayClient: { checkDelay: 10, retryInterval: 100 } });
    for (const r of relays) r.services.connectionGuard.addHomes([home.peerId.toString()]);
    const service = home.services.relayReservations!;
    service.setRelays(relays.map((r) => r.getMultiaddrs()[0]!.toString()));
    const held = (): string[] => [...service.heldRelays()].sort();
    const ids = relays.map((r) => r.peerId.toString());
    await waitFor(() => held().length === 2, 'two reservations', 15_000);
    expect(held()).toEqual([ids[0], ids[1]].sort());
    await relays[0]!.stop();
    await waitFor(() => held().includes(ids[2]!), 'a reservation on the third relay', 15_000);
    expect(held()).toEqual([ids[1], ids[2]].sort());
  });

  it('holds at most maxReservations: a further home is refused until one disconnects, which frees its slot', async () => {
    const server = await host({ relayServer: { maxReservations: 2 } });
    const clients: PolyhomeHost[] = [];
    for (let i = 0; i < 3; i++) clients.push(await host({ relayClient: { checkDelay: 10, retryInterval: 100 } }));
    server.services.connectionGuard.addHomes(clients.map((c) => c.peerId.toString()));
    for (const c of clients) c.services.relayReservations!.setRelays([server.getMultiaddrs()[0]!.toString()]);
    await waitFor(() => relayReservations(server.services.relay).length === 2, 'two reservations', 15_000);
    await waitFor(
      () => clients.every((c) => c.services.relayReservations!.requested),
      'every client home to have asked',
      15_000,
    );
    await waitFor(() => clients.filter((c) => relayed(c).length > 0).length === 2, 'two relayed homes', 15_000);
    expect(relayReservations(server.services.relay)).toHaveLength(2);
    const [first] = clients.filter((c) => relayed(c).length > 0);
    const waiting = clients.find((c) => relayed(c).length === 0)!;
    await first!.stop();
    await waitFor(() => relayed(waiting).length > 0, 'the third home to get the freed slot', 15_000);
  });

  it('refuses bad limits with the name of the limit', () => {
    expect(() => relayServerLimits({ maxReservations: 0 })).toThrow(InvalidHostInitError);
    expect(() => relayServerLimits({ dataLimit: -1 })).toThrow(/dataLimit/);
  });
});
