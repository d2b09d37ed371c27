import type { InProcessQueueBackend } from './in-process-backend.js';
import type { BulkJob, JobCounts, JobOptions, JobState, Queue, RepeatOptions, RepeatTemplate } from './index.js';

/**
 * A handle on one queue of the in-process backend. The backend does the work
 * synchronously; the handle makes every call async so callers treat both backends alike
 * (and a validation error arrives as a rejection on both).
 */
export class InProcessQueue<T = unknown> implements Queue<T> {
  constructor(
    private readonly backend: InProcessQueueBackend,
    readonly name: string,
  ) {}

  async add(name: string, data: T, options?: JobOptions): Promise<string> {
    return this.backend.add(this.name, name, data, options);
  }

  async addBulk(jobs: readonly BulkJob<T>[]): Promise<string[]> {
    return this.backend.addBulk(this.name, jobs);
  }

  async getState(jobId: string): Promise<JobState | undefined> {
    return this.backend.getState(this.name, jobId);
  }

  async remove(jobId: string): Promise<boolean> {
    return this.backend.remove(this.name, jobId);
  }

  async counts(): Promise<JobCounts> {
    return this.backend.counts(this.name);
  }

  async upsertRepeatable(schedulerId: string, repeat: RepeatOptions, template: RepeatTemplate<T>): Promise<void> {
    this.backend.upsertRepeatable(this.name, schedulerId, repeat, template);
  }

  async removeRepeatable(schedulerId: string): Promise<boolean> {
    return this.backend.removeRepeatable(this.name, schedulerId);
  }
}
