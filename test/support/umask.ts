// Starting a child process under a given umask: node cannot set one for a child, so a shell sets it and then
// becomes the process (`exec`), whose pid, signals and exit code are then node's.

/** The command and arguments that run `process.execPath args...` under `umask` (as is when undefined). */
export function nodeCommand(args: string[], umask?: number): [string, string[]] {
  if (umask === undefined) return [process.execPath, args];
  const mask = umask.toString(8).padStart(3, '0');
  return ['/bin/sh', ['-c', `umask ${mask} && exec "$@"`, 'sh', process.execPath, ...args]];
}
