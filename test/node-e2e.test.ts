// One account on a laptop, a phone and a companion server, as its user runs them: the CLI's processes for
// the two client-side homes, a server process, real TCP on 127.0.0.1, a matrix-js-sdk client on each home.
// Once with the server on its embedded default, once on PostgreSQL + BullMQ. The steps build on each other.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, Method, type MatrixClient } from 'matrix-js-sdk';
import { readNodeKeyFile, peerIdFromPublicKey, revokedCutoff, type AccountDocument } from '@polyhome/identity';
import { waitFor } from '@polyhome/p2p/testing';
import { openStorage, SqlReplicaStore } from '@polyhome/storage';
import { createTestPostgresDatabase } from '@polyhome/storage/testing';
import { createOp } from '@polyhome/sync';
import { deviceBody } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from './support/cli-node.js';
import { ServerProcess } from './support/server-process.js';

const REDIS_URL = process.env['TEST_REDIS_URL'] ?? 'redis://127.0.0.1:6379';
/** Ops the laptop makes while the phone is away, for the kill -9 during catch-up. */
const BULK_OPS = 3000;

interface Device {
  device_id: string;
  keys?: Record<string, string>;
}

async function matrixClient(baseUrl: string, loginToken: string): Promise<MatrixClient> {
  const login = await createClient({ baseUrl }).loginRequest({ type: 'm.login.token', token: loginToken });
  return createClient({ baseUrl, userId: login.user_id, accessToken: login.access_token, deviceId: login.device_id });
}

async function uploadKeys(client: MatrixClient): Promise<void> {
  const userId = client.getUserId()!;
  const deviceId = client.getDeviceId()!;
  // Self-signed by the device's Ed25519 key, as homes require (keys derived from the device id).
  await client.http.authedRequest(Method.Post, '/keys/upload', undefined, {
    device_keys: { ...deviceBody({ userId }, deviceId) },
  });
}

/** Device IDs with uploaded keys, as a client sees them through /keys/query. */
async function keyedDevices(client: MatrixClient): Promise<string[]> {
  const userId = client.getUserId()!;
  const r = await client.http.authedRequest<{ device_keys: Record<string, Record<string, unknown>> }>(
    Method.Post,
    '/keys/query',
    undefined,
    { device_keys: { [userId]: [] } },
  );
  return Object.keys(r.device_keys[userId] ?? {}).sort();
}

const BACKENDS = [
  { name: 'embedded (PGlite + in-process queue)', postgres: false },
  { name: 'PostgreSQL + BullMQ', postgres: true },
] as const;

