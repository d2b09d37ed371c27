/** Thrown when a queue is used (add, process, read) after `close()` was called on its backend. */
export class QueueClosedError extends Error {
  constructor(message = 'The queue backend is closed') {
    super(message);
    this.name = 'QueueClosedError';
  }
}

/** Thrown when a queue name is empty, too long, or has characters other than `A-Z a-z 0-9 . _ -`. */
export class InvalidQueueNameError extends Error {
  constructor(message = 'Invalid queue name') {
    super(message);
    this.name = 'InvalidQueueNameError';
  }
}

/** Thrown when a job id or scheduler id is empty, too long, contains `:`, or is an integer (BullMQ reserves those). */
export class InvalidJobIdError extends Error {
  constructor(message = 'Invalid job id') {
    super(message);
    this.name = 'InvalidJobIdError';
  }
}

/** Thrown when job options are out of range (negative delay, attempts below 1, unknown backoff type, ...). */
export class InvalidJobOptionsError extends Error {
  constructor(message = 'Invalid job options') {
    super(message);
    this.name = 'InvalidJobOptionsError';
  }
}

/** Thrown when job data cannot be stored as JSON (undefined, a BigInt, a cycle) or the job name is empty. */
export class InvalidJobDataError extends Error {
  constructor(message = 'Invalid job data') {
    super(message);
    this.name = 'InvalidJobDataError';
  }
}

/** Thrown when `process()` is called a second time for the same queue on one backend. */
export class ProcessorAlreadyRegisteredError extends Error {
  constructor(message = 'A processor is already registered for this queue') {
    super(message);
    this.name = 'ProcessorAlreadyRegisteredError';
  }
}
