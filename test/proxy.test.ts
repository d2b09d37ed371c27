// `polyhome proxy` as its user runs it: a server process hosts alice; the proxy is a process of its own with a
// throwaway libp2p key, serving the Matrix client API on 127.0.0.1 and forwarding every request over
// /polyhome/client/1.0.0 to the server home. matrix-js-sdk logs in through it with alice's password, uploads
// keys, sees its devices, syncs (long polls woken by changes made directly on the server), uploads and downloads
// media (binary bodies). The admin API, dot segments, unknown users and oversized bodies are refused with Matrix
// errors. Runs from dist (`npm run build` first).
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { ClientEvent, createClient, Method, SyncState, type MatrixClient } from 'matrix-js-sdk';
import { waitFor } from '@polyhome/p2p/testing';
import { deviceBody } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CLI, CliNode } from './support/cli-node.js';
import { ADMIN_TOKEN, startFreshServer, type FreshServer } from './support/server-process.js';

const PASSWORD = 'correct horse battery staple';
/** The server's media cap (and so its wire cap on the client API over libp2p). */
const MEDIA_MAX = 64 * 1024;
/** The proxy's own body cap, above the server's: a body between the two is refused by the home. */
const PROXY_MAX = 256 * 1024;

/** A `polyhome proxy` process; resolves once it prints where it listens. */
class ProxyProcess {
  readonly output: string[] = [];
  url = '';
  home = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, 'proxy', '--listen', '127.0.0.1:0', ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: '/tmp' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer): void => void this.output.push(...d.toString().split('\n').filter(Boolean));
    this.child.stdout!.on('data', keep);
    this.child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  async ready(): Promise<void> {
    let exited = false;
    void this.exited.then(() => (exited = true));
    await waitFor(
      () => {
        if (exited) throw new Error(`the proxy exited:\n${this.output.join('\n')}`);
        return this.output.some((l) => l.startsWith('proxying '));
      },
      'the proxy to listen',
      60_000,
    );
    this.url = this.output.find((l) => l.startsWith('matrix '))!.slice('matrix '.length);
    this.home = this.output.find((l) => l.startsWith('home '))!.slice('home '.length);
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

/** A raw request through the proxy: the path exactly as given (fetch would resolve dot segments first). */
function raw(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: Uint8Array,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : Buffer.from(body));
  });
}

/** A password login through `url`, as a client sends it. */
function passwordLogin(url: string, user: string): ReturnType<typeof raw> {
  const body = { type: 'm.login.password', identifier: { type: 'm.id.user', user }, password: PASSWORD };
  return raw(
    url,
    'POST',
    '/_matrix/client/v3/login',
    { 'Content-Type': 'application/json' },
    Buffer.from(JSON.stringify(body)),
  );
}

