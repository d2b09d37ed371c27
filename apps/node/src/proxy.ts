// `polyhome proxy`: a Matrix client on this machine uses a remote home of its account through libp2p. An HTTP
// server on 127.0.0.1 forwards every request over /polyhome/client/1.0.0 to one home, given as a multiaddr or
// found by user ID through the DHT (server homes first). A throwaway libp2p key: no data directory is needed.
import { chooseHome, startClientApiProxy } from '@polyhome/home';
import { generateKeyPair } from '@polyhome/identity';
import { createPolyhomeHost, isPeerMultiaddr } from '@polyhome/p2p';
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

/** Starts the proxy: a libp2p host, the chosen home, the HTTP server. */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const listen = parseListen(options.listen);
  if ((options.home === undefined) === (options.user === undefined)) {
    throw new CliError('Give one of --home MULTIADDR or --user USER_ID (with --bootstrap MULTIADDR).', EXIT_USAGE);
  }
  if (options.home !== undefined && !isPeerMultiaddr(options.home)) {
    throw new CliError(
      `--home ${options.home}: not a peer's multiaddr; give one ending in /p2p/<PeerId>, like /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW...`,
      EXIT_USAGE,
    );
  }
  const wrong = options.bootstrap.find((addr) => !isPeerMultiaddr(addr));
  if (wrong !== undefined) {
    throw new CliError(`--bootstrap ${wrong}: not a peer's multiaddr; give one ending in /p2p/<PeerId>.`, EXIT_USAGE);
  }
  if (options.user !== undefined && options.bootstrap.length === 0) {
    throw new CliError(
      '--user needs --bootstrap MULTIADDR: a peer of the DHT to look the account up from.',
      EXIT_USAGE,
    );
  }
  const host = await createPolyhomeHost({
    nodeKey: generateKeyPair().secretKey,
    listen: [],
    bootstrap: options.bootstrap,
  });
  try {
    let discovery;
    if (options.user !== undefined) {
      if (host.getConnections().length === 0) {
        throw new CliError(`Cannot reach any bootstrap peer (${options.bootstrap.join(', ')}): check the addresses.`);
      }
      const { discoveryOf } = await import('@polyhome/home');
      discovery = discoveryOf(host);
    }
    const chosen = await chooseHome(
      host,
      discovery,
      { home: options.home, userId: options.user },
      options.timeoutMs,
    ).catch((err: unknown) => {
      throw new CliError((err as Error).message);
    });
    const proxy = await startClientApiProxy({
      host,
      home: chosen.peerId,
      listenHost: listen.host,
      port: listen.port,
      maxBodyBytes: options.maxBodyBytes,
      onLine: options.onLine,
    }).catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CliError(
        code === 'EADDRINUSE'
          ? `Cannot listen on ${options.listen}: the port is in use. Stop the other process or choose another --listen.`
          : `Cannot listen on ${options.listen}: ${(err as Error).message}`,
      );
    });
    return {
      url: proxy.url,
      home: chosen.peerId.toString(),
      stop: async () => {
        await proxy.close();
        await host.stop();
      },
    };
  } catch (err) {
    await host.stop();
    throw err;
  }
}
