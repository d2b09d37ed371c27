// Whether the build is current (used by scripts/build.js --if-stale): the newest modification time of what a
// build reads, against the stamp a successful build writes. Every function takes the repository root, so the
// test can run them on a scratch tree.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/** Written after a successful build; its modification time is the moment that build started. */
export function stampPath(root) {
  return path.join(root, 'node_modules', '.polyhome-build-stamp');
}

/** Where the admin console's bundle goes (served by the server at /admin/). */
export const CONSOLE_OUT = 'apps/server/dist/console';

/** The packages tsconfig.build.json builds, in its order. */
export function packages(root) {
  const config = JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8'));
  return config.references.map((ref) => ref.path);
}

/** Newest modification time (ms) of the files under dir that a build reads, skipping outputs and dependencies. */
function newestInput(dir, newest = { mtime: 0, file: '' }) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'dist' || entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newestInput(full, newest);
    else if (/\.(ts|mts|cts|js|mjs|json|css|html)$/.test(entry.name)) {
      const mtime = statSync(full).mtimeMs;
      if (mtime > newest.mtime) Object.assign(newest, { mtime, file: full });
    }
  }
  return newest;
}

/** Why a build is needed, or undefined when the last build is current. */
export function staleReason(root) {
  const stamp = stampPath(root);
  if (!existsSync(stamp)) return 'no build stamp yet';
  const built = statSync(stamp).mtimeMs;
  const newest = { mtime: 0, file: '' };
  for (const file of ['package.json', 'package-lock.json', 'tsconfig.base.json', 'tsconfig.build.json']) {
    const full = path.join(root, file);
    if (existsSync(full) && statSync(full).mtimeMs > newest.mtime) {
      Object.assign(newest, { mtime: statSync(full).mtimeMs, file: full });
    }
  }
  for (const pkg of packages(root)) {
    if (!existsSync(path.join(root, pkg, 'dist', '.tsbuildinfo'))) return `${pkg}/dist is missing`;
    newestInput(path.join(root, pkg), newest);
  }
  // The admin console (bundled by Vite into the server's dist, not a tsc project).
  const console = path.join(root, 'apps', 'console');
  if (existsSync(console)) {
    if (!existsSync(path.join(root, CONSOLE_OUT, 'index.html'))) return `${CONSOLE_OUT} is missing`;
    newestInput(console, newest);
  }
  if (newest.mtime > built) return `${path.relative(root, newest.file)} changed`;
  return undefined;
}
