// A client-side home as its user runs it: `node apps/node/dist/cli.js --data-dir DIR ...`, one process per
// command, and `start` as a long-running process that a test stops (SIGTERM) or kills (SIGKILL).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '@polyhome/p2p/testing';
import { nodeCommand } from './umask.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(root, 'apps/node/dist/cli.js');

/** The outcome of one command. */
export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** One data directory, its commands, and its running node (at most one at a time). */
export class CliNode {
  readonly output: string[] = [];
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  matrixUrl = '';
  private matrixPort: number | undefined;
  /** The libp2p address of the running node, with /p2p/<PeerId>. */
  addr = '';

  constructor(
    readonly name: string,
    readonly dir: string,
    /** The umask its processes start with (the test's own when undefined). */
    readonly umask?: number,
    /** The network namespace its processes run in (`ip netns exec`; test/netns), the test's own when undefined. */
    readonly netns?: string,
  ) {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does) first.`);
  }

  /** Runs one command to its end. */
  async run(...args: string[]): Promise<CliResult> {
    const child = spawn(...this.#command([CLI, '--data-dir', this.dir, ...args]), {
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: this.dir,
        POLYHOME_PASSPHRASE: process.env['POLYHOME_PASSPHRASE'] ?? '',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    return { code, out, err };
  }

  // node with `args`, under the umask and in the namespace when given (`ip netns exec` becomes the command).
  #command(args: string[]): [string, string[]] {
    const [file, argv] = nodeCommand(args, this.umask);
    return this.netns === undefined ? [file, argv] : ['ip', ['netns', 'exec', this.netns, file, ...argv]];
  }

  /** Runs a command that must succeed and prints JSON; returns the parsed output. */
  async json<T>(...args: string[]): Promise<T> {
    const r = await this.run(...args, '--json');
    if (r.code !== 0) throw new Error(`${this.name}: polyhome ${args.join(' ')} exited ${r.code}: ${r.err}`);
    return JSON.parse(r.out) as T;
  }

  /** `polyhome init --localpart L --name N`: a new account whose root key this node holds. */
  async initAccount(localpart: string, name: string): Promise<{ user_id: string; peer_id: string }> {
    return this.json<{ user_id: string; peer_id: string }>('init', '--localpart', localpart, '--name', name);
  }

  /** The process id of the running node (undefined when stopped). */
  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * `polyhome start`, its Matrix API on a port chosen at the first start and kept across restarts (so the
   * clients of this home keep working), libp2p on any free port; resolves when the node says it is ready.
   */
  async start(...extra: string[]): Promise<void> {
    if (this.running) throw new Error(`${this.name} already runs`);
    this.output.length = 0;
    this.matrixPort ??= await freePort();
    const args = [CLI, '--data-dir', this.dir, 'start', '--port', String(this.matrixPort), ...extra];
    const child = spawn(...this.#command(args), {
      env: { PATH: process.env['PATH'] ?? '', HOME: this.dir, DEBUG: process.env['NODE_DEBUG_LIBP2P'] ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (d: Buffer): void => {
      this.output.push(...d.toString().split('\n').filter(Boolean));
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(
      () => {
        if (!this.running) throw new Error(`${this.name} exited while starting:\n${this.tail()}`);
        return this.output.some((l) => l.startsWith('ready in '));
      },
      `${this.name} to start`,
      90_000,
    );
    this.matrixUrl = this.line('matrix ') ?? '';
    this.addr = this.line('listening /ip4/127.0.0.1/') ?? '';
  }

  /** SIGTERM (a clean stop, exit code expected 0) or SIGKILL; resolves with the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.running) this.child!.kill(signal);
    return this.exited;
  }

  /** The rest of the first output line starting with `prefix` (the prefix itself dropped, up to a space). */
  private line(prefix: string): string | undefined {
    const found = this.output.find((l) => l.startsWith(prefix));
    return found?.slice(found.indexOf(' ') + 1).trim();
  }

  tail(lines = 30): string {
    return this.output.slice(-lines).join('\n');
  }
}
