import {
  createDiscovery,
  createPolyhomeHost,
  createSyncService,
  type Discovery,
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
}

/** Starts the libp2p host and the sync service; the caller hosts accounts on it. */
export async function startP2pNode(init: P2pNodeInit): Promise<P2pNode> {
  const host = await createPolyhomeHost({ nodeKey: init.nodeKey, listen: init.listen, bootstrap: init.bootstrap });
  try {
    const sync = createSyncService(host);
    await sync.start();
    const discovery = createDiscovery({
      peerId: host.peerId,
      dht: host.services.dht,
      peerStore: host.peerStore,
      getConnections: host.getConnections.bind(host),
    });
    return { host, sync, discovery, peerId: host.peerId.toString() };
  } catch (err) {
    await host.stop();
    throw err;
  }
}
