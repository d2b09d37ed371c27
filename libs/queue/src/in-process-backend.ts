import { backoffDelay } from './backoff.js';
import { DEFAULT_CLOSE_TIMEOUT_MS } from './constants.js';
import { ProcessorAlreadyRegisteredError, QueueClosedError } from './errors.js';
import { InProcessQueue } from './in-process-queue.js';
import type {
  BulkJob,
  CloseOptions,
  InProcessQueueInit,
  Job,
  JobCounts,
  JobHandler,
  JobOptions,
  JobState,
  ProcessOptions,
  Queue,
  QueueBackend,
  QueueErrorListener,
  QueueHealth,
  RepeatOptions,
  RepeatTemplate,
} from './index.js';
import { settlesWithin, toError } from './util.js';
import {
  type ResolvedJobOptions,
  resolveConcurrency,
  resolveJobOptions,
  serializeData,
  validateJobName,
  validateQueueName,
  validateRepeat,
} from './validation.js';

/** One job as the in-process queue holds it. */
interface JobRecord {
  readonly id: string;
  readonly queue: string;
  readonly name: string;
  /** Data kept as JSON, as BullMQ keeps it: every run parses a fresh copy. */
  readonly json: string;
  readonly options: ResolvedJobOptions;
  state: JobState;
  attemptsMade: number;
  /** When a delayed job becomes due (ms since epoch). */
  dueAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Set on iterations of a repeatable schedule. */
  readonly schedulerId: string | undefined;
}

interface Processor {
  readonly handler: JobHandler<unknown>;
  readonly concurrency: number;
  running: number;
}

interface Scheduler {
  readonly id: string;
  readonly every: number;
  readonly name: string;
  readonly json: string;
  readonly options: ResolvedJobOptions;
  /** The iteration not yet started; at most one, as with BullMQ job schedulers. */
  pendingJobId: string | undefined;
}

interface QueueState {
  readonly name: string;
  readonly jobs: Map<string, JobRecord>;
  /** FIFO of ready jobs: a Set keeps insertion order and removes in O(1). */
  readonly waiting: Set<JobRecord>;
  readonly schedulers: Map<string, Scheduler>;
  processor: Processor | undefined;
  lastId: number;
}

/**
 * The memory-only implementation of the queue port, with BullMQ's semantics (README.md).
 * Nothing survives the process: acceptable because delivery state is re-derived from the
 * database on start. `close()` runs the jobs already waiting before it resolves, since
 * for this backend there is no later.
 */
export class InProcessQueueBackend implements QueueBackend {
  readonly kind = 'in-process';

  private readonly states = new Map<string, QueueState>();
  private readonly handles = new Map<string, InProcessQueue<unknown>>();
  private readonly running = new Set<AbortController>();
  private idleWaiters: Array<() => void> = [];
  private readonly onError: QueueErrorListener;
  /** close() was called: no more writes. */
  private closing = false;
  /** close() finished (or gave up draining): nothing starts any more. */
  private stopped = false;
  private closed: Promise<void> | undefined;

  constructor(init: InProcessQueueInit = {}) {
    this.onError = init.onError ?? (() => undefined);
  }

  queue<T = unknown>(name: string): Queue<T> {
    validateQueueName(name);
    let handle = this.handles.get(name);
    if (handle === undefined) {
      handle = new InProcessQueue<unknown>(this, name);
      this.handles.set(name, handle);
    }
    return handle as Queue<T>;
  }

  async process<T = unknown>(name: string, handler: JobHandler<T>, options: ProcessOptions = {}): Promise<void> {
    validateQueueName(name);
    const concurrency = resolveConcurrency(options);
    this.assertOpen();
    const state = this.state(name);
    if (state.processor !== undefined) {
      throw new ProcessorAlreadyRegisteredError(`Queue ${name} already has a processor`);
    }
    state.processor = { handler: handler as JobHandler<unknown>, concurrency, running: 0 };
    this.pump(state);
  }

  async health(): Promise<QueueHealth> {
    if (this.closing) {
      return { ok: false, backend: this.kind, error: 'closed' };
    }
    return { ok: true, backend: this.kind };
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.closed ??= this.shutdown(options.timeout ?? DEFAULT_CLOSE_TIMEOUT_MS);
    return this.closed;
  }

  // ---- operations of the queue handles (InProcessQueue) ----

  /** Adds a validated job; a taken id is a no-op. */
  add(queue: string, name: string, data: unknown, options: JobOptions | undefined): string {
    this.assertOpen();
    validateJobName(name);
    const json = serializeData(data);
    const resolved = resolveJobOptions(options);
    return this.insert(this.state(queue), name, json, resolved, undefined);
  }