describe.each(BACKENDS)('laptop, phone and a companion server, server on $name', ({ postgres }) => {
  const dirs: string[] = [];
  let dropDb: (() => Promise<void>) | undefined;
  let server: ServerProcess;
  let laptop: CliNode;
  let phone: CliNode;
  let userId = '';
  let phonePeer = '';
  const clients: Record<'laptop' | 'phone' | 'server', MatrixClient | undefined> = {
    laptop: undefined,
    phone: undefined,
    server: undefined,
  };
  const temp = async (label: string): Promise<string> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `polyhome-e2e-${label}-`));
    dirs.push(dir);
    return dir;
  };
  const accountPath = (): string => `/admin/v1/accounts/${encodeURIComponent(userId)}`;
  // A keep-alive connection the server closes just as a request reuses it fails with ECONNRESET: ask again.
  // The lists answer pages (`chunk`, `next_from`): every page is read, so a state of thousands of rooms is whole.
  const serverState = async (what: 'devices' | 'memberships'): Promise<string> => {
    const page = async (from: string | undefined) => {
      const query = `?limit=500${from === undefined ? '' : `&from=${encodeURIComponent(from)}`}`;
      for (let attempt = 1; ; attempt++) {
        try {
          return (await server.admin('GET', `${accountPath()}/${what}${query}`)).body as {
            chunk?: unknown[];
            next_from?: string;
          };
        } catch (err) {
          if (attempt >= 3 || !server.running) throw err;
        }
      }
    };
    const items: unknown[] = [];
    let from: string | undefined;
    for (let pages = 0; pages < 100; pages++) {
      const body = await page(from);
      items.push(...(body.chunk ?? []));
      if (body.next_from === undefined) break;
      from = body.next_from;
    }
    return JSON.stringify(items);
  };

  beforeAll(async () => {
    const env: Record<string, string> = {};
    if (postgres) {
      const db = await createTestPostgresDatabase();
      dropDb = db.drop;
      env['DATABASE_URL'] = db.url;
      env['REDIS_URL'] = REDIS_URL;
      env['QUEUE_PREFIX'] = `polyhome-e2e-${process.pid}-${Date.now()}`;
    }
    server = await ServerProcess.create({ name: 'server', dataDir: await temp('server'), env });
    await server.start();
    laptop = new CliNode('laptop', await temp('laptop'));
    phone = new CliNode('phone', await temp('phone'));
  }, 120_000);

  afterAll(async () => {
    for (const client of Object.values(clients)) client?.stopClient();
    await Promise.allSettled([laptop?.stop('SIGKILL'), phone?.stop('SIGKILL'), server?.kill('SIGKILL')]);
    await dropDb?.();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('1. laptop creates the account, enrolls the server, and adds the phone made with init --join', async () => {
    const made = await laptop.initAccount('alice', 'laptop');
    userId = made.user_id;
    await laptop.start();
    const enrolled = await laptop.json<{ seq: number; homes: unknown[] }>(
      'home',
      'add',
      server.addr,
      '--role',
      'server',
      '--name',
      'companion',
    );
    expect(enrolled).toMatchObject({ seq: 2 });
    expect(enrolled.homes).toHaveLength(2);

    const joined = await phone.json<{ peer_id: string; pairing_code: string }>('init', '--join');
    phonePeer = joined.peer_id;
    // The laptop runs: the command goes through its control API and the new document goes out at once. It
    // keeps the phone's pairing code, and proves it when the phone asks.
    const added = await laptop.json<{ seq: number }>(
      'home',
      'add',
      phonePeer,
      '--role',
      'client',
      '--name',
      'phone',
      '--pairing-code',
      joined.pairing_code,
    );
    expect(added.seq).toBe(3);
    await waitFor(
      async () => (await server.admin('GET', accountPath())).body['doc_seq'] === 3,
      'document 3 on the server',
    );

    // The phone is told the server's and the laptop's addresses. Both name it as a home; it takes the account in
    // from the laptop, which proves its pairing code (the server, which was given none, proves nothing).
    await phone.start('--bootstrap', server.addr, laptop.addr);
    await waitFor(
      async () => {
        const s = await phone.json<{ accounts: Array<{ user_id: string; doc_seq: number; root_key: boolean }> }>(
          'status',
        );
        return s.accounts[0]?.user_id === userId && s.accounts[0].doc_seq === 3;
      },
      'the phone to hold the account',
      60_000,
    );
    const phoneStatus = await phone.json<{ accounts: Array<{ root_key: boolean }> }>('status');
    expect(phoneStatus.accounts[0]!.root_key).toBe(false);
    const homes = await phone.json<{ homes: Array<{ peer_id: string; role: string; self: boolean }> }>('home', 'list');
    expect(homes.homes.map((h) => h.role).sort()).toEqual(['client', 'client', 'server']);
    expect(homes.homes.find((h) => h.self)?.peer_id).toBe(phonePeer);
  }, 240_000);

  it('2. a matrix-js-sdk client on each home logs in, uploads keys, joins and leaves rooms; all converge', async () => {
    // The laptop's own account has no password: the laptop advertises only what it can complete.
    const flows = await createClient({ baseUrl: laptop.matrixUrl }).loginFlows();
    expect(flows.flows.map((f) => f.type)).toEqual(['m.login.token']);
    clients.laptop = await matrixClient(
      laptop.matrixUrl,
      (await laptop.json<{ login_token: string }>('login-token')).login_token,
    );
    clients.phone = await matrixClient(
      phone.matrixUrl,
      (await phone.json<{ login_token: string }>('login-token')).login_token,
    );
    const token = await server.admin('POST', `${accountPath()}/login-token`);
    clients.server = await matrixClient(`http://127.0.0.1:${server.port}`, String(token.body['login_token']));
    const all = [clients.laptop, clients.phone, clients.server];
    for (const client of all) expect(client.getUserId()).toBe(userId);
    await Promise.all(all.map(uploadKeys));

    const { room_id: kept } = await clients.laptop.createRoom({});
    const { room_id: left } = await clients.phone.createRoom({});
    // The server's client leaves the phone's room once the membership has reached the server.
    await waitFor(
      async () => (await clients.server!.getJoinedRooms()).joined_rooms.includes(left),
      "the phone's room on the server",
      60_000,
    );
    await clients.server.http.authedRequest(Method.Post, `/rooms/${encodeURIComponent(left)}/leave`, undefined, {});
    const { room_id: fromServer } = await clients.server.createRoom({});

    const deviceIds = all.map((c) => c.getDeviceId()!).sort();
    for (const [name, client] of Object.entries(clients)) {
      await waitFor(
        async () => JSON.stringify(await keyedDevices(client!)) === JSON.stringify(deviceIds),
        `every device with keys in /keys/query on the ${name}`,
        60_000,
      );
      await waitFor(
        async () => {
          const rooms = (await client!.getJoinedRooms()).joined_rooms.sort();
          return JSON.stringify(rooms) === JSON.stringify([kept, fromServer].sort());
        },
        `the joined rooms on the ${name}`,
        60_000,
      );
    }
    // The CLI and the admin API come to the same state as the clients. The server's leave reaches the other homes
    // twice, as the room's leave event (what /joined_rooms reads for a room a home holds) and as the account's
    // membership op (what `room list` reads); either may arrive first, so the CLI's view is waited for too.
    for (const node of [laptop, phone]) {
      const { devices } = await node.json<{ devices: Device[] }>('device', 'list');
      expect(devices.map((d) => d.device_id).sort()).toEqual(deviceIds);
      await waitFor(
        async () => {
          const { memberships } = await node.json<{ memberships: Array<{ room_id: string; membership: string }> }>(
            'room',
            'list',
          );
          return memberships.find((m) => m.room_id === left)?.membership === 'leave';
        },
        `the leave of the phone's room in \`room list\` on the ${node === laptop ? 'laptop' : 'phone'}`,
        60_000,
      );
    }
    for (const id of deviceIds) expect(await serverState('devices')).toContain(id);
  }, 240_000);

  it('3. the phone is away while the laptop changes things; it gets them from the server afterwards', async () => {
    expect(await phone.stop()).toBe(0);
    await laptop.json('room', 'join', '!while-phone-away:example.org');
    const extra = await matrixClient(
      laptop.matrixUrl,
      (await laptop.json<{ login_token: string }>('login-token')).login_token,
    );
    const extraDevice = extra.getDeviceId()!;
    await waitFor(
      async () =>
        (await serverState('memberships')).includes('!while-phone-away') &&
        (await serverState('devices')).includes(extraDevice),
      "the laptop's changes on the server",
      60_000,
    );
    expect(await laptop.stop()).toBe(0);

    await phone.start();
    await waitFor(
      async () => {
        const { memberships } = await phone.json<{ memberships: Array<{ room_id: string }> }>('room', 'list');
        const { devices } = await phone.json<{ devices: Device[] }>('device', 'list');
        return (
          memberships.some((m) => m.room_id === '!while-phone-away:example.org') &&
          devices.some((d) => d.device_id === extraDevice)
        );
      },
      'the phone to receive what the laptop did while it was away, through the server',
      90_000,
    );
    // The phone's Matrix client sees the new device too.
    await waitFor(
      async () => (await clients.phone!.getDevices()).devices.some((d) => d.device_id === extraDevice),
      "the new device in the phone client's /devices",
    );
  }, 240_000);

  it('4. the laptop revokes the phone; what the phone makes afterwards is refused by the server and the laptop', async () => {
    expect(await phone.stop()).toBe(0);
    await laptop.start();
    // The revocation pins the phone's log (issue 13, item 1): its entry is { seq, digest }; the cutoff is checked as before.
    const revoked = await laptop.json<AccountDocument>('home', 'remove', phonePeer);
    expect(revokedCutoff(revoked.revoked[phonePeer]!)).toBeGreaterThan(0);
    await waitFor(
      async () => (await server.admin('GET', accountPath())).body['doc_seq'] === revoked.seq,
      'the revocation on the server',
    );
    const devicesBefore = await serverState('devices');
    // The phone has not heard of it: offline, it still signs changes with its old document.
    await phone.json('room', 'join', '!after-revocation:example.org');
    const phoneDevice = clients.phone!.getDeviceId()!;
    await phone.json('device', 'remove', phoneDevice);
    await phone.start('--bootstrap', server.addr);
    // It learns of its revocation from the server (the document reaches revoked homes too).
    await waitFor(
      async () =>
        (await phone.json<{ accounts: Array<{ doc_seq: number }> }>('status')).accounts[0]?.doc_seq === revoked.seq,
      'the phone to receive the revocation',
      60_000,
    );
    // The phone's ops above the cutoff were offered and refused, or dropped by the phone itself once it held
    // the revocation (a home retracts a revoked origin's ops above the cutoff): either way they are settled.
    await waitFor(
      async () =>
        server.logs.some((l) => l.includes('sync rejected') && l.includes(phonePeer)) ||
        !(await phone.json<{ memberships: Array<{ room_id: string }> }>('room', 'list')).memberships.some(
          (m) => m.room_id === '!after-revocation:example.org',
        ),
      "the phone's late ops to be refused",
      60_000,
    );
    // Nothing it made after the cutoff reached the server or the laptop.
    const { memberships } = await laptop.json<{ memberships: Array<{ room_id: string }> }>('room', 'list');
    expect(memberships.some((m) => m.room_id === '!after-revocation:example.org')).toBe(false);
    expect(await serverState('memberships')).not.toContain('!after-revocation');
    expect(await serverState('devices')).toBe(devicesBefore);
    const { devices } = await laptop.json<{ devices: Device[] }>('device', 'list');
    expect(devices.some((d) => d.device_id === phoneDevice)).toBe(true);
    const detail = (await server.admin('GET', accountPath())).body as { homes: Array<{ peer_id: string }> };
    expect(detail.homes.some((h) => h.peer_id === phonePeer)).toBe(false);
    expect(await phone.stop()).toBe(0);
  }, 240_000);

  it("5. a fresh node that knows only the user ID and one bootstrap address finds the account's homes in the DHT", async () => {
    const fresh = new CliNode('fresh', await temp('fresh'));
    await waitFor(
      async () => {
        const r = await fresh.run('lookup', userId, '--bootstrap', server.addr, '--timeout', '10', '--json');
        if (r.code !== 0) return false;
        const found = JSON.parse(r.out) as { user_id: string; homes: Array<{ peerId: string; addrs: string[] }> };
        const serverHome = found.homes.find((h) => h.peerId === server.peerId);
        return (
          found.user_id === userId &&
          found.homes.length === 2 &&
          serverHome !== undefined &&
          serverHome.addrs.length > 0
        );
      },
      'the lookup to find the laptop and the server',
      120_000,
    );
    const bad = await fresh.run('lookup', 'not-a-user-id', '--bootstrap', server.addr);
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
  }, 180_000);

  it('6. kill -9 of a client-side home in the middle of catching up loses nothing it acknowledged', async () => {
    // A second phone joins; while it is away, the laptop makes BULK_OPS changes.
    const tablet = new CliNode('tablet', await temp('tablet'));
    const tabletJoined = await tablet.json<{ peer_id: string; pairing_code: string }>('init', '--join');
    const tabletPeer = tabletJoined.peer_id;
    await laptop.json(
      'home',
      'add',
      tabletPeer,
      '--role',
      'client',
      '--name',
      'tablet',
      '--pairing-code',
      tabletJoined.pairing_code,
    );
    await tablet.start('--bootstrap', server.addr, laptop.addr);
    await waitFor(
      async () => (await tablet.json<{ accounts: unknown[] }>('status')).accounts.length === 1,
      'the tablet to hold the account',
      60_000,
    );
    expect(await tablet.stop()).toBe(0);
    expect(await laptop.stop()).toBe(0);
    const first = await writeBulkOps(laptop.dir, userId);
    await laptop.start();
    await waitFor(
      async () => (await serverState('memberships')).includes(`!bulk-${BULK_OPS}:`),
      'the bulk ops on the server',
      120_000,
    );
    expect(await laptop.stop()).toBe(0);

    await tablet.start('--bootstrap', server.addr);
    await waitFor(
      () => tablet.output.some((l) => /sync: received \d+ ops/.test(l)),
      'the tablet to start catching up',
      60_000,
    );
    expect(await tablet.stop('SIGKILL')).toBe(null);
    const laptopPeer = peerIdFromPublicKey((await readNodeKeyFile(path.join(laptop.dir, 'node.key'))).publicKey);
    const acked =
      (
        (await server.admin('GET', accountPath())).body as {
          homes: Array<{ peer_id: string; acked: Record<string, number> }>;
        }
      ).homes.find((h) => h.peer_id === tabletPeer)!.acked[laptopPeer] ?? 0;
    // Offline, after the kill: every op the tablet acknowledged is in its database.
    const held = await tablet.json<{ memberships: Array<{ room_id: string }> }>('room', 'list');
    const bulkHeld = new Set(held.memberships.map((m) => m.room_id).filter((r) => r.startsWith('!bulk-')));
    for (let seq = first; seq <= acked; seq++) {
      if (!bulkHeld.has(`!bulk-${seq - first + 1}:example.org`)) throw new Error(`acknowledged op ${seq} was lost`);
    }
    // On restart it finishes.
    await tablet.start('--bootstrap', server.addr);
    await waitFor(
      async () => {
        const { memberships } = await tablet.json<{ memberships: Array<{ room_id: string }> }>('room', 'list');
        return memberships.filter((m) => m.room_id.startsWith('!bulk-')).length === BULK_OPS;
      },
      'the tablet to finish catching up',
      180_000,
    );
    expect(await tablet.stop()).toBe(0);
  }, 480_000);
});

