// Reaching homes behind NAT: the circuit relay v2 a server home runs for the homes of its accounts, and the
// client side that reserves a slot on the account's server homes while AutoNAT has not confirmed that this
// home can be dialled. The relayed addresses (`/p2p/<relay>/p2p-circuit/p2p/<home>`) then reach the DHT (peer
// and provider records carry the node's addresses) and, where the home holds the root key, the account document.
import { circuitRelayServer, type CircuitRelayService } from '@libp2p/circuit-relay-v2';
import type { ComponentLogger, Libp2p, Libp2pEvents, Startable, TypedEventTarget } from '@libp2p/interface';
import type { AddressManager, TransportManager } from '@libp2p/interface-internal';
import { isPrivate } from '@libp2p/utils';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import {
  RELAY_CHECK_DELAY,
  RELAY_CLIENT_RESERVATIONS,
  RELAY_MAX_CIRCUITS_PER_CONNECTION,
  RELAY_MAX_RESERVATIONS,
  RELAY_RESERVATION_TTL,
  RELAY_RESERVE_TIMEOUT,
  RELAY_RETRY_INTERVAL,
  RELAY_RETRY_INTERVAL_MAX,
} from './constants.js';
import { InvalidHostInitError } from './errors.js';
import { errorFields, silentLogger, type P2pLogger } from './logger.js';

/** The longest delay Node's timers take (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 0x7fff_ffff;

/** The relay a server home runs: who may reserve, and the limits (defaults in constants.ts). */
export interface RelayServerInit {
  /** Most reservations held at once (default RELAY_MAX_RESERVATIONS); more are refused. */
  maxReservations?: number;
  /** How long a reservation lasts before the client must refresh it, ms (default RELAY_RESERVATION_TTL). */
  reservationTtl?: number;
  /** Bytes one relayed connection may carry, both ways together; 0 (the default): no limit. */
  dataLimit?: number;
  /** How long one relayed connection may stay open, ms; 0 (the default): no limit. */
  durationLimit?: number;
  /** Relayed connections one peer may open through one connection to this relay (default RELAY_MAX_CIRCUITS_PER_CONNECTION). */
  maxCircuitsPerConnection?: number;
  /**
   * Whether a peer may reserve a slot. createPolyhomeHost defaults it to "is a home of a hosted account" (the
   * connection guard's list, which the sync service keeps up to date).
   */
  mayReserve?: (peerId: string) => boolean;
}

/** The client side of relaying, on a home that may sit behind NAT. */
export interface RelayClientInit {
  /** Relays to hold a reservation on while not reachable (default RELAY_CLIENT_RESERVATIONS). */
  reservations?: number;
  /** Time after start before reachability is first judged, ms (default RELAY_CHECK_DELAY). */
  checkDelay?: number;
  /** How often missing reservations are looked at, and the first delay before a failed relay is tried again, ms. */
  retryInterval?: number;
  /** The longest delay before a failed relay is tried again, ms (default RELAY_RETRY_INTERVAL_MAX). */
  maxRetryInterval?: number;
}

/** A reservation held on this relay, as the admin API shows it. */
export interface RelayReservationInfo {
  peer_id: string;
  /** The address the client reserved from (its side of the connection, as this relay sees it). */
  addr: string;
  expires_at: string;
  /** Limits per relayed connection, when any: bytes and seconds. */
  limit?: { data?: string; duration_ms?: number };
}

/** The relay's settings once defaults are applied. */
export interface RelayServerLimits {
  maxReservations: number;
  reservationTtl: number;
  dataLimit: number;
  durationLimit: number;
  maxCircuitsPerConnection: number;
}

/** The limits of a relay server with the defaults filled in. Throws InvalidHostInitError on a bad value. */
export function relayServerLimits(init: RelayServerInit): RelayServerLimits {
  const limits: RelayServerLimits = {
    maxReservations: init.maxReservations ?? RELAY_MAX_RESERVATIONS,
    reservationTtl: init.reservationTtl ?? RELAY_RESERVATION_TTL,
    dataLimit: init.dataLimit ?? 0,
    durationLimit: init.durationLimit ?? 0,
    maxCircuitsPerConnection: init.maxCircuitsPerConnection ?? RELAY_MAX_CIRCUITS_PER_CONNECTION,
  };
  if (limits.durationLimit > MAX_TIMER_MS || limits.reservationTtl > MAX_TIMER_MS) {
    throw new InvalidHostInitError(`relay durations must be at most ${MAX_TIMER_MS} ms (about 24 days)`);
  }
  for (const [name, value] of Object.entries(limits)) {
    const least = name === 'dataLimit' || name === 'durationLimit' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < least) {
      throw new InvalidHostInitError(`relay limit ${name} must be a whole number of at least ${least}, got ${value}`);
    }
  }
  return limits;
}

