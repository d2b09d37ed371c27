// Errors a new user meets in the first hour, each one line that says what to do and a non-zero exit code,
// from the real processes: the server and the node with their libp2p port taken by another process, and
// `polyhome start --bootstrap` with something that is no peer's multiaddr (it was accepted silently).
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@polyhome/p2p/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from '../support/cli-node.js';
import { ADMIN_TOKEN } from '../support/server-process.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER_MAIN = path.join(root, 'apps/server/dist/main.js');
const TEST_MS = 120_000;

/** The lines a process wrote on stderr and its exit code. */
async function runServer(env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, [SERVER_MAIN], {
    env: {
      PATH: process.env['PATH'] ?? '',
      HOST: '127.0.0.1',
      PORT: String(await freePort()),
      ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, lines: err.split('\n').filter(Boolean) };
}

describe('one-line errors of the first hour', () => {
  let scratch: string;
  let busy: net.Server;
  let busyPort: number;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-one-line-'));
    busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    busyPort = (busy.address() as net.AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => busy.close(resolve));
    await rm(scratch, { recursive: true, force: true });
  });

  it(
    'the server with its libp2p port in use: one line naming the address and P2P_LISTEN, exit 1',
    async () => {
      const { code, lines } = await runServer({
        DATA_DIR: path.join(scratch, 'server'),
        P2P_LISTEN: `/ip4/127.0.0.1/tcp/${busyPort}`,
      });
      expect(code).toBe(1);
      expect(lines, lines.join('\n')).toHaveLength(1);
      expect(lines[0]).toMatch(
        new RegExp(
          `^polyhome-server: cannot start: .*127\\.0\\.0\\.1:${busyPort} is in use .*choose another P2P_LISTEN\\.$`,
        ),
      );
    },
    TEST_MS,
  );

  it(
    'the node with its libp2p port in use: one line naming the address and --p2p, non-zero exit',
    async () => {
      const node = new CliNode('node', path.join(scratch, 'node'));
      const init = await node.run('init', '--localpart', 'busy');
      expect(init.code, init.err).toBe(0);
      const r = await node.run('start', '--p2p', `/ip4/127.0.0.1/tcp/${busyPort}`, '--port', '0');
      const lines = r.err.split('\n').filter(Boolean);
      expect(r.code).not.toBe(0);
      expect(lines, r.err).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`127\\.0\\.0\\.1:${busyPort} is in use .*choose another --p2p\\.$`));
    },
    TEST_MS,
  );

  it.each([
    ['/proc/polyhome', 'proc'],
    ['/sys/x', 'sysfs'],
  ])(
    'the server with DATA_DIR=%s: one line at once (it hung, or printed a bare EPERM), exit 1',
    async (dataDir, fs) => {
      const { code, lines } = await runServer({ DATA_DIR: dataDir, P2P_LISTEN: '/ip4/127.0.0.1/tcp/0' });
      expect(code).toBe(1);
      expect(lines, lines.join('\n')).toEqual([
        `polyhome-server: cannot start: ${dataDir} is on the kernel's ${fs} filesystem, which holds no data: choose a directory on a disk.`,
      ]);
    },
    TEST_MS,
  );

  it(
    '`polyhome init` with a data directory in /proc: one line, non-zero exit',
    async () => {
      const r = await new CliNode('node', '/proc/polyhome').run('init', '--localpart', 'proc');
      const lines = r.err.split('\n').filter(Boolean);
      expect(r.code, r.err).not.toBe(0);
      expect(lines, r.err).toHaveLength(1);
      expect(lines[0]).toContain("/proc/polyhome is on the kernel's proc filesystem, which holds no data");
    },
    TEST_MS,
  );

  it(
    '`polyhome start --bootstrap garbage`: one line asking for /p2p/<PeerId>, exit 2',
    async () => {
      const node = new CliNode('node', path.join(scratch, 'bootstrap'));
      for (const wrong of ['garbage', '/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4001/p2p/notapeer']) {
        const r = await node.run('start', '--bootstrap', wrong);
        const lines = r.err.split('\n').filter(Boolean);
        expect(r.code, r.err).toBe(2);
        expect(lines, r.err).toHaveLength(1);
        expect(lines[0]).toContain(`--bootstrap ${wrong}: not a peer's multiaddr; give one ending in /p2p/<PeerId>`);
      }
    },
    TEST_MS,
  );

  it(
    '`polyhome start --announce garbage`: one line asking for a multiaddr, exit 2, nothing started',
    async () => {
      const node = new CliNode('node', path.join(scratch, 'announce'));
      for (const wrong of ['garbage', '11.77.0.31:4102']) {
        const r = await node.run('start', '--announce', wrong);
        const lines = r.err.split('\n').filter(Boolean);
        expect(r.code, r.err).toBe(2);
        expect(lines, r.err).toHaveLength(1);
        expect(lines[0]).toContain(`--announce ${wrong}: not a multiaddr; give one like /ip4/203.0.113.5/tcp/4001`);
        expect(r.out).not.toContain('ready in');
      }
    },
    TEST_MS,
  );
});
