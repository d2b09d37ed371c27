// P2P_ANNOUNCE: a server in a container or behind NAT publishes the addresses others dial, not the ones it
// listens on. A server process started with it puts those addresses (and not its listen address) in the
// document of an account it hosts, and its node info lists them.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServerProcess } from './support/server-process.js';

const ANNOUNCED = ['/ip4/203.0.113.7/tcp/4001', '/dns4/home.example.org/tcp/4001'];

describe('P2P_ANNOUNCE', () => {
  let dataDir: string | undefined;
  let server: ServerProcess | undefined;

  afterAll(async () => {
    await server?.kill('SIGKILL');
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  }, 30_000);

  it('puts the announced addresses, not the listen one, in the documents it signs', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-announce-'));
    server = await ServerProcess.create({ name: 'server', dataDir, env: { P2P_ANNOUNCE: ANNOUNCED.join(',') } });
    await server.start();
    const made = await server.admin('POST', '/admin/v1/accounts', { localpart: 'natted', password: 'natted password' });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const userId = String(made.body['user_id']);
    const homes = await server.admin('GET', `/admin/v1/accounts/${encodeURIComponent(userId)}/homes`);
    expect(homes.status, JSON.stringify(homes.body)).toBe(200);
    const own = (homes.body['homes'] as Array<{ peer_id: string; addrs: string[] }>).find(
      (h) => h.peer_id === server!.peerId,
    );
    expect(own, JSON.stringify(homes.body)).toBeDefined();
    expect(own!.addrs).toEqual(ANNOUNCED.map((a) => `${a}/p2p/${server!.peerId}`));
    expect(own!.addrs.join(' ')).not.toContain(String(server.p2pPort));
  }, 180_000);
});
