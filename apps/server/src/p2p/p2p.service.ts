import { Inject, Injectable, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { stateKey, type Op, type OpRejectReason } from '@polyhome/sync';
import { HomeNodeEntity, SqlReplicaStore } from '@polyhome/storage';
import type { Logger } from 'pino';
import { PINO_LOGGER } from '../logging/logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { StorageService } from '../storage/storage.service.js';
import type { P2pNode } from './p2p-node.js';

const REJECT_REASONS: ReadonlySet<string> = new Set<OpRejectReason>([
  'malformed',
  'wrong_type',
  'wrong_account',
  'bad_signature',
  'unknown_origin',
  'revoked',
  'duplicate',
  'too_large',
  'unknown_document',
  'cross_signing',
]);

function isRejectReason(code: string): code is OpRejectReason {
  return REJECT_REASONS.has(code);
}

/** Accounts hosted on the sync service per page, at start. */
const HOST_PAGE = 5000;

/** A connected peer as operators see it. */
export interface PeerView {
  peer_id: string;
  addrs: string[];
  /** Round trip of the last libp2p ping, when one was made. */
  rtt_ms?: number;
}

/**
 * The libp2p node of this server as a Nest provider: it hosts every account of the database on one node,
 * records what peers acknowledge, and stops before the database closes.
 */
@Injectable()
export class P2pService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly changedListeners: Array<(account: string, keys: string[]) => void> = [];
  private readonly connectedListeners: Array<(peerId: string) => void> = [];
  private readonly documentListeners: Array<(account: string) => void> = [];
  // Accounts hosted at start are published by the repeatable DHT job, not one job each.
  private started = false;

  constructor(
    @Inject('P2P_NODE') private readonly node: P2pNode,
    private readonly store: SqlReplicaStore,
    private readonly storage: StorageService,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
    private readonly metrics: MetricsService,
  ) {}

  /** This home's PeerId. */
  get peerId(): string {
    return this.node.peerId;
  }

  /** The addresses the node listens on, with /p2p/<PeerId>. */
  addrs(): string[] {
    return this.node.host.getMultiaddrs().map((a) => a.toString());
  }

  /** Whether the node runs (for /health). */
  isRunning(): boolean {
    return this.node.host.status === 'started';
  }

  /** Connected peers with their addresses. */
  peers(): PeerView[] {
    const byPeer = new Map<string, PeerView>();
    for (const connection of this.node.host.getConnections()) {
      const id = connection.remotePeer.toString();
      const view = byPeer.get(id) ?? { peer_id: id, addrs: [] };
      view.addrs.push(connection.remoteAddr.toString());
      if (connection.rtt !== undefined) view.rtt_ms = connection.rtt;
      byPeer.set(id, view);
    }
    return [...byPeer.values()].sort((a, b) => a.peer_id.localeCompare(b.peer_id));
  }

  /** Whether a peer has an open connection to this node. */
  isConnected(peerId: string): boolean {
    return this.node.host.getConnections().some((c) => c.remotePeer.toString() === peerId);
  }

  /** Takes part in the sync of an account (its document must already be stored). */
  async hostAccount(serverName: string): Promise<void> {
    await this.node.sync.host(serverName, this.store);
    if (this.started) this.emitDocument(serverName);
  }

  /** Stops taking part in the sync of an account. */
  async unhostAccount(serverName: string): Promise<void> {
    await this.node.sync.unhost(serverName);
  }

  /** Pushes new local ops to every connected home of the account at once. */
  publish(serverName: string, ops: Op[]): void {
    this.node.sync.publish(serverName, ops);
    this.emitChanged(serverName, [...new Set(ops.map(stateKey))]);
  }

  /**
   * Calls `listener` whenever an account's ops change here, made locally or accepted from a peer, with the
   * state keys touched (`<namespace>:<key>`, e.g. `device:ABCDEF`, `member:!room:x`).
   */
  onChanged(listener: (account: string, keys: string[]) => void): void {
    this.changedListeners.push(listener);
  }

  /** Calls `listener` with the PeerId of every peer that connects. */
  onPeerConnected(listener: (peerId: string) => void): void {
    this.connectedListeners.push(listener);
  }

  /** Tells the sync service the account document changed (closes sessions with removed homes). */
  async documentChanged(serverName: string): Promise<void> {
    await this.node.sync.documentChanged(serverName);
    this.emitDocument(serverName);
  }

  /** Calls `listener` with the account when it is newly hosted or its document changes (here or from a peer). */
  onDocument(listener: (account: string) => void): void {
    this.documentListeners.push(listener);
  }

  /** What each connected home of the account last said it holds (from its hello and acks), by PeerId. */
  liveVectors(serverName: string): Map<string, Record<string, number>> {
    const out = new Map<string, Record<string, number>>();
    for (const session of this.node.sync.sessions(serverName)) {
      if (session.peerVector !== undefined) out.set(session.peerId, { ...session.peerVector });
    }
    return out;
  }

  /** Dials the homes listed in the account document. */
  async connectHomes(serverName: string): Promise<void> {
    await this.node.sync.connectHomes(serverName);
  }

  /** The DHT side: discovery of accounts' homes. */
  get discovery(): P2pNode['discovery'] {
    return this.node.discovery;
  }

  /** The libp2p host (for protocols registered by other modules). */
  get host(): P2pNode['host'] {
    return this.node.host;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.storage.dataSource.getRepository(HomeNodeEntity).upsert(
      {
        peerId: this.peerId,
        publicKey: Buffer.from(this.node.host.peerId.publicKey?.raw ?? new Uint8Array()),
        role: 'server',
        lastStartedAt: new Date(),
      },
      ['peerId'],
    );
    this.unsubscribe.push(
      this.node.sync.on('acked', ({ account, peerId, vv }) => this.track(this.store.recordAck(account, peerId, vv))),
      this.node.sync.on('rejected', (event) => {
        this.logger.warn({ ...event, op: undefined }, 'sync rejected');
        if (isRejectReason(event.code)) this.metrics.opsRejected(event.code);
      }),
      this.node.sync.on('document', ({ account }) => this.emitDocument(account)),
      this.node.sync.on('applied', ({ account, ops, changed }) => {
        this.metrics.opsAccepted(ops.length);
        this.emitChanged(account, changed);
      }),
    );
    const onConnect = (event: CustomEvent<{ toString(): string }>): void => {
      this.metrics.setConnectedPeers(this.node.host.getPeers().length);
      for (const listener of this.connectedListeners) listener(event.detail.toString());
    };
    const onDisconnect = (): void => this.metrics.setConnectedPeers(this.node.host.getPeers().length);
    this.node.host.addEventListener('peer:connect', onConnect);
    this.node.host.addEventListener('peer:disconnect', onDisconnect);
    this.unsubscribe.push(
      () => this.node.host.removeEventListener('peer:connect', onConnect),
      () => this.node.host.removeEventListener('peer:disconnect', onDisconnect),
    );
    // One query a page gives every account with its homes: no document is read per account at start.
    let hosted = 0;
    let after: string | undefined;
    for (;;) {
      const page = await this.store.listHomes({ after, limit: HOST_PAGE });
      this.node.sync.hostMany(page, this.store);
      hosted += page.length;
      if (page.length < HOST_PAGE) break;
      after = page[page.length - 1]!.account;
    }
    this.started = true;
    this.logger.info({ peerId: this.peerId, addrs: this.addrs(), accounts: hosted }, 'p2p node started');
  }

  async beforeApplicationShutdown(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
    await this.node.sync.stop();
    await this.node.host.stop();
    // Acks being written must land before the database closes.
    await Promise.allSettled([...this.inFlight]);
  }

  private emitDocument(account: string): void {
    for (const listener of this.documentListeners) listener(account);
  }

  private emitChanged(account: string, keys: string[]): void {
    for (const listener of this.changedListeners) listener(account, keys);
  }

  private track(work: Promise<unknown>): void {
    const tracked = work
      .catch((err: unknown) => this.logger.warn({ err: (err as Error).message }, 'p2p bookkeeping failed'))
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }
}
