// The DCUtR upgrade, timed (run by bench/suites/relay.js inside a new network namespace, `unshare -n`, with
// PUBLIC_ADDRS on its loopback: js-libp2p's DCUtR never dials a private address, so on 127.0.0.1 it does
// nothing). Three hosts: a relay R, B holding a reservation on R (a client home), A on a public address whose
// gater refuses B's own address, so A reaches B only through R. Each round A dials B's relayed address; B, the
// inbound side, sees A's public address through identify and dials it (the unilateral upgrade), then closes the
// relayed connection. Timed: A's relayed dial, and from its start until A holds a direct connection from B with
// the relayed one closed. Reference in the same run: A's direct dial of B with the gater open. Prints JSON.
import { performance } from 'node:perf_hooks';
import { SecretKey } from '@polyhome/identity';
import { createPolyhomeHost, isRelayedAddr } from '@polyhome/p2p';
import { multiaddr } from '@multiformats/multiaddr';
import { percentile, sleep, until } from './util.js';

/** The loopback addresses the caller put in the namespace: A, B, R. */
export const PUBLIC_ADDRS = ['11.77.0.1', '11.77.0.2', '11.77.0.3'];
const ROUNDS = Number(process.env['BENCH_DCUTR_ROUNDS'] ?? 30);

// Fixed ports. A and R announce theirs (libp2p announces a public listen address only once AutoNAT confirms it);
// B does not: it counts as not reachable, so it reserves a slot, as a client home behind NAT does.
async function host(ip, port, extra = {}, announce = true) {
  return createPolyhomeHost({
    nodeKey: SecretKey.generate(),
    listen: [`/ip4/${ip}/tcp/${port}`],
    ...(announce ? { announce: [`/ip4/${ip}/tcp/${port}`] } : {}),
    inboundConnectionThreshold: 10_000,
    connectionLimits: { maxStrangerConnectionsPerIp: 10_000 },
    ...extra,
  });
}

async function main() {
  const [ipA, ipB, ipR] = PUBLIC_ADDRS;
  const started = [];
  try {
    const relay = await host(ipR, 4303, { relayServer: {} });
    started.push(relay);
    const b = await host(ipB, 4302, { relayClient: { checkDelay: 10 } }, false);
    started.push(b);
    relay.services.connectionGuard.addHomes([b.peerId.toString()]);
    b.services.relayReservations.setRelays([relay.getMultiaddrs()[0].toString()]);
    await until(() => b.getMultiaddrs().some((a) => isRelayedAddr(a)), 'the reservation', 60_000);
    const relayed = b.getMultiaddrs().find((a) => isRelayedAddr(a));
    const bDirect = multiaddr(`/ip4/${ipB}/tcp/4302/p2p/${b.peerId}`);
    let gate = true;
    const a = await host(ipA, 4301, {
      connectionGater: {
        denyDialMultiaddr: (ma) => gate && !isRelayedAddr(ma) && ma.toString().startsWith(`/ip4/${ipB}/`),
      },
    });
    started.push(a);
    const directOnly = () => {
      const conns = a.getConnections(b.peerId);
      return conns.length > 0 && conns.every((c) => !isRelayedAddr(c.remoteAddr));
    };

    const dials = [];
    const upgrades = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const conn = await a.dial(relayed);
      const t1 = performance.now();
      if (!isRelayedAddr(conn.remoteAddr)) throw new Error('A reached B directly, not through the relay');
      await until(directOnly, 'the DCUtR upgrade', 30_000, 1);
      upgrades.push(performance.now() - t0);
      dials.push(t1 - t0);
      const direct = a.getConnections(b.peerId)[0];
      if (direct.direction !== 'inbound') throw new Error('the direct connection was not dialled by B');
      await a.hangUp(b.peerId);
      await until(() => b.getConnections(a.peerId).length === 0, 'B to see the hang-up', 10_000, 1);
      await sleep(20);
    }

    gate = false;
    const directDials = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const conn = await a.dial(bDirect);
      directDials.push(performance.now() - t0);
      if (isRelayedAddr(conn.remoteAddr)) throw new Error('the direct dial went through the relay');
      await a.hangUp(b.peerId);
      await until(() => b.getConnections(a.peerId).length === 0, 'B to see the hang-up', 10_000, 1);
      await sleep(20);
    }
    const sorted = (xs) => [...xs].sort((x, y) => x - y);
    const [u, d, dd] = [sorted(upgrades), sorted(dials), sorted(directDials)];
    process.stdout.write(
      JSON.stringify({
        rounds: ROUNDS,
        upgrade: { p50: percentile(u, 50), p99: percentile(u, 99) },
        relayedDial: { p50: percentile(d, 50), p99: percentile(d, 99) },
        directDial: { p50: percentile(dd, 50), p99: percentile(dd, 99) },
      }) + '\n',
    );
  } finally {
    for (const h of started.reverse()) await h.stop().catch(() => undefined);
  }
}

if (process.argv[2] === 'run') {
  await main();
  // libp2p timers (AutoNAT, the DHT) keep the loop alive a while after stop.
  process.exit(0);
}
