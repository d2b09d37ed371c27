import { Inject, Injectable } from '@nestjs/common';
import { publicKeyPointChecks } from '@polyhome/identity';
import type { JobCounts } from '@polyhome/queue';
// The sync engine's closed set of reasons, so the label cannot grow without bound.
import { replicationGateStats, type OpRejectReason } from '@polyhome/sync';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { passwordHashesComputed } from '@polyhome/home';
import { sqlStatementsSent } from '@polyhome/storage';
import { PINO_LOGGER } from '../logging/logger.js';
import { QueueRegistry } from '../queue/queue-registry.js';
import { QueueService } from '../queue/queue.service.js';

/** The job states reported per queue, as `JobCounts` names them. */
const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed'] as const satisfies ReadonlyArray<
  keyof JobCounts
>;

/** The sampling interval of the event-loop delay histogram behind `nodejs_eventloop_lag_*` (see the constructor). */
export const EVENT_LOOP_SAMPLE_MS = 10;

/** Route label of a request no route handled (404s, body-parser errors, static files): one value, not one per URL. */
const UNMATCHED_ROUTE = '<unmatched>';

/**
 * The server's Prometheus metrics, in a registry of its own (not prom-client's global one, so several apps
 * in one test process do not collide). Other modules record through the typed methods, never through
 * prom-client objects, so metric names and labels stay in this one file.
 */
@Injectable()
export class MetricsService {
  /** The registry `GET /metrics` renders. */
  readonly registry = new Registry();

