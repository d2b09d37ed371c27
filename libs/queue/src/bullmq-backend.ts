import { Queue as BullQueue, Worker, type Job as BullJob } from 'bullmq';
import { Redis } from 'ioredis';
import { BullmqQueue } from './bullmq-queue.js';
import {
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_HEALTH_TIMEOUT_MS,
  DEFAULT_LOCK_DURATION_MS,
  DEFAULT_MAX_STALLED_COUNT,
  DEFAULT_PREFIX,
  DEFAULT_STALLED_INTERVAL_MS,
} from './constants.js';
import { ProcessorAlreadyRegisteredError, QueueClosedError } from './errors.js';
import type {
  BullmqQueueInit,
  CloseOptions,
  JobHandler,
  ProcessOptions,
  Queue,
  QueueBackend,
  QueueErrorListener,
  QueueHealth,
} from './index.js';
import { errorMessage, settlesWithin, toError, withTimeout } from './util.js';
import { resolveConcurrency, validateQueueName } from './validation.js';

/** How long closing waits for Redis to acknowledge QUIT before dropping the socket. */
const QUIT_TIMEOUT_MS = 1_000;

/** A BullMQ worker and the handlers it is running. */
interface Processor {
  readonly worker: Worker;
  /**
   * Running jobs, keyed by BullMQ's Job object (the same object reaches the processor and
   * the completed/failed events). An entry leaves only once BullMQ has recorded the result,
   * so an empty map means closing the worker loses nothing.
   */
  readonly inflight: Map<BullJob, AbortController>;
  idleWaiters: Array<() => void>;
}

/**
 * The BullMQ implementation of the queue port. Connections: one ioredis client shared by
 * every Queue (commands, PING for health), and one per Worker pair that BullMQ duplicates
 * from a template (a worker blocks on its connection, so it needs its own, with
 * `maxRetriesPerRequest: null`). All are closed by `close()`.
 */
export class BullmqQueueBackend implements QueueBackend {
  readonly kind = 'bullmq';

  private readonly prefix: string;
  private readonly lockDuration: number;
  private readonly stalledInterval: number;
  private readonly maxStalledCount: number;
  private readonly healthTimeout: number;
  private readonly onError: QueueErrorListener;
  /** Shared by the Queue objects: BullMQ leaves a caller's client open, so we close it. */
  private readonly connection: Redis;
  /** Never used directly: each Worker duplicates it twice (commands, blocking fetch) and owns the copies. */
  private readonly workerConnection: Redis;
  private readonly bullQueues = new Map<string, BullQueue>();
  private readonly handles = new Map<string, BullmqQueue<unknown>>();
  private readonly processors = new Map<string, Processor>();
  private closing = false;
  private stopped = false;
  private closed: Promise<void> | undefined;

  constructor(init: BullmqQueueInit) {
    this.prefix = init.prefix ?? DEFAULT_PREFIX;
    this.lockDuration = init.lockDuration ?? DEFAULT_LOCK_DURATION_MS;
    this.stalledInterval = init.stalledInterval ?? DEFAULT_STALLED_INTERVAL_MS;
    this.maxStalledCount = init.maxStalledCount ?? DEFAULT_MAX_STALLED_COUNT;
    this.healthTimeout = init.healthTimeout ?? DEFAULT_HEALTH_TIMEOUT_MS;
    this.onError = init.onError ?? (() => undefined);
    // Default maxRetriesPerRequest (20): with Redis gone, add() fails after the retries
    // instead of hanging, and the caller (which re-derives delivery from the database) moves on.
    this.connection = new Redis(init.redisUrl, { connectionName: `${this.prefix}:queue` });
    this.workerConnection = new Redis(init.redisUrl, {
      maxRetriesPerRequest: null,
      lazyConnect: true,
      connectionName: `${this.prefix}:worker`,
    });
    // ioredis prints unhandled 'error' events itself; route them to the caller instead.
    this.connection.on('error', (err: Error) => this.onError(err));
    this.workerConnection.on('error', (err: Error) => this.onError(err));
  }

  queue<T = unknown>(name: string): Queue<T> {
    validateQueueName(name);
    let handle = this.handles.get(name);
    if (handle === undefined) {
      handle = new BullmqQueue<unknown>(
        this.bullQueue(name),
        () => this.assertOpen(),
        () => this.assertReadable(),
      );
      this.handles.set(name, handle);
    }
    return handle as Queue<T>;
  }

