// A client-side home whose data directory fills up or turns read-only: commands fail with one line saying what
// to do, nothing already stored is lost or damaged, and everything works again once the disk is fixed.
// The data directory lives on a small tmpfs the test mounts (so it can fill it and remount it read-only);
// that needs root, as on the machines the suite runs on.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, rmdir, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from './support/cli-node.js';

const isRoot = process.getuid?.() === 0;

function sh(command: string, ...args: string[]): void {
  execFileSync(command, args, { stdio: 'pipe' });
}

interface Rooms {
  memberships: Array<{ room_id: string }>;
}

describe.skipIf(!isRoot)('client-side home on a full or read-only disk (needs root for a tmpfs)', () => {
  let mountPoint = '';
  let node: CliNode;
  const filler = (): string => path.join(mountPoint, 'filler');

  // Fills the file system to the last block; the database can then write nothing.
  async function fill(): Promise<void> {
    const { bavail, bsize } = await statfs(mountPoint);
    sh('fallocate', '-l', String(bavail * bsize), filler());
  }

  async function rooms(): Promise<string[]> {
    return (await node.json<Rooms>('room', 'list')).memberships.map((m) => m.room_id).sort();
  }

  function oneLine(err: string): string {
    const lines = err.trim().split('\n');
    expect(lines).toHaveLength(1);
    return lines[0]!;
  }

  beforeAll(async () => {
    mountPoint = await mkdtemp(path.join(os.tmpdir(), 'polyhome-disk-'));
    // 96 MiB: room for the embedded database (about 40 MiB) and its growth, small enough to fill at once.
    sh('mount', '-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mountPoint);
    node = new CliNode('laptop', path.join(mountPoint, 'home'));
    const made = await node.run('init', '--localpart', 'dana');
    expect(made.code, made.err).toBe(0);
    expect((await node.run('room', 'join', '!before:example.org')).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await node?.stop('SIGKILL');
    if (mountPoint !== '') {
      try {
        sh('umount', mountPoint);
      } catch {
        sh('umount', '-l', mountPoint);
      }
      await rmdir(mountPoint).catch(() => undefined);
    }
  });

  it('a full disk: the command fails with what to do, and nothing stored is lost', async () => {
    await fill();
    const refused = await node.run('room', 'join', '!while-full:example.org');
    expect(refused.code).toBe(1);
    expect(oneLine(refused.err)).toMatch(/disk holding .* is full: free some space/);
    await rm(filler());
    expect(await rooms()).toEqual(['!before:example.org']);
    expect((await node.run('room', 'join', '!after-full:example.org')).code).toBe(0);
    expect(await rooms()).toEqual(['!after-full:example.org', '!before:example.org']);
  }, 120_000);

  it('a read-only data directory: the command fails with what to do; remounted, all is there', async () => {
    sh('mount', '-o', 'remount,ro', mountPoint);
    try {
      const refused = await node.run('room', 'join', '!while-ro:example.org');
      expect(refused.code).toBe(1);
      expect(oneLine(refused.err)).toMatch(/read-only file system: make it writable/);
    } finally {
      sh('mount', '-o', 'remount,rw', mountPoint);
    }
    expect(await rooms()).toEqual(['!after-full:example.org', '!before:example.org']);
  }, 120_000);

  it('the disk fills while the node runs: requests fail clearly, the node stays up, and restarts intact', async () => {
    await node.start();
    await fill();
    try {
      // A login token is a row in the database: with no space left the command fails, the node answers on.
      const refused = await node.run('login-token');
      expect(refused.code).toBe(1);
      expect(oneLine(refused.err)).toMatch(/disk holding .* is full/);
      expect(node.running).toBe(true);
      expect((await node.json<{ running: number }>('status')).running).toBeGreaterThan(0);
    } finally {
      await rm(filler());
    }
    expect((await node.run('login-token')).code).toBe(0);
    expect((await node.run('room', 'join', '!after-running:example.org')).code).toBe(0);
    expect(await node.stop()).toBe(0);
    await node.start();
    expect(await rooms()).toEqual(['!after-full:example.org', '!after-running:example.org', '!before:example.org']);
    expect(await node.stop()).toBe(0);
  }, 180_000);
});