/**
 * The libp2p circuit relay v2 service with polyhome's limits. With no data and no duration limit the relayed
 * connections are unlimited (libp2p then runs every protocol on them); with one of them, the other is set to
 * the largest the protocol carries, since libp2p's relay treats a missing one as zero.
 */
export function relayService(limits: RelayServerLimits): ReturnType<typeof circuitRelayServer> {
  const limited = limits.dataLimit > 0 || limits.durationLimit > 0;
  return circuitRelayServer({
    maxInboundHopStreams: limits.maxCircuitsPerConnection,
    reservations: {
      maxReservations: limits.maxReservations,
      reservationTtl: limits.reservationTtl,
      applyDefaultLimit: limited,
      ...(limited
        ? {
            defaultDataLimit: BigInt(limits.dataLimit > 0 ? limits.dataLimit : Number.MAX_SAFE_INTEGER),
            // The relay counts this in ms (js-libp2p) with a timer: Node's timers fire at once above 2^31 - 1 ms.
            defaultDurationLimit: limits.durationLimit > 0 ? limits.durationLimit : MAX_TIMER_MS,
          }
        : {}),
    },
  });
}

/**
 * Frees a peer's reservation when its last connection closes. libp2p's relay keeps a reservation until its TTL
 * (2 hours) even after the home went away, though it can relay nothing without the connection: a laptop that
 * comes and goes would otherwise hold a slot per visit, and `maxReservations` would refuse the homes that are there.
 */
export function releaseReservationsOnDisconnect(
  node: Pick<Libp2p, 'addEventListener'>,
  relay: CircuitRelayService,
): void {
  node.addEventListener('peer:disconnect', (event) => {
    const reservation = relay.reservations.get(event.detail);
    if (reservation === undefined) return;
    reservation.signal.clear();
    relay.reservations.delete(event.detail);
  });
}

/** The reservations a relay holds (empty when the host runs no relay). */
export function relayReservations(relay: CircuitRelayService | undefined): RelayReservationInfo[] {
  if (relay === undefined) return [];
  const out: RelayReservationInfo[] = [];
  for (const [peerId, r] of relay.reservations.entries()) {
    out.push({
      peer_id: peerId.toString(),
      addr: r.addr.toString(),
      expires_at: r.expiry.toISOString(),
      ...(r.limit !== undefined
        ? {
            limit: {
              ...(r.limit.data !== undefined ? { data: r.limit.data.toString() } : {}),
              ...(r.limit.duration !== undefined ? { duration_ms: r.limit.duration } : {}),
            },
          }
        : {}),
    });
  }
  return out.sort((a, b) => a.peer_id.localeCompare(b.peer_id));
}

/** Whether a multiaddr goes through a relay. */
export function isRelayedAddr(addr: Multiaddr | string): boolean {
  return (typeof addr === 'string' ? addr : addr.toString()).includes('/p2p-circuit');
}

/**
 * Why a reservation failed, on one line: libp2p wraps the relay's answer (`reservation failed with status
 * PERMISSION_DENIED`) in a listen error that lists every address with a stack.
 */
export function reservationFailure(error: unknown): string {
  const message = errorFields(error).err;
  return /reservation failed with status \w+/.exec(message)?.[0] ?? message.split('\n')[0]!.slice(0, 200);
}

/** What the reservation service needs of libp2p (its components). */
export interface RelayReservationsComponents {
  addressManager: AddressManager;
  transportManager: TransportManager;
  events: TypedEventTarget<Libp2pEvents>;
  logger: ComponentLogger;
}

/**
 * Reserves relay slots while this home is not reachable. Reachable means AutoNAT confirmed an address that is
 * neither private nor relayed (a LAN address is dialable only on the LAN, so it does not count). While it is not,
 * the service keeps a reservation on `reservations` of the relays it is given (setRelays: the account's server
 * homes), listening on `<relay>/p2p/<id>/p2p-circuit`, and tries again, with a growing delay per relay, where a
 * reservation was refused (a server that does not know this home yet) or lost (the relay went away; then the next
 * relay of the list takes its place). Reservations already made are kept if AutoNAT later confirms an address.
 */
export class RelayReservations implements Startable {
  readonly #components: RelayReservationsComponents;
  readonly #wanted: number;
  readonly #checkDelay: number;
  readonly #retry: number;
  readonly #maxRetry: number;
  readonly #log: P2pLogger;
  #relays: Array<{ peerId: string; addr: Multiaddr }> = [];
  /** Per relay: when it may be tried again, and the delay after a further failure. */
  readonly #backoff = new Map<string, { until: number; delay: number }>();
  readonly #trying = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #requested = false;

