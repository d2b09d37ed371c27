// The node's log: one line each through the same `onLine` as its progress messages (stdout under `start`).
import type { P2pLogger } from '@polyhome/p2p';

/** Writes info, warn and error as `<level>: <msg> key=value ...` lines; debug is dropped (routine noise on a laptop). */
export function lineLogger(write: (line: string) => void): P2pLogger {
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, msg: string): void => {
      const rest = Object.entries(fields)
        .filter(([, value]) => value !== undefined)
        .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
      write([`${level}: ${msg}`, ...rest].join(' '));
    };
  return { debug: () => undefined, info: at('info'), warn: at('warn'), error: at('error') };
}
