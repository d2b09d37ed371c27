// The deploy files as written (issue 19, item 5), checked as far as a machine without a Docker engine allows:
// .dockerignore keeps the host's dependencies, builds, data and secrets out of the build context; the Dockerfile
// builds from source; the systemd unit passes `systemd-analyze verify` and runs the Node its instructions install;
// deploy/install-systemd.sh performs the install steps in a scratch root; `docker compose config` where the
// compose plugin is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const NODE_PATH = '/opt/polyhome-node/bin/node';

/** Whether a .dockerignore pattern list excludes a context path (Docker's rules: anchored, `**` any depth). */
function ignored(patterns: string[], path: string): boolean {
  const regexes = patterns.map((p) => {
    const body = p
      .replace(/^\//, '')
      .split('**')
      .map((part) =>
        part
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]'),
      )
      .join('.*');
    return new RegExp(`^${body.replace(/^\.\*\//, '(?:.*/)?')}(?:/.*)?$`);
  });
  return regexes.some((r) => r.test(path));
}

function has(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

describe('.dockerignore and the Dockerfile', () => {
  const patterns = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  it('keeps dependencies, host builds, data and secrets out of the build context', () => {
    const out = [
      'node_modules/typeorm/index.js',
      'apps/server/node_modules/x',
      'apps/server/dist/main.js',
      'libs/p2p/dist/index.js',
      'migrations/dist/index.js',
      'apps/server/tsconfig.tsbuildinfo',
      'libs/home/tsconfig.build.tsbuildinfo',
      'data/admin-token',
      'data/db/PG_VERSION',
      'apps/node/data/node.key',
      '.git/HEAD',
      'admin-token',
      'somewhere/sealing-key',
      'node.key',
      '.env',
    ];
    expect(out.filter((p) => !ignored(patterns, p))).toEqual([]);
  });

  it('keeps what the build needs', () => {
    const kept = [
      'package.json',
      'package-lock.json',
      '.npmrc',
      'tsconfig.base.json',
      'tsconfig.build.json',
      'apps/server/src/main.ts',
      'apps/server/tsconfig.json',
      'libs/p2p/src/index.ts',
      'migrations/src/index.ts',
      'deploy/Dockerfile',
    ];
    expect(kept.filter((p) => ignored(patterns, p))).toEqual([]);
  });

  it('builds from source: nothing built is copied from the context, and host builds are removed before tsc -b', () => {
    const dockerfile = read('deploy/Dockerfile');
    const fromContext = dockerfile.split('\n').filter((l) => /^COPY\s/.test(l) && !l.includes('--from='));
    expect(fromContext.length).toBeGreaterThan(0);
    expect(fromContext.filter((l) => /dist|tsbuildinfo|node_modules|data/.test(l))).toEqual([]);
    const build = dockerfile.slice(dockerfile.indexOf('RUN rm -rf'), dockerfile.indexOf('npm prune'));
    expect(build).toMatch(/rm -rf apps\/\*\/dist libs\/\*\/dist migrations\/dist/);
    expect(build).toMatch(/-name '\*\.tsbuildinfo' -delete/);
    expect(build.indexOf('tsbuildinfo')).toBeLessThan(build.indexOf('npm run build'));
    // What `npm run build` runs is in the image before it runs (scripts/build.js, not only the sources).
    const buildScript = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['build']!;
    for (const file of buildScript.match(/scripts\/[\w./-]+/g) ?? []) {
      expect(fromContext.some((l) => l.split(/\s+/).includes(file))).toBe(true);
    }
    // The runtime stage takes dist only from the build stage.
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    for (const line of runtime.split('\n').filter((l) => /^COPY\s.*dist/.test(l)))
      expect(line).toContain('--from=build');
  });

  it.skipIf(!has('docker', ['compose', 'version']))('docker compose config accepts docker-compose.yml', () => {
    execFileSync('docker', ['compose', 'config', '-q'], { cwd: ROOT, stdio: 'pipe' });
  });
});

describe('the systemd unit and its install script', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'polyhome-install-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));
  const unit = read('deploy/polyhome-server.service');

  /** A built repository, as small as the script needs: the server's entry point and the deploy files. */
  function fakeSource(): string {
    const src = join(scratch, 'src');
    mkdirSync(join(src, 'apps/server/dist'), { recursive: true });
    writeFileSync(join(src, 'apps/server/dist/main.js'), '// built\n');
    cpSync(join(ROOT, 'deploy'), join(src, 'deploy'), { recursive: true });
    return src;
  }

  function install(root: string, src: string) {
    return spawnSync('bash', [join(ROOT, 'deploy/install-systemd.sh'), '--root', root, '--source', src], {
      encoding: 'utf8',
    });
  }

  it('runs the Node its instructions install (not Debian /usr/bin/node), and the install script checks the same path', () => {
    expect(/^ExecStart=(\S+) /m.exec(unit)?.[1]).toBe(NODE_PATH);
    expect(unit).toContain(`-C ${NODE_PATH.replace('/bin/node', '')} --strip-components=1`);
    expect(read('deploy/install-systemd.sh')).toContain(`NODE=${NODE_PATH}`);
  });

  it('refuses a scratch root without Node, and one with a Node older than 22.19, saying what to do', () => {
    const src = fakeSource();
    const bare = join(scratch, 'bare');
    const none = install(bare, src);
    expect(none.status).toBe(1);
    expect(none.stderr).toContain(`no Node.js at ${bare}${NODE_PATH}; install Node >= 22.19 there first`);
    const old = join(scratch, 'old');
    mkdirSync(join(old, '/opt/polyhome-node/bin'), { recursive: true });
    writeFileSync(join(old, NODE_PATH), '#!/bin/sh\n[ "$1" = --version ] && echo v18.19.0 && exit 0\nexit 1\n');
    chmodSync(join(old, NODE_PATH), 0o755);
    const refused = install(old, src);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('is Node v18.19.0; the server needs >= 22.19.');
  });

  it('performs the install steps in a scratch root: /opt/polyhome, /etc/polyhome (0700) with server.env (0600), the unit', () => {
    const src = fakeSource();
    const root = join(scratch, 'root');
    mkdirSync(join(root, '/opt/polyhome-node/bin'), { recursive: true });
    symlinkSync(process.execPath, join(root, NODE_PATH));
    const first = install(root, src);
    expect([first.status, first.stderr]).toEqual([0, '']);
    expect(readFileSync(join(root, 'opt/polyhome/apps/server/dist/main.js'), 'utf8')).toBe('// built\n');
    expect(statSync(join(root, 'etc/polyhome')).mode & 0o777).toBe(0o700);
    expect(statSync(join(root, 'etc/polyhome/server.env')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(root, 'etc/polyhome/server.env'), 'utf8')).toBe(read('deploy/env.example'));
    expect(readFileSync(join(root, 'etc/systemd/system/polyhome-server.service'), 'utf8')).toBe(unit);
    // The unit's paths are the ones installed.
    expect(/^WorkingDirectory=(\S+)$/m.exec(unit)?.[1]).toBe('/opt/polyhome');
    expect(/^EnvironmentFile=(\S+)$/m.exec(unit)?.[1]).toBe('/etc/polyhome/server.env');
    // Run again: the edited env file is kept.
    writeFileSync(join(root, 'etc/polyhome/server.env'), 'PORT=9000\n');
    expect(install(root, src).status).toBe(0);
    expect(readFileSync(join(root, 'etc/polyhome/server.env'), 'utf8')).toBe('PORT=9000\n');
  });

  it.skipIf(!has('systemd-analyze', ['--version']))('passes systemd-analyze verify', () => {
    // verify resolves ExecStart on this machine's root: point it at this Node for the check, nothing else changed.
    const copy = join(scratch, 'polyhome-server.service');
    writeFileSync(copy, unit.replace(`ExecStart=${NODE_PATH}`, `ExecStart=${process.execPath}`));
    const res = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
    expect([res.status, res.stderr]).toEqual([0, '']);
  });
});
