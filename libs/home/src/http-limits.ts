// Limits of an HTTP server against slow and idle clients (slowloris): Node's defaults wait 60 s for request
// headers, check that only every 30 s, and accept connections until the process runs out of file descriptors
// (20,000 slow sockets did, and /health failed). Both apps apply these before listening.
import type { Server } from 'node:http';

/** How long an HTTP client may take and how many connections it may hold. */
export interface HttpLimits {
  /** Time to receive a request's headers, from the connection (or the previous request) on; then 408 and close. */
  headersTimeoutMs: number;
  /** Time to receive a whole request, body included (not the answer: a long poll is not cut). */
  requestTimeoutMs: number;
  /** How long an idle keep-alive connection stays open after an answer. */
  keepAliveTimeoutMs: number;
  /** Requests on one connection before the server closes it (0: no limit). */
  maxRequestsPerSocket: number;
  /** Open connections at most; further ones are closed at once, before any byte is read. */
  maxConnections: number;
}

/** The defaults of both apps (the server's HTTP_* variables start from these). */
export const DEFAULT_HTTP_LIMITS: Readonly<HttpLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxRequestsPerSocket: 1_000,
  maxConnections: 1_000,
});

/**
 * How often Node looks for connections past their headers or request timeout: a quarter of the headers
 * timeout, between 50 ms and 1 s (Node's default, 30 s, let a slow socket live up to 30 s past its timeout).
 */
export function connectionsCheckingIntervalMs(limits: Pick<HttpLimits, 'headersTimeoutMs'>): number {
  return Math.min(1_000, Math.max(50, Math.floor(limits.headersTimeoutMs / 4)));
}

/**
 * Applies the limits to a server that is not listening yet (Node starts its timeout checker when the server
 * starts listening, with the interval it then has).
 */
export function hardenHttpServer(server: Server, limits: Readonly<HttpLimits> = DEFAULT_HTTP_LIMITS): void {
  if (server.listening) throw new Error('hardenHttpServer: apply the limits before the server listens.');
  if (limits.requestTimeoutMs < limits.headersTimeoutMs) {
    throw new Error('hardenHttpServer: the request timeout must not be shorter than the headers timeout.');
  }
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxRequestsPerSocket = limits.maxRequestsPerSocket;
  server.maxConnections = limits.maxConnections;
  // A public property read when listening begins (`connectionsCheckingInterval` of http.createServer).
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval =
    connectionsCheckingIntervalMs(limits);
}
