// The client-side home as a user runs it: `node apps/node/dist/cli.js` in its own processes (built by
// `npm test`), with a real server process (`apps/server/dist/main.js`) on 127.0.0.1 for enrollment and sync.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importSecretKey, serverNameFromPublicKey } from '@polyhome/identity';
import { freePort } from '@polyhome/p2p/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'apps/node/dist/cli.js');
const serverMain = path.join(root, 'apps/server/dist/main.js');
const ADMIN_TOKEN = 'node-cli-test-admin-token-0123456789';

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exited: Promise<number | null>;
}

function spawnProc(file: string, args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [file, ...args], {
    env: { PATH: process.env['PATH'] ?? '', HOME: os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** Runs one CLI command to its end. */
async function polyhome(dir: string, ...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawnProc(cli, ['--data-dir', dir, ...args]);
  const code = await p.exited;
  return { code, out: p.out(), err: p.err() };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('polyhome CLI (client-side home)', () => {
  const dirs: string[] = [];
  const running: Proc[] = [];
  const tempDir = async (): Promise<string> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-cli-'));
    dirs.push(dir);
    return dir;
  };

  beforeAll(() => {
    for (const file of [cli, serverMain]) {
      if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` (npm test does) first.`);
    }
  });
  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('init prints a user ID and a PeerId, makes 0600 key files, and refuses a second init', async () => {
    const dir = await tempDir();
    const r = await polyhome(dir, 'init', '--localpart', 'alice', '--json');
    expect(r.code, r.err).toBe(0);
    const out = JSON.parse(r.out) as { user_id: string; peer_id: string };
    expect(out.user_id).toMatch(/^@alice:[0-9a-f]{64}$/);
    expect(out.peer_id).toMatch(/^12D3KooW/);
    for (const file of ['node.key', 'root.key']) {
      expect((await stat(path.join(dir, file))).mode & 0o777).toBe(0o600);
    }
    const again = await polyhome(dir, 'init', '--localpart', 'alice');
    expect(again.code).toBe(1);
    expect(again.err.trim().split('\n')).toHaveLength(1);
    expect(again.err).toMatch(/already initialised/);

    const status = await polyhome(dir, 'status', '--json');
    expect(status.code, status.err).toBe(0);
    expect(JSON.parse(status.out)).toMatchObject({
      peer_id: out.peer_id,
      running: null,
      accounts: [{ user_id: out.user_id, custody: 'self' }],
    });
    const homes = JSON.parse((await polyhome(dir, 'home', 'list', '--json')).out) as { homes: unknown[] };
    expect(homes.homes).toEqual([expect.objectContaining({ peer_id: out.peer_id, role: 'client', self: true })]);
  }, 240_000);

  it('init --join makes only a node key; usage errors exit 2', async () => {
    const dir = await tempDir();
    const r = await polyhome(dir, 'init', '--join');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(
      /^peer_id 12D3KooW\S+\npairing_code [0-9A-Z]{5}-[0-9A-Z]{5}\nadd this node from a running home of the account: polyhome home add 12D3KooW\S+ --role client --pairing-code [0-9A-Z]{5}-[0-9A-Z]{5}\n$/,
    );
    expect(existsSync(path.join(dir, 'root.key'))).toBe(false);
    // The pairing code is kept for the node (owner-only) and shown again on demand.
    const code = /pairing_code (\S+)/.exec(r.out)![1];
    expect((await stat(path.join(dir, 'pairing.json'))).mode & 0o777).toBe(0o600);
    expect(JSON.parse((await polyhome(dir, 'pairing-code', '--json')).out)).toEqual({
      pairing_code: code,
      wrong_proofs: 0,
    });
    // A code given to a node that does not run is refused: only a running node proves it.
    const owner = await tempDir();
    expect((await polyhome(owner, 'init', '--localpart', 'carol')).code).toBe(0);
    const peer = /peer_id (\S+)/.exec(r.out)![1]!;
    const offline = await polyhome(owner, 'home', 'add', peer, '--role', 'client', '--pairing-code', code!);
    expect(offline.code).toBe(1);
    expect(offline.err).toMatch(/Start this node first/);
    const badCode = await polyhome(owner, 'home', 'add', peer, '--role', 'client', '--pairing-code', 'nope');
    expect(badCode.code).toBe(2);
    expect((await polyhome(dir, 'init', '--nope')).code).toBe(2);
    expect((await polyhome(await tempDir(), 'init')).code).toBe(2);
    expect((await polyhome(dir, 'home', 'add', '--help')).code).toBe(0);
  }, 240_000);

  it('start runs, refuses a second start, answers commands through its control API, and stops on SIGTERM', async () => {
    const dir = await tempDir();
    expect((await polyhome(dir, 'init', '--localpart', 'bob')).code).toBe(0);
    const node = spawnProc(cli, ['--data-dir', dir, 'start', '--port', '0']);
    running.push(node);
    await waitFor('the node to run', async () => (node.out().includes('ready in') ? true : undefined));
    const second = await polyhome(dir, 'start', '--port', '0');
    expect(second.code).toBe(1);
    expect(second.err).toMatch(/in use by a running polyhome node .*stop it first/);
    // The control file is the node's secret: 0600.
    expect((await stat(path.join(dir, 'control.json'))).mode & 0o777).toBe(0o600);
    const list = await polyhome(dir, 'home', 'list', '--json');
    expect(list.code, list.err).toBe(0);
    expect(JSON.parse(list.out)).toMatchObject({ homes: [{ role: 'client', self: true }] });
    const status = JSON.parse((await polyhome(dir, 'status', '--json')).out) as { running: number; matrix_url: string };
    expect(status.running).toBe(node.child.pid);
    expect(status.matrix_url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    // The Matrix API answers on loopback; a login token from the CLI logs a client in.
    const versions = await fetch(`${status.matrix_url}/_matrix/client/versions`);
    expect(versions.status).toBe(200);
    const token = JSON.parse((await polyhome(dir, 'login-token', '--json')).out) as { login_token: string };
    const login = await fetch(`${status.matrix_url}/_matrix/client/v3/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'm.login.token', token: token.login_token }),
    });
    expect(login.status).toBe(200);
    const { device_id } = (await login.json()) as { device_id: string };
    expect((await polyhome(dir, 'device', 'remove', device_id)).code).toBe(0);
    const unknown = await polyhome(dir, 'device', 'remove', device_id);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/has no device/);
    node.child.kill('SIGTERM');
    expect(await node.exited).toBe(0);
    expect(existsSync(path.join(dir, 'control.json'))).toBe(false);
    expect((await polyhome(dir, 'home', 'list')).code).toBe(0);
  }, 240_000);

  it('export seals the root key under a passphrase into a new 0600 file and never overwrites one', async () => {
    const dir = await tempDir();
    const made = JSON.parse((await polyhome(dir, 'init', '--localpart', 'dora', '--json')).out) as { user_id: string };
    const passFile = path.join(dir, 'pass');
    await writeFile(passFile, 'a long export passphrase\n', { mode: 0o600 });
    const out = path.join(dir, 'backup.json');
    const r = await polyhome(dir, 'export', '--passphrase-file', passFile, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const exported = JSON.parse(await readFile(out, 'utf8')) as { user_id: string; root_key: string };
    expect(exported.user_id).toBe(made.user_id);
    const key = await importSecretKey(exported.root_key, 'a long export passphrase');
    expect(serverNameFromPublicKey(key.publicKey)).toBe(made.user_id.slice(made.user_id.indexOf(':') + 1));
    expect((await polyhome(dir, 'export', '--passphrase-file', passFile, '--out', out)).code).toBe(1);
    const short = await polyhome(dir, 'export', '--passphrase-file', path.join(dir, 'missing'));
    expect(short.code).toBe(1);
  }, 240_000);

  it('home add enrolls a real server, and a room joined here reaches the server once the node runs', async () => {
    const serverDir = await tempDir();
    const port = await freePort();
    const server = spawnProc(serverMain, [], {
      DATA_DIR: serverDir,
      PORT: String(port),
      ADMIN_TOKEN,
      P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
    });
    running.push(server);
    const admin = async (method: string, route: string, body?: unknown): Promise<Response> =>
      fetch(`http://127.0.0.1:${port}${route}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const info = await waitFor(
      'the server',
      async () => {
        if (server.child.exitCode !== null) throw new Error(`server exited: ${server.err()}`);
        const res = await admin('GET', '/admin/v1/node');
        return res.ok ? ((await res.json()) as { peer_id: string; listen_addrs: string[] }) : undefined;
      },
      60_000,
    );
    const listen = info.listen_addrs.find((a) => a.startsWith('/ip4/127.0.0.1/'))!;
    // The server lists its addresses with /p2p/<PeerId> already; add it only when missing.
    const serverAddr = listen.includes('/p2p/') ? listen : `${listen}/p2p/${info.peer_id}`;
    const { token } = (await (await admin('POST', '/admin/v1/enrollment-tokens', {})).json()) as { token: string };

    const dir = await tempDir();
    const init = JSON.parse((await polyhome(dir, 'init', '--localpart', 'carol', '--json')).out) as {
      user_id: string;
      peer_id: string;
    };
    const refused = await polyhome(dir, 'home', 'add', serverAddr, '--role', 'server', '--token', 'wrong');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/refused/);

    const added = await polyhome(dir, 'home', 'add', serverAddr, '--role', 'server', '--token', token, '--json');
    expect(added.code, added.err).toBe(0);
    expect((JSON.parse(added.out) as { seq: number }).seq).toBe(2);
    const accounts = (await (await admin('GET', '/admin/v1/accounts')).json()) as { items?: unknown[] };
    expect(JSON.stringify(accounts)).toContain(init.user_id);

    const joined = await polyhome(dir, 'room', 'join', '!lobby:example.org');
    expect(joined.code, joined.err).toBe(0);
    const node = spawnProc(cli, ['--data-dir', dir, 'start', '--port', '0']);
    running.push(node);
    const userPath = `/admin/v1/accounts/${encodeURIComponent(init.user_id)}`;
    await waitFor('the server to see the laptop connected', async () => {
      const { homes } = (await (await admin('GET', `${userPath}/homes`)).json()) as {
        homes: Array<{ peer_id: string; connected: boolean }>;
      };
      return homes.find((h) => h.peer_id === init.peer_id)?.connected === true ? true : undefined;
    });
    await waitFor('the membership to reach the server', async () => {
      const text = await (await admin('GET', `${userPath}/memberships`)).text();
      return text.includes('!lobby:example.org') ? true : undefined;
    });
    node.child.kill('SIGTERM');
    expect(await node.exited).toBe(0);

    // A backup restored on a new device: the device signs a document naming itself and brings it to the server.
    const passphraseFile = path.join(dir, 'passphrase');
    await writeFile(passphraseFile, 'restore passphrase\n', { mode: 0o600 });
    const backup = path.join(dir, 'backup.json');
    expect((await polyhome(dir, 'export', '--passphrase-file', passphraseFile, '--out', backup)).code).toBe(0);
    const restoredDir = await tempDir();
    const wrongPass = path.join(dir, 'wrong-passphrase');
    await writeFile(wrongPass, 'not the passphrase\n', { mode: 0o600 });
    const refusedImport = await polyhome(restoredDir, 'init', '--import', backup, '--passphrase-file', wrongPass);
    expect(refusedImport.code).toBe(1);
    expect(refusedImport.err).toMatch(/wrong passphrase/);
    const restored = await polyhome(
      restoredDir,
      'init',
      '--import',
      backup,
      '--passphrase-file',
      passphraseFile,
      '--name',
      'new-laptop',
      '--json',
    );
    expect(restored.code, restored.err).toBe(0);
    const restoredOut = JSON.parse(restored.out) as { user_id: string; peer_id: string };
    expect(restoredOut.user_id).toBe(init.user_id);
    const restoredNode = spawnProc(cli, ['--data-dir', restoredDir, 'start', '--port', '0']);
    running.push(restoredNode);
    await waitFor('the server to take the restored device as a home and see it connected', async () => {
      const { homes } = (await (await admin('GET', `${userPath}/homes`)).json()) as {
        homes: Array<{ peer_id: string; connected: boolean }>;
      };
      return homes.find((h) => h.peer_id === restoredOut.peer_id)?.connected === true ? true : undefined;
    });
    await waitFor('the membership made before the backup on the restored device', async () => {
      const list = await polyhome(restoredDir, 'room', 'list', '--json');
      return list.code === 0 && list.out.includes('!lobby:example.org') ? true : undefined;
    });
    restoredNode.child.kill('SIGTERM');
    expect(await restoredNode.exited).toBe(0);

    // claim: a hosted account of the server moves its root key to a new device, which becomes its home.
    const hosted = (await (
      await admin('POST', '/admin/v1/accounts', { localpart: 'erin', password: 'erin password 1' })
    ).json()) as { user_id: string };
    const claimDir = await tempDir();
    const passwordFile = path.join(claimDir, '..', `${path.basename(claimDir)}-password`);
    await writeFile(passwordFile, 'wrong password\n');
    const wrong = await polyhome(
      claimDir,
      'claim',
      `http://127.0.0.1:${port}`,
      '--user',
      hosted.user_id,
      '--password-file',
      passwordFile,
    );
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/refused the handover/);
    expect(existsSync(path.join(claimDir, 'root.key'))).toBe(false);
    await writeFile(passwordFile, 'erin password 1\n');
    const claimed = await polyhome(
      claimDir,
      'claim',
      `http://127.0.0.1:${port}`,
      '--user',
      hosted.user_id,
      '--password-file',
      passwordFile,
      '--name',
      'laptop',
      '--json',
    );
    expect(claimed.code, claimed.err).toBe(0);
    const claimedOut = JSON.parse(claimed.out) as { peer_id: string; doc_seq: number };
    expect(claimedOut.doc_seq).toBe(2);
    expect((await stat(path.join(claimDir, 'root.key'))).mode & 0o777).toBe(0o600);
    const claimedStatus = JSON.parse((await polyhome(claimDir, 'status', '--json')).out) as {
      accounts: Array<{ root_key: boolean; custody: string }>;
    };
    expect(claimedStatus.accounts).toEqual([expect.objectContaining({ root_key: true, custody: 'self' })]);
    const hostedPath = `/admin/v1/accounts/${encodeURIComponent(hosted.user_id)}`;
    expect(((await (await admin('GET', hostedPath)).json()) as { custody: string }).custody).toBe('self');
    const again = await polyhome(
      await tempDir(),
      'claim',
      `http://127.0.0.1:${port}`,
      '--user',
      hosted.user_id,
      '--password-file',
      passwordFile,
    );
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/already in the user's custody/);
    // The claiming device is a home from its first connection: the server sees it connected.
    const claimedNode = spawnProc(cli, ['--data-dir', claimDir, 'start', '--port', '0', '--bootstrap', serverAddr]);
    running.push(claimedNode);
    await waitFor('the server to see the claiming device connected', async () => {
      const { homes } = (await (await admin('GET', `${hostedPath}/homes`)).json()) as {
        homes: Array<{ peer_id: string; connected: boolean }>;
      };
      return homes.find((h) => h.peer_id === claimedOut.peer_id)?.connected === true ? true : undefined;
    });
    claimedNode.child.kill('SIGTERM');
    expect(await claimedNode.exited).toBe(0);
    server.child.kill('SIGTERM');
    await server.exited;
  }, 360_000);
});
