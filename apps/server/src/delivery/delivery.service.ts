import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import type { Job } from '@polyhome/queue';
import { SqlReplicaStore, type AccountRepository, type HomeNodeRepository } from '@polyhome/storage';
import type { VersionVector } from '@polyhome/sync';
import type { Logger } from 'pino';
import { PINO_LOGGER } from '../logging/logger.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { P2pService } from '../p2p/p2p.service.js';
import { QueueService } from '../queue/queue.service.js';
import { InjectRepository } from '../storage/storage.module.js';

/** A delivery job names what to deliver to whom, never the ops: the handler reads them from the database. */
export interface DeliveryJob {
  account: string;
  peer: string;
}

/** How long a delivery attempt waits, once connected, for the home to acknowledge everything. */
const ACK_WAIT_MS = 15_000;
/** Attempts of one delivery job, with exponential backoff from DELIVERY_BACKOFF_MS (about 4 hours in all). */
const DELIVERY_ATTEMPTS = 14;
const DELIVERY_BACKOFF_MS = 1_000;
/** Accounts read per page when going through all of them (start-up scheduling). */
const ACCOUNT_PAGE = 500;
/** How often a BullMQ queue is checked for having lost its jobs (a Redis restarted without persistence). */
const QUEUE_WATCH_MS = 5_000;
/** A job no worker takes: while it is there, Redis still holds what was queued. */
const MARKER = { queue: 'queue-marker', jobId: 'jobs-present' } as const;

/**
 * Store and forward. Connected homes get new ops at once from the sync sessions (the fast path never
 * waits on a queue). A home that is not connected and lacks ops gets one delivery job per account and home
 * (deduplicated by job id), retried with exponential backoff: dial it, let the session catch it up, wait
 * for its acknowledgement. When a home connects by itself, its session catches it up and its job is dropped.
 * DHT announcing is the Home's (its jobs on the same queue); this re-creates its schedule when Redis lost the jobs.
 */
@Injectable()
export class DeliveryService implements OnApplicationBootstrap, OnModuleDestroy {
  private watch: ReturnType<typeof setInterval> | undefined;
  private rederiving = false;

  constructor(
    private readonly queue: QueueService,
    private readonly p2p: P2pService,
    private readonly store: SqlReplicaStore,
    @InjectRepository('accounts') private readonly accounts: AccountRepository,
    @InjectRepository('homeNodes') private readonly homeNodes: HomeNodeRepository,
    private readonly metrics: MetricsService,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.queue.backend.process<DeliveryJob>('delivery', (job) => this.deliver(job), { concurrency: 4 });
    const home = this.p2p.home;
    home.on('changed', ({ account }) => void this.scheduleFor(account).catch((err: unknown) => this.warn(err)));
    home.on('document', ({ account }) => void this.scheduleFor(account).catch((err: unknown) => this.warn(err)));
    home.on('peer:connect', ({ peerId }) => void this.peerConnected(peerId).catch((err: unknown) => this.warn(err)));
    // Homes that were behind when this process last stopped: their jobs are re-derived from the database,
    // a page of accounts per query (never a few queries per account).
    await this.scheduleBehind(() => true);
    if (this.queue.backend.kind === 'bullmq') {
      await this.placeMarker();
      this.watch = setInterval(() => void this.checkQueue().catch((err: unknown) => this.warn(err)), QUEUE_WATCH_MS);
      this.watch.unref();
    }
  }

  onModuleDestroy(): void {
    clearInterval(this.watch);
    this.watch = undefined;
  }

  /**
   * Redis restarted without persistence (or flushed, or failed over to an empty replica) has lost every
   * queued job: the delivery jobs of homes that are behind and the DHT schedule. Nothing would queue them
   * again until the next change of each account, so when the marker job is gone they are re-derived from the
   * database, as at start. Every instance may do it; job ids keep them single.
   */
  private async checkQueue(): Promise<void> {
    if (this.rederiving || this.watch === undefined) return;
    this.rederiving = true;
    try {
      // While Redis is down this waits for it to come back (the client queues commands).
      if ((await this.queue.backend.queue(MARKER.queue).getState(MARKER.jobId)) !== undefined) return;
      if (this.watch === undefined) return;
      this.logger.warn('the job queue lost its jobs (Redis restarted empty?); re-deriving them from the database');
      await this.placeMarker();
      await this.p2p.home.scheduleReannounce();
      await this.scheduleBehind(() => this.watch !== undefined);
    } finally {
      this.rederiving = false;
    }
  }

  private async placeMarker(): Promise<void> {
    await this.queue.backend.queue(MARKER.queue).add('marker', {}, { jobId: MARKER.jobId });
  }

