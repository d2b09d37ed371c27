import {
  createDiscovery,
  createPolyhomeHost,
  createSyncService,
  type Discovery,
  type P2pLogger,
  type PolyhomeHost,
  type SyncService,
} from '@polyhome/p2p';
import type { SecretKey } from '@polyhome/identity';

/** The libp2p side of this server home: one node for every hosted account. */
export interface P2pNode {
  host: PolyhomeHost;
  sync: SyncService;
  discovery: Discovery;
  /** This home's PeerId. */
  peerId: string;
}

/** Options of startP2pNode. */
export interface P2pNodeInit {
  nodeKey: SecretKey;
  listen: string[];
  bootstrap: string[];
  logger?: P2pLogger;
}

/** Starts the libp2p host and the sync service; the caller hosts accounts on it. */
export async function startP2pNode(init: P2pNodeInit): Promise<P2pNode> {
  const { nodeKey, listen, bootstrap, logger } = init;
  const host = await createPolyhomeHost({ nodeKey, listen, bootstrap, logger });
  try {
    const sync = createSyncService(host, { logger });
    await sync.start();
    const discovery = createDiscovery({
      peerId: host.peerId,
      dht: host.services.dht,
      peerStore: host.peerStore,
      getConnections: host.getConnections.bind(host),
      logger,
    });
    return { host, sync, discovery, peerId: host.peerId.toString() };
  } catch (err) {
    await host.stop();
    throw err;
  }
}
