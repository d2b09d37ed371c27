// Unreachable peers: a stopped peer stays in kad-dht's routing table (kad-dht only evicts a contact when a full
// bucket pings it), so every DHT query near it dialled it again: a server republishing its accounts made 23,565
// dials in 2.5 minutes with stopped peers in its table, 23,558 of them refused. Discovery reports each peer a
// DHT query failed on; with no connection open to it and a failed dial as libp2p's dialer records it in the
// peer store (`last-dial-failure` newer than `last-dial-success`), this
// - removes it from the DHT routing table (kad-dht's topology adds it back when it connects again);
// - deletes it from the peer store, unless it is a home of a hosted account (its tag and addresses stay);
// - refuses further dials to it for a backoff (DIAL_BACKOFF, doubled per failure up to DIAL_BACKOFF_MAX), so
//   the peers that still list it cannot make this node dial it again at every query. Homes are never held
//   back: sync must reach them the moment they return. A connection from the peer ends its backoff.
// (libp2p's `peer:update` event would be the general hook, but a merge that only changes metadata does not
// emit it in libp2p 3.3: the failed dial is recorded silently.)
import type { ConnectionGater, Libp2p, PeerId } from '@libp2p/interface';
import { DIAL_BACKOFF, DIAL_BACKOFF_MAX, DIAL_BACKOFF_MAX_PEERS } from './constants.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';

/** The peer store metadata keys libp2p's dialer writes the time of a failed and a good dial under. */
const LAST_DIAL_FAILURE = 'last-dial-failure';
const LAST_DIAL_SUCCESS = 'last-dial-success';

/** Options of UnreachablePeers. */
export interface UnreachablePeersInit {
  /** First backoff, ms (default DIAL_BACKOFF). */
  backoff?: number;
  /** Longest backoff, ms (default DIAL_BACKOFF_MAX). */
  maxBackoff?: number;
  /** Whether a peer is a home of a hosted account (kept in the peer store, never held back). */
  isHome?: (peerId: string) => boolean;
  logger?: P2pLogger;
}

/** What the watcher needs of the node: its events, connections, peer store and the DHT's routing table. */
export type WatchedNode = Pick<Libp2p, 'getConnections' | 'peerStore' | 'addEventListener' | 'removeEventListener'> & {
  services: { dht: unknown };
};

/** How many peers were evicted after a failed dial, and dials refused by the backoff. */
export interface UnreachableCounts {
  evicted: number;
  deniedDials: number;
}

interface Backoff {
  failures: number;
  until: number;
}

/** Forgets unreachable peers and holds back dials to them (the `unreachablePeers` service of a polyhome host). */
export class UnreachablePeers {
  readonly #backoff: number;
  readonly #maxBackoff: number;
  readonly #isHome: (peerId: string) => boolean;
  readonly #log: P2pLogger;
  readonly #held = new Map<string, Backoff>();
  readonly #counts: UnreachableCounts = { evicted: 0, deniedDials: 0 };
  #node: WatchedNode | undefined;

  constructor(init: UnreachablePeersInit = {}) {
    this.#backoff = init.backoff ?? DIAL_BACKOFF;
    this.#maxBackoff = init.maxBackoff ?? DIAL_BACKOFF_MAX;
    this.#isHome = init.isHome ?? (() => false);
    this.#log = init.logger ?? silentLogger;
  }

  /** The counts so far (a copy). */
  get counts(): UnreachableCounts {
    return { ...this.#counts };
  }

  /** Whether dials to the peer are held back now. */
  isHeld(peerId: string, now = Date.now()): boolean {
    const held = this.#held.get(peerId);
    return held !== undefined && held.until > now && !this.#isHome(peerId);
  }

  /** The connection gater: `inner` first, then dials to a peer in backoff are refused. */
  gater(inner: ConnectionGater = {}): ConnectionGater {
    return {
      ...inner,
      denyDialPeer: async (peer) => {
        if ((await inner.denyDialPeer?.(peer)) === true) return true;
        if (!this.isHeld(peer.toString())) return false;
        this.#counts.deniedDials++;
        return true;
      },
    };
  }

  /** Watches the node; call once, before it starts. */
  attach(node: WatchedNode): void {
    this.#node = node;
  }

  start(): void {
    this.#node?.addEventListener('peer:connect', this.#onConnect);
  }

  stop(): void {
    this.#node?.removeEventListener('peer:connect', this.#onConnect);
  }

  /**
   * A DHT query to the peer failed: evicts it if that was a failed dial (no connection open, the last dial
   * recorded failed). Returns whether it was evicted; never throws (an eviction not done is logged).
   */
  async queryFailed(peer: PeerId): Promise<boolean> {
    try {
      return await this.#queryFailed(peer);
    } catch (error) {
      this.#log.warn({ ...errorFields(error), peer: peer.toString() }, 'unreachable peer not evicted');
      return false;
    }
  }

  readonly #onConnect = (event: CustomEvent<PeerId>): void => {
    this.#held.delete(event.detail.toString());
  };

  async #queryFailed(peer: PeerId): Promise<boolean> {
    const node = this.#node;
    // A peer with a connection open is reachable: its stream failed, not a dial.
    if (node === undefined || node.getConnections(peer).length > 0) return false;
    let metadata: Map<string, Uint8Array>;
    try {
      metadata = (await node.peerStore.get(peer)).metadata;
    } catch {
      // Not in the peer store (deleted already, or never met): nothing to evict.
      return false;
    }
    const failed = timeIn(metadata, LAST_DIAL_FAILURE);
    if (failed === undefined || failed < (timeIn(metadata, LAST_DIAL_SUCCESS) ?? 0)) return false;
    const id = peer.toString();
    const home = this.#isHome(id);
    const failures = (this.#held.get(id)?.failures ?? 0) + 1;
    this.#held.delete(id);
    this.#held.set(id, {
      failures,
      until: Date.now() + Math.min(this.#maxBackoff, this.#backoff * 2 ** (failures - 1)),
    });
    if (this.#held.size > DIAL_BACKOFF_MAX_PEERS) this.#held.delete(this.#held.keys().next().value!);
    this.#counts.evicted++;
    this.#log.debug({ peer: id, failures, home }, 'unreachable peer evicted');
    await routingTableOf(node)?.remove(peer);
    if (!home) await node.peerStore.delete(peer);
    return true;
  }
}

/** kad-dht's routing table: `size` is public; `remove` is on its implementation (kad-dht 16). */
interface RoutingTableLike {
  size: number;
  remove?: (peer: PeerId) => Promise<void>;
}

function routingTableOf(node: { services: { dht: unknown } }): { remove(peer: PeerId): Promise<void> } | undefined {
  const table = (node.services.dht as { routingTable?: RoutingTableLike }).routingTable;
  const remove = table?.remove;
  return remove !== undefined ? { remove: async (peer) => remove.call(table, peer) } : undefined;
}

/** How many peers the node's DHT routing table holds (the peers a put or provide can go to). */
export function dhtPeerCount(node: { services: { dht: unknown } }): number {
  return (node.services.dht as { routingTable?: RoutingTableLike }).routingTable?.size ?? 0;
}

/** A time libp2p wrote in peer metadata (milliseconds as decimal text), or undefined. */
function timeIn(metadata: Map<string, Uint8Array>, key: string): number | undefined {
  const bytes = metadata.get(key);
  if (bytes === undefined) return undefined;
  const ms = Number(new TextDecoder().decode(bytes));
  return Number.isFinite(ms) ? ms : undefined;
}