  /**
   * Queues delivery to every home, of every account, that is not connected and lacks ops (set-based: one query
   * per page of accounts); `go` is asked before each page. Returns the jobs added.
   */
  async scheduleBehind(go: () => boolean): Promise<string[]> {
    const added: string[] = [];
    const siblings = [...(await this.siblings())];
    let after: string | undefined;
    do {
      if (!go()) break;
      const page = await this.store.homesBehind(siblings, { after, limit: ACCOUNT_PAGE });
      const jobs = page.behind
        .filter(({ peer }) => !this.p2p.home.isConnected(peer))
        .map(({ account, peer }) => deliveryJob(account, peer));
      if (jobs.length > 0) added.push(...(await this.queue.backend.queue<DeliveryJob>('delivery').addBulk(jobs)));
      after = page.next;
    } while (after !== undefined);
    return added;
  }

  /** Queues delivery to every home of the account that is not connected and lacks ops; returns the jobs added. */
  async scheduleFor(account: string): Promise<string[]> {
    const document = await this.p2p.home.hostedDocument(account);
    if (document === undefined) return [];
    // The usual case on every change: each other home is connected, and its session delivers. Nothing to read.
    const home = this.p2p.home;
    if (document.homes.every((h) => h.peer_id === this.p2p.peerId || home.isConnected(h.peer_id))) return [];
    const vv = await this.store.versionVector(account);
    const acked = new Map((await this.store.deliveryState(account)).map((d) => [d.peerId, d.ackedVv]));
    const siblings = await this.siblings();
    const jobs = document.homes
      .filter((home) => !siblings.has(home.peer_id) && !this.p2p.home.isConnected(home.peer_id))
      .filter((home) => lacks(vv, acked.get(home.peer_id) ?? {}, home.peer_id))
      .map((home) => deliveryJob(account, home.peer_id));
    if (jobs.length === 0) return [];
    return this.queue.backend.queue<DeliveryJob>('delivery').addBulk(jobs);
  }

  private async deliver(job: Job<DeliveryJob>): Promise<void> {
    const { account, peer } = job.data;
    const started = Date.now();
    const document = await this.store.document(account);
    const target = document?.homes.find((h) => h.peer_id === peer);
    if (document === undefined || target === undefined) return; // no longer a home: nothing to deliver
    // This process, or another server instance on this database: it reads the same op log, lacks nothing.
    if ((await this.siblings()).has(peer)) return;
    const vv = await this.store.versionVector(account);
    const home = this.p2p.home;
    if (!home.isConnected(peer)) {
      const id = peerIdFromString(peer);
      for (const addr of target.addrs) {
        try {
          await home.host.peerStore.merge(id, { multiaddrs: [multiaddr(addr)] });
        } catch {
          // a malformed address in the document: the others may still work
        }
      }
      // Throws when the home cannot be reached: the queue retries with backoff.
      await home.host.dial(id, { signal: AbortSignal.timeout(10_000) });
    }
    await home.connectHomes(account);
    const deadline = Date.now() + ACK_WAIT_MS;
    while (Date.now() < deadline && !job.signal.aborted) {
      const known = {
        ...((await this.store.deliveryState(account)).find((d) => d.peerId === peer)?.ackedVv ?? {}),
        ...(home.liveVectors(account).get(peer) ?? {}),
      };
      if (!lacks(vv, known, peer)) {
        this.metrics.deliveryLatency((Date.now() - started) / 1000);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`home ${peer} did not acknowledge account ${account.slice(0, 12)}… within ${ACK_WAIT_MS} ms`);
  }

  /** A home connected: its session catches it up, so a waiting or failed delivery job for it is dropped. */
  private async peerConnected(peer: string): Promise<void> {
    const accounts = await this.accounts.namingHome(peer);
    await this.store.recordConnected(accounts, peer);
    const queue = this.queue.backend.queue('delivery');
    await Promise.all(accounts.map(async (account) => queue.remove(jobIdOf(account, peer))));
  }

  /**
   * The homes that run on this database: this process and the other server instances sharing it (scale-out).
   * They read and write one op log, so none of them ever lacks an op and none needs delivery.
   */
  private async siblings(): Promise<Set<string>> {
    return new Set([this.p2p.peerId, ...(await this.homeNodes.peerIds())]);
  }

  private warn(err: unknown): void {
    this.logger.warn({ err: (err as Error).message }, 'delivery scheduling failed');
  }
}

/** The delivery job of one account and home, retried with exponential backoff. */
function deliveryJob(account: string, peer: string) {
  return {
    name: 'deliver',
    data: { account, peer },
    options: {
      jobId: jobIdOf(account, peer),
      attempts: DELIVERY_ATTEMPTS,
      backoff: { type: 'exponential' as const, delay: DELIVERY_BACKOFF_MS },
    },
  };
}

/** Job ids may not contain ':' (BullMQ), so account and PeerId are joined with '.'. */
function jobIdOf(account: string, peer: string): string {
  return `${account}.${peer}`;
}

/** Whether a home known to hold `known` lacks any op of `held` (its own ops it never lacks). */
function lacks(held: VersionVector, known: VersionVector, home: string): boolean {
  return Object.entries(held).some(([origin, seq]) => origin !== home && (known[origin] ?? 0) < seq);
}
