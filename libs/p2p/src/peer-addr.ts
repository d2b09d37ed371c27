// A peer's address as a user types it (--bootstrap, P2P_BOOTSTRAP): a multiaddr that names its peer.
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';

/** Whether a string parses as a multiaddr (any; `isPeerMultiaddr` also wants /p2p/<PeerId> at the end). */
export function isMultiaddrText(addr: string): boolean {
  try {
    return multiaddr(addr).getComponents().length > 0;
  } catch {
    return false;
  }
}

/** Whether `addr` is a multiaddr ending in /p2p/<a valid PeerId> (the form a dial to a known peer needs). */
export function isPeerMultiaddr(addr: string): boolean {
  try {
    const last = multiaddr(addr).getComponents().at(-1);
    if (last?.name !== 'p2p' || last.value === undefined) return false;
    peerIdFromString(last.value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Adds a peer's addresses (from an account document's home entry) to the node's peer store, so a dial by PeerId
 * finds them; addresses that do not parse are skipped (a document is signed, not necessarily well-formed for
 * this node's transports). Returns how many were added.
 */
export async function rememberPeerAddresses(
  host: {
    peerStore: {
      merge(
        peer: ReturnType<typeof peerIdFromString>,
        data: { multiaddrs: ReturnType<typeof multiaddr>[] },
      ): Promise<unknown>;
    };
  },
  peerId: string,
  addrs: readonly string[],
): Promise<number> {
  const parsed = [];
  for (const addr of addrs.slice(0, 16)) {
    try {
      const ma = multiaddr(addr);
      const last = ma.getComponents().at(-1);
      // A /p2p/<PeerId> suffix must name this peer; the peer store keeps the transport part.
      if (last?.name === 'p2p' && last.value !== peerId) continue;
      parsed.push(last?.name === 'p2p' ? ma.decapsulateCode(421) : ma);
    } catch {
      continue;
    }
  }
  if (parsed.length === 0) return 0;
  await host.peerStore.merge(peerIdFromString(peerId), { multiaddrs: parsed });
  return parsed.length;
}
