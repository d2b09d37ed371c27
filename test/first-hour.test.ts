// Small things a new user meets first (issue 19, item 8), on the built commands as a user runs them.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '..');
const cli = path.join(root, 'apps/node/dist/cli.js');
const serverMain = path.join(root, 'apps/server/dist/main.js');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'polyhome-first-hour-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(file: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [file, ...args], {
    cwd: scratch,
    encoding: 'utf8',
    env: { PATH: process.env['PATH'] ?? '', HOME: scratch, ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const versionOf = (pkg: string) =>
  (JSON.parse(readFileSync(path.join(root, pkg), 'utf8')) as { version: string }).version;

describe('first hour', () => {
  it('polyhome --version prints the node version and exits 0', () => {
    expect(run(cli, ['--version'])).toEqual({ code: 0, out: `${versionOf('apps/node/package.json')}\n`, err: '' });
  });

  it('the server with --version prints its version and exits 0, before touching DATA_DIR', () => {
    const dataDir = path.join(scratch, 'server-data');
    const r = run(serverMain, ['--version'], { DATA_DIR: dataDir });
    expect(r).toEqual({ code: 0, out: `polyhome-server ${versionOf('apps/server/package.json')}\n`, err: '' });
    expect(existsSync(dataDir)).toBe(false);
  });

  it('export takes the custody rule: a passphrase of at least 12 characters', () => {
    const dir = path.join(scratch, 'node-export');
    const short = run(cli, ['--data-dir', dir, 'export'], { POLYHOME_PASSPHRASE: 'elevenchars' });
    expect(short.code).toBe(2);
    expect(short.err).toContain('Give a passphrase of at least 12 characters');
    const long = run(cli, ['--data-dir', dir, 'export'], { POLYHOME_PASSPHRASE: 'twelve chars' });
    expect(long.err).not.toContain('passphrase');
  });

  it('init --import names a missing export file first, before asking for the passphrase', () => {
    const missing = path.join(scratch, 'no-such-export.json');
    const r = run(cli, ['--data-dir', path.join(scratch, 'node-import'), 'init', '--import', missing]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^error: Cannot read the export file ${missing}: ENOENT`));
    expect(r.err).not.toContain('passphrase');
  });

  it('init twice in one data directory is refused in one line naming the account there', () => {
    const dir = path.join(scratch, 'node-twice');
    const first = run(cli, ['--data-dir', dir, 'init', '--localpart', 'alice', '--json']);
    expect(first.code, first.err).toBe(0);
    const serverName = (JSON.parse(first.out) as { user_id: string }).user_id.split(':')[1]!;
    const again = run(cli, ['--data-dir', dir, 'init', '--localpart', 'alice']);
    expect(again.code).toBe(1);
    expect(again.err.trim().split('\n')).toHaveLength(1);
    expect(again.err).toContain(`holds the account @…:${serverName}`);
    expect(again.err).toContain('another --data-dir');
  });

  it('a refused claim leaves no data directory behind where there was none', () => {
    const dir = path.join(scratch, 'claim-new');
    // Nothing listens on port 1: the claim is refused after the node key and the database were made.
    const r = run(cli, ['--data-dir', dir, 'claim', 'http://127.0.0.1:1', '--user', `@erin:${'e'.repeat(64)}`], {
      POLYHOME_PASSWORD: 'erin password 1',
    });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: Cannot reach http:\/\/127\.0\.0\.1:1/m);
    expect(existsSync(dir)).toBe(false);
  });

  it('a refused claim into a node made with init --join leaves it as it was: its key and code, no db/', () => {
    const dir = path.join(scratch, 'claim-join');
    expect(run(cli, ['--data-dir', dir, 'init', '--join']).code).toBe(0);
    const before = readdirSync(dir).sort();
    const key = readFileSync(path.join(dir, 'node.key'));
    const r = run(cli, ['--data-dir', dir, 'claim', 'http://127.0.0.1:1', '--user', `@erin:${'e'.repeat(64)}`], {
      POLYHOME_PASSWORD: 'erin password 1',
    });
    expect(r.code).toBe(1);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(before).not.toContain('db');
    expect(readFileSync(path.join(dir, 'node.key'))).toEqual(key);
  });

  it('init and status print progress on stderr (a terminal, or POLYHOME_PROGRESS=1), only the answer on stdout', () => {
    const dir = path.join(scratch, 'node-progress');
    const shown = { POLYHOME_PROGRESS: '1' };
    const r = run(cli, ['--data-dir', dir, 'init', '--localpart', 'alice', '--json'], shown);
    expect(r.code, r.err).toBe(0);
    expect(Object.keys(JSON.parse(r.out) as object).sort()).toEqual(['data_dir', 'peer_id', 'user_id']);
    expect(r.err).toMatch(/^Creating the embedded database in .*\/db… \(\d+\.\d s\)$/m);
    const status = run(cli, ['--data-dir', dir, 'status', '--json'], shown);
    expect(status.code, status.err).toBe(0);
    expect(status.err).toMatch(/^Opening the database in .*\/db… \(\d+\.\d s\)$/m);
    // Piped (as here without the variable), stderr holds nothing but errors: one line for a refused command.
    const quiet = run(cli, ['--data-dir', dir, 'status', '--json']);
    expect(quiet.code, quiet.err).toBe(0);
    expect(quiet.err).toBe('');
  });

  it("the node's Matrix port defaults to 8009, not the server's 8008", () => {
    const help = run(cli, ['start', '--help']);
    expect(help.out.replace(/\s+/g, ' ')).toMatch(/--port <port> Matrix client API port .*?\(default: "8009"\)/);
  });
});