  async process<T = unknown>(name: string, handler: JobHandler<T>, options: ProcessOptions = {}): Promise<void> {
    validateQueueName(name);
    const concurrency = resolveConcurrency(options);
    this.assertOpen();
    if (this.processors.has(name)) {
      throw new ProcessorAlreadyRegisteredError(`Queue ${name} already has a processor`);
    }
    const inflight = new Map<BullJob, AbortController>();
    // The processor takes one parameter: BullMQ would track its own signal for a third one.
    const worker = new Worker(
      name,
      async (job: BullJob) => {
        const controller = new AbortController();
        inflight.set(job, controller);
        if (job.id === undefined) {
          throw new Error(`BullMQ delivered a job without an id on queue ${name}`);
        }
        const outcome = await handler({
          id: job.id,
          queue: name,
          name: job.name,
          data: job.data as T,
          attemptsMade: job.attemptsMade,
          attempts: job.opts.attempts ?? 1,
          signal: controller.signal,
        }).then(
          () => ({ failed: false as const }),
          (err: unknown) => ({ failed: true as const, err }),
        );
        if (controller.signal.aborted) {
          // Abandoned by close(): whatever the handler did after the abort (typically
          // throwing), BullMQ must not record it, or an abandoned job would count as a
          // failed attempt. Never settling leaves the job active; its lock lapses and a
          // worker runs it again.
          return new Promise<never>(() => undefined);
        }
        if (outcome.failed) {
          throw outcome.err;
        }
      },
      {
        connection: this.workerConnection,
        prefix: this.prefix,
        concurrency,
        lockDuration: this.lockDuration,
        stalledInterval: this.stalledInterval,
        maxStalledCount: this.maxStalledCount,
      },
    );
    const processor: Processor = { worker, inflight, idleWaiters: [] };
    const settle = (job: BullJob | undefined): void => {
      if (job === undefined || !inflight.delete(job) || inflight.size > 0) {
        return;
      }
      const waiters = processor.idleWaiters;
      processor.idleWaiters = [];
      for (const resolve of waiters) {
        resolve();
      }
    };
    worker.on('completed', (job: BullJob) => settle(job));
    worker.on('failed', (job: BullJob | undefined) => settle(job));
    worker.on('error', (err: Error) => this.onError(err));
    this.processors.set(name, processor);
    await worker.waitUntilReady();
  }

  async health(): Promise<QueueHealth> {
    if (this.closing) {
      return { ok: false, backend: this.kind, error: 'closed' };
    }
    const started = performance.now();
    try {
      await withTimeout(
        this.connection.ping(),
        this.healthTimeout,
        `Redis did not answer PING in ${this.healthTimeout} ms`,
      );
      return { ok: true, backend: this.kind, latencyMs: performance.now() - started };
    } catch (err) {
      return { ok: false, backend: this.kind, error: errorMessage(err) };
    }
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closed ??= this.shutdown(options.timeout ?? DEFAULT_CLOSE_TIMEOUT_MS);
    return this.closed;
  }

  private assertOpen(): void {
    if (this.closing) {
      throw new QueueClosedError();
    }
  }

  private assertReadable(): void {
    if (this.stopped) {
      throw new QueueClosedError();
    }
  }

  private bullQueue(name: string): BullQueue {
    let queue = this.bullQueues.get(name);
    if (queue === undefined) {
      queue = new BullQueue(name, { connection: this.connection, prefix: this.prefix });
      queue.on('error', (err: Error) => this.onError(err));
      this.bullQueues.set(name, queue);
    }
    return queue;
  }

  private whenIdle(processor: Processor): Promise<void> {
    if (processor.inflight.size === 0) {
      return Promise.resolve();
    }
    return new Promise((resolve) => processor.idleWaiters.push(resolve));
  }

  private async shutdown(timeout: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + timeout;
    const processors = [...this.processors.values()];
    // Stop fetching first; jobs not fetched stay in Redis for the next worker.
    await Promise.all(
      processors.map(({ worker }) => worker.pause(true).catch((err: unknown) => this.onError(toError(err)))),
    );
    const drained = await settlesWithin(Promise.all(processors.map((p) => this.whenIdle(p))), timeout);
    await Promise.all(processors.map((p) => this.closeWorker(p, drained, deadline)));
    this.stopped = true;
    await Promise.all(
      [...this.bullQueues.values()].map((queue) => queue.close().catch((err: unknown) => this.onError(toError(err)))),
    );
    await settlesWithin(this.connection.quit(), QUIT_TIMEOUT_MS);
    this.connection.disconnect();
    this.workerConnection.disconnect();
  }

  private async closeWorker(processor: Processor, drained: boolean, deadline: number): Promise<void> {
    const abort = (): void => {
      for (const controller of processor.inflight.values()) {
        controller.abort(new QueueClosedError('The queue closed before this handler finished'));
      }
    };
    if (!drained) {
      // Force: BullMQ stops renewing the locks of the abandoned jobs without recording
      // a result; once a lock lapses, a worker's stalled check puts the job back to wait.
      abort();
      await processor.worker.close(true).catch((err: unknown) => this.onError(toError(err)));
      return;
    }
    // Graceful: a job fetched just as we paused is still run and recorded by close().
    const closing = processor.worker.close().catch((err: unknown) => this.onError(toError(err)));
    if (!(await settlesWithin(closing, Math.max(deadline - Date.now(), QUIT_TIMEOUT_MS)))) {
      // BullMQ cannot turn a graceful close into a forced one; ask the handler to stop.
      abort();
    }
  }
}
