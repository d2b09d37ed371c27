#!/usr/bin/env node
// The build, with progress: `npm run build` (always compiles: tsc -b, which redoes only what changed) and
// `node scripts/build.js --if-stale` (what `npm start`, `bench`, `load`, `soak` and `migration:run` run first).
// --if-stale decides in a few milliseconds whether anything could have changed since the last successful build:
// it compares the newest modification time of the packages' sources, tsconfigs and package.json files (and of
// the root's package-lock.json and tsconfigs) with the build stamp, and checks that every package's output is
// there. When nothing changed it says so and builds nothing; `tsc -b` alone spends seconds finding that out.
//
// A build prints one line per package as tsc reaches it, then the total time. After compiling it makes the
// embedded database template (see libs/storage/src/pglite/template.ts), so a first `polyhome init` or server
// start copies a migrated database instead of creating one.
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { packages, stampPath, staleReason } from './build-stamp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
function seconds(ms) {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Runs a command, calling onLine for each line of its output; rejects on a non-zero exit. */
function run(command, args, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let rest = '';
    const take = (chunk) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => {
      if (rest !== '') onLine(rest);
      if (code === 0) resolve();
      else reject(new Error(`${path.basename(args[0] ?? command)} exited with ${code}; see the lines above`));
    });
  });
}

async function build(reason) {
  const started = Date.now();
  const first = !packages(root).some((pkg) => existsSync(path.join(root, pkg, 'dist', '.tsbuildinfo')));
  console.error(
    first
      ? 'Building polyhome (first time: about a minute, up to a few on a slow machine)…'
      : `Building polyhome (${reason})…`,
  );
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  // --verbose names each project as tsc takes it up: those lines are the progress. Its other lines (the
  // timestamped notes and the project list) are dropped; what remains are the compiler's errors.
  await run(process.execPath, [tsc, '-b', 'tsconfig.build.json', '--verbose', '--pretty', 'false'], (line) => {
    const building = /Building project '(.+)'/.exec(line);
    if (building) {
      const pkg = path.relative(root, path.dirname(building[1]));
      console.error(`  compiling ${pkg}… (${seconds(Date.now() - started)})`);
    } else if (line.trim() !== '' && !/^\d{1,2}:\d\d:\d\d.* - /.test(line) && !/^\s+\* /.test(line)) {
      console.error(line);
    }
  });
  // The admin console: Vite bundles it into the server's dist (served at /admin/).
  console.error(`  bundling apps/console… (${seconds(Date.now() - started)})`);
  const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  await run(
    process.execPath,
    [vite, 'build', '--config', path.join(root, 'apps', 'console', 'vite.config.ts')],
    (line) => {
      if (line.trim() !== '') console.error(line);
    },
  );
  chmodSync(path.join(root, 'apps', 'node', 'dist', 'cli.js'), 0o755);
  chmodSync(path.join(root, 'apps', 'server', 'dist', 'cli', 'admin.js'), 0o755);
  await run(process.execPath, [path.join(root, 'libs', 'storage', 'dist', 'cli', 'pglite-template.js')], (line) => {
    if (line.startsWith('Preparing') || line.startsWith('No database template')) console.error(`  ${line}`);
  });
  const stamp = stampPath(root);
  writeFileSync(stamp, `${new Date(started).toISOString()}\n`);
  // The stamp's time is the build's start: a file saved while tsc ran makes the next --if-stale build again.
  utimesSync(stamp, new Date(started), new Date(started));
  console.error(`Built polyhome in ${seconds(Date.now() - started)}.`);
}

const ifStale = process.argv.includes('--if-stale');
try {
  const reason = staleReason(root);
  if (ifStale && reason === undefined) {
    console.error('polyhome is built and nothing changed since (npm run build rebuilds).');
  } else {
    await build(reason ?? 'npm run build');
  }
} catch (err) {
  console.error(`Build failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