/**
 * Signs BULK_OPS room joins as ops of the laptop, straight into its stopped data directory (what its own
 * clients would make over a while, made at once). Returns the seq of the first.
 */
async function writeBulkOps(dir: string, userId: string): Promise<number> {
  const nodeKey = await readNodeKeyFile(path.join(dir, 'node.key'));
  const origin = peerIdFromPublicKey(nodeKey.publicKey);
  const serverName = userId.slice(userId.indexOf(':') + 1);
  const storage = await openStorage({ dataDir: dir });
  try {
    const store = new SqlReplicaStore(storage.dataSource);
    const ctx = await store.localOpContext(serverName, origin);
    for (let start = 0; start < BULK_OPS; start += 500) {
      const ops = [];
      for (let i = start; i < Math.min(BULK_OPS, start + 500); i++) {
        const roomId = `!bulk-${i + 1}:example.org`;
        ops.push(
          createOp(
            {
              account: serverName,
              origin,
              seq: ctx.seq + i,
              lamport: ctx.lamport + i,
              doc_seq: ctx.docSeq,
              ts: Date.now(),
              op: 'member.set',
              key: roomId,
              body: { room_id: roomId, membership: 'join' },
            },
            nodeKey,
          ),
        );
      }
      const result = await store.applyOps(serverName, ops, origin);
      if (result.accepted.length !== ops.length)
        throw new Error(`bulk ops refused: ${JSON.stringify(result.rejected[0])}`);
    }
    return ctx.seq;
  } finally {
    await storage.close();
  }
}