  constructor(components: RelayReservationsComponents, init: RelayClientInit & { logger?: P2pLogger }) {
    this.#components = components;
    this.#wanted = init.reservations ?? RELAY_CLIENT_RESERVATIONS;
    this.#checkDelay = init.checkDelay ?? RELAY_CHECK_DELAY;
    this.#retry = init.retryInterval ?? RELAY_RETRY_INTERVAL;
    this.#maxRetry = Math.max(this.#retry, init.maxRetryInterval ?? RELAY_RETRY_INTERVAL_MAX);
    this.#log = init.logger ?? silentLogger;
    if (!Number.isInteger(this.#wanted) || this.#wanted < 1) {
      throw new InvalidHostInitError(`relay reservations must be a whole number of at least 1, got ${this.#wanted}`);
    }
  }

  start(): void {
    this.#running = true;
    this.#schedule(this.#checkDelay);
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * The relays to reserve on, in order of preference: multiaddrs ending in /p2p/<PeerId> (relayed ones and
   * this node itself are left out). Takes effect at the next round, or at once when one is due.
   */
  setRelays(addrs: readonly string[], self?: string): void {
    const seen = new Set<string>();
    const relays: Array<{ peerId: string; addr: Multiaddr }> = [];
    for (const text of addrs) {
      if (isRelayedAddr(text)) continue;
      let addr: Multiaddr;
      try {
        addr = multiaddr(text);
      } catch {
        continue;
      }
      const peerId = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
      if (peerId === undefined || peerId === self || seen.has(peerId)) continue;
      seen.add(peerId);
      relays.push({ peerId, addr });
    }
    this.#relays = relays;
    if (this.#running && this.#timer === undefined) this.#schedule(0);
  }

  /** Whether AutoNAT confirmed an address others can dial (neither private nor relayed). */
  reachable(): boolean {
    return this.#components.addressManager
      .getAddressesWithMetadata()
      .some((a) => a.verified && !isRelayedAddr(a.multiaddr) && isPrivate(a.multiaddr) !== true);
  }

  /** Whether the service has asked for a reservation (it does while this home is not reachable). */
  get requested(): boolean {
    return this.#requested;
  }

  /** The relayed addresses this home holds now. */
  relayedAddrs(): string[] {
    return this.#components.transportManager
      .getAddrs()
      .filter((a) => isRelayedAddr(a))
      .map((a) => a.toString());
  }

  /** PeerIds of the relays this home holds a reservation on (it has a relayed address through them). */
  heldRelays(): Set<string> {
    const held = new Set<string>();
    for (const addr of this.relayedAddrs()) {
      const relay = addr.split('/p2p-circuit')[0]!.split('/p2p/').pop();
      if (relay !== undefined) held.add(relay);
    }
    return held;
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#round();
      this.#schedule(this.#retry);
    }, ms);
    this.#timer.unref?.();
  }

  // One round: when not reachable and no reservation is being made, reserve on the first relay of the list that
  // holds none, up to the count wanted. One at a time: libp2p's reservation store drops the reservations queued
  // behind one that completes its count (its own listen then never settles).
  #round(): void {
    if (this.reachable() || this.#trying.size > 0) return;
    const held = this.heldRelays();
    if (held.size >= this.#wanted) return;
    const now = Date.now();
    const next = this.#relays.find((r) => !held.has(r.peerId) && (this.#backoff.get(r.peerId)?.until ?? 0) <= now);
    if (next !== undefined) this.#reserve(next.peerId, next.addr);
  }

  #reserve(peerId: string, addr: Multiaddr): void {
    if (!this.#requested) this.#log.info({ relay: peerId }, 'not reachable from outside: reserving relay slots');
    this.#requested = true;
    this.#trying.add(peerId);
    // Each try adds a listener to libp2p's transport manager that stays after a failure (libp2p has no way to
    // remove one): the growing delay keeps their number small while a relay is down or refuses.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${RELAY_RESERVE_TIMEOUT} ms`)),
        RELAY_RESERVE_TIMEOUT,
      );
      timer.unref?.();
    });
    Promise.race([this.#components.transportManager.listen([addr.encapsulate('/p2p-circuit')]), timeout])
      .then(
        () => {
          this.#backoff.delete(peerId);
          this.#log.info({ relay: peerId }, 'relay reservation made');
        },
        (error: unknown) => {
          const delay = Math.min(this.#maxRetry, (this.#backoff.get(peerId)?.delay ?? this.#retry / 2) * 2);
          this.#backoff.set(peerId, { until: Date.now() + delay, delay });
          this.#log.info(
            { err: reservationFailure(error), relay: peerId, retry_ms: delay },
            'relay reservation failed',
          );
        },
      )
      .finally(() => {
        clearTimeout(timer);
        this.#trying.delete(peerId);
        // The next relay at once, not at the next round.
        this.#schedule(0);
      });
  }
}
