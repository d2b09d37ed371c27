// polyhome-admin as an operator runs it: the built CLI (apps/server/dist/cli/admin.js) in its own process,
// against a real server process (PGlite, in-process queue). Run `npm run build` first (npm test does).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeHome } from '@polyhome/sync/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, ServerProcess } from './support/server-process.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(root, 'apps/server/dist/cli/admin.js');
const PASSWORD = 'correct horse battery staple';

interface Result {
  code: number | null;
  out: string;
  err: string;
}

describe('polyhome-admin against a server process', () => {
  let dir: string;
  let server: ServerProcess;
  let userId: string;

  /** Runs the CLI with the server's URL and token in the environment (unless `env` overrides them). */
  function cli(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): Promise<Result> {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: {
        PATH: process.env['PATH'] ?? '',
        POLYHOME_ADMIN_URL: `http://127.0.0.1:${server.port}`,
        POLYHOME_ADMIN_TOKEN: ADMIN_TOKEN,
        ...options.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.end(options.stdin ?? '');
    return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out, err })));
  }
  const json = async (args: string[], options?: { stdin?: string }) => {
    const r = await cli([...args, '--json'], options);
    expect(r.code, r.err).toBe(0);
    return JSON.parse(r.out) as Record<string, unknown>;
  };
  const login = (password: string) =>
    server.request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password,
    });

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does) first.`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-admin-cli-'));
    server = await ServerProcess.create({ name: 'server', dataDir: path.join(dir, 'data'), env: {} });
    await server.start();
  }, 120_000);
  afterAll(async () => {
    await server?.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  });

  it('creates, lists, searches and shows accounts, as JSON and as text', async () => {
    const created = await json(['accounts', 'create', 'alice', '--password-stdin'], { stdin: `${PASSWORD}\n` });
    userId = String(created['user_id']);
    expect(userId).toMatch(/^@alice:[0-9a-f]{64}$/);
    await json(['accounts', 'create', 'bob']);
    const found = await json(['accounts', 'list', '--search', 'ALI']);
    expect((found['chunk'] as Array<{ user_id: string }>).map((a) => a.user_id)).toEqual([userId]);
    const text = await cli(['accounts', 'list', '--limit', '1']);
    expect(text.code).toBe(0);
    expect(text.out.split('\n')[0]).toMatch(/^user_id\s+status\s+custody\s+created_at$/);
    expect(text.out).toContain(userId);
    expect(text.err).toMatch(/^More: add --from \S+ \(or --all\)\.$/m);
    const all = await json(['accounts', 'list', '--limit', '1', '--all']);
    expect(all['chunk']).toHaveLength(2);
    expect(all['next_from']).toBeUndefined();

    expect((await login(PASSWORD)).status).toBe(200);
    const shown = await cli(['accounts', 'show', userId]);
    expect(shown.code, shown.err).toBe(0);
    expect(shown.out).toContain('status: active');
    expect(shown.out).toMatch(/^devices:\ndevice_id\s+display_name\s+home\n\S+/m);
  });

  it('deactivates only with a reason, audits it, reactivates and resets the password', async () => {
    const refused = await cli(['accounts', 'deactivate', userId]);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("required option '--reason <text>' not specified");
    expect((await json(['accounts', 'show', userId]))['status']).toBe('active');
    const devices = (await json(['devices', 'list', userId]))['chunk'] as Array<{ device_id: string }>;
    expect(devices).toHaveLength(1);

    const done = await json(['accounts', 'deactivate', userId, '--reason', 'Spam reports']);
    expect(done).toMatchObject({ status: 'deactivated', devices_deleted: [devices[0]!.device_id], tokens_revoked: 1 });
    expect((await login(PASSWORD)).status).toBe(403);
    const audit = await cli(['audit', '--target', userId]);
    expect(audit.out).toMatch(/account\.deactivate\s+@alice:\S+\s+Spam reports/);

    await json(['accounts', 'reactivate', userId, '--reason', 'Appeal']);
    await writeFile(path.join(dir, 'new-password'), 'a brand new password\n', { mode: 0o600 });
    await json([
      'accounts',
      'password',
      userId,
      '--reason',
      'Asked',
      '--password-file',
      path.join(dir, 'new-password'),
    ]);
    expect((await login(PASSWORD)).status).toBe(403);
    expect((await login('a brand new password')).status).toBe(200);
    const noPassword = await cli(['accounts', 'password', userId, '--reason', 'x']);
    expect([noPassword.code, noPassword.err]).toEqual([2, expect.stringContaining('--password-file')]);

    const device = ((await json(['devices', 'list', userId]))['chunk'] as Array<{ device_id: string }>)[0]!.device_id;
    const deleted = await cli(['devices', 'delete', userId, device, '--reason', 'Lost']);
    expect([deleted.code, deleted.out.trim()]).toEqual([0, `Deleted device ${device} of ${userId}.`]);
    const entries = (await json(['audit', '--limit', '10']))['chunk'] as Array<{ action: string }>;
    expect(entries.map((e) => e.action)).toEqual([
      'device.delete',
      'account.password',
      'account.reactivate',
      'account.deactivate',
    ]);
  });

  it('reads statistics and rooms', async () => {
    const stats = await json(['stats']);
    expect(stats).toMatchObject({ accounts: 2, accounts_by_status: { active: 2 }, rooms: 0, delivery_backlog: [] });
    const text = await cli(['stats']);
    expect(text.out).toMatch(/^accounts: 2$/m);
    expect(text.out).toMatch(/^delivery backlog:\n {2}\(none\)$/m);
    expect((await cli(['rooms', 'list'])).out.trim()).toBe('No rooms.');
  });

  it('says what to do when the token, the address or the account is wrong', async () => {
    const noToken = await cli(['stats'], { env: { POLYHOME_ADMIN_TOKEN: '' } });
    expect([noToken.code, noToken.err]).toEqual([2, expect.stringContaining('--token')]);
    const wrong = await cli(['stats', '--token', 'wrong-token']);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/^polyhome-admin: M_UNKNOWN_TOKEN: .*--token-file.*DATA_DIR\/admin-token/);
    await writeFile(path.join(dir, 'token'), `${ADMIN_TOKEN}\n`, { mode: 0o600 });
    const fromFile = await cli(['stats', '--token-file', path.join(dir, 'token')], {
      env: { POLYHOME_ADMIN_TOKEN: '' },
    });
    expect(fromFile.code, fromFile.err).toBe(0);
    const unreachable = await cli(['stats', '--url', 'http://127.0.0.1:9']);
    expect(unreachable.code).toBe(3);
    expect(unreachable.err).toContain('Could not reach the server at http://127.0.0.1:9');
    const unknown = await cli(['accounts', 'show', `@nobody:${'0'.repeat(64)}`]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/M_NOT_FOUND: .* is not hosted here\. `polyhome-admin accounts list --search/);
    const bad = await cli(['accounts', 'list', '--from', 'nonsense']);
    expect([bad.code, bad.err]).toEqual([1, expect.stringContaining('M_INVALID_PARAM: from is not a next_from')]);
  });

  it('migrate: a new provider that cannot be reached fails the job with what to check; the account stays', async () => {
    const before = await json(['accounts', 'show', userId]);
    const noTo = await cli(['accounts', 'migrate', userId, '--reason', 'test']);
    expect([noTo.code, noTo.err]).toEqual([2, expect.stringContaining("required option '--to <multiaddr>'")]);
    // A PeerId nobody runs, at a port nothing listens on.
    const nowhere = `/ip4/127.0.0.1/tcp/9/p2p/${makeHome('admin-cli:nowhere', 'server').peerId}`;
    const failed = await cli(['accounts', 'migrate', userId, '--to', nowhere, '--reason', 'test: nowhere', '--wait']);
    expect(failed.code, failed.err).toBe(1);
    expect(failed.err).toContain('step enroll');
    expect(failed.err).toMatch(
      /The migration failed: Step enroll: Could not enroll the server at .*stays whole on this server/,
    );
    const after = await json(['accounts', 'show', userId]);
    expect([after['status'], after['custody'], after['doc_seq']]).toEqual([
      before['status'],
      before['custody'],
      before['doc_seq'],
    ]);
  });

  it('blocks and unblocks a room, and deletes one with --block', async () => {
    const created = await server.admin('POST', '/admin/v1/accounts', { localpart: 'roomer', password: PASSWORD });
    const roomer = String(created.body['user_id']);
    const login = await server.request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: roomer },
      password: PASSWORD,
    });
    const auth = { Authorization: `Bearer ${String(login.body['access_token'])}` };
    const room = await server.request(
      'POST',
      '/_matrix/client/v3/createRoom',
      { name: 'Shady', preset: 'public_chat' },
      auth,
    );
    const roomId = String(room.body['room_id']);

    const noReason = await cli(['rooms', 'block', roomId]);
    expect([noReason.code, noReason.err]).toEqual([2, expect.stringContaining("'--reason <text>'")]);
    const badRoom = await cli(['rooms', 'block', 'shady', '--reason', 'Spam']);
    expect([badRoom.code, badRoom.err]).toEqual([1, expect.stringContaining('M_INVALID_PARAM: Invalid room ID')]);
    expect(await json(['rooms', 'block', roomId, '--reason', 'Spam room'])).toEqual({
      room_id: roomId,
      block: true,
      reason: 'Spam room',
      blocked_at: expect.any(String),
    });
    expect((await cli(['rooms', 'list'])).out).toMatch(
      new RegExp(`^${escape(roomId)}\\s+Shady\\s+1\\s+\\d+\\s+true$`, 'm'),
    );
    expect((await cli(['rooms', 'show', roomId])).out).toMatch(/^blocked: reason: Spam room\nblocked_at: \S+$/m);
    // The block holds for the room's own creator: leaving, then joining again, is refused.
    await server.request('POST', `/_matrix/client/v3/rooms/${encodeURIComponent(roomId)}/leave`, {}, auth);
    const join = await server.request('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {}, auth);
    expect([join.status, join.body['errcode'], join.body['error']]).toEqual([
      403,
      'M_FORBIDDEN',
      `Room ${roomId} is blocked by the server's administrator.`,
    ]);

    const unblocked = await cli(['rooms', 'unblock', roomId, '--reason', 'Reviewed']);
    expect([unblocked.code, unblocked.out.trim()]).toEqual([0, `${roomId} is not blocked.`]);
    const back = await server.request('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {}, auth);
    expect(back.status).toBe(200);
    const deleted = await json(['rooms', 'delete', roomId, '--block', '--reason', 'Abuse']);
    expect(deleted).toEqual({ room_id: roomId, left: [roomer], forgotten: [roomer], failed: [], blocked: true });
    expect((await json(['rooms', 'show', roomId]))['block']).toMatchObject({ reason: 'Abuse' });
    const entries = (await json(['audit', '--target', roomId]))['chunk'] as Array<{ action: string }>;
    expect(entries.map((e) => e.action)).toEqual(['room.delete', 'room.unblock', 'room.block']);
  });
});

/** `text` as a literal in a regular expression. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
