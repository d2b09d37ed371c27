// A polyhome server as its own process (`node apps/server/dist/main.js`), started, killed and restarted by a
// test: fixed HTTP and libp2p ports (so a restart keeps the address its account documents name), its own
// DATA_DIR (so its own node key and PeerId), and the admin API at hand.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { deleteRedisPrefix } from './convergence.js';
import { nodeCommand } from './umask.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(root, 'apps/server/dist/main.js');

/** Admin token every test server process uses. */
export const ADMIN_TOKEN = 'fault-tests-admin-token-0123456789';

/** What to start a server process with. */
export interface ServerProcessInit {
  /** Shown in errors. */
  name: string;
  dataDir: string;
  /** DATABASE_URL, REDIS_URL, QUEUE_PREFIX, SEALING_KEY, ... */
  env: Record<string, string>;
  /** The umask the process starts with (the test's own when undefined). */
  umask?: number;
}

/** An HTTP answer: status and parsed JSON body (undefined when not JSON). */
export interface Answer {
  status: number;
  body: Record<string, unknown> & { errcode?: string };
}

/** One server, across any number of starts and kills. */
export class ServerProcess {
  readonly logs: string[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  peerId = '';

  private constructor(
    readonly init: ServerProcessInit,
    readonly port: number,
    readonly p2pPort: number,
  ) {}

  /** Picks free ports for a server; does not start it. */
  static async create(init: ServerProcessInit): Promise<ServerProcess> {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` (npm test does) first.`);
    return new ServerProcess(init, await freePort(), await freePort());
  }

  /** Its libp2p address with /p2p/<PeerId> (known after the first start). */
  get addr(): string {
    return `/ip4/127.0.0.1/tcp/${this.p2pPort}/p2p/${this.peerId}`;
  }

  /** The process id of the running server (undefined when stopped). */
  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and waits until /health answers 200 (generous: the machine may be loaded). */
  async start(timeoutMs = 90_000): Promise<void> {
    if (this.running) throw new Error(`${this.init.name} is already running`);
    const child = spawn(...nodeCommand([MAIN], this.init.umask), {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOST: '127.0.0.1',
        PORT: String(this.port),
        P2P_LISTEN: `/ip4/127.0.0.1/tcp/${this.p2pPort}`,
        DATA_DIR: this.init.dataDir,
        ADMIN_TOKEN,
        ENROLLMENT_POLICY: 'open',
        RATE_LIMIT_PER_MINUTE: '0',
        SHUTDOWN_TIMEOUT_MS: '5000',
        LOG_LEVEL: 'warn',
        ...this.init.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (d: Buffer): void => {
      this.logs.push(...d.toString().split('\n').filter(Boolean));
      if (this.logs.length > 2000) this.logs.splice(0, this.logs.length - 2000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(
      async () => {
        if (!this.running) throw new Error(`${this.init.name} exited while starting:\n${this.tail()}`);
        return (await this.health().catch(() => undefined))?.status === 200;
      },
      `${this.init.name} to answer /health with 200`,
      timeoutMs,
    );
    const node = await this.admin('GET', '/admin/v1/node');
    this.peerId = String(node.body['peer_id']);
  }

  /** Sends a signal (SIGKILL: no shutdown at all) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (!this.running) return this.exited;
    this.child!.kill(signal);
    return this.exited;
  }

  /** GET /health. Throws when nothing listens. */
  async health(): Promise<Answer> {
    return this.request('GET', '/health', undefined, {}, AbortSignal.timeout(10_000));
  }

  /** An admin API request with the token. */
  async admin(method: string, route: string, body?: unknown): Promise<Answer> {
    return this.request(method, route, body, { Authorization: `Bearer ${ADMIN_TOKEN}` });
  }

  /** Any HTTP request to this server. */
  async request(
    method: string,
    route: string,
    body?: unknown,
    headers: Record<string, string> = {},
    signal: AbortSignal = AbortSignal.timeout(60_000),
  ): Promise<Answer> {
    const res = await fetch(`http://127.0.0.1:${this.port}${route}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await res.text();
    let parsed: Answer['body'];
    try {
      parsed = JSON.parse(text) as Answer['body'];
    } catch {
      parsed = { text } as Answer['body'];
    }
    return { status: res.status, body: parsed };
  }

  /** The last log lines (for failure messages). */
  tail(lines = 40): string {
    return this.logs.slice(-lines).join('\n');
  }
}

/** Logs a new Matrix device in on a server (admin login token, then m.login.token): one op of that server. */
export async function matrixLogin(
  server: ServerProcess,
  userId: string,
): Promise<{ deviceId: string; accessToken: string }> {
  const token = await server.admin('POST', `/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`, {});
  if (token.status !== 201 && token.status !== 200) {
    throw new Error(`login token on ${server.init.name}: ${token.status} ${JSON.stringify(token.body)}`);
  }
  const login = await server.request('POST', '/_matrix/client/v3/login', {
    type: 'm.login.token',
    token: token.body['login_token'],
  });
  if (login.status !== 200)
    throw new Error(`login on ${server.init.name}: ${login.status} ${JSON.stringify(login.body)}`);
  return { deviceId: String(login.body['device_id']), accessToken: String(login.body['access_token']) };
}

/** A server process of its own: a fresh PostgreSQL database, data directory and queue prefix in Redis. */
export interface FreshServer {
  server: ServerProcess;
  databaseUrl: string;
  /** Kills the server and removes its database, queue keys and directory. */
  dispose(): Promise<void>;
}

/**
 * Starts a server process on a fresh database (`label` names its directory and queue prefix); `env` adds to or
 * overrides its environment (limits lowered for a test).
 */
export async function startFreshServer(label: string, env: Record<string, string> = {}): Promise<FreshServer> {
  const redisUrl = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  const prefix = `fault-${label}-${process.pid}-${Date.now()}`;
  const scratch = await mkdtemp(path.join(os.tmpdir(), `polyhome-${label}-`));
  const database = await createTestPostgresDatabase();
  const server = await ServerProcess.create({
    name: 'server',
    dataDir: scratch,
    env: { DATABASE_URL: database.url, REDIS_URL: redisUrl, QUEUE_PREFIX: prefix, ...env },
  });
  await server.start();
  return {
    server,
    databaseUrl: database.url,
    async dispose() {
      await server.kill('SIGKILL');
      await database.drop().catch(() => undefined);
      await deleteRedisPrefix(redisUrl, prefix).catch(() => undefined);
      await rm(scratch, { recursive: true, force: true });
    },
  };
}
