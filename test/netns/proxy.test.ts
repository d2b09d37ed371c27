// `polyhome proxy` on a namespace with no home (l1, behind its NAT router; test/netns/lab.ts, root only): it
// reaches alice's server home on the public segment over libp2p, and matrix-js-sdk, run in l1 as its own process,
// logs in through it, uploads keys, sees alice's devices and syncs. The server's HTTP port is not reachable from
// l1 (it listens on s1's own 127.0.0.1): the proxy is the only way in.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@polyhome/p2p/testing';
import { deviceBody } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../support/cli-node.js';
import { NsServer } from './homes.js';
import { ADDRS, NetnsLab, requireNetnsPrivileges } from './lab.js';

const CLIENT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'proxy-client.ts');
const PASSWORD = 'correct horse battery staple';
const PROXY = 'http://127.0.0.1:8010';

/** Runs a command in a namespace to its end; resolves with its exit code and output. */
function runIn(lab: NetnsLab, command: string[]): Promise<{ code: number | null; out: string }> {
  const child = lab.spawn('l1', command, { PATH: process.env['PATH'] ?? '' });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out })));
}

describe('polyhome proxy in a namespace with no home reaches a server home across the NAT', () => {
  let lab: NetnsLab | undefined;
  let dir: string;
  let s1: NsServer;
  let userId: string;
  const proxyOutput: string[] = [];

  beforeAll(async () => {
    await requireNetnsPrivileges();
    lab = await NetnsLab.create();
    dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-netns-proxy-'));
    s1 = new NsServer(lab, 's1', dir);
    await s1.start();
    const made = await s1.admin('POST', '/admin/v1/accounts', { localpart: 'alice', password: PASSWORD });
    userId = String(made.body['user_id']);
  }, 300_000);

  afterAll(async () => {
    if (lab !== undefined) {
      await lab.destroy();
      expect(await lab.leftovers()).toEqual([]);
    }
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('lets matrix-js-sdk log in, upload keys, see its devices and sync on the remote server home', async () => {
    // Only libp2p crosses: the server's HTTP port is closed to l1.
    expect(await lab!.canConnect('l1', ADDRS.s1, 8008)).toBe(false);
    const proxy = lab!.spawn('l1', [process.execPath, CLI, 'proxy', '--listen', '127.0.0.1:8010', '--home', s1.addr], {
      PATH: process.env['PATH'] ?? '',
      HOME: dir,
    });
    const keep = (d: Buffer): void => void proxyOutput.push(...d.toString().split('\n').filter(Boolean));
    proxy.stdout!.on('data', keep);
    proxy.stderr!.on('data', keep);
    await waitFor(
      () => {
        if (proxy.exitCode !== null) throw new Error(`the proxy exited:\n${proxyOutput.join('\n')}`);
        return proxyOutput.some((l) => l.startsWith('proxying '));
      },
      'the proxy to listen in l1',
      60_000,
    );
    expect(proxyOutput).toContain(`home ${s1.peerId}`);
    const deviceId = 'PROXYDEVICE';
    const keys = JSON.stringify(deviceBody({ userId }, deviceId));
    const client = await runIn(lab!, [process.execPath, CLIENT, PROXY, userId, PASSWORD, deviceId, keys]);
    expect(client.code, client.out).toBe(0);
    const line = client.out.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, client.out).toBeDefined();
    const result = JSON.parse(line!.slice('RESULT '.length)) as {
      user_id: string;
      device_id: string;
      devices: string[];
      keyed: string[];
      synced: boolean;
    };
    expect(result.user_id).toBe(userId);
    expect(result.device_id).toBe(deviceId);
    expect(result.devices).toContain(result.device_id);
    expect(result.keyed).toContain(result.device_id);
    expect(result.synced).toBe(true);
    // The device is the server's: its admin API lists it.
    const devices = await s1.admin('GET', `/admin/v1/accounts/${encodeURIComponent(userId)}/devices?limit=500`);
    expect((devices.body['chunk'] as Array<{ device_id: string }>).map((d) => d.device_id)).toContain(result.device_id);
    // The admin API is not reachable through the proxy either.
    const admin = await lab!.http('l1', 'GET', `${PROXY}/admin/v1/node`);
    expect(admin.status).toBe(403);
    expect(admin.body['errcode']).toBe('M_FORBIDDEN');
    proxy.kill('SIGTERM');
  }, 240_000);
});
