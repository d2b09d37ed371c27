import { multiaddr } from '@multiformats/multiaddr';
import { isPeerId, type HomeRole } from '@polyhome/identity';
import { HomeAddressError } from './errors.js';

/** A home named by its address: the PeerId, and the multiaddr when one was given. */
export interface HomeTarget {
  peerId: string;
  address?: string;
}

/** The PeerId a multiaddr ends in (its last /p2p/ component). Throws HomeAddressError. */
export function peerIdOfMultiaddr(address: string): string {
  let peerId: string;
  try {
    peerId =
      multiaddr(address)
        .getComponents()
        .findLast((c) => c.name === 'p2p')?.value ?? '';
  } catch {
    throw new HomeAddressError('not_multiaddr', address);
  }
  if (peerId === '') throw new HomeAddressError('no_peer_id', address);
  return peerId;
}

/**
 * A home to add: a multiaddr ending in /p2p/<PeerId>, or for a client home a bare PeerId (a server home is
 * enrolled over the network, so it needs an address). Throws HomeAddressError.
 */
export function parseHomeTarget(target: string, role: HomeRole): HomeTarget {
  if (target.startsWith('/')) return { peerId: peerIdOfMultiaddr(target), address: target };
  if (!isPeerId(target)) throw new HomeAddressError('not_peer_id', target);
  if (role === 'server') throw new HomeAddressError('server_needs_address', target);
  return { peerId: target };
}
