// Errors thrown by @polyhome/rooms. Checks of untrusted events never throw: they return a CheckResult.
// These are for callers that pass inputs which cannot make a valid event.

/** Thrown when buildEvent is asked for an event that cannot be built (missing create event, too many prev events). */
export class InvalidEventTemplateError extends Error {
  constructor(reason: string) {
    super(`Cannot build the event: ${reason}`);
    this.name = 'InvalidEventTemplateError';
  }
}
