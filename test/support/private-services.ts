// Redis and PostgreSQL of a test's own, on free ports, that the test may kill and restart. The shared
// services on 5432 and 6379 serve every other suite running at the same time and are never touched.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from '@polyhome/p2p/testing';

/** The PostgreSQL server programs the private cluster runs. */
const PG_TOOLS = ['initdb', 'postgres'] as const;

function hasTools(dir: string): boolean {
  return PG_TOOLS.every((tool) => {
    try {
      accessSync(path.join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * The directory holding PostgreSQL's server programs (`initdb`, `postgres`), found rather than assumed:
 * `POLYHOME_PG_BIN` when set, then `pg_config --bindir`, then the distribution's `/usr/lib/postgresql/<N>/bin`
 * (newest N first), then each directory of `PATH`. Throws, saying what to install or set, when none has them.
 */
export function findPostgresBin(
  env: NodeJS.ProcessEnv = process.env,
  distributionRoot = '/usr/lib/postgresql',
): string {
  const looked: string[] = [];
  const override = env['POLYHOME_PG_BIN'];
  if (override !== undefined && override !== '') {
    if (hasTools(override)) return override;
    throw new Error(
      `POLYHOME_PG_BIN=${override} holds no ${PG_TOOLS.join(' and ')}; point it at PostgreSQL's bin directory.`,
    );
  }
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8', env });
  const candidates: string[] = [];
  if (pgConfig.status === 0 && pgConfig.stdout.trim() !== '') candidates.push(pgConfig.stdout.trim());
  let versions: string[] = [];
  try {
    versions = readdirSync(distributionRoot).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // No distribution PostgreSQL.
  }
  versions.sort((a, b) => Number(b) - Number(a));
  candidates.push(...versions.map((v) => path.join(distributionRoot, v, 'bin')));
  candidates.push(...(env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== ''));
  for (const dir of candidates) {
    if (hasTools(dir)) return dir;
    looked.push(dir);
  }
  throw new Error(
    `No PostgreSQL server programs (${PG_TOOLS.join(', ')}) found; looked in pg_config --bindir, ` +
      `${distributionRoot}/<N>/bin and PATH (${looked.join(', ') || 'nothing there'}). Install PostgreSQL ` +
      `(e.g. apt-get install postgresql) or set POLYHOME_PG_BIN to the directory that holds them.`,
  );
}

/** A service process the test controls. */
export interface PrivateService {
  port: number;
  url: string;
  /** Starts it (again) and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it abruptly (a crash as the clients see it) and waits until the port is closed. */
  crash(): Promise<void>;
  /** Stops it and removes everything it wrote. */
  dispose(): Promise<void>;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exitOf(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A Redis with no persistence: a restart loses every key, as a Redis without AOF or RDB does. */
export async function startPrivateRedis(): Promise<PrivateService> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const service: PrivateService = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn(
        'redis-server',
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      const started = child;
      await waitFor(
        async () => {
          if (started.exitCode !== null) throw new Error(`redis-server on ${port} exited with ${started.exitCode}`);
          return portOpen(port);
        },
        `redis-server on ${port}`,
        30_000,
        100,
      );
    },
    async crash() {
      if (child === undefined) return;
      child.kill('SIGKILL');
      await exitOf(child);
      await waitFor(async () => !(await portOpen(port)), `redis on ${port} to be gone`, 30_000, 100);
    },
    async dispose() {
      await service.crash();
    },
  };
  await service.start();
  return service;
}

/**
 * A PostgreSQL cluster of its own (initdb into a temporary directory owned by the postgres user, since the
 * tests run as root). `crash()` is an immediate shutdown (SIGQUIT to the postmaster): every backend is
 * dropped without a checkpoint, and the next start runs crash recovery from the WAL, as after a crash.
 */
export async function startPrivatePostgres(): Promise<PrivateService & { databaseUrl(name: string): string }> {
  const port = await freePort();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-pg-'));
  const data = path.join(dir, 'data');
  const asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
  if (asPostgres.length > 0) {
    const pw = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gw = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    chownSync(dir, Number(pw.stdout.trim()), Number(gw.stdout.trim()));
  }
  const run = (args: string[]) => {
    const [cmd, ...rest] = [...asPostgres, ...args];
    return spawnSync(cmd!, rest, { encoding: 'utf8' });
  };
  const pgBin = findPostgresBin();
  const init = run([`${pgBin}/initdb`, '-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '--no-instructions']);
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  let child: ChildProcess | undefined;
  const postmasterPid = (): number | undefined => {
    const file = path.join(data, 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  };
  const service = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    databaseUrl: (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}`,
    async start() {
      const [cmd, ...rest] = [
        ...asPostgres,
        `${pgBin}/postgres`,
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'max_connections=60',
      ];
      const logs: string[] = [];
      child = spawn(cmd!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
      const started = child;
      await waitFor(
        async () => {
          if (started.exitCode !== null) throw new Error(`postgres on ${port} exited: ${logs.join('')}`);
          if (!(await portOpen(port))) return false;
          // Accepting TCP is not accepting queries while recovery runs.
          return logs.join('').includes('ready to accept connections');
        },
        `postgres on ${port} to accept connections`,
        60_000,
        100,
      );
    },
    async crash() {
      const pid = postmasterPid();
      if (pid === undefined || child === undefined) return;
      process.kill(pid, 'SIGQUIT');
      await exitOf(child);
      await waitFor(async () => !(await portOpen(port)), `postgres on ${port} to be gone`, 30_000, 100);
      // The postmaster is gone; its backends leave within moments (they watch it).
      await waitFor(() => postmasterPid() === undefined || !alive(postmasterPid()!), 'postmaster.pid to be stale');
    },
    async dispose() {
      const pid = postmasterPid();
      if (pid !== undefined && alive(pid)) {
        process.kill(pid, 'SIGTERM');
        if (child !== undefined) await exitOf(child);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  await service.start();
  return service;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
