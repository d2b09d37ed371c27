import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { RefusalLog, type Home } from '@polyhome/home';
import { relayReservations, type RelayReservationInfo } from '@polyhome/p2p';
import type { OpRejectReason } from '@polyhome/sync';
import type { AccountRepository, HomeNodeRepository } from '@polyhome/storage';
import type { Logger } from 'pino';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { PINO_LOGGER } from '../logging/logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { InjectRepository } from '../storage/storage.module.js';

/** Injection token of the server's Home (built in resources.ts from the TypeORM stores and the queue). */
export const SERVER_HOME = 'SERVER_HOME';

// A record over the union, so a reason added to libs/sync without a line here does not compile.
const REJECT_REASON_TABLE: Record<OpRejectReason, true> = {
  malformed: true,
  wrong_type: true,
  wrong_account: true,
  bad_signature: true,
  unknown_origin: true,
  revoked: true,
  duplicate: true,
  too_large: true,
  unknown_document: true,
  pending_full: true,
  cross_signing: true,
};
const REJECT_REASONS: ReadonlySet<string> = new Set(Object.keys(REJECT_REASON_TABLE));

function isRejectReason(code: string): code is OpRejectReason {
  return REJECT_REASONS.has(code);
}

/** A connected peer as operators see it. */
export interface PeerView {
  peer_id: string;
  addrs: string[];
  /** Round trip of the last libp2p ping, when one was made. */
  rtt_ms?: number;
}

/** The relay as operators see it (GET /admin/v1/relay). */
export interface RelayView {
  enabled: boolean;
  limits?: {
    max_reservations: number;
    reservation_ttl_ms: number;
    data_limit_bytes: number;
    duration_limit_ms: number;
  };
  reservations: RelayReservationInfo[];
}

/**
 * The server's Home as a Nest provider: starts it at bootstrap (after the queue is there), records this
 * instance in the database, turns its events into metrics and log lines, and stops it before the database
 * closes (the queue has drained by then). Everything else is the Home's.
 */
@Injectable()
export class P2pService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly unsubscribe: Array<() => void> = [];
  // A few refusals a window in full, then one summary line: a flood of refused ops cannot flood the log.
  private refusals!: RefusalLog;

  constructor(
    @Inject(SERVER_HOME) readonly home: Home,
    @InjectRepository('homeNodes') private readonly homeNodes: HomeNodeRepository,
    @InjectRepository('accounts') private readonly accounts: AccountRepository,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** This home's PeerId. */
  get peerId(): string {
    return this.home.peerId;
  }

  /** The addresses the node listens on, with /p2p/<PeerId>. */
  addrs(): string[] {
    return this.home.addrs();
  }

  /** Whether the node runs (for /health). */
  isRunning(): boolean {
    return this.home.isRunning();
  }

  /** The libp2p host (for protocols registered by other modules). */
  get host(): Home['host'] {
    return this.home.host;
  }

  /** Whether a peer has an open connection to this node. */
  isConnected(peerId: string): boolean {
    return this.home.isConnected(peerId);
  }

  /** Connected peers with their addresses. */
  peers(): PeerView[] {
    const byPeer = new Map<string, PeerView>();
    for (const connection of this.home.host.getConnections()) {
      const id = connection.remotePeer.toString();
      const view = byPeer.get(id) ?? { peer_id: id, addrs: [] };
      view.addrs.push(connection.remoteAddr.toString());
      if (connection.rtt !== undefined) view.rtt_ms = connection.rtt;
      byPeer.set(id, view);
    }
    return [...byPeer.values()].sort((a, b) => a.peer_id.localeCompare(b.peer_id));
  }

  /** The relay's reservations and limits (enabled is false when RELAY_ENABLED=false). */
  relay(): RelayView {
    const relay = this.home.host.services.relay;
    const limits = this.config.relay;
    return {
      enabled: relay !== undefined,
      ...(relay !== undefined
        ? {
            limits: {
              max_reservations: limits.maxReservations,
              reservation_ttl_ms: limits.reservationTtl,
              data_limit_bytes: limits.dataLimit,
              duration_limit_ms: limits.durationLimit,
            },
          }
        : {}),
      reservations: relayReservations(relay),
    };
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.homeNodes.register({
      peerId: this.peerId,
      publicKey: this.home.host.peerId.publicKey?.raw ?? new Uint8Array(),
      role: 'server',
    });
    this.refusals = new RefusalLog(this.logger);
    const connected = ({ peers }: { peers: number }): void => this.metrics.setConnectedPeers(peers);
    this.unsubscribe.push(
      this.home.on('rejected', (event) => {
        this.refusals.record(event);
        if (isRejectReason(event.code)) this.metrics.opsRejected(event.code);
      }),
      this.home.on('applied', ({ ops }) => this.metrics.opsAccepted(ops.length)),
      // The Home logged it; here it is counted and flagged on the account for the admin API.
      this.home.on('equivocation', ({ account, seq, digests, peerId }) => {
        this.metrics.documentEquivocation();
        const flag = { seq, digests, peer_id: peerId, seen_at: new Date().toISOString() };
        this.accounts.flagDocumentEquivocation(account, flag).catch((err: unknown) => {
          this.logger.error({ err, account, seq }, 'account document equivocation not flagged on the account');
        });
      }),
      this.home.on('peer:connect', connected),
      this.home.on('peer:disconnect', connected),
    );
    await this.home.start();
    // The home hosts every account with a document at start; those taken down or migrated away are kept here
    // (evidence) but this server takes part in their sync no more, across restarts too.
    for (const account of await this.accounts.notServed()) await this.home.unhostAccount(account);
  }

  async beforeApplicationShutdown(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    this.refusals.close();
    await this.home.stop();
  }
}
