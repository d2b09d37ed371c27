/** Thrown when the remote server answered an enrollment with an error (`errcode` and `error` are its own). */
export class EnrollmentRefusedError extends Error {
  constructor(
    readonly errcode: string,
    readonly error: string,
  ) {
    super(`enrollment refused: ${errcode}: ${error}`);
    this.name = 'EnrollmentRefusedError';
  }
}

/** Thrown when the remote server's answer is not an enrollment answer (malformed, too large, or none). */
export class EnrollmentProtocolError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EnrollmentProtocolError';
  }
}