  /** Adds many jobs: all are validated before any is added, as BullMQ does. */
  addBulk(queue: string, jobs: readonly BulkJob<unknown>[]): string[] {
    this.assertOpen();
    const prepared = jobs.map((job) => {
      validateJobName(job.name);
      return { name: job.name, json: serializeData(job.data), options: resolveJobOptions(job.options) };
    });
    const state = this.state(queue);
    return prepared.map((job) => this.insert(state, job.name, job.json, job.options, undefined));
  }

  /** State of a job, undefined if absent. */
  getState(queue: string, jobId: string): JobState | undefined {
    this.assertReadable();
    return this.states.get(queue)?.jobs.get(jobId)?.state;
  }

  /** Removes a job unless it is running. */
  remove(queue: string, jobId: string): boolean {
    this.assertOpen();
    const state = this.states.get(queue);
    const record = state?.jobs.get(jobId);
    if (state === undefined || record === undefined || record.state === 'active') {
      return false;
    }
    this.drop(state, record);
    return true;
  }

  /** Jobs per state. */
  counts(queue: string): JobCounts {
    this.assertReadable();
    const counts: JobCounts = { waiting: 0, delayed: 0, active: 0, completed: 0, failed: 0 };
    for (const record of this.states.get(queue)?.jobs.values() ?? []) {
      counts[record.state] += 1;
    }
    return counts;
  }

  /** Creates or replaces a schedule and adds its first iteration, due now. */
  upsertRepeatable(queue: string, schedulerId: string, repeat: RepeatOptions, template: RepeatTemplate<unknown>): void {
    this.assertOpen();
    validateRepeat(schedulerId, repeat);
    validateJobName(template.name);
    const scheduler: Scheduler = {
      id: schedulerId,
      every: repeat.every,
      name: template.name,
      json: serializeData(template.data),
      options: resolveJobOptions(template.options),
      pendingJobId: undefined,
    };
    const state = this.state(queue);
    this.dropPendingIteration(state, schedulerId);
    state.schedulers.set(schedulerId, scheduler);
    this.addIteration(state, scheduler, Date.now());
  }

  /** Removes a schedule and its iteration not yet started. */
  removeRepeatable(queue: string, schedulerId: string): boolean {
    this.assertOpen();
    const state = this.states.get(queue);
    if (state === undefined || !state.schedulers.has(schedulerId)) {
      return false;
    }
    this.dropPendingIteration(state, schedulerId);
    state.schedulers.delete(schedulerId);
    return true;
  }

  // ---- internals ----

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

  private state(name: string): QueueState {
    let state = this.states.get(name);
    if (state === undefined) {
      state = {
        name,
        jobs: new Map(),
        waiting: new Set(),
        schedulers: new Map(),
        processor: undefined,
        lastId: 0,
      };
      this.states.set(name, state);
    }
    return state;
  }

  private insert(
    state: QueueState,
    name: string,
    json: string,
    options: ResolvedJobOptions,
    schedulerId: string | undefined,
    id?: string,
  ): string {
    const jobId = id ?? options.jobId ?? String(++state.lastId);
    if (state.jobs.has(jobId)) {
      // Dedup: the id is taken by a job in any state, as in BullMQ.
      return jobId;
    }
    const record: JobRecord = {
      id: jobId,
      queue: state.name,
      name,
      json,
      options,
      state: 'waiting',
      attemptsMade: 0,
      dueAt: Date.now() + options.delay,
      timer: undefined,
      schedulerId,
    };
    state.jobs.set(jobId, record);
    this.schedule(state, record, options.delay);
    return jobId;
  }

  /** Makes a job waiting now, or delayed for `delay` ms. */
  private schedule(state: QueueState, record: JobRecord, delay: number): void {
    if (delay <= 0) {
      record.state = 'waiting';
      state.waiting.add(record);
      this.pump(state);
      return;
    }
    record.state = 'delayed';
    record.dueAt = Date.now() + delay;
    record.timer = setTimeout(() => {
      record.timer = undefined;
      record.state = 'waiting';
      state.waiting.add(record);
      this.pump(state);
    }, delay);
  }

  /** Starts waiting jobs while the processor has free slots. */
  private pump(state: QueueState): void {
    const processor = state.processor;
    if (processor === undefined || this.stopped) {
      return;
    }
    while (processor.running < processor.concurrency) {
      const next = state.waiting.values().next();
      if (next.done === true) {
        return;
      }
      this.start(state, processor, next.value);
    }
  }

