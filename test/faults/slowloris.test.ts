// Slow HTTP clients against a real server process (issue 13, item 8): with Node's defaults 20,000 sockets that
// sent a request a few bytes at a time exhausted the file descriptors and /health failed. The server now closes
// a connection whose headers take longer than HTTP_HEADERS_TIMEOUT_MS (checked a few times per timeout, not
// every 30 s) and holds at most HTTP_MAX_CONNECTIONS. The server runs with small limits so that the attack
// fits a test: the defaults (10 s, 1,000 connections) only scale it.
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServerProcess } from '../support/server-process.js';

const HEADERS_TIMEOUT_MS = 2_000;
const MAX_CONNECTIONS = 64;
const MAX_REQUESTS_PER_SOCKET = 3;
const KEEP_ALIVE_TIMEOUT_MS = 1_000;
/** Node's own headers timeout is 60 s, checked every 30 s: a slow socket outlives this deadline without the fix. */
const CLOSED_WITHIN_MS = 30_000;

/** A raw TCP client that sends a request line and then one header line every `dripMs`, never finishing. */
interface SlowSocket {
  socket: Socket;
  openedAt: number;
  /** When the server closed it (undefined while open). */
  closedAt: number | undefined;
  /** What the server sent before closing. */
  received: string;
  /** Resolves once the request line is sent. */
  started: Promise<void>;
}

function openSlowSocket(port: number, dripMs: number): SlowSocket {
  const socket = connect(port, '127.0.0.1');
  let drip: NodeJS.Timeout | undefined;
  const started = new Promise<void>((resolve) => {
    socket.on('connect', () => {
      socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      let n = 0;
      drip = setInterval(() => socket.write(`X-Slow-${n++}: x\r\n`), dripMs);
      resolve();
    });
  });
  const slow: SlowSocket = { socket, openedAt: Date.now(), closedAt: undefined, received: '', started };
  socket.on('data', (chunk: Buffer) => {
    slow.received += chunk.toString('latin1');
  });
  socket.on('error', () => undefined);
  socket.on('close', () => {
    clearInterval(drip);
    slow.closedAt ??= Date.now();
  });
  // The server's close (FIN) ends our side too; a reset ends in 'close' directly.
  socket.on('end', () => {
    slow.closedAt ??= Date.now();
    socket.end();
  });
  return slow;
}

/** GET /health on a new connection: status and milliseconds, or the error's code. */
function healthOnNewConnection(port: number): Promise<{ status: number | string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', agent: false, timeout: 15_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: Date.now() - started }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ status: err.code ?? err.message, ms: Date.now() - started }),
    );
    req.end();
  });
}

function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

