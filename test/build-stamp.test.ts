// `npm start` builds only when something changed (issue 19, item 2): the check of scripts/build-stamp.js on a
// scratch tree shaped like the repository.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { staleReason, stampPath } from '../scripts/build-stamp.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'polyhome-build-stamp-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function write(file: string, text = ''): string {
  const full = path.join(root, file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  return full;
}

/** Sets a file's modification time, in seconds from now. */
function age(full: string, secondsFromNow: number): void {
  const at = new Date(Date.now() + secondsFromNow * 1000);
  utimesSync(full, at, at);
}

describe('build stamp', () => {
  it('builds without a stamp, and not again until a source, a tsconfig or a package.json changes', () => {
    write('tsconfig.build.json', JSON.stringify({ files: [], references: [{ path: 'libs/a' }, { path: 'apps/b' }] }));
    write('package.json', '{}');
    const inputs = [
      write('libs/a/src/index.ts'),
      write('libs/a/tsconfig.json', '{}'),
      write('apps/b/src/deep/main.ts'),
      write('apps/b/package.json', '{}'),
    ];
    for (const out of ['libs/a/dist/.tsbuildinfo', 'apps/b/dist/.tsbuildinfo']) age(write(out), -60);
    for (const file of [...inputs, path.join(root, 'package.json'), path.join(root, 'tsconfig.build.json')]) {
      age(file, -120);
    }
    expect(staleReason(root)).toBe('no build stamp yet');

    const stamp = write(path.relative(root, stampPath(root)));
    age(stamp, -60);
    expect(staleReason(root)).toBeUndefined();

    // Outputs and dependencies are not inputs: a newer dist file or node_modules file changes nothing.
    write('libs/a/dist/index.js');
    write('apps/b/node_modules/x/index.js');
    expect(staleReason(root)).toBeUndefined();

    for (const file of inputs) {
      age(file, 0);
      expect(staleReason(root)).toBe(`${path.relative(root, file)} changed`);
      age(file, -120);
    }
    age(path.join(root, 'package.json'), 0);
    expect(staleReason(root)).toBe('package.json changed');
    age(path.join(root, 'package.json'), -120);
    expect(staleReason(root)).toBeUndefined();
  });

  it('builds when a package has no output, whatever the stamp says', () => {
    rmSync(path.join(root, 'apps/b/dist'), { recursive: true });
    expect(staleReason(root)).toBe('apps/b/dist is missing');
  });
});
