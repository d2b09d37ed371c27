// Reaching homes behind NAT: the circuit relay v2 a server home runs for the homes of its accounts, and the
// client side that reserves a slot on the account's server homes while AutoNAT has not confirmed that this
// home can be dialled. The relayed addresses (`/p2p/<relay>/p2p-circuit/p2p/<home>`) then reach the DHT (peer
// and provider records carry the node's addresses) and, where the home holds the root key, the account document.
import { circuitRelayServer, type CircuitRelayService } from '@libp2p/circuit-relay-v2';
import type { ComponentLogger, Startable, TypedEventTarget, Libp2pEvents } from '@libp2p/interface';
import type { AddressManager, TransportManager } from '@libp2p/interface-internal';
import { isPrivate } from '@libp2p/utils';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import {
  RELAY_CHECK_DELAY,
  RELAY_CLIENT_RESERVATIONS,
  RELAY_MAX_CIRCUITS_PER_CONNECTION,
  RELAY_MAX_RESERVATIONS,
  RELAY_RESERVATION_TTL,
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

/** What the reservation service needs of libp2p (its components). */
export interface RelayReservationsComponents {
  addressManager: AddressManager;
  transportManager: TransportManager;
  events: TypedEventTarget<Libp2pEvents>;
  logger: ComponentLogger;
}

/**
 * Reserves relay slots while this home is not reachable. Reachable means AutoNAT confirmed an address that is
 * neither private nor relayed (a LAN address is dialable only on the LAN, so it does not count). When it is
 * not, the service listens on `/p2p-circuit` once per wanted reservation: libp2p's relay transport then
 * reserves on connected peers that run a relay (the account's server homes; any other refuses) and, when a
 * relay goes away, on the next one. Reservations already made are kept if AutoNAT later confirms an address.
 */
export class RelayReservations implements Startable {
  readonly #components: RelayReservationsComponents;
  readonly #wanted: number;
  readonly #checkDelay: number;
  readonly #log: P2pLogger;
  #timer: NodeJS.Timeout | undefined;
  #requested = false;

  constructor(components: RelayReservationsComponents, init: RelayClientInit & { logger?: P2pLogger }) {
    this.#components = components;
    this.#wanted = init.reservations ?? RELAY_CLIENT_RESERVATIONS;
    this.#checkDelay = init.checkDelay ?? RELAY_CHECK_DELAY;
    this.#log = init.logger ?? silentLogger;
    if (!Number.isInteger(this.#wanted) || this.#wanted < 1) {
      throw new InvalidHostInitError(`relay reservations must be a whole number of at least 1, got ${this.#wanted}`);
    }
  }

  start(): void {
    this.#timer = setTimeout(() => this.#check(), this.#checkDelay);
    this.#timer.unref?.();
  }

  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Whether AutoNAT confirmed an address others can dial (neither private nor relayed). */
  reachable(): boolean {
    return this.#components.addressManager
      .getAddressesWithMetadata()
      .some((a) => a.verified && !isRelayedAddr(a.multiaddr) && isPrivate(a.multiaddr) !== true);
  }

  /** Whether the service asked for reservations (it does once, when it finds this home unreachable). */
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

  #check(): void {
    this.#timer = undefined;
    if (this.#requested || this.reachable()) return;
    this.#requested = true;
    const search = Array.from({ length: this.#wanted }, () => multiaddr('/p2p-circuit'));
    this.#log.info({ reservations: this.#wanted }, 'not reachable from outside: reserving relay slots');
    this.#components.transportManager.listen(search).catch((error: unknown) => {
      this.#log.warn(errorFields(error), 'could not ask for relay reservations');
    });
  }
}