  private start(state: QueueState, processor: Processor, record: JobRecord): void {
    state.waiting.delete(record);
    record.state = 'active';
    processor.running += 1;
    if (record.schedulerId !== undefined) {
      // BullMQ creates a schedule's next iteration when the current one starts.
      this.nextIteration(state, record);
    }
    const controller = new AbortController();
    this.running.add(controller);
    const job: Job<unknown> = {
      id: record.id,
      queue: record.queue,
      name: record.name,
      data: JSON.parse(record.json) as unknown,
      attemptsMade: record.attemptsMade,
      attempts: record.options.attempts,
      signal: controller.signal,
    };
    void this.run(state, processor, record, job, controller);
  }

  private async run(
    state: QueueState,
    processor: Processor,
    record: JobRecord,
    job: Job<unknown>,
    controller: AbortController,
  ): Promise<void> {
    let failed = false;
    try {
      await processor.handler(job);
    } catch {
      // The error itself is not kept: the port exposes only that the attempt failed.
      failed = true;
    }
    processor.running -= 1;
    this.running.delete(controller);
    try {
      if (failed) {
        this.fail(state, record);
      } else if (record.options.removeOnComplete) {
        state.jobs.delete(record.id);
      } else {
        record.state = 'completed';
      }
      this.pump(state);
    } catch (err) {
      this.onError(toError(err));
    }
    this.notifyIfIdle();
  }

  private fail(state: QueueState, record: JobRecord): void {
    record.attemptsMade += 1;
    if (record.attemptsMade < record.options.attempts) {
      this.schedule(state, record, backoffDelay(record.options.backoff, record.attemptsMade));
      return;
    }
    if (record.options.removeOnFail) {
      state.jobs.delete(record.id);
    } else {
      record.state = 'failed';
    }
  }

  /** Removes a job that is not running, with its timer. */
  private drop(state: QueueState, record: JobRecord): void {
    clearTimeout(record.timer);
    record.timer = undefined;
    state.waiting.delete(record);
    state.jobs.delete(record.id);
  }

  private addIteration(state: QueueState, scheduler: Scheduler, dueAt: number): void {
    // Iteration ids follow BullMQ's `repeat:<scheduler>:<millis>`; the `:` keeps them
    // apart from any caller-chosen id, which may not contain one.
    const id = `repeat:${scheduler.id}:${dueAt}`;
    const options = { ...scheduler.options, jobId: undefined, delay: Math.max(0, dueAt - Date.now()) };
    // Set before insert(): a due iteration starts inside insert(), and its start looks this up.
    scheduler.pendingJobId = id;
    this.insert(state, scheduler.name, scheduler.json, options, scheduler.id, id);
  }

  private nextIteration(state: QueueState, record: JobRecord): void {
    const scheduler = record.schedulerId === undefined ? undefined : state.schedulers.get(record.schedulerId);
    if (scheduler === undefined || scheduler.pendingJobId !== record.id) {
      return;
    }
    const dueAt = Math.max(record.dueAt + scheduler.every, Date.now());
    this.addIteration(state, scheduler, dueAt);
  }

  private dropPendingIteration(state: QueueState, schedulerId: string): void {
    const pending = state.schedulers.get(schedulerId)?.pendingJobId;
    const record = pending === undefined ? undefined : state.jobs.get(pending);
    if (record !== undefined && record.state !== 'active') {
      this.drop(state, record);
    }
  }

  private isIdle(): boolean {
    for (const state of this.states.values()) {
      const processor = state.processor;
      if (processor !== undefined && (processor.running > 0 || state.waiting.size > 0)) {
        return false;
      }
    }
    return true;
  }

  private notifyIfIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) {
      return;
    }
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) {
      resolve();
    }
  }

  /** Resolves when no handler runs and no processed queue has a waiting job. */
  private whenIdle(): Promise<void> {
    if (this.isIdle()) {
      return Promise.resolve();
    }
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async shutdown(timeout: number): Promise<void> {
    this.closing = true;
    // Jobs already waiting are run now: in memory there is no later in which to run them.
    const drained = await settlesWithin(this.whenIdle(), timeout);
    this.stopped = true;
    if (!drained) {
      for (const controller of this.running) {
        controller.abort(new QueueClosedError('The queue closed before this handler finished'));
      }
    }
    this.idleWaiters = [];
    for (const state of this.states.values()) {
      for (const record of state.jobs.values()) {
        clearTimeout(record.timer);
        record.timer = undefined;
      }
    }
  }
}
