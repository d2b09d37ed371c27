// The Matrix client API over libp2p (`/polyhome/client/1.0.0`), both ends:
// - a home's gateway: each request that passed the wire's checks (libs/p2p client-protocol) is forwarded to the
//   home's own Matrix client API over HTTP on its local listener, which checks the access token as for any
//   client (so only the home's own accounts' clients get anywhere);
// - `polyhome proxy`: an HTTP server on 127.0.0.1 that sends every request to one chosen home of an account over
//   libp2p and writes back its answer.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr } from '@multiformats/multiaddr';
import {
  CLIENT_API_MAX_BODY_BYTES,
  CLIENT_API_MAX_RESPONSE_BYTES,
  ClientApiError,
  clientApiRequest,
  createClientApiServer,
  type ClientApiRequest,
  type ClientApiResponse,
  type ClientApiServer,
  type Discovery,
  type HeaderPairs,
  type PolyhomeHost,
  createPolyhomeHost,
  isPeerMultiaddr,
} from '@polyhome/p2p';
import { generateKeyPair } from '@polyhome/identity';
import { DEFAULT_HTTP_LIMITS, hardenHttpServer } from './http-limits.js';
import { SILENT_LOGGER, type HomeLogger } from './ports.js';
import { discoveryOf } from './transient-host.js';

/** Options of serveClientApi. */
export interface ClientApiGatewayInit {
  /** The home's Matrix client API, e.g. `http://127.0.0.1:8008` (no trailing slash). */
  url: string;
  /** Largest request body, bytes (the home's media upload cap; default CLIENT_API_MAX_BODY_BYTES). */
  maxBodyBytes?: number;
  logger?: HomeLogger;
}

/**
 * Serves `/polyhome/client/1.0.0` on a home's libp2p host by forwarding to its Matrix client API at `url`;
 * started on return. Only `/_matrix/client/`, `/_matrix/media/` and `/.well-known/matrix/client` get through.
 */
export async function serveClientApi(host: PolyhomeHost, init: ClientApiGatewayInit): Promise<ClientApiServer> {
  const base = init.url.replace(/\/+$/, '');
  const server = createClientApiServer(host, {
    forward: (request) => forwardToHttp(base, request),
    maxBodyBytes: init.maxBodyBytes ?? CLIENT_API_MAX_BODY_BYTES,
    logger: init.logger ?? SILENT_LOGGER,
  });
  await server.start();
  return server;
}

/** The local URL a home's client API listens on, from the host and port it was told to listen on. */
export function localUrlOf(host: string, port: number): string {
  if (host === '' || host === '0.0.0.0') return `http://127.0.0.1:${port}`;
  if (host === '::' || host === '[::]') return `http://[::1]:${port}`;
  return host.includes(':') && !host.startsWith('[') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
}

async function forwardToHttp(base: string, request: ClientApiRequest): Promise<ClientApiResponse> {
  const headers = new Headers(request.headers);
  // The answer is carried as it comes: no compression to undo.
  headers.set('accept-encoding', 'identity');
  const hasBody = request.body !== undefined && request.method !== 'GET' && request.method !== 'HEAD';
  const answer = await fetch(`${base}${request.target}`, {
    method: request.method,
    headers,
    body: hasBody ? request.body : undefined,
    redirect: 'manual',
    signal: request.signal,
  });
  const declared = Number(answer.headers.get('content-length') ?? '0');
  if (declared > CLIENT_API_MAX_RESPONSE_BYTES) {
    await answer.body?.cancel();
    throw new Error(`the answer is larger than ${CLIENT_API_MAX_RESPONSE_BYTES} bytes`);
  }
  const body = new Uint8Array(await answer.arrayBuffer());
  const pairs: HeaderPairs = [];
  answer.headers.forEach((value, name) => pairs.push([name, value]));
  return { status: answer.status, headers: pairs, body };
}

// ---- polyhome proxy ----

/** A home the proxy may use: its PeerId and the addresses to dial. */
export interface ProxyTarget {
  peerId: string;
  role?: string;
  addrs: string[];
}

/**
 * Finds the home to proxy to: the one multiaddr given, or the homes of `userId` in the DHT (server homes
 * first), the first that answers a dial. Throws an Error whose message says what to do.
 */
