/**
 * @packageDocumentation
 *
 * One job-queue port, two implementations with the same semantics: BullMQ on Redis
 * (`createBullmqQueue`) for the server, and an in-process queue (`createInProcessQueue`)
 * for the embedded default and the client-side node. `createQueueBackend` picks one from
 * the presence of a Redis URL. README.md states the semantics both implementations share.
 */

import { BullmqQueueBackend } from './bullmq-backend.js';
import { InProcessQueueBackend } from './in-process-backend.js';

export * from './errors.js';
export * from './constants.js';
export { backoffDelay } from './backoff.js';

/** Where a job is in its life: the same five states on both backends. */
export type JobState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed';

/** How long to wait before the next attempt of a failed job. */
export interface BackoffOptions {
  /** `fixed`: every retry waits `delay`; `exponential`: retry n waits `delay * 2^(n-1)`. */
  type: 'exponential' | 'fixed';
  /** Base delay in milliseconds. */
  delay: number;
}

/** Per-job options accepted by `add()` and `addBulk()`. */
export interface JobOptions {
  /**
   * Deduplication key: while a job with this id exists in the queue (waiting, delayed,
   * active, or kept as completed or failed) adding another with the same id is a no-op.
   * Must not be an integer and must not contain `:` (auto-generated ids are integers).
   */
  jobId?: string;
  /** Milliseconds before the job may first run. Default 0. */
  delay?: number;
  /** Total runs allowed, first run included. Default 1 (no retry). */
  attempts?: number;
  /** Wait between attempts. Without it a failed job is retried at once. */
  backoff?: BackoffOptions;
  /** Remove the job (freeing its id) when it completes. Default true. */
  removeOnComplete?: boolean;
  /** Remove the job (freeing its id) when its last attempt fails. Default false: kept as failed. */
  removeOnFail?: boolean;
}

/** The view of a job that a handler receives. */
export interface Job<T = unknown> {
  /** The job id (given as `jobId`, or generated: an integer string). */
  readonly id: string;
  /** The queue the job is in. */
  readonly queue: string;
  /** The job name given to `add()`; lets one queue carry several kinds of job. */
  readonly name: string;
  /** The job data, as a JSON round trip of what was added (a copy, never the caller's object). */
  readonly data: T;
  /** Attempts that failed before this one: 0 on the first run. */
  readonly attemptsMade: number;
  /** Total attempts allowed. */
  readonly attempts: number;
  /** Aborted when `close()` gives up waiting for this handler; long handlers should honour it. */
  readonly signal: AbortSignal;
}

/** Runs one job. Resolving completes it; throwing (or rejecting) fails this attempt. */
export type JobHandler<T = unknown> = (job: Job<T>) => Promise<void>;

/** One entry of `addBulk()`. */
export interface BulkJob<T = unknown> {
  /** Job name. */
  name: string;
  /** Job data, JSON-serialisable. */
  data: T;
  /** Job options. */
  options?: JobOptions;
}

/** How often a repeatable job runs. */
export interface RepeatOptions {
  /** Interval in milliseconds between iterations. */
  every: number;
}

/** The job a repeatable schedule produces at every iteration. */
export interface RepeatTemplate<T = unknown> {
  /** Job name of every iteration. */
  name: string;
  /** Job data of every iteration. */
  data: T;
  /** Options of every iteration; ids are assigned by the schedule, so no `jobId` or `delay`. */
  options?: Omit<JobOptions, 'jobId' | 'delay'>;
}

/** Number of jobs in each state. */
export interface JobCounts {
  /** Ready to run, waiting for a free handler slot (or for a processor). */
  waiting: number;
  /** Not due yet: added with a delay, or waiting out a retry backoff. */
  delayed: number;
  /** A handler is running them. */
  active: number;
  /** Completed and kept (only with `removeOnComplete: false`). */
  completed: number;
  /** Exhausted their attempts and kept (the default; `removeOnFail: true` drops them). */
  failed: number;
}

/** A handle on one named queue; cheap, and the same handle is returned for the same name. */
export interface Queue<T = unknown> {
  /** The queue name. */
  readonly name: string;
  /** Adds a job and resolves to its id; an existing job id makes this a no-op that resolves to that id. */
  add(name: string, data: T, options?: JobOptions): Promise<string>;
  /** Adds many jobs in one round trip; resolves to their ids in order (dedup applies per job). */
  addBulk(jobs: readonly BulkJob<T>[]): Promise<string[]>;
  /** The state of a job, or undefined when no job has that id (never added, or removed). */
  getState(jobId: string): Promise<JobState | undefined>;
  /** Removes a job that is not active, freeing its id; resolves false if it is active or absent. */
  remove(jobId: string): Promise<boolean>;
  /** Number of jobs in each state. */
  counts(): Promise<JobCounts>;
  /** Creates or replaces the repeatable schedule `schedulerId`: runs the template about every `every` ms. */
  upsertRepeatable(schedulerId: string, repeat: RepeatOptions, template: RepeatTemplate<T>): Promise<void>;
  /** Removes a repeatable schedule and its iteration not yet started; resolves false if there was none. */
  removeRepeatable(schedulerId: string): Promise<boolean>;
}

