/** Key prefix under which the BullMQ backend keeps its Redis keys (`<prefix>:<queue>:...`). */
export const DEFAULT_PREFIX = 'polyhome';

/** Handlers a processor runs at once when `process()` is given no `concurrency`. */
export const DEFAULT_CONCURRENCY = 1;

/** Attempts a job gets when `add()` is given none: one run, no retry (BullMQ's own default). */
export const DEFAULT_ATTEMPTS = 1;

/**
 * Completed jobs are removed by default, so their job id is free again: a delivery job
 * re-triggered after it completed must run again, not be deduplicated against history.
 */
export const DEFAULT_REMOVE_ON_COMPLETE = true;

/** Failed jobs (attempts exhausted) are kept by default, so they stay visible in `counts()`. */
export const DEFAULT_REMOVE_ON_FAIL = false;

/** How long `close()` waits for running handlers before aborting them. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/** How long `health()` waits for Redis to answer a PING before reporting unhealthy. */
export const DEFAULT_HEALTH_TIMEOUT_MS = 1_000;

/** BullMQ lock on an active job; a job whose lock lapses (its worker died) is run again. */
export const DEFAULT_LOCK_DURATION_MS = 30_000;

/** How often BullMQ looks for active jobs whose worker died. */
export const DEFAULT_STALLED_INTERVAL_MS = 30_000;

/**
 * Times a job may be recovered after its worker died before BullMQ marks it failed.
 * Above BullMQ's default of 1 because a deploy that restarts workers mid-job is a stall,
 * and two deploys in a row must not fail a delivery job.
 */
export const DEFAULT_MAX_STALLED_COUNT = 3;

/** Longest queue name, job id, or job name accepted (they become parts of Redis keys). */
export const MAX_NAME_LENGTH = 256;
