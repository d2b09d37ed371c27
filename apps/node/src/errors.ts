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

/**
 * A storage failure told as what to do: a full disk or a read-only data directory is the user's to fix, and the
 * database refused the write as a whole (its transaction rolled back), so nothing half-written is left.
 * Returns undefined for other errors.
 */
export function storageProblem(err: unknown, dir: string): CliError | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const text = err instanceof Error ? err.message : String(err);
  if (code === 'ENOSPC' || /no space left on device/i.test(text)) {
    return new CliError(
      `The disk holding ${dir} is full: free some space and run the command again (nothing was changed).`,
    );
  }
  if (code === 'EROFS' || /read-only file system/i.test(text)) {
    return new CliError(
      `${dir} is on a read-only file system: make it writable and run the command again (nothing was changed).`,
    );
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new CliError(`No permission to write in ${dir}: run as the user who owns it (nothing was changed).`);
  }
  return undefined;
}