/** Options of `process()`. */
export interface ProcessOptions {
  /** Handlers of this queue that may run at once in this process. Default 1. */
  concurrency?: number;
}

/** What `health()` reports. It never throws. */
export interface QueueHealth {
  /** True when jobs can be added and processed. */
  ok: boolean;
  /** Which implementation answered. */
  backend: QueueBackendKind;
  /** Round trip of the PING to Redis (BullMQ only). */
  latencyMs?: number;
  /** Why it is not ok. */
  error?: string;
}

/** Options of `close()`. */
export interface CloseOptions {
  /** Milliseconds to wait for running handlers before aborting them. Default `DEFAULT_CLOSE_TIMEOUT_MS`. */
  timeout?: number;
}

/** The two implementations. */
export type QueueBackendKind = 'bullmq' | 'in-process';

/** The queue port: named queues, one processor per queue, health, and graceful shutdown. */
export interface QueueBackend {
  /** Which implementation this is. */
  readonly kind: QueueBackendKind;
  /** The handle on the queue `name` (created on first use). Throws InvalidQueueNameError. */
  queue<T = unknown>(name: string): Queue<T>;
  /**
   * Starts running `handler` for the jobs of queue `name`, at most `concurrency` at once;
   * resolves when it is ready to take jobs. One processor per queue per backend.
   */
  process<T = unknown>(name: string, handler: JobHandler<T>, options?: ProcessOptions): Promise<void>;
  /** Whether the backend can take and run jobs (BullMQ: a PING to Redis under a timeout). */
  health(): Promise<QueueHealth>;
  /**
   * Stops taking new jobs, waits for running handlers (up to the timeout, then aborts their
   * signals and stops waiting), and releases every connection and timer. Idempotent.
   */
  close(options?: CloseOptions): Promise<void>;
}

/** Called with errors that have no caller to throw to (Redis connection errors, BullMQ worker errors). */
export type QueueErrorListener = (error: Error) => void;

/** Options of the in-process queue. */
export interface InProcessQueueInit {
  /** Receives internal errors; there are few, since nothing here does I/O. */
  onError?: QueueErrorListener;
}

/** Options of the BullMQ queue. */
export interface BullmqQueueInit {
  /** Redis URL, e.g. `redis://127.0.0.1:6379`. */
  redisUrl: string;
  /** Key prefix; backends sharing a prefix share their queues. Default `DEFAULT_PREFIX`. */
  prefix?: string;
  /** Lock on an active job in ms; after a worker dies its job runs again once this lapses. */
  lockDuration?: number;
  /** How often to look for jobs whose worker died, in ms. */
  stalledInterval?: number;
  /** Recoveries from a dead worker allowed per job before it is marked failed. */
  maxStalledCount?: number;
  /** Timeout of the PING in `health()`, in ms. */
  healthTimeout?: number;
  /** Receives Redis and worker errors (the server passes its logger); ignored if absent. */
  onError?: QueueErrorListener;
}

/** Options of `createQueueBackend`. */
export interface QueueBackendInit {
  /** With a Redis URL: BullMQ; without: the in-process queue. */
  redisUrl?: string;
  /** Key prefix for BullMQ. */
  prefix?: string;
  /** Receives errors that have no caller. */
  onError?: QueueErrorListener;
}

/** Creates the memory-only queue (embedded default, client node). Jobs do not survive the process. */
export function createInProcessQueue(init: InProcessQueueInit = {}): QueueBackend {
  return new InProcessQueueBackend(init);
}

/** Creates the BullMQ queue on Redis; connections open in the background (see `health()`). */
export function createBullmqQueue(init: BullmqQueueInit): QueueBackend {
  return new BullmqQueueBackend(init);
}

/** Picks BullMQ when a Redis URL is given (non-empty), the in-process queue otherwise. */
export function createQueueBackend(init: QueueBackendInit = {}): QueueBackend {
  const { redisUrl, prefix, onError } = init;
  if (redisUrl !== undefined && redisUrl !== '') {
    return createBullmqQueue({ redisUrl, prefix, onError });
  }
  return createInProcessQueue({ onError });
}
