import { chmod, mkdtemp, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyFileInvalidError, KeyFilePermissionsError } from '../errors.js';
import { peerIdFromPublicKey } from '../ids.js';
import { SecretKey } from '../secret-key.js';
import { loadOrCreateNodeKey, readNodeKeyFile, writeNodeKeyFile } from './key-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'polyhome-key-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('node key file', () => {
  it('is created with mode 0600 and gives the same PeerId on every start', async () => {
    const file = path.join(dir, 'data', 'node.key');
    const first = await loadOrCreateNodeKey(file);
    expect(first.created).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(file)).size).toBe(32);
    expect((await stat(path.dirname(file))).mode & 0o777).toBe(0o700);
    const second = await loadOrCreateNodeKey(file);
    expect(second.created).toBe(false);
    expect(peerIdFromPublicKey(second.secretKey.publicKey)).toBe(peerIdFromPublicKey(first.secretKey.publicKey));
    expect(await readdir(path.dirname(file))).toEqual(['node.key']);
  });

  it('gives every process racing to create it the same key', async () => {
    const file = path.join(dir, 'node.key');
    const results = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateNodeKey(file)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    const peerIds = new Set(results.map((r) => peerIdFromPublicKey(r.secretKey.publicKey)));
    expect(peerIds.size).toBe(1);
    expect(await readdir(dir)).toEqual(['node.key']);
  });

  it('is never overwritten', async () => {
    const file = path.join(dir, 'node.key');
    const key = SecretKey.generate();
    expect(await writeNodeKeyFile(file, key)).toBe(true);
    expect(await writeNodeKeyFile(file, SecretKey.generate())).toBe(false);
    expect((await readNodeKeyFile(file)).publicKey).toEqual(key.publicKey);
  });

  it.each([0o644, 0o640, 0o604, 0o660])('is refused with mode %o', async (mode) => {
    const file = path.join(dir, 'node.key');
    await writeNodeKeyFile(file, SecretKey.generate());
    await chmod(file, mode);
    await expect(readNodeKeyFile(file)).rejects.toThrow(KeyFilePermissionsError);
    await expect(loadOrCreateNodeKey(file)).rejects.toThrow(/chmod 600/);
  });

  it.each([0, 31, 33, 64])('is refused at %i bytes', async (size) => {
    const file = path.join(dir, 'node.key');
    await writeFile(file, new Uint8Array(size), { mode: 0o600 });
    await expect(readNodeKeyFile(file)).rejects.toThrow(KeyFileInvalidError);
    await expect(loadOrCreateNodeKey(file)).rejects.toThrow(KeyFileInvalidError);
  });

  it('is refused when it is a directory', async () => {
    const file = path.join(dir, 'node.key');
    await mkdir(file, { mode: 0o700 });
    await expect(readNodeKeyFile(file)).rejects.toThrow(KeyFileInvalidError);
  });

  it('reports a missing file as ENOENT from read', async () => {
    await expect(readNodeKeyFile(path.join(dir, 'missing.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
