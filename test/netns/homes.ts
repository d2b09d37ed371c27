// The built server (`apps/server/dist/main.js`) in a namespace of a NetnsLab: libp2p on the public segment, HTTP
// on the namespace's own 127.0.0.1, reached with curl from inside the namespace.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@polyhome/p2p/testing';
import { type NetnsLab } from './lab.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(root, 'apps/server/dist/main.js');
const ADMIN_TOKEN = 'netns-tests-admin-token-0123456789';
/** libp2p port of the servers, on the public segment. */
export const SERVER_P2P_PORT = 4001;
const HTTP = 'http://127.0.0.1:8008';

/** A server home on s1 or s2. */
export class NsServer {
  readonly logs: string[] = [];
  peerId = '';

  constructor(
    readonly lab: NetnsLab,
    readonly host: 's1' | 's2',
    readonly dataDir: string,
  ) {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build\` (npm test does) first.`);
  }

  /** Its libp2p address on the public segment, with /p2p/<PeerId>. */
  get addr(): string {
    return `/ip4/${this.lab.addrs[this.host]}/tcp/${SERVER_P2P_PORT}/p2p/${this.peerId}`;
  }

  /** Starts the server on its embedded database and waits for /health 200 (a cold PGlite start is slow). */
  async start(env: Record<string, string> = {}): Promise<void> {
    const child = this.lab.spawn(this.host, [process.execPath, MAIN], {
      PATH: process.env['PATH'] ?? '',
      HOST: '127.0.0.1',
      PORT: '8008',
      P2P_LISTEN: `/ip4/0.0.0.0/tcp/${SERVER_P2P_PORT}`,
      P2P_ANNOUNCE: `/ip4/${this.lab.addrs[this.host]}/tcp/${SERVER_P2P_PORT}`,
      DATA_DIR: this.dataDir,
      ADMIN_TOKEN,
      ENROLLMENT_POLICY: 'open',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
      ...env,
    });
    const keep = (d: Buffer): void => {
      this.logs.push(...d.toString().split('\n').filter(Boolean));
      if (this.logs.length > 2000) this.logs.splice(0, this.logs.length - 2000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${this.host} exited while starting:\n${this.tail()}`);
        return (await this.lab.http(this.host, 'GET', `${HTTP}/health`).catch(() => undefined))?.status === 200;
      },
      `${this.host} to answer /health`,
      120_000,
      500,
    );
    this.peerId = String((await this.admin('GET', '/admin/v1/node')).body['peer_id']);
  }

  /** An admin API request; throws unless it answers 2xx. */
  async admin(
    method: string,
    route: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const answer = await this.lab.http(this.host, method, `${HTTP}${route}`, body, {
      Authorization: `Bearer ${ADMIN_TOKEN}`,
    });
    if (answer.status < 200 || answer.status > 299) {
      throw new Error(`${this.host}: ${method} ${route} answered ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    return answer;
  }

  tail(lines = 40): string {
    return this.logs.slice(-lines).join('\n');
  }
}