describe('polyhome proxy to a server home over libp2p', () => {
  let fresh: FreshServer;
  let proxy: ProxyProcess;
  let aliceId: string;
  let alice: MatrixClient;
  let peerDir: string;
  let dhtPeer: CliNode;

  beforeAll(async () => {
    fresh = await startFreshServer('proxy', { MEDIA_MAX_BYTES: String(MEDIA_MAX) });
    // A second DHT peer (a node of no account) before alice is made: a home announces an account only to a DHT
    // with another peer in it, so the proxy's --user lookup has something to find.
    peerDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-proxy-peer-'));
    dhtPeer = new CliNode('dht-peer', peerDir);
    expect((await dhtPeer.run('init', '--join')).code).toBe(0);
    await dhtPeer.start('--bootstrap', fresh.server.addr);
    const made = await fresh.server.admin('POST', '/admin/v1/accounts', { localpart: 'alice', password: PASSWORD });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    aliceId = String(made.body['user_id']);
    proxy = new ProxyProcess(['--home', fresh.server.addr, '--max-body-bytes', String(PROXY_MAX)]);
    await proxy.ready();
  }, 180_000);

  afterAll(async () => {
    alice?.stopClient();
    await proxy?.stop();
    await dhtPeer?.stop();
    await fresh?.dispose();
    if (peerDir !== undefined) await rm(peerDir, { recursive: true, force: true });
  });

  it('prints the home it uses and listens on 127.0.0.1 only', () => {
    expect(proxy.home).toBe(fresh.server.peerId);
    expect(proxy.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('matrix-js-sdk logs in with the password, uploads keys, sees its devices and syncs through the proxy', async () => {
    const login = await createClient({ baseUrl: proxy.url }).loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: aliceId },
      password: PASSWORD,
    });
    expect(login.user_id).toBe(aliceId);
    alice = createClient({
      baseUrl: proxy.url,
      userId: aliceId,
      accessToken: login.access_token,
      deviceId: login.device_id,
    });
    await alice.http.authedRequest(Method.Post, '/keys/upload', undefined, {
      device_keys: { ...deviceBody({ userId: aliceId }, login.device_id) },
    });
    const keys = await alice.http.authedRequest<{ device_keys: Record<string, Record<string, unknown>> }>(
      Method.Post,
      '/keys/query',
      undefined,
      { device_keys: { [aliceId]: [] } },
    );
    expect(Object.keys(keys.device_keys[aliceId] ?? {})).toContain(login.device_id);
    const { devices } = await alice.getDevices();
    expect(devices.map((d) => d.device_id)).toContain(login.device_id);
    // The same device, asked directly on the server: the proxy carried the very requests.
    const direct = await fresh.server.request('GET', '/_matrix/client/v3/devices', undefined, {
      Authorization: `Bearer ${login.access_token}`,
    });
    expect((direct.body['devices'] as Array<{ device_id: string }>).map((d) => d.device_id)).toContain(login.device_id);

    const prepared = new Promise<void>((resolve, reject) => {
      alice.on(ClientEvent.Sync, (state: SyncState) => {
        if (state === SyncState.Prepared) resolve();
        if (state === SyncState.Error) reject(new Error('alice cannot sync through the proxy'));
      });
    });
    await alice.startClient({ initialSyncLimit: 10 });
    await prepared;
  }, 120_000);

  it('a /sync long poll through the proxy wakes on a change made directly on the server', async () => {
    // Directly on the server: a second device of alice (logged in before the since token is taken).
    const direct = await fresh.server.request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: aliceId },
      password: PASSWORD,
    });
    expect(direct.status).toBe(200);
    // A raw long poll with a since token, so the answer is the change alone.
    const token = alice.getAccessToken()!;
    const first = await raw(proxy.url, 'GET', '/_matrix/client/v3/sync?timeout=0', {
      Authorization: `Bearer ${token}`,
    });
    expect(first.status).toBe(200);
    const since = String(first.body['next_batch']);
    const poll = raw(proxy.url, 'GET', `/_matrix/client/v3/sync?since=${encodeURIComponent(since)}&timeout=60000`, {
      Authorization: `Bearer ${token}`,
    });
    const joinedRoom = new Promise<string>((resolve) => alice.on(ClientEvent.Room, (room) => resolve(room.roomId)));
    // The second device creates a room, directly on the server.
    const made = await fresh.server.request(
      'POST',
      '/_matrix/client/v3/createRoom',
      { name: 'made directly' },
      { Authorization: `Bearer ${String(direct.body['access_token'])}` },
    );
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    const roomId = String(made.body['room_id']);
    const woke = await poll;
    expect(woke.status).toBe(200);
    expect(Object.keys((woke.body['rooms'] as { join?: Record<string, unknown> } | undefined)?.join ?? {})).toContain(
      roomId,
    );
    // matrix-js-sdk's own long poll (started above) sees the room too.
    expect(await joinedRoom).toBe(roomId);
  }, 120_000);

  it("carries binary media both ways; a body over the home's cap gets 413 from the home, over its own from the proxy", async () => {
    const bytes = new Uint8Array(4096).map((_, i) => (i * 7 + 3) % 256);
    const uploaded = await alice.uploadContent(Buffer.from(bytes), { type: 'application/octet-stream', name: 'b.bin' });
    const [, mediaServer, mediaId] = /^mxc:\/\/([^/]+)\/(.+)$/.exec(uploaded.content_uri)!;
    const got = await fetch(`${proxy.url}/_matrix/client/v1/media/download/${mediaServer}/${mediaId}`, {
      headers: { Authorization: `Bearer ${alice.getAccessToken()!}` },
    });
    expect(got.status).toBe(200);
    expect(new Uint8Array(await got.arrayBuffer())).toEqual(bytes);

    const auth = { Authorization: `Bearer ${alice.getAccessToken()!}`, 'Content-Type': 'application/octet-stream' };
    const overHome = await raw(proxy.url, 'POST', '/_matrix/media/v3/upload', auth, new Uint8Array(MEDIA_MAX + 1));
    expect(overHome.status).toBe(413);
    expect(overHome.body['errcode']).toBe('M_TOO_LARGE');
    const overProxy = await raw(proxy.url, 'POST', '/_matrix/media/v3/upload', auth, new Uint8Array(PROXY_MAX + 1));
    expect(overProxy.status).toBe(413);
    expect(overProxy.body['errcode']).toBe('M_TOO_LARGE');
    expect(String(overProxy.body['error'])).toContain(String(PROXY_MAX));
  }, 60_000);

  it('refuses the admin API and paths that would resolve to it, with the admin token too', async () => {
    const admin = { Authorization: `Bearer ${ADMIN_TOKEN}` };
    // Directly the admin API answers; through the proxy it is not reached.
    expect((await fresh.server.admin('GET', '/admin/v1/node')).status).toBe(200);
    for (const path of [
      '/admin/v1/node',
      '/_matrix/client/../../admin/v1/node',
      '/_matrix/client/%2e%2e/%2E%2E/admin/v1/node',
      '/health',
      '/_matrix/federation/v1/version',
    ]) {
      const r = await raw(proxy.url, 'GET', path, admin);
      expect(r.status, path).toBe(403);
      expect(r.body['errcode'], path).toBe('M_FORBIDDEN');
      expect(String(r.body['error']), path).toContain('/_matrix/client/');
    }
  }, 60_000);

  it('a login for a user this home does not host is refused with the Matrix error', async () => {
    const r = await passwordLogin(proxy.url, '@bob:not-hosted.example.org');
    expect(r.status).toBe(403);
    expect(r.body['errcode']).toBe('M_FORBIDDEN');
    // An access token of no account of this home gets nowhere either.
    const whoami = await raw(proxy.url, 'GET', '/_matrix/client/v3/account/whoami', {
      Authorization: 'Bearer not-a-token-of-this-home',
    });
    expect(whoami.status).toBe(401);
    expect(whoami.body['errcode']).toBe('M_UNKNOWN_TOKEN');
  }, 60_000);

  it('finds the home by user ID through the DHT', async () => {
    let found: ProxyProcess | undefined;
    let last: string[] = [];
    await waitFor(
      async () => {
        const candidate = new ProxyProcess(['--user', aliceId, '--bootstrap', fresh.server.addr, '--timeout', '10']);
        try {
          await candidate.ready();
          found = candidate;
          return true;
        } catch {
          await candidate.stop();
          last = candidate.output;
          return false;
        }
      },
      "the proxy to find alice's server home in the DHT",
      120_000,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the last try said:\n${last.join('\n')}`);
    });
    try {
      expect(found!.home).toBe(fresh.server.peerId);
      const whoami = await raw(found!.url, 'GET', '/_matrix/client/v3/account/whoami', {
        Authorization: `Bearer ${alice.getAccessToken()!}`,
      });
      expect(whoami.status).toBe(200);
      expect(whoami.body['user_id']).toBe(aliceId);
    } finally {
      expect(await found!.stop()).toBe(0);
    }
  }, 180_000);

  it('reaches a client home too; one that does not serve the account refuses its login with the Matrix error', async () => {
    // The DHT peer is a running `polyhome start` (a node with no account): it serves the protocol as well.
    const toNode = new ProxyProcess(['--home', dhtPeer.addr]);
    try {
      await toNode.ready();
      const versions = await raw(toNode.url, 'GET', '/_matrix/client/versions');
      expect(versions.status).toBe(200);
      expect(versions.body['versions']).toBeDefined();
      const login = await passwordLogin(toNode.url, aliceId);
      expect(login.status).toBe(403);
      expect(login.body['errcode']).toBe('M_FORBIDDEN');
      // alice's token from her server home means nothing here.
      const whoami = await raw(toNode.url, 'GET', '/_matrix/client/v3/account/whoami', {
        Authorization: `Bearer ${alice.getAccessToken()!}`,
      });
      expect(whoami.status).toBe(401);
      expect(whoami.body['errcode']).toBe('M_UNKNOWN_TOKEN');
    } finally {
      expect(await toNode.stop()).toBe(0);
    }
  }, 60_000);

  it('answers 502 M_UNKNOWN saying what to do once the home is gone, and logs it', async () => {
    alice.stopClient();
    await fresh.server.kill('SIGKILL');
    const r = await raw(proxy.url, 'GET', '/_matrix/client/versions');
    expect(r.status).toBe(502);
    expect(r.body['errcode']).toBe('M_UNKNOWN');
    expect(String(r.body['error'])).toMatch(/Cannot reach the home .* Check that it runs/);
    expect(proxy.output.some((l) => l.startsWith('proxy: GET /_matrix/client/versions'))).toBe(true);
  }, 60_000);
});

describe('polyhome proxy refuses bad starts', () => {
  it('says what to do when the home cannot be reached, or when neither --home nor --user is given', async () => {
    const dead = new ProxyProcess([
      '--home',
      '/ip4/127.0.0.1/tcp/1/p2p/12D3KooWGRUVh7xxTmSaxUjKv4TFk3eHYvZ9Br9vnRvbfUvvCU7B',
      '--timeout',
      '5',
    ]);
    expect(await dead.exited).toBe(1);
    expect(dead.output.join('\n')).toMatch(/No home of the account answered.*Check that a home runs/);
    const none = new ProxyProcess([]);
    expect(await none.exited).toBe(2);
    expect(none.output.join('\n')).toContain('Give one of --home MULTIADDR or --user USER_ID');
  }, 60_000);
});
