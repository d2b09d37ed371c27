/** Exit code of a failed command. */
export const EXIT_FAILURE = 1;

/** Exit code of a command line that is wrong (unknown option, bad value). */
export const EXIT_USAGE = 2;

/** A failure the CLI reports as one line (what went wrong and what to do next), with its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