  readonly #opsReceived = new Counter({
    name: 'polyhome_ops_received_total',
    help: 'Ops received from other homes, before validation.',
    registers: [this.registry],
  });
  readonly #opsAccepted = new Counter({
    name: 'polyhome_ops_accepted_total',
    help: 'Ops validated and applied.',
    registers: [this.registry],
  });
  readonly #opsRejected = new Counter({
    name: 'polyhome_ops_rejected_total',
    help: 'Ops refused, by reason.',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly #documentEquivocations = new Counter({
    name: 'polyhome_document_equivocations_total',
    help: 'Account documents of the seq in force, signed by the root key, that differ from it (each pair once).',
    registers: [this.registry],
  });
  readonly #deliveryLatency = new Histogram({
    name: 'polyhome_delivery_latency_seconds',
    help: 'Time from an op being made or received to its acknowledgement by a target home.',
    // From a LAN push (milliseconds) to a home that slept for a day.
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400],
    registers: [this.registry],
  });
  readonly #connectedPeers = new Gauge({
    name: 'polyhome_connected_peers',
    help: 'libp2p peers this node is connected to.',
    registers: [this.registry],
  });
  readonly #httpRequests = new Counter({
    name: 'polyhome_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status.',
    labelNames: ['method', 'route', 'status'],
    registers: [this.registry],
  });
  readonly #httpDuration = new Histogram({
    name: 'polyhome_http_request_duration_seconds',
    help: 'HTTP request duration until the response was sent, by method and route template.',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });

  constructor(
    @Inject(QueueService) private readonly queue: QueueService,
    @Inject(QueueRegistry) private readonly queues: QueueRegistry,
    @Inject(PINO_LOGGER) private readonly logger: Logger,
  ) {
    // nodejs_eventloop_lag_{p50,p99,max,...}_seconds come from perf_hooks.monitorEventLoopDelay sampled every
    // EVENT_LOOP_SAMPLE_MS: each value is a whole interval between two samples, so an idle loop reads about that
    // interval, and the delay is the value minus it. prom-client resets that histogram at each scrape: a value covers
    // the time since the scrape before.
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
    // These counts live in the libraries every such operation goes through; each is read at each scrape.
    this.#processCount(
      'polyhome_sql_statements_total',
      'Queries sent to the database (PostgreSQL or PGlite), transaction control included.',
      sqlStatementsSent,
    );
    this.#processCount(
      'polyhome_public_key_point_checks_total',
      'Ed25519 public keys checked as curve points (a point decompression each; the key cache missed).',
      publicKeyPointChecks,
    );
    this.#processCount(
      'polyhome_password_hashes_total',
      'Password hashes computed (scrypt): stored, checked, and the dummy check of a user ID not hosted here.',
      passwordHashesComputed,
    );
    this.#processCount(
      'polyhome_replication_batches_total',
      "Batches of received ops applied (each waits for its turn while clients' requests are in flight).",
      () => replicationGateStats().batches,
    );
    this.#processCount(
      'polyhome_replication_batches_waited_total',
      "Batches of received ops that waited for their turn behind clients' requests.",
      () => replicationGateStats().waited,
    );
    this.#processCount(
      'polyhome_replication_wait_seconds_total',
      "Time batches of received ops waited for their turn behind clients' requests, in all.",
      () => replicationGateStats().waitedMs / 1000,
    );
    const queueJobs: Gauge = new Gauge({
      name: 'polyhome_queue_jobs',
      help: 'Jobs per queue and state, read from the queue backend at each scrape.',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      // Read on scrape rather than kept up to date: with BullMQ the counts are shared by every instance.
      collect: async () => {
        const counts = await this.queueCounts();
        queueJobs.reset();
        for (const [queue, byState] of counts) {
          for (const state of QUEUE_STATES) queueJobs.set({ queue, state }, byState[state]);
        }
      },
    });
  }

  /** A counter that shows a process-wide count kept elsewhere (a plain integer there), read at each scrape. */
  #processCount(name: string, help: string, read: () => number): void {
    const counter: Counter = new Counter({
      name,
      help,
      registers: [this.registry],
      collect: () => {
        counter.reset();
        counter.inc(read());
      },
    });
  }

  /** Counts `n` ops received from peers. */
  opsReceived(n = 1): void {
    this.#opsReceived.inc(n);
  }

  /** Counts `n` ops accepted. */
  opsAccepted(n = 1): void {
    this.#opsAccepted.inc(n);
  }

  /** Ops accepted so far (`polyhome_ops_accepted_total`), for the admin statistics' ops/s. */
  async opsAcceptedTotal(): Promise<number> {
    return (await this.#opsAccepted.get()).values.reduce((n, v) => n + v.value, 0);
  }

  /** Counts `n` ops rejected for `reason`. */
  opsRejected(reason: OpRejectReason, n = 1): void {
    this.#opsRejected.inc({ reason }, n);
  }

  /** Counts one root-document equivocation seen (the account is flagged; the log line names it). */
  documentEquivocation(): void {
    this.#documentEquivocations.inc();
  }

  /** Records one delivery's latency in seconds. */
  deliveryLatency(seconds: number): void {
    this.#deliveryLatency.observe(seconds);
  }

  /** Sets the number of connected libp2p peers; called by the owner of the p2p node. */
  setConnectedPeers(n: number): void {
    this.#connectedPeers.set(n);
  }

  /** Records one answered HTTP request. */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.#httpRequests.inc({ method, route, status: String(status) });
    this.#httpDuration.observe({ method, route }, seconds);
  }

  /** Express middleware that times every request, matched or not, and records it when the response is sent. */
  httpMiddleware(): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      const start = process.hrtime.bigint();
      res.once('finish', () => {
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        // The route template (`/admin/v1/node`), never the URL: a label per URL would grow without bound.
        const path = (req.route as { path?: unknown } | undefined)?.path;
        const route = typeof path === 'string' ? req.baseUrl + path : UNMATCHED_ROUTE;
        this.httpRequest(req.method, route, res.statusCode, seconds);
      });
      next();
    };
  }

  /** The registry in Prometheus text format. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of `render()`'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Counts of every registered queue; a queue whose backend does not answer is left out and logged. */
  async queueCounts(): Promise<Array<[string, JobCounts]>> {
    const results = await Promise.allSettled(
      this.queues.names().map(async (name) => [name, await this.queue.backend.queue(name).counts()] as const),
    );
    const counts: Array<[string, JobCounts]> = [];
    for (const result of results) {
      if (result.status === 'fulfilled') counts.push([result.value[0], result.value[1]]);
      else this.logger.warn({ err: String(result.reason) }, 'metrics: cannot read queue counts');
    }
    return counts;
  }
}
