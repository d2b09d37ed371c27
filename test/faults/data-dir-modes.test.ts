// Data directories against other local users (issue 13, item 9): PGlite chmods the files it creates to 0666
// (0644 for some it rewrites at each open) whatever the umask, and a data directory that existed with looser
// modes was used as it was. The node CLI and the server now leave their data directory owner-only (directories
// 0700, files 0600), started under umask 000 here, and refuse to start on one that group or others may use,
// with one line naming the fix, before anything in it is changed.
import { chmod, lstat, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliNode } from '../support/cli-node.js';
import { ServerProcess } from '../support/server-process.js';

/** Every directory and file under `dir` (itself included; symbolic links left out) with its mode. */
async function modes(dir: string): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  const pending = [dir];
  for (let current = pending.pop(); current !== undefined; current = pending.pop()) {
    const info = await lstat(current);
    if (info.isSymbolicLink()) continue;
    found.set(path.relative(dir, current) || '.', info.mode & 0o7777);
    if (info.isDirectory()) for (const name of await readdir(current)) pending.push(path.join(current, name));
  }
  return found;
}

/** Entries of `dir` that group or others may use, as `path mode` lines (empty when owner-only). */
async function openEntries(dir: string): Promise<string[]> {
  return [...(await modes(dir))].filter(([, mode]) => (mode & 0o077) !== 0).map(([p, m]) => `${p} ${m.toString(8)}`);
}

/** Path, mode, size and modification time of everything under `dir`: what "changes nothing" compares. */
async function snapshot(dir: string): Promise<string[]> {
  const lines: string[] = [];
  for (const [rel, mode] of await modes(dir)) {
    const info = await lstat(path.join(dir, rel));
    lines.push(`${rel} ${mode.toString(8)} ${info.isDirectory() ? '-' : info.size} ${info.mtimeMs}`);
  }
  return lines.sort();
}

/** The loosened entries to try: a file of the database, a key file, the database's and the data directory. */
const LOOSENED: Array<[string, number]> = [
  ['db/PG_VERSION', 0o666],
  ['node.key', 0o640],
  ['db/base', 0o777],
  ['.', 0o755],
];

/**
 * Loosens each entry of LOOSENED in turn, runs `refuse` (a start that must fail; it gets the loosened path and
 * the mode the line must name), checks that nothing under `dir` changed, then applies the fix the line names.
 */
async function eachLoosened(dir: string, refuse: (rel: string, named: string) => Promise<void>): Promise<void> {
  for (const [rel, mode] of LOOSENED) {
    const target = path.join(dir, rel);
    await chmod(target, mode);
    const before = await snapshot(dir);
    await refuse(rel, `${target} has mode 0${mode.toString(8)}`);
    expect(await snapshot(dir)).toEqual(before);
    await chmod(target, mode & 0o700);
  }
}

describe('data directory modes', () => {
  const dirs: string[] = [];
  const tempDir = async (label: string): Promise<string> => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `polyhome-modes-${label}-`));
    dirs.push(dir);
    return dir;
  };
  const stops: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const stop of stops) await stop().catch(() => undefined);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('the node CLI leaves its data directory owner-only under umask 000, and refuses a loosened one', async () => {
    // A directory that does not exist yet: init creates it.
    const dir = path.join(await tempDir('node'), 'data');
    const node = new CliNode('node', dir, 0o000);
    stops.push(() => node.stop('SIGKILL'));
    const made = await node.run('init', '--localpart', 'modes');
    expect(made.code, made.err).toBe(0);
    const afterInit = await modes(dir);
    console.log(
      `after init: ${afterInit.size} entries, modes ${[...new Set(afterInit.values())].map((m) => m.toString(8)).join(' ')}`,
    );
    expect(afterInit.size).toBeGreaterThan(100);
    expect(await openEntries(dir)).toEqual([]);

    await node.start();
    expect(await openEntries(dir)).toEqual([]);
    expect(await node.stop('SIGTERM')).toBe(0);
    expect(await openEntries(dir)).toEqual([]);

    await eachLoosened(dir, async (rel, named) => {
      const refused = await node.run('start', '--port', '0');
      expect([rel, refused.code]).toEqual([rel, 1]);
      const lines = refused.err.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`chmod -R go-rwx ${dir}`);
      expect(lines[0]).toContain(named);
      // Commands that open the directory are refused alike (one is enough to show it).
      if (rel === 'node.key') expect((await node.run('status')).err).toContain(`chmod -R go-rwx ${dir}`);
      console.log(`${rel}: ${lines[0]}`);
    });
    await node.start();
    expect(await node.stop('SIGTERM')).toBe(0);
    expect(await openEntries(dir)).toEqual([]);
  }, 600_000);

  it('the server leaves DATA_DIR owner-only under umask 000, and refuses a loosened one', async () => {
    const dir = path.join(await tempDir('server'), 'data');
    const server = await ServerProcess.create({ name: 'server', dataDir: dir, env: {}, umask: 0o000 });
    stops.push(() => server.kill('SIGKILL'));
    await server.start();
    // Running: the embedded database, the node key and the sealing key are owner-only.
    const running = await modes(dir);
    expect(running.has('db/PG_VERSION') && running.has('node.key')).toBe(true);
    expect(await openEntries(dir)).toEqual([]);
    expect(await server.kill('SIGTERM')).toBe(0);
    expect(await openEntries(dir)).toEqual([]);

    await eachLoosened(dir, async (rel, named) => {
      server.logs.length = 0;
      await expect(server.start(60_000)).rejects.toThrow(/exited while starting/);
      expect([rel, await server.kill()]).toEqual([rel, 1]);
      expect(server.logs.find((l) => l.includes('chmod -R go-rwx'))).toBe(
        `polyhome-server: cannot start: The data directory ${dir} is open to other users ` +
          `(${named}): run \`chmod -R go-rwx ${dir}\` and start again.`,
      );
    });
    await server.start();
    expect(await openEntries(dir)).toEqual([]);
    expect(await server.kill('SIGTERM')).toBe(0);
  }, 600_000);
});
