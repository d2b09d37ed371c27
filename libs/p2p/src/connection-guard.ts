// The connection guard: one stranger (any peer that is not a home of an account this node hosts) cannot take the
// connection table, and the homes of the hosted accounts can always connect. libp2p's own connection manager
// refuses an inbound connection once the table is full before it knows who is calling, and its pruner only
// runs once the table is over the cap; so without this, idle connections of one peer filled the table and
// the account's own home got ECONNRESET. The guard:
// - refuses a peer's inbound connection beyond MAX_CONNECTIONS_PER_PEER, a stranger's beyond
//   MAX_STRANGER_CONNECTIONS_PER_IP from its IP address, and any stranger's once the table holds
//   maxConnections - HOME_CONNECTION_RESERVE (gater, after the handshake: the PeerId is known; checked again
//   when the connection opens, since parallel handshakes all pass the gater);
// - closes strangers' connections when a home's connection leaves fewer free slots than the reserve;
// - closes strangers' connections that had no open stream for STRANGER_IDLE_TIMEOUT;
// - tags the homes (HOME_PEER_TAG, the highest value) so libp2p's pruner closes their connections last.
import { KEEP_ALIVE, type Connection, type ConnectionGater, type Libp2p, type PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Multiaddr } from '@multiformats/multiaddr';
import {
  HOME_CONNECTION_RESERVE,
  HOME_PEER_TAG,
  HOME_PEER_TAG_VALUE,
  MAX_CONNECTIONS,
  MAX_CONNECTIONS_PER_PEER,
  MAX_STRANGER_CONNECTIONS_PER_IP,
  STRANGER_IDLE_TIMEOUT,
} from './constants.js';
import { InvalidHostInitError } from './errors.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';

/** The limits of the connection guard; every default is in constants.ts. */
export interface ConnectionLimits {
  /** libp2p's hard cap on open connections (default MAX_CONNECTIONS). */
  maxConnections: number;
  /** Slots strangers may not take (default HOME_CONNECTION_RESERVE); below maxConnections. */
  homeReserve: number;
  /** Connections per PeerId (default MAX_CONNECTIONS_PER_PEER). */
  maxConnectionsPerPeer: number;
  /** Inbound connections of strangers per IP address (default MAX_STRANGER_CONNECTIONS_PER_IP). */
  maxStrangerConnectionsPerIp: number;
  /** A stranger's connection with no stream for this long is closed, ms (default STRANGER_IDLE_TIMEOUT). */
  strangerIdleTimeout: number;
}

/** Options of the connection guard. */
export interface ConnectionGuardInit extends Partial<ConnectionLimits> {
  logger?: P2pLogger;
}

/** Why a connection was refused or closed. */
export type GuardReason = 'per-peer' | 'per-ip' | 'reserve' | 'idle' | 'room-for-home';

/** What the guard needs of the libp2p node. */
export type GuardedNode = Pick<Libp2p, 'getConnections' | 'peerStore' | 'addEventListener' | 'removeEventListener'>;

/**
 * Protocols libp2p itself runs on every connection (liveness and identity). Their streams do not make a connection
 * busy: the node's own periodic ping would otherwise keep a stranger's connection open on a loaded machine, and a
 * stranger holding a ping stream open would never count as idle.
 */
const HOUSEKEEPING_PROTOCOLS = ['/ipfs/ping/', '/ipfs/id/'];

/**
 * Whether a stream is work a peer asked for or this node does: one with a protocol agreed, other than
 * housekeeping. A stream still negotiating is not work yet (a stranger opening streams it never finishes
 * negotiating would otherwise never be idle); once agreed, the next sweep sees it.
 */
function isBusyStream(stream: { protocol?: string }): boolean {
  const protocol = stream.protocol ?? '';
  return protocol !== '' && !HOUSEKEEPING_PROTOCOLS.some((p) => protocol.startsWith(p));
}

/** Shortest and longest time between two sweeps for idle strangers, ms. */
const MIN_SWEEP_MS = 250;
const MAX_SWEEP_MS = 15_000;
/** Time allowed for closing a connection gracefully before it is aborted, ms. */
const CLOSE_TIMEOUT_MS = 2_000;

/** The connection guard of a polyhome host (the `connectionGuard` service). */
export class ConnectionGuard {
  readonly limits: ConnectionLimits;
  readonly #log: P2pLogger;
  readonly #homes = new Set<string>();
  /** When a connection was last seen with a stream open. */
  readonly #lastBusy = new WeakMap<Connection, number>();
  /** The order connections opened in (those opened before attach have none, and count as first). */
  readonly #arrival = new WeakMap<Connection, number>();
  #arrivals = 0;
  #node: GuardedNode | undefined;
  #timer: NodeJS.Timeout | undefined;
  #tagging: Promise<void> = Promise.resolve();
  #closed = 0;

