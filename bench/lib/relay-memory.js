// The relay's memory per reservation (run by bench/suites/relay.js as a child process, with --expose-gc): a
// server home's relay alone in this process, taking every reservation. It prints its address, then answers each
// `measure` line on stdin with its RSS and heap after a full GC, as JSON.
import { createInterface } from 'node:readline';
import { SecretKey } from '@polyhome/identity';
import { createPolyhomeHost } from '@polyhome/p2p';

const relay = await createPolyhomeHost({
  nodeKey: SecretKey.generate(),
  listen: ['/ip4/127.0.0.1/tcp/0'],
  inboundConnectionThreshold: 10_000,
  connectionLimits: { maxStrangerConnectionsPerIp: 10_000 },
  autonat: false,
  relayServer: { maxReservations: 10_000, mayReserve: () => true },
});
process.stdout.write(`${JSON.stringify({ addr: relay.getMultiaddrs()[0].toString() })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() !== 'measure') continue;
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const { rss, heapUsed } = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ rss, heapUsed, reservations: relay.services.relay.reservations.size })}\n`);
}
await relay.stop();
process.exit(0);
