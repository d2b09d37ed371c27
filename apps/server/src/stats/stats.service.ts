import { Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import type { SqlAdminStore } from '@polyhome/storage';
import { MetricsService } from '../metrics/metrics.service.js';
import { P2pService } from '../p2p/p2p.service.js';
import { InjectRepository } from '../storage/storage.module.js';

/** How often ops/s is sampled from the metrics. */
export const STATS_SAMPLE_MS = 10_000;

/** Samples kept: one hour at STATS_SAMPLE_MS. */
export const STATS_SAMPLES = 360;

/** The window ops/s is averaged over (the last minute). */
const RATE_WINDOW_MS = 60_000;

/** Homes listed in the delivery backlog (the largest backlogs first). */
export const BACKLOG_HOMES = 100;

/** One point of the ops/s history. */
export interface RatePoint {
  at: string;
  ops_per_second: number;
}

/** What GET /admin/v1/stats answers. */
export interface StatsView {
  accounts: number;
  accounts_by_status: Record<string, number>;
  devices: number;
  rooms: number;
  events: number;
  ops: number;
  /** Ops accepted from other homes per second over the last minute (`polyhome_ops_accepted_total`). */
  ops_per_second: number;
  /** The last hour of `ops_per_second`, one point per sample, oldest first. */
  ops_per_second_history: RatePoint[];
  /** Per home of the accounts here: ops it has not acknowledged, largest first. */
  delivery_backlog: Array<{ peer_id: string; accounts: number; pending_ops: number }>;
  /** Per home of a room's servers: room events (PDUs) the federation outbox owes it, largest first. */
  room_delivery_backlog: Array<{ peer_id: string; pending_events: number }>;
}

/**
 * Statistics for operators: counts from the database, ops/s from the metrics (sampled every 10 s, an hour kept
 * in memory, so a restart starts the history again), and the delivery backlog per home from the recorded acks.
 */
@Injectable()
export class StatsService implements OnModuleInit, OnModuleDestroy {
  readonly #samples: Array<{ at: number; total: number }> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly metrics: MetricsService,
    private readonly p2p: P2pService,
    @InjectRepository('admin') private readonly store: SqlAdminStore,
  ) {}

  onModuleInit(): void {
    void this.sample();
    this.#timer = setInterval(() => void this.sample(), STATS_SAMPLE_MS);
    this.#timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.#timer);
  }

  /** The statistics now. */
  async stats(): Promise<StatsView> {
    await this.sample();
    const [counts, backlog, rooms] = await Promise.all([
      this.store.counts(),
      this.store.deliveryBacklog(BACKLOG_HOMES),
      this.p2p.home.federation?.backlog(BACKLOG_HOMES) ?? Promise.resolve([]),
    ]);
    return {
      accounts: counts.accounts,
      accounts_by_status: counts.accountsByStatus,
      devices: counts.devices,
      rooms: counts.rooms,
      events: counts.events,
      ops: counts.ops,
      ops_per_second: this.rate(RATE_WINDOW_MS),
      ops_per_second_history: this.history(),
      delivery_backlog: backlog.map((b) => ({ peer_id: b.peerId, accounts: b.accounts, pending_ops: b.pendingOps })),
      room_delivery_backlog: rooms.map((b) => ({ peer_id: b.destination, pending_events: b.pending })),
    };
  }

  private async sample(): Promise<void> {
    const total = await this.metrics.opsAcceptedTotal();
    const now = Date.now();
    const last = this.#samples.at(-1);
    // A request between two ticks replaces the newest point rather than crowding the history.
    if (last !== undefined && now - last.at < STATS_SAMPLE_MS / 2) this.#samples.pop();
    this.#samples.push({ at: now, total });
    if (this.#samples.length > STATS_SAMPLES) this.#samples.splice(0, this.#samples.length - STATS_SAMPLES);
  }

  private rate(windowMs: number): number {
    const last = this.#samples.at(-1);
    if (last === undefined) return 0;
    const first = this.#samples.find((s) => last.at - s.at <= windowMs) ?? last;
    return last.at === first.at ? 0 : round((last.total - first.total) / ((last.at - first.at) / 1000));
  }

  private history(): RatePoint[] {
    const points: RatePoint[] = [];
    for (let i = 1; i < this.#samples.length; i++) {
      const a = this.#samples[i - 1]!;
      const b = this.#samples[i]!;
      points.push({
        at: new Date(b.at).toISOString(),
        ops_per_second: round((b.total - a.total) / ((b.at - a.at) / 1000)),
      });
    }
    return points;
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
