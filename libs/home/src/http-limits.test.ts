import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connectionsCheckingIntervalMs, DEFAULT_HTTP_LIMITS, hardenHttpServer } from './http-limits.js';

describe('hardenHttpServer', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
    server = undefined;
  });

  it('answers 408 and closes a socket whose headers come too slowly, long before Node would', async () => {
    server = createServer((_req, res) => res.end('ok'));
    hardenHttpServer(server, { ...DEFAULT_HTTP_LIMITS, headersTimeoutMs: 300, requestTimeoutMs: 600 });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n'));
    const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 50);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const started = Date.now();
    // Node's defaults: 60 s for the headers, checked every 30 s. The test's own timeout is the deadline.
    await new Promise((resolve) => socket.on('close', resolve));
    clearInterval(drip);
    console.log(`slow socket closed after ${Date.now() - started} ms`);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  }, 20_000);

  it('sets the limits and checks connections a few times per headers timeout', () => {
    server = createServer();
    hardenHttpServer(server);
    expect([server.headersTimeout, server.requestTimeout, server.keepAliveTimeout]).toEqual([10_000, 30_000, 5_000]);
    expect([server.maxRequestsPerSocket, server.maxConnections]).toEqual([1_000, 1_000]);
    expect((server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval).toBe(1_000);
    expect(connectionsCheckingIntervalMs({ headersTimeoutMs: 100 })).toBe(50);
    expect(() => hardenHttpServer(createServer(), { ...DEFAULT_HTTP_LIMITS, requestTimeoutMs: 1 })).toThrow(
      /request timeout must not be shorter/,
    );
  });
});
