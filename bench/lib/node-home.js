// Runs the client-side home as its user does (the built CLI, apps/node/dist/cli.js, one process per data directory).
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const CLI = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'apps',
  'node',
  'dist',
  'cli.js',
);

/** `polyhome --data-dir <dir> <args> --json`; its parsed answer. */
export function cli(dir, ...args) {
  const r = spawnSync(process.execPath, [CLI, '--data-dir', dir, ...args, '--json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`polyhome ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/**
 * `polyhome start`; resolves once it prints its ready line, with { ms (spawn to ready), addr (its 127.0.0.1
 * multiaddr), pid, url (its Matrix API), stop() }.
 */
export async function startNode(dir, matrixPort, extra = []) {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, '--data-dir', dir, 'start', '--port', String(matrixPort), ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = [];
  let ready;
  const readyAt = new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        lines.push(line);
        if (line.startsWith('ready in ') && ready === undefined) {
          ready = performance.now() - started;
          resolve(ready);
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`node exited ${code} before ready: ${lines.join('\n')}`)));
  });
  const ms = await readyAt;
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const addr = lines.find((l) => l.startsWith('listening /ip4/127.0.0.1/'))?.slice('listening '.length);
  return {
    ms,
    addr,
    pid: child.pid,
    url: `http://127.0.0.1:${matrixPort}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
