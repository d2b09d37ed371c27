// A server home on PostgreSQL backed up and restored as the README's operator section says: pg_dump of its
// database and a copy of node.key, sealing-key and admin-token from DATA_DIR; then the database is dropped and
// DATA_DIR deleted, and the server is brought back with pg_restore into a new database and the files. A client
// home (in this process, real libp2p) keeps making ops throughout. The restored server has its PeerId, catches
// up (through a forced resync with the client home, the README's step) with every op of the client home (those
// after the dump, and those made while it was down), and gets back its own op made after the dump.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, waitFor } from '@polyhome/p2p/testing';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import type { VersionVector } from '@polyhome/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNode, loginDevice, serverHomeOf } from './support/client-node.js';
import { ServerProcess } from './support/server-process.js';

const run = promisify(execFile);
const CATCH_UP_MS = 90_000;
/** The DATA_DIR files the README says to keep besides the database. */
const KEPT = ['node.key', 'sealing-key', 'admin-token'];

describe('a server on PostgreSQL: pg_dump, destroy, pg_restore, and it catches up', () => {
  let scratch: string;
  let dataDir: string;
  let server: ServerProcess;
  let laptop: ClientNode;
  const drops: Array<() => Promise<void>> = [];

  const accountPath = (): string => `/admin/v1/accounts/${encodeURIComponent(laptop.userId)}`;
  /** The server's version vector of the account (its own home entry's `acked` in the admin detail). */
  const serverVv = async (): Promise<VersionVector> => {
    const homes = (await server.admin('GET', accountPath())).body['homes'] as Array<{
      self: boolean;
      acked: VersionVector;
    }>;
    return homes.find((h) => h.self)!.acked;
  };
  const serverDevices = async (): Promise<string[]> =>
    (
      (await server.admin('GET', `${accountPath()}/devices?limit=500`)).body['chunk'] as Array<{ device_id: string }>
    ).map((d) => d.device_id);

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'polyhome-server-backup-'));
    dataDir = path.join(scratch, 'data');
    const db = await createTestPostgresDatabase();
    drops.push(db.drop);
    server = await ServerProcess.create({ name: 'server', dataDir, env: { DATABASE_URL: db.url } });
    await server.start();
    // The laptop's home entry names its address, so the server dials it (at its start, after the restore too).
    const port = await freePort();
    laptop = await ClientNode.start({
      seed: `server-backup-${process.pid}`,
      port,
      announce: [`/ip4/127.0.0.1/tcp/${port}`],
    });
    await laptop.addHome(serverHomeOf(server, 'server'));
    expect((await laptop.enroll(server)).status).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await laptop?.stop().catch(() => undefined);
    await server?.kill('SIGKILL');
    for (const drop of drops) await drop().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
  }, 60_000);

  it('restores the database and DATA_DIR files; the server keeps its PeerId and catches up', async () => {
    const peerId = server.peerId;
    await laptop.write(20, 'BEFORE');
    const before = await loginDevice(server, laptop.userId);
    await waitFor(
      async () => ((await serverVv())[laptop.home.peerId] ?? 0) === 20,
      'the server to hold the laptop’s first ops',
      CATCH_UP_MS,
      200,
    );

    // The backup, while the server runs.
    const dump = path.join(scratch, 'polyhome.dump');
    await run('pg_dump', ['--format=custom', `--file=${dump}`, server.init.env['DATABASE_URL']!]);
    const files = path.join(scratch, 'files');
    await mkdir(files, { mode: 0o700 });
    // admin-token only when ADMIN_TOKEN is unset (the test's servers set it).
    const kept = (await readdir(dataDir)).filter((name) => KEPT.includes(name));
    expect(kept).toEqual(expect.arrayContaining(['node.key', 'sealing-key']));
    for (const name of kept) await cp(path.join(dataDir, name), path.join(files, name));

    // After it: the laptop's ops and a device of the server, which the laptop holds.
    await laptop.write(10, 'AFTER');
    const after = await loginDevice(server, laptop.userId);
    const serverSeq = (await serverVv())[peerId]!;
    await waitFor(
      async () => ((await laptop.versionVector())[peerId] ?? 0) === serverSeq,
      'the laptop to hold the server’s device made after the dump',
      CATCH_UP_MS,
      200,
    );

    // The loss: the server, its database and DATA_DIR; the laptop goes on meanwhile.
    await server.kill('SIGKILL');
    await drops.shift()!();
    await rm(dataDir, { recursive: true, force: true });
    await laptop.write(10, 'DOWN');

    // The restore, into a new database.
    const fresh = await createTestPostgresDatabase();
    drops.push(fresh.drop);
    await run('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${fresh.url}`, dump]);
    await mkdir(dataDir, { mode: 0o700 });
    for (const name of kept) await cp(path.join(files, name), path.join(dataDir, name));
    server.init.env['DATABASE_URL'] = fresh.url;
    await server.start();
    expect(server.peerId).toBe(peerId);
    // A restored server dials no home by itself: it holds nothing it thinks they lack. A client home's node
    // redials its homes every 30 s; the README's step is a forced resync with each home, done here at once.
    const started = await server.admin('POST', `${accountPath()}/resync`, {
      home: laptop.home.peerId,
      reason: 'restored from the dump',
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    let job: Record<string, unknown> = {};
    await waitFor(
      async () => {
        job = (await server.admin('GET', `/admin/v1/jobs/${String(started.body['job_id'])}`)).body;
        return job['state'] === 'done' || job['state'] === 'failed';
      },
      'the resync job to end',
      CATCH_UP_MS,
      200,
    );
    expect(job['state'], JSON.stringify(job)).toBe('done');
    process.stdout.write(`resync after the restore: ${JSON.stringify(job['progress'])}\n`);

    await waitFor(
      async () =>
        ((await serverVv())[laptop.home.peerId] ?? 0) === 40 && ((await serverVv())[peerId] ?? 0) >= serverSeq,
      'the restored server to catch up with the laptop',
      CATCH_UP_MS,
      300,
    ).catch(async (err: unknown) => {
      const connections = laptop.host.getConnections().map((c) => `${c.remotePeer.toString()} ${c.status}`);
      throw new Error(
        `${String(err)}\nserver vv ${JSON.stringify(await serverVv())}\nlaptop connections ${connections.join(', ')}` +
          `\nlaptop sessions ${JSON.stringify(laptop.sync.sessions())}\n${server.tail()}`,
      );
    });
    const devices = await serverDevices();
    expect(devices).toEqual(expect.arrayContaining([before, after, 'AFTER_21', 'DOWN_39']));
    // Its own op from after the dump came back from the laptop; the next one it makes follows it.
    const next = await loginDevice(server, laptop.userId);
    await waitFor(
      async () => ((await laptop.versionVector())[peerId] ?? 0) === serverSeq + 1,
      'the laptop to take the restored server’s next op',
      CATCH_UP_MS,
      200,
    );
    expect((await server.admin('GET', accountPath())).body['equivocators']).toEqual([]);
    expect(await serverDevices()).toContain(next);
  }, 300_000);
});
