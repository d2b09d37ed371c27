// A peer's address as a user types it (--bootstrap, P2P_BOOTSTRAP): a multiaddr that names its peer.
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';

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