export async function chooseHome(
  host: PolyhomeHost,
  discovery: Discovery | undefined,
  target: { home?: string; userId?: string },
  timeoutMs = 30_000,
): Promise<{ peerId: PeerId; candidates: ProxyTarget[] }> {
  let candidates: ProxyTarget[];
  if (target.home !== undefined) {
    const addr = multiaddr(target.home);
    const peer = addr.getComponents().findLast((c) => c.name === 'p2p')?.value;
    if (peer === undefined) throw new Error(`${target.home} names no peer: give a multiaddr ending in /p2p/<PeerId>.`);
    candidates = [{ peerId: peer, addrs: [target.home] }];
  } else if (target.userId !== undefined && discovery !== undefined) {
    const found = await discovery.lookup(target.userId, { signal: AbortSignal.timeout(timeoutMs) });
    candidates = [...found.homes]
      .sort((a, b) => (a.role === b.role ? 0 : a.role === 'server' ? -1 : 1))
      .map((h) => ({ peerId: h.peerId, role: h.role, addrs: h.addrs }));
    if (candidates.length === 0) throw new Error(`The account document of ${target.userId} lists no home.`);
  } else {
    throw new Error('Give --home MULTIADDR, or --user USER_ID with --bootstrap MULTIADDR.');
  }
  const failures: string[] = [];
  for (const candidate of candidates) {
    const peerId = peerIdFromString(candidate.peerId);
    try {
      const addrs = candidate.addrs.map((a) => multiaddr(a));
      if (addrs.length > 0) await host.peerStore.merge(peerId, { multiaddrs: addrs });
      await host.dial(peerId, { signal: AbortSignal.timeout(timeoutMs) });
      return { peerId, candidates };
    } catch (err) {
      failures.push(`${candidate.peerId} (${(err as Error).message})`);
    }
  }
  throw new Error(
    `No home of the account answered: ${failures.join('; ')}. Check that a home runs and its address is reachable from here.`,
  );
}

/** Options of startClientApiProxy. */
export interface ClientApiProxyInit {
  host: PolyhomeHost;
  /** The home every request goes to. */
  home: PeerId;
  /** Where to listen: 127.0.0.1 and a port (0: any free one). */
  listenHost?: string;
  port: number;
  /** Largest request body, bytes (default CLIENT_API_MAX_BODY_BYTES); larger ones get 413 before they are read. */
  maxBodyBytes?: number;
  /** Requests at once (default 64, above the home's per-peer cap so the home's 429 is the one a client sees). */
  maxConcurrent?: number;
  /** One line per problem (unreachable home, timeouts). */
  onLine?: (line: string) => void;
}

/** A running proxy. */
export interface ClientApiProxy {
  /** `http://127.0.0.1:<port>`: give it to the Matrix client as its homeserver. */
  url: string;
  close(): Promise<void>;
}

