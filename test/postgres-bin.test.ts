// Where the private PostgreSQL of the fault tests comes from (issue 19, item 6): found, not assumed to be in
// /usr/local/bin. Each case builds the places it looks in from scratch directories holding executable scripts.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findPostgresBin } from './support/private-services.js';

const scratch = mkdtempSync(join(tmpdir(), 'polyhome-pgbin-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function executable(path: string, body = 'exit 0'): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

/** A directory with the server programs. */
function binDir(name: string): string {
  const dir = join(scratch, name);
  executable(join(dir, 'initdb'));
  executable(join(dir, 'postgres'));
  return dir;
}

const NO_DISTRIBUTION = join(scratch, 'no-such-root');

describe('findPostgresBin', () => {
  it('takes what pg_config --bindir says first', () => {
    const bin = binDir('pgconfig-bin');
    const path = join(scratch, 'path-with-pg-config');
    executable(join(path, 'pg_config'), `echo ${bin}`);
    const distro = join(scratch, 'distro-a');
    binDir('distro-a/16/bin');
    expect(findPostgresBin({ PATH: path }, distro)).toBe(bin);
  });

  it("without pg_config, takes the distribution's newest /usr/lib/postgresql/<N>/bin", () => {
    const distro = join(scratch, 'distro-b');
    binDir('distro-b/9/bin');
    binDir('distro-b/16/bin');
    mkdirSync(join(distro, '17/bin'), { recursive: true }); // a client-only package: no server programs
    expect(findPostgresBin({ PATH: join(scratch, 'empty') }, distro)).toBe(join(distro, '16/bin'));
  });

  it('then looks in PATH', () => {
    const bin = binDir('on-path');
    expect(findPostgresBin({ PATH: [join(scratch, 'empty'), bin].join(':') }, NO_DISTRIBUTION)).toBe(bin);
  });

  it('honours POLYHOME_PG_BIN, and says so when it holds no server programs', () => {
    const bin = binDir('override');
    expect(findPostgresBin({ PATH: '', POLYHOME_PG_BIN: bin }, NO_DISTRIBUTION)).toBe(bin);
    expect(() => findPostgresBin({ PATH: '', POLYHOME_PG_BIN: scratch }, NO_DISTRIBUTION)).toThrow(
      `POLYHOME_PG_BIN=${scratch} holds no initdb and postgres; point it at PostgreSQL's bin directory.`,
    );
  });

  it('fails with one clear message when none has them', () => {
    const half = join(scratch, 'half');
    executable(join(half, 'initdb')); // initdb alone is not enough
    expect(() => findPostgresBin({ PATH: half }, NO_DISTRIBUTION)).toThrow(
      /^No PostgreSQL server programs \(initdb, postgres\) found; .*half.*Install PostgreSQL .* or set POLYHOME_PG_BIN/,
    );
  });

  it('finds a working postgres on this machine', () => {
    const bin = findPostgresBin();
    const version = spawnSync(join(bin, 'postgres'), ['--version'], { encoding: 'utf8' });
    expect(version.stdout).toMatch(/PostgreSQL\) \d+/);
  });
});
