import type { SecretKey } from '@polyhome/identity';
import { createDiscovery, createPolyhomeHost, type Discovery, type P2pLogger, type PolyhomeHost } from '@polyhome/p2p';

/** A libp2p host with its DHT discovery. */
export interface HostWithDiscovery {
  host: PolyhomeHost;
  discovery: Discovery;
}

/** Discovery over a polyhome host's DHT. */
export function discoveryOf(host: PolyhomeHost, logger?: P2pLogger): Discovery {
  return createDiscovery({
    logger,
    // Accounts provided, published or looked up are pinned in the host's replay guard.
    recordGuard: host.services.recordGuard,
    unreachable: host.services.unreachablePeers,
    peerId: host.peerId,
    dht: host.services.dht,
    peerStore: host.peerStore,
    getConnections: host.getConnections.bind(host),
  });
}

/**
 * Runs `fn` on a short-lived libp2p host that listens nowhere (a CLI command with no running home: enrolling a
 * server, looking an account up in the DHT), and stops it afterwards.
 */
export async function withTransientHost<T>(
  init: { nodeKey: SecretKey; bootstrap?: string[] },
  fn: (node: HostWithDiscovery) => Promise<T>,
): Promise<T> {
  const host = await createPolyhomeHost({ nodeKey: init.nodeKey, listen: [], bootstrap: init.bootstrap ?? [] });
  try {
    return await fn({ host, discovery: discoveryOf(host) });
  } finally {
    await host.stop();
  }
}