  constructor(init: ConnectionGuardInit = {}) {
    this.limits = {
      maxConnections: init.maxConnections ?? MAX_CONNECTIONS,
      homeReserve: init.homeReserve ?? HOME_CONNECTION_RESERVE,
      maxConnectionsPerPeer: init.maxConnectionsPerPeer ?? MAX_CONNECTIONS_PER_PEER,
      maxStrangerConnectionsPerIp: init.maxStrangerConnectionsPerIp ?? MAX_STRANGER_CONNECTIONS_PER_IP,
      strangerIdleTimeout: init.strangerIdleTimeout ?? STRANGER_IDLE_TIMEOUT,
    };
    const l = this.limits;
    for (const [name, value] of Object.entries(l)) {
      if (!Number.isInteger(value) || value < 1) {
        throw new InvalidHostInitError(`connection limit ${name} must be a whole number of at least 1, got ${value}`);
      }
    }
    if (l.homeReserve >= l.maxConnections) {
      throw new InvalidHostInitError(
        `homeReserve (${l.homeReserve}) must be below maxConnections (${l.maxConnections}), or strangers get no slot`,
      );
    }
    this.#log = init.logger ?? silentLogger;
  }

  /** The connection gater: `inner` (the caller's) first, then the guard's limits on inbound connections. */
  gater(inner: ConnectionGater = {}): ConnectionGater {
    return {
      ...inner,
      denyInboundEncryptedConnection: async (peer, maConn) => {
        if ((await inner.denyInboundEncryptedConnection?.(peer, maConn)) === true) return true;
        const reason = this.#refusal(peer, maConn.remoteAddr, this.#node?.getConnections() ?? []);
        if (reason !== undefined) this.#log.debug({ peer: peer.toString(), reason }, 'inbound connection refused');
        return reason !== undefined;
      },
    };
  }

  /** Watches the node's connections; call once, before it starts. */
  attach(node: GuardedNode): void {
    this.#node = node;
    this.#tag([...this.#homes], true);
  }

  /** Starts watching connections and sweeping idle strangers (libp2p calls it with the node's start). */
  start(): void {
    const node = this.#requireNode();
    node.addEventListener('connection:open', this.#onOpen);
    const sweep = Math.max(MIN_SWEEP_MS, Math.min(MAX_SWEEP_MS, Math.floor(this.limits.strangerIdleTimeout / 4)));
    this.#timer = setInterval(() => {
      this.sweep().catch((error: unknown) => this.#log.error(errorFields(error), 'sweeping idle connections failed'));
    }, sweep);
    this.#timer.unref?.();
  }

