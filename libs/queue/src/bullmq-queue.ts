import type { JobsOptions, Queue as BullQueue } from 'bullmq';
import type { BulkJob, JobCounts, JobOptions, JobState, Queue, RepeatOptions, RepeatTemplate } from './index.js';
import {
  type ResolvedJobOptions,
  resolveJobOptions,
  serializeData,
  validateJobName,
  validateRepeat,
} from './validation.js';

/** BullMQ's job options for our resolved options. */
function toBullOptions(options: ResolvedJobOptions): JobsOptions {
  return {
    jobId: options.jobId,
    delay: options.delay,
    attempts: options.attempts,
    backoff: options.backoff,
    removeOnComplete: options.removeOnComplete,
    removeOnFail: options.removeOnFail,
  };
}

/** Our five states for BullMQ's; `unknown` means no such job. */
function toJobState(state: string): JobState | undefined {
  switch (state) {
    case 'waiting':
    case 'wait':
    case 'prioritized':
    case 'waiting-children':
      return 'waiting';
    case 'delayed':
    case 'active':
    case 'completed':
    case 'failed':
      return state;
    default:
      return undefined;
  }
}

/** A handle on one BullMQ queue, validating input exactly as the in-process queue does. */
export class BullmqQueue<T = unknown> implements Queue<T> {
  constructor(
    private readonly queue: BullQueue,
    private readonly assertOpen: () => void,
    private readonly assertReadable: () => void,
  ) {}

  get name(): string {
    return this.queue.name;
  }

  async add(name: string, data: T, options?: JobOptions): Promise<string> {
    this.assertOpen();
    validateJobName(name);
    serializeData(data);
    const job = await this.queue.add(name, data, toBullOptions(resolveJobOptions(options)));
    return this.idOf(job.id);
  }

  async addBulk(jobs: readonly BulkJob<T>[]): Promise<string[]> {
    this.assertOpen();
    const prepared = jobs.map((job) => {
      validateJobName(job.name);
      serializeData(job.data);
      return { name: job.name, data: job.data, opts: toBullOptions(resolveJobOptions(job.options)) };
    });
    const added = await this.queue.addBulk(prepared);
    return added.map((job) => this.idOf(job.id));
  }

  async getState(jobId: string): Promise<JobState | undefined> {
    this.assertReadable();
    return toJobState(await this.queue.getJobState(jobId));
  }

  async remove(jobId: string): Promise<boolean> {
    this.assertOpen();
    // BullMQ's remove answers 1 for an unknown id too, so ask first; it answers 0 for an
    // active (locked) job.
    if ((await this.queue.getJobState(jobId)) === 'unknown') {
      return false;
    }
    return (await this.queue.remove(jobId)) === 1;
  }

  async counts(): Promise<JobCounts> {
    this.assertReadable();
    const c = await this.queue.getJobCounts(
      'wait',
      'prioritized',
      'waiting-children',
      'delayed',
      'active',
      'completed',
      'failed',
    );
    const n = (key: string): number => c[key] ?? 0;
    return {
      waiting: n('wait') + n('prioritized') + n('waiting-children'),
      delayed: n('delayed'),
      active: n('active'),
      completed: n('completed'),
      failed: n('failed'),
    };
  }

  async upsertRepeatable(schedulerId: string, repeat: RepeatOptions, template: RepeatTemplate<T>): Promise<void> {
    this.assertOpen();
    validateRepeat(schedulerId, repeat);
    validateJobName(template.name);
    serializeData(template.data);
    const options = toBullOptions(resolveJobOptions(template.options));
    delete options.jobId;
    delete options.delay;
    await this.queue.upsertJobScheduler(
      schedulerId,
      { every: repeat.every },
      { name: template.name, data: template.data, opts: options },
    );
  }

  async removeRepeatable(schedulerId: string): Promise<boolean> {
    this.assertOpen();
    return this.queue.removeJobScheduler(schedulerId);
  }

  private idOf(id: string | undefined): string {
    if (id === undefined) {
      // BullMQ always sets the id of an added job; this guards its optional type.
      throw new Error(`BullMQ returned a job without an id on queue ${this.queue.name}`);
    }
    return id;
  }
}
