import {
  DEFAULT_ATTEMPTS,
  DEFAULT_CONCURRENCY,
  DEFAULT_REMOVE_ON_COMPLETE,
  DEFAULT_REMOVE_ON_FAIL,
  MAX_NAME_LENGTH,
} from './constants.js';
import { InvalidJobDataError, InvalidJobIdError, InvalidJobOptionsError, InvalidQueueNameError } from './errors.js';
import type { BackoffOptions, JobOptions, ProcessOptions, RepeatOptions } from './index.js';

// Both backends validate through these functions, so a call refused by one is refused
// by the other: a test that passes on the in-process queue cannot fail on BullMQ for
// input BullMQ would have rejected.

const QUEUE_NAME = /^[A-Za-z0-9._-]+$/;

/** Job options with every default filled in. */
export interface ResolvedJobOptions {
  jobId: string | undefined;
  delay: number;
  attempts: number;
  backoff: BackoffOptions | undefined;
  removeOnComplete: boolean;
  removeOnFail: boolean;
}

/** Checks a queue name: BullMQ forbids `:` and the name becomes part of Redis keys. */
export function validateQueueName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH || !QUEUE_NAME.test(name)) {
    throw new InvalidQueueNameError(
      `Queue name must be 1 to ${MAX_NAME_LENGTH} characters of A-Z a-z 0-9 . _ -, got ${JSON.stringify(name)}`,
    );
  }
}

/** Checks a caller-chosen job or scheduler id against BullMQ's rules for custom ids. */
export function validateJobId(id: string): void {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_NAME_LENGTH) {
    throw new InvalidJobIdError(`Job id must be 1 to ${MAX_NAME_LENGTH} characters`);
  }
  if (id.includes(':')) {
    throw new InvalidJobIdError(`Job id must not contain ':', got ${JSON.stringify(id)}`);
  }
  // Generated ids are integers: a custom integer id could collide with one.
  if (`${parseInt(id, 10)}` === id) {
    throw new InvalidJobIdError(`Job id must not be an integer, got ${JSON.stringify(id)}`);
  }
}

/** Checks a job name (free text, but not empty). */
export function validateJobName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new InvalidJobDataError(`Job name must be 1 to ${MAX_NAME_LENGTH} characters`);
  }
}

/**
 * Serialises job data as BullMQ stores it. The in-process queue hands handlers the parsed
 * copy, so a Date becomes a string and an undefined field disappears on both backends.
 */
export function serializeData(data: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw new InvalidJobDataError(`Job data is not JSON-serialisable: ${(err as Error).message}`);
  }
  if (json === undefined) {
    throw new InvalidJobDataError('Job data must be a JSON value, got undefined or a function');
  }
  return json;
}

function isNonNegativeFinite(value: number): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** Validates job options and fills in the defaults. */
export function resolveJobOptions(options: JobOptions = {}): ResolvedJobOptions {
  const { jobId, delay = 0, attempts = DEFAULT_ATTEMPTS, backoff } = options;
  if (jobId !== undefined) {
    validateJobId(jobId);
  }
  if (!isNonNegativeFinite(delay)) {
    throw new InvalidJobOptionsError(`delay must be a finite number >= 0, got ${delay}`);
  }
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new InvalidJobOptionsError(`attempts must be an integer >= 1, got ${attempts}`);
  }
  if (backoff !== undefined) {
    if (backoff.type !== 'exponential' && backoff.type !== 'fixed') {
      throw new InvalidJobOptionsError(`backoff.type must be 'exponential' or 'fixed', got ${String(backoff.type)}`);
    }
    if (!isNonNegativeFinite(backoff.delay)) {
      throw new InvalidJobOptionsError(`backoff.delay must be a finite number >= 0, got ${backoff.delay}`);
    }
  }
  return {
    jobId,
    delay,
    attempts,
    backoff: backoff === undefined ? undefined : { type: backoff.type, delay: backoff.delay },
    removeOnComplete: options.removeOnComplete ?? DEFAULT_REMOVE_ON_COMPLETE,
    removeOnFail: options.removeOnFail ?? DEFAULT_REMOVE_ON_FAIL,
  };
}

/** Validates `process()` options and returns the concurrency. */
export function resolveConcurrency(options: ProcessOptions = {}): number {
  const { concurrency = DEFAULT_CONCURRENCY } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new InvalidJobOptionsError(`concurrency must be an integer >= 1, got ${concurrency}`);
  }
  return concurrency;
}

/** Validates repeat options. */
export function validateRepeat(schedulerId: string, repeat: RepeatOptions): void {
  validateJobId(schedulerId);
  if (typeof repeat.every !== 'number' || !Number.isInteger(repeat.every) || repeat.every < 1) {
    throw new InvalidJobOptionsError(`repeat.every must be an integer >= 1 (ms), got ${repeat.every}`);
  }
}
