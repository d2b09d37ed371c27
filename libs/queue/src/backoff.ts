import type { BackoffOptions } from './index.js';

/**
 * Milliseconds to wait before the next attempt, after `attemptsMade` failed attempts
 * (1 after the first failure). The same formula as BullMQ's built-in strategies, so the
 * in-process queue retries on the same schedule: fixed waits `delay` every time,
 * exponential waits `delay`, `2 * delay`, `4 * delay`, ...
 */
export function backoffDelay(backoff: BackoffOptions | undefined, attemptsMade: number): number {
  if (backoff === undefined) {
    return 0;
  }
  if (backoff.type === 'fixed') {
    return backoff.delay;
  }
  return Math.round(Math.pow(2, attemptsMade - 1) * backoff.delay);
}