describe('slow HTTP clients (slowloris) against a server process', () => {
  let server: ServerProcess;
  let dataDir: string;
  const sockets: SlowSocket[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-slowloris-'));
    server = await ServerProcess.create({
      name: 'server',
      dataDir,
      env: {
        HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        HTTP_REQUEST_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS * 2),
        HTTP_KEEP_ALIVE_TIMEOUT_MS: String(KEEP_ALIVE_TIMEOUT_MS),
        HTTP_MAX_REQUESTS_PER_SOCKET: String(MAX_REQUESTS_PER_SOCKET),
        HTTP_MAX_CONNECTIONS: String(MAX_CONNECTIONS),
      },
    });
    await server.start();
  }, 180_000);

  afterAll(async () => {
    for (const slow of sockets) slow.socket.destroy();
    await server?.kill('SIGKILL');
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  /** Opens `count` slow sockets (a bounded loop) and waits until the server has closed every one. */
  async function runAttack(
    count: number,
    whileOpen: () => Promise<void>,
  ): Promise<{ attack: SlowSocket[]; lifetimes: number[] }> {
    const attack = Array.from({ length: count }, () => openSlowSocket(server.port, 250));
    sockets.push(...attack);
    const done = (async () => {
      await waitFor(
        () => attack.every((s) => s.closedAt !== undefined),
        `the server to close all ${count} slow sockets`,
        CLOSED_WITHIN_MS,
        50,
      );
    })();
    await whileOpen();
    await done;
    return { attack, lifetimes: attack.map((s) => s.closedAt! - s.openedAt) };
  }

  it('closes slow sockets after the headers timeout with 408, and answers /health meanwhile', async () => {
    const count = MAX_CONNECTIONS - 16;
    const health: Array<{ status: number | string; ms: number; slowOpen: number }> = [];
    const { attack, lifetimes } = await runAttack(count, async () => {
      // /health on fresh connections for as long as slow sockets are open.
      for (let i = 0; i < 200; i++) {
        const open = sockets.filter((s) => s.closedAt === undefined).length;
        if (open === 0) break;
        health.push({ ...(await healthOnNewConnection(server.port)), slowOpen: open });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
    console.log(
      `${count} slow sockets, headers timeout ${HEADERS_TIMEOUT_MS} ms: closed after ` +
        `${Math.min(...lifetimes)} to ${Math.max(...lifetimes)} ms (median ${percentile(lifetimes, 50)}); ` +
        `/health during the attack: ${health.length} answers, ${health.map((h) => `${h.status}/${h.ms}ms`).join(' ')}`,
    );
    // Every slow socket was answered 408 by the server and closed (Node's defaults: only after 60 to 90 s).
    expect(attack.filter((s) => !s.received.startsWith('HTTP/1.1 408'))).toHaveLength(0);
    // /health answered 200 each time it was asked, including while the slow sockets were all open.
    expect(health.length).toBeGreaterThan(0);
    expect(health.filter((h) => h.status !== 200)).toEqual([]);
    expect(health.some((h) => h.slowOpen === count)).toBe(true);
  }, 120_000);

  it('holds at most HTTP_MAX_CONNECTIONS against several hundred slow sockets, and recovers', async () => {
    const pid = server.pid!;
    const baseline = openDescriptors(pid);
    const count = 400;
    let peak = baseline;
    const health: Array<{ status: number | string; ms: number }> = [];
    const { attack, lifetimes } = await runAttack(count, async () => {
      // The server's descriptors while the attack lasts; /health is asked on new connections meanwhile.
      const sampling = (async () => {
        while (sockets.some((s) => s.closedAt === undefined)) {
          peak = Math.max(peak, openDescriptors(pid));
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      for (let i = 0; i < 200 && health.at(-1)?.status !== 200; i++) {
        health.push(await healthOnNewConnection(server.port));
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await sampling;
    });
    const answered = attack.filter((s) => s.received.startsWith('HTTP/1.1 408')).length;
    console.log(
      `${count} slow sockets against a cap of ${MAX_CONNECTIONS}: server descriptors ${baseline} before, peak ${peak}; ` +
        `${answered} held until the headers timeout (408), ${count - answered} closed at once; lifetimes ` +
        `${Math.min(...lifetimes)} to ${Math.max(...lifetimes)} ms; /health: ${health.map((h) => `${h.status}/${h.ms}ms`).join(' ')}`,
    );
    // The cap held: the server never had more than MAX_CONNECTIONS sockets open beyond its own (a few
    // descriptors of slack for sockets accepted and closed at that instant, and the /health probe).
    expect(peak - baseline).toBeLessThanOrEqual(MAX_CONNECTIONS + 8);
    // Those beyond the cap were closed without an answer, the others answered 408 after the headers timeout.
    expect(count - answered).toBeGreaterThan(0);
    // /health answered 200 once the held sockets timed out, if not before.
    expect(health.at(-1)?.status).toBe(200);
    expect((await healthOnNewConnection(server.port)).status).toBe(200);
  }, 120_000);

  it('closes idle keep-alive connections and one that served HTTP_MAX_REQUESTS_PER_SOCKET requests', async () => {
    // Requests pipelined on one connection: the last allowed answer says `Connection: close`, the next is 503.
    const slow = openSlowSocket(server.port, 60_000);
    sockets.push(slow);
    await slow.started;
    slow.socket.write(
      'X-Done: 1\r\n\r\n' + 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(MAX_REQUESTS_PER_SOCKET),
    );
    await waitFor(() => slow.closedAt !== undefined, 'the server to close the pipelined connection', CLOSED_WITHIN_MS);
    const statuses = [...slow.received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    expect(statuses.slice(0, MAX_REQUESTS_PER_SOCKET)).toEqual(Array(MAX_REQUESTS_PER_SOCKET).fill(200));
    expect(statuses.slice(MAX_REQUESTS_PER_SOCKET)).toEqual([503]);

    // One request answered, then nothing: closed after the keep-alive timeout.
    const idle = openSlowSocket(server.port, 60_000);
    sockets.push(idle);
    await idle.started;
    idle.socket.write('\r\n');
    await waitFor(() => idle.closedAt !== undefined, 'the server to close the idle connection', CLOSED_WITHIN_MS);
    console.log(`idle keep-alive connection closed ${idle.closedAt! - idle.openedAt} ms after it opened`);
    expect([...idle.received.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))).toEqual([200]);
  }, 120_000);
});
