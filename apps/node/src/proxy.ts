// `polyhome proxy`: a Matrix client on this machine uses a remote home of its account through libp2p. An HTTP
// server on 127.0.0.1 forwards every request over /polyhome/client/1.0.0 to one home, given as a multiaddr or
// found by user ID through the DHT (server homes first). A throwaway libp2p key: no data directory is needed.
import { ProxyListenError, ProxyOptionsError, runClientApiProxy } from '@polyhome/home';
import { CliError, EXIT_USAGE } from './errors.js';

/** Options of `polyhome proxy`. */
export interface ProxyOptions {
  /** `127.0.0.1:<port>` (only loopback: the Matrix API's tokens would cross the network in the clear otherwise). */
  listen: string;
  home?: string;
  user?: string;
  bootstrap: string[];
  maxBodyBytes: number;
  timeoutMs: number;
  onLine: (line: string) => void;
}

/** A running proxy. */
export interface RunningProxy {
  url: string;
  home: string;
  stop(): Promise<void>;
}

/** Parses `--listen`: a loopback host and a port. */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})$/.exec(value);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || port > 65535) {
    throw new CliError(
      `--listen ${value}: expected 127.0.0.1:<port> (0 picks a free port); the proxy listens on loopback only.`,
      EXIT_USAGE,
    );
  }
  return { host: match[1] === '[::1]' ? '::1' : '127.0.0.1', port };
}

/** Starts the proxy (libs/home's runClientApiProxy), its refusals as the CLI's errors. */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const listen = parseListen(options.listen);
  try {
    return await runClientApiProxy({
      ...(options.home === undefined ? {} : { home: options.home }),
      ...(options.user === undefined ? {} : { userId: options.user }),
      bootstrap: options.bootstrap,
      listenHost: listen.host,
      port: listen.port,
      maxBodyBytes: options.maxBodyBytes,
      timeoutMs: options.timeoutMs,
      onLine: options.onLine,
    });
  } catch (err) {
    if (err instanceof ProxyOptionsError) throw new CliError(err.message, EXIT_USAGE);
    if (err instanceof ProxyListenError) {
      throw new CliError(
        (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE'
          ? `Cannot listen on ${options.listen}: the port is in use. Stop the other process or choose another --listen.`
          : `Cannot listen on ${options.listen}: ${err.message}`,
      );
    }
    throw new CliError((err as Error).message);
  }
}
