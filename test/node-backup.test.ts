// A client home's data directory backed up, destroyed and restored, as its user would: the `polyhome` CLI's
// processes and a server process (its other home) on real TCP and libp2p. The backup is taken from the running
// node (through its control API: it snapshots the database it holds open); after it, the laptop makes one more
// change, then the directory is destroyed while the server changes the account. The restored node holds the
// backup's state, and once started catches up with both: the server's changes and the laptop's own later op
// (which the server kept). A change made after the restore reaches the server with no equivocation.
// Once with the server on its embedded default, once on PostgreSQL + BullMQ.
import { stat, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from './support/cli-node.js';
import { deleteRedisPrefix } from './support/convergence.js';
import { matrixLogin, ServerProcess } from './support/server-process.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const CATCH_UP_MS = 90_000;

const BACKENDS = [
  { name: 'embedded (PGlite + in-process queue)', postgres: false },
  { name: 'PostgreSQL + BullMQ', postgres: true },
] as const;

describe.each(BACKENDS)('backup, destroy and restore of a client home, server on $name', ({ postgres }) => {
  let scratch: string;
  let server: ServerProcess;
  let laptop: CliNode;
  let dropDb: (() => Promise<void>) | undefined;
  let prefix: string | undefined;

  const rooms = async (): Promise<string[]> =>
    (await laptop.json<{ memberships: Array<{ room_id: string }> }>('room', 'list')).memberships
      .map((m) => m.room_id)
      .sort();
  const devices = async (): Promise<string[]> =>
    (await laptop.json<{ devices: Array<{ device_id: string }> }>('device', 'list')).devices
      .map((d) => d.device_id)
      .sort();

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-backup-'));
    const env: Record<string, string> = {};
    if (postgres) {
      const db = await createTestPostgresDatabase();
      dropDb = db.drop;
      prefix = `polyhome-backup-${process.pid}-${Date.now()}`;
      Object.assign(env, { DATABASE_URL: db.url, REDIS_URL, QUEUE_PREFIX: prefix });
    }
    server = await ServerProcess.create({ name: 'server', dataDir: path.join(scratch, 'server'), env });
    await server.start();
    laptop = new CliNode('laptop', path.join(scratch, 'laptop'));
  }, 120_000);

  afterAll(async () => {
    await laptop?.stop('SIGKILL');
    await server?.kill('SIGKILL');
    if (prefix !== undefined) await deleteRedisPrefix(REDIS_URL, prefix).catch(() => undefined);
    await dropDb?.().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it('restores the directory, and the home catches up with what changed meanwhile', async () => {
    const { user_id: userId } = await laptop.initAccount('alice', 'laptop');
    const accountPath = `/admin/v1/accounts/${encodeURIComponent(userId)}`;
    const serverRooms = async (): Promise<string[]> =>
      ((await server.admin('GET', `${accountPath}/memberships?limit=500`)).body['chunk'] as Array<{ room_id: string }>)
        .map((m) => m.room_id)
        .sort();
    await laptop.start();
    await laptop.json('home', 'add', server.addr, '--role', 'server', '--name', 'companion');
    await laptop.json('room', 'join', '!before-backup:example.org');
    await waitFor(
      async () => (await serverRooms()).includes('!before-backup:example.org'),
      'the server to hold the first room',
      CATCH_UP_MS,
      200,
    );

    // Backed up from the running node, which takes the snapshot of the database it holds.
    const file = path.join(scratch, 'laptop.backup');
    const backup = await laptop.json<{ out: string; peer_id: string; user_ids: string[]; bytes: number }>(
      'backup',
      '--out',
      file,
    );
    expect(backup).toMatchObject({ out: file, user_ids: [userId] });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await laptop.run('backup', '--out', file);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/exists: a backup never overwrites a file/);

    // One more change of the laptop after the backup, which the server takes in.
    await laptop.json('room', 'join', '!after-backup:example.org');
    await waitFor(
      async () => (await serverRooms()).includes('!after-backup:example.org'),
      'the server to hold the room joined after the backup',
      CATCH_UP_MS,
      200,
    );

    // The laptop is lost; meanwhile its other home changes the account (two devices log in there).
    expect(await laptop.stop()).toBe(0);
    await rm(laptop.dir, { recursive: true, force: true });
    const serverDevices = [(await matrixLogin(server, userId)).deviceId, (await matrixLogin(server, userId)).deviceId];

    const restored = await laptop.run('restore', file);
    expect(restored.code, restored.err).toBe(0);
    expect(restored.out).toContain(`restored ${userId} (${backup.peer_id})`);
    // The directory is the backup's: the room joined after it is not there yet, nor the server's devices.
    expect(await rooms()).toEqual(['!before-backup:example.org']);
    for (const device of serverDevices) expect(await devices()).not.toContain(device);
    // A second restore into it is refused, and leaves it as it is.
    const twice = await laptop.run('restore', file);
    expect(twice.code).toBe(1);
    expect(twice.err).toMatch(/already holds a home \(node\.key\): restore into an empty data directory/);

    const started = Date.now();
    await laptop.start();
    await waitFor(
      async () => {
        const held = await devices();
        return serverDevices.every((d) => held.includes(d)) && (await rooms()).includes('!after-backup:example.org');
      },
      'the restored laptop to catch up with the server',
      CATCH_UP_MS,
      300,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${laptop.tail()}\n${server.tail()}`);
    });
    process.stdout.write(`restored laptop caught up in ${Date.now() - started} ms after its start\n`);

    // Its own later op came back: the next one it makes follows it, and the server takes it (no equivocation).
    await laptop.json('room', 'join', '!after-restore:example.org');
    await waitFor(
      async () => (await serverRooms()).includes('!after-restore:example.org'),
      'the server to hold the room joined after the restore',
      CATCH_UP_MS,
      200,
    );
    const detail = await server.admin('GET', accountPath);
    expect(detail.body['equivocators']).toEqual([]);
  }, 300_000);
});