  stop(): void {
    this.#node?.removeEventListener('connection:open', this.#onOpen);
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Whether the peer is a home of a hosted account. */
  isHome(peerId: string): boolean {
    return this.#homes.has(peerId);
  }

  /** How many strangers' connections the guard has closed (refusals at the gater not counted). */
  get closedCount(): number {
    return this.#closed;
  }

  /** Marks peers as homes of hosted accounts: exempt from the stranger limits, tagged in the peer store. */
  addHomes(peerIds: Iterable<string>): void {
    const added = [...peerIds].filter((p) => !this.#homes.has(p));
    for (const p of added) this.#homes.add(p);
    this.#tag(added, true);
  }

  /** Peers that are no longer homes of any hosted account (revoked, or their account left): strangers again. */
  removeHomes(peerIds: Iterable<string>): void {
    const removed = [...peerIds].filter((p) => this.#homes.delete(p));
    this.#tag(removed, false);
  }

  /** Resolves when the peer-store tags of every addHomes and removeHomes so far are written. */
  async tagsWritten(): Promise<void> {
    await this.#tagging;
  }

  /** Closes strangers' connections that had no open stream for strangerIdleTimeout (run periodically after start). */
  async sweep(now = Date.now()): Promise<void> {
    const node = this.#requireNode();
    const idle: Connection[] = [];
    for (const conn of node.getConnections()) {
      if (conn.status !== 'open' || this.#homes.has(conn.remotePeer.toString())) continue;
      if (conn.streams.some(isBusyStream)) {
        this.#lastBusy.set(conn, now);
        continue;
      }
      const since = this.#lastBusy.get(conn) ?? conn.timeline.open;
      if (now - since >= this.limits.strangerIdleTimeout) idle.push(conn);
    }
    for (const conn of idle) {
      // Peers the DHT keeps connected on purpose (its closest peers) are chosen by this node, not by them.
      if (await this.#keptAlive(node, conn.remotePeer)) continue;
      this.#close(conn, 'idle');
    }
  }

  readonly #onOpen = (event: CustomEvent<Connection>): void => {
    const conn = event.detail;
    this.#arrival.set(conn, ++this.#arrivals);
    const node = this.#node;
    if (node === undefined) return;
    const seq = this.#arrivals;
    // Connections that opened before this one, so of parallel handshakes that all passed the gater the first
    // ones are kept.
    const earlier = node.getConnections().filter((c) => c !== conn && (this.#arrival.get(c) ?? 0) < seq);
    const peer = conn.remotePeer.toString();
    if (conn.direction === 'inbound') {
      const reason = this.#refusal(conn.remotePeer, conn.remoteAddr, earlier);
      if (reason !== undefined) {
        this.#close(conn, reason);
        return;
      }
    }
    if (this.#homes.has(peer)) this.#makeRoom(node);
  };

  // Why a new inbound connection of `peer` from `addr` is refused given the open connections, or undefined.
  #refusal(peer: PeerId, addr: Multiaddr, open: readonly Connection[]): GuardReason | undefined {
    const id = peer.toString();
    const l = this.limits;
    if (open.filter((c) => c.remotePeer.equals(peer)).length >= l.maxConnectionsPerPeer) return 'per-peer';
    if (this.#homes.has(id)) return undefined;
    if (open.length >= l.maxConnections - l.homeReserve) return 'reserve';
    const ip = ipOf(addr);
    if (ip !== undefined) {
      const fromIp = open.filter(
        (c) => c.direction === 'inbound' && ipOf(c.remoteAddr) === ip && !this.#homes.has(c.remotePeer.toString()),
      );
      if (fromIp.length >= l.maxStrangerConnectionsPerIp) return 'per-ip';
    }
    return undefined;
  }

  // A home connected: keep `homeReserve` slots free by closing strangers' connections (those with the fewest
  // streams first, inbound before outbound, the newest first: the order of libp2p's pruner).
  #makeRoom(node: GuardedNode): void {
    const open = node.getConnections();
    const missing = this.limits.homeReserve - (this.limits.maxConnections - open.length);
    if (missing <= 0) return;
    const strangers = open
      .filter((c) => !this.#homes.has(c.remotePeer.toString()))
      .sort(
        (a, b) =>
          a.streams.length - b.streams.length ||
          Number(a.direction === 'outbound') - Number(b.direction === 'outbound') ||
          b.timeline.open - a.timeline.open,
      );
    for (const conn of strangers.slice(0, missing)) this.#close(conn, 'room-for-home');
  }

  #close(conn: Connection, reason: GuardReason): void {
    this.#closed++;
    this.#log.debug({ peer: conn.remotePeer.toString(), addr: conn.remoteAddr.toString(), reason }, 'closing');
    conn.close({ signal: AbortSignal.timeout(CLOSE_TIMEOUT_MS) }).catch((error: unknown) => {
      conn.abort(error instanceof Error ? error : new Error(String(error)));
    });
  }

  async #keptAlive(node: GuardedNode, peer: PeerId): Promise<boolean> {
    try {
      const stored = await node.peerStore.get(peer);
      return [...stored.tags.keys()].some((tag) => tag.startsWith(KEEP_ALIVE));
    } catch {
      return false;
    }
  }

  // Tags are written one batch after another, so a removal never overtakes the addition before it.
  #tag(peerIds: readonly string[], home: boolean): void {
    if (peerIds.length === 0 || this.#node === undefined) return;
    const { peerStore } = this.#node;
    const tags = { [HOME_PEER_TAG]: home ? { value: HOME_PEER_TAG_VALUE } : undefined };
    this.#tagging = this.#tagging.then(async () => {
      for (const p of peerIds) {
        try {
          await peerStore.merge(peerIdFromString(p), { tags });
        } catch (error) {
          this.#log.warn({ ...errorFields(error), peer: p, home }, 'home peer tag not written');
        }
      }
    });
  }

  #requireNode(): GuardedNode {
    if (this.#node === undefined)
      throw new Error('ConnectionGuard: attach(node) before start (createPolyhomeHost does)');
    return this.#node;
  }
}

/** The IP address of a multiaddr (its ip4 or ip6 part), or undefined (a DNS name, a relay). */
function ipOf(addr: Multiaddr): string | undefined {
  return addr.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value;
}