/** Serves HTTP on 127.0.0.1 and forwards every request to `home` over `/polyhome/client/1.0.0`. */
export async function startClientApiProxy(init: ClientApiProxyInit): Promise<ClientApiProxy> {
  const maxBodyBytes = init.maxBodyBytes ?? CLIENT_API_MAX_BODY_BYTES;
  const maxConcurrent = init.maxConcurrent ?? 64;
  const say = init.onLine ?? (() => undefined);
  const homeText = init.home.toString();
  let inFlight = 0;
  const server: Server = createServer((req, res) => {
    if (inFlight >= maxConcurrent) {
      answerError(res, 429, 'M_LIMIT_EXCEEDED', `The proxy holds ${maxConcurrent} requests already; retry later.`);
      return;
    }
    inFlight++;
    void proxyOne(req, res).finally(() => inFlight--);
  });

  async function proxyOne(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort(new Error('the client went away'));
    });
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > maxBodyBytes) {
      res.setHeader('connection', 'close');
      answerError(res, 413, 'M_TOO_LARGE', `The request body is larger than ${maxBodyBytes} bytes.`);
      req.resume();
      return;
    }
    const body = await readRequestBody(req, maxBodyBytes);
    if (body === 'too-large') {
      res.setHeader('connection', 'close');
      answerError(res, 413, 'M_TOO_LARGE', `The request body is larger than ${maxBodyBytes} bytes.`);
      return;
    }
    if (body === 'failed') return;
    const headers: HeaderPairs = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    let answer: ClientApiResponse;
    try {
      answer = await clientApiRequest(init.host, init.home, {
        method: req.method ?? 'GET',
        target: req.url ?? '/',
        headers,
        body: body.byteLength === 0 ? undefined : body,
        signal: gone.signal,
      });
    } catch (err) {
      if (gone.signal.aborted) return;
      const kind = err instanceof ClientApiError ? err.kind : 'bad-response';
      say(`proxy: ${req.method} ${pathOf(req.url)}: ${(err as Error).message}`);
      if (kind === 'timeout') {
        answerError(res, 504, 'M_UNKNOWN', `The home ${homeText} did not answer in time; try again.`);
      } else if (kind === 'unreachable') {
        answerError(
          res,
          502,
          'M_UNKNOWN',
          `Cannot reach the home ${homeText} over libp2p: ${(err as Error).message}. Check that it runs and is reachable, or start the proxy with --user to use another home of the account.`,
        );
      } else {
        answerError(res, 502, 'M_UNKNOWN', `The home ${homeText} answered badly: ${(err as Error).message}.`);
      }
      return;
    }
    res.statusCode = answer.status;
    for (const [name, value] of answer.headers) res.setHeader(name, value);
    res.setHeader('content-length', String(answer.body.byteLength));
    res.end(answer.body);
  }

  hardenHttpServer(server, { ...DEFAULT_HTTP_LIMITS, requestTimeoutMs: 120_000, maxConnections: 256 });
  const listenHost = init.listenHost ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(init.port, listenHost, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : init.port;
  return {
    url: `http://${listenHost.includes(':') ? `[${listenHost}]` : listenHost}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?')[0]!;
}

function answerError(res: ServerResponse, status: number, errcode: string, error: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ errcode, error });
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', String(Buffer.byteLength(body)));
  res.end(body);
}

function readRequestBody(req: IncomingMessage, maxBytes: number): Promise<Uint8Array | 'too-large' | 'failed'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        done = true;
        chunks.length = 0;
        resolve('too-large');
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve(new Uint8Array(Buffer.concat(chunks)));
    });
    req.on('error', () => {
      if (done) return;
      done = true;
      resolve('failed');
    });
  });
}

/** A proxy option that cannot work (a usage error: the CLI says which option to change). */
export class ProxyOptionsError extends Error {
  override readonly name = 'ProxyOptionsError';
}

/** The proxy could not listen where it was asked (`cause` is the socket's error, with its `code`). */
export class ProxyListenError extends Error {
  override readonly name = 'ProxyListenError';
}

/** What `polyhome proxy` runs with. */
export interface ClientApiProxyRunInit {
  /** The home, as a multiaddr ending in /p2p/<PeerId>; or else: */
  home?: string;
  /** The account's user ID, its homes found through the DHT of `bootstrap` (server homes first). */
  userId?: string;
  bootstrap: string[];
  listenHost: string;
  port: number;
  maxBodyBytes?: number;
  /** Time allowed to find and dial the home. */
  timeoutMs: number;
  onLine?: (line: string) => void;
}

/** A running `polyhome proxy`. */
export interface RunningClientApiProxy {
  url: string;
  /** The PeerId of the home requests go to. */
  home: string;
  stop(): Promise<void>;
}

/**
 * `polyhome proxy` whole: a libp2p host with a throwaway key that listens nowhere, the home chosen (given, or
 * found by user ID through the DHT), and the HTTP server forwarding to it. Throws ProxyOptionsError for options
 * that cannot work, ProxyListenError when the port cannot be had, and an Error saying what to check when no home
 * answers; nothing is left running then.
 */
export async function runClientApiProxy(init: ClientApiProxyRunInit): Promise<RunningClientApiProxy> {
  if ((init.home === undefined) === (init.userId === undefined)) {
    throw new ProxyOptionsError('Give one of --home MULTIADDR or --user USER_ID (with --bootstrap MULTIADDR).');
  }
  if (init.home !== undefined && !isPeerMultiaddr(init.home)) {
    throw new ProxyOptionsError(
      `--home ${init.home}: not a peer's multiaddr; give one ending in /p2p/<PeerId>, like /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW...`,
    );
  }
  const wrong = init.bootstrap.find((addr) => !isPeerMultiaddr(addr));
  if (wrong !== undefined) {
    throw new ProxyOptionsError(`--bootstrap ${wrong}: not a peer's multiaddr; give one ending in /p2p/<PeerId>.`);
  }
  if (init.userId !== undefined && init.bootstrap.length === 0) {
    throw new ProxyOptionsError('--user needs --bootstrap MULTIADDR: a peer of the DHT to look the account up from.');
  }
  const host = await createPolyhomeHost({
    nodeKey: generateKeyPair().secretKey,
    listen: [],
    bootstrap: init.bootstrap,
  });
  try {
    let discovery: Discovery | undefined;
    if (init.userId !== undefined) {
      if (host.getConnections().length === 0) {
        throw new Error(`Cannot reach any bootstrap peer (${init.bootstrap.join(', ')}): check the addresses.`);
      }
      discovery = discoveryOf(host);
    }
    const chosen = await chooseHome(host, discovery, { home: init.home, userId: init.userId }, init.timeoutMs);
    const proxy = await startClientApiProxy({
      host,
      home: chosen.peerId,
      listenHost: init.listenHost,
      port: init.port,
      ...(init.maxBodyBytes === undefined ? {} : { maxBodyBytes: init.maxBodyBytes }),
      ...(init.onLine === undefined ? {} : { onLine: init.onLine }),
    }).catch((err: unknown) => {
      throw new ProxyListenError((err as Error).message, { cause: err });
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
