// Runs the built server (apps/server/dist/main.js) as a child process for benches: spawn to /health 200 is
// its start time; memory is read after a full GC in the child (gc-preload.js) and from /proc/<pid>/status.
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The server entry point; BENCH_SERVER_MAIN runs another build (e.g. an earlier commit's, to compare). */
export const SERVER_MAIN =
  process.env.BENCH_SERVER_MAIN ?? path.join(here, '..', '..', 'apps', 'server', 'dist', 'main.js');
const PRELOAD = pathToFileURL(path.join(here, 'gc-preload.js')).href;
/**
 * Node flags the server is deployed with (deploy/Dockerfile's CMD, the systemd unit, `npm start`);
 * BENCH_SERVER_NODE_FLAGS (space-separated, may be empty) runs it with others, e.g. V8's defaults to compare.
 */
export const SERVER_NODE_FLAGS = (process.env.BENCH_SERVER_NODE_FLAGS ?? '--max-semi-space-size=16')
  .split(' ')
  .filter(Boolean);

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Wall time of spawning `node <args>` until it exits (the bare process start reference). */
export async function timeNode(args) {
  const t0 = performance.now();
  await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`node ${args.join(' ')}: exit ${code}`))));
  });
  return performance.now() - t0;
}

/**
 * Starts the server with `env` (DATA_DIR required) and waits for GET /health to answer 200; returns
 * { startMs, url, p2pAddr, peerId, memory(), stop() }. Throws with the server's output when it exits or
 * does not become healthy within `timeoutMs`.
 */
export async function startServer(env, { timeoutMs = Number(process.env.BENCH_SERVER_TIMEOUT_MS ?? 600_000) } = {}) {
  const port = await freePort();
  const p2pPort = await freePort();
  const t0 = performance.now();
  // BENCH_SERVER_CPU_PROF=<dir>: each server process writes a V8 CPU profile there when it stops.
  const profile = process.env.BENCH_SERVER_CPU_PROF;
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  const child = spawn(
    process.execPath,
    [...SERVER_NODE_FLAGS, ...nodeArgs, '--expose-gc', '--import', PRELOAD, SERVER_MAIN],
    {
      env: {
        ...process.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        P2P_LISTEN: `/ip4/127.0.0.1/tcp/${p2pPort}`,
        LOG_LEVEL: 'warn',
        RATE_LIMIT_PER_MINUTE: '0',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  const memoryWaiters = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    for (const line of chunk.split('\n')) {
      if (line.startsWith('polyhome-bench-memory ')) memoryWaiters.shift()?.(JSON.parse(line.slice(22)));
    }
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  let exited = false;
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  void exit.then(() => (exited = true));
  const url = `http://127.0.0.1:${port}`;
  let health;
  for (;;) {
    if (exited) throw new Error(`server exited before /health answered:\n${stderr.slice(-4000)}`);
    if (performance.now() - t0 > timeoutMs) {
      child.kill('SIGKILL');
      throw new Error(`server not healthy within ${timeoutMs} ms:\n${stderr.slice(-4000)}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) {
        health = await res.json();
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const startMs = performance.now() - t0;
  const peerId = health.info?.p2p?.peer_id;
  return {
    startMs,
    url,
    pid: child.pid,
    peerId,
    p2pAddr: `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${peerId}`,
    output: () => stderr,
    /** Full GC in the server, then its memory: { rss, heapUsed, external } in bytes (rss from /proc). */
    async memory() {
      const reported = new Promise((resolve) => memoryWaiters.push(resolve));
      child.kill('SIGUSR2');
      const inside = await Promise.race([
        reported,
        new Promise((_, reject) => setTimeout(() => reject(new Error('no memory report from the server')), 30_000)),
      ]);
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
      return { ...inside, rss: kib === undefined ? inside.rss : Number(kib) * 1024 };
    },
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
