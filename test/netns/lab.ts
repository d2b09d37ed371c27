// A network of namespaces on one machine (root only): a "public" segment (a bridge in its own namespace) holding
// the server homes and two NAT routers, each router masquerading a home network of one laptop behind it.
//
//   s1 10.77.0.11 ─┐                         ┌─ r1 10.77.0.21 ══ NAT ══ 192.168.1.1 ── l1 192.168.1.2
//   s2 10.77.0.12 ─┼── br0 (namespace pub) ──┤
//                  │                         └─ r2 10.77.0.22 ══ NAT ══ 192.168.2.1 ── l2 192.168.2.2
//  (p1 10.77.0.31 ─┘ with `publicHome`: a home on the public segment, no NAT)
//
// `publicNet` replaces 10.77.0 (the DCUtR test needs addresses libp2p counts as public: it never dials a private
// one to upgrade a relayed connection).
// Every namespace name starts with a prefix unique to the run (pid and random bytes), so parallel runs do not
// collide; the addresses are the same in every run, which is fine: each run's namespaces see only each other.
// destroy() kills the processes started in the namespaces and deletes the namespaces (their veths go with
// them); it runs after a failed setup too, and an exit handler deletes what is left if the test process dies.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** Time allowed for one `ip`/`nft`/`curl` command, ms. */
const COMMAND_TIMEOUT_MS = 15_000;

/** The public segment's /24 (by default) and the addresses in it. */
export const PUBLIC_NET = '10.77.0';
export type Host = 's1' | 's2' | 'r1' | 'r2' | 'l1' | 'l2' | 'p1';

/** The address of each host, the public segment's being `<net>.<n>`. */
export function addressesOn(net: string): Readonly<Record<Host, string>> {
  return {
    s1: `${net}.11`,
    s2: `${net}.12`,
    r1: `${net}.21`,
    r2: `${net}.22`,
    p1: `${net}.31`,
    l1: '192.168.1.2',
    l2: '192.168.2.2',
  };
}
/** The addresses of the default lab. */
export const ADDRS = addressesOn(PUBLIC_NET);

/** What a lab holds beyond the default. */
export interface LabOptions {
  /** The public segment's /24 as three octets (default 10.77.0). */
  publicNet?: string;
  /** Add p1, a host on the public segment (no NAT). */
  publicHome?: boolean;
}

/** Runs a command; throws with its stderr. */
export async function sh(file: string, args: string[], timeout = COMMAND_TIMEOUT_MS): Promise<string> {
  try {
    const { stdout } = await run(file, args, { timeout, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`${file} ${args.join(' ')}: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/**
 * Fails, saying why and what to do, where the namespaces cannot be built: not root, or `ip`/`nft` missing. The
 * tests do not skip: a machine that cannot run them fails them.
 */
export async function requireNetnsPrivileges(): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'The network-namespace tests need root (ip netns, veth pairs, nftables NAT): run them as root, as .ci/run ' +
        'does (sudo npx vitest run test/netns). They are not skipped.',
    );
  }
  for (const [file, args, pkg] of [
    ['ip', ['-V'], 'iproute2'],
    ['nft', ['--version'], 'nftables'],
    ['curl', ['--version'], 'curl'],
  ] as const) {
    await sh(file, [...args]).catch(() => {
      throw new Error(`${file} is missing: apt-get install -y ${pkg} (.ci/run installs it).`);
    });
  }
}

/** A network of namespaces; create() builds it, destroy() removes everything it made. */
export class NetnsLab {
  readonly prefix = `ph${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
  readonly #namespaces: string[] = [];
  readonly #children = new Set<ChildProcess>();
  readonly #onExit = (): void => this.#destroySync();
  /** The address of each host in this lab. */
  readonly addrs: Readonly<Record<Host, string>>;
  readonly #publicHosts: Array<'s1' | 's2' | 'r1' | 'r2' | 'p1'>;

  private constructor(options: LabOptions) {
    this.addrs = addressesOn(options.publicNet ?? PUBLIC_NET);
    this.#publicHosts = ['s1', 's2', 'r1', 'r2', ...(options.publicHome === true ? (['p1'] as const) : [])];
    process.on('exit', this.#onExit);
  }

  /** The namespace of a host. */
  ns(host: Host | 'pub'): string {
    return `${this.prefix}-${host}`;
  }

  /** Builds the network. On failure what was made is removed and the error thrown. */
  static async create(options: LabOptions = {}): Promise<NetnsLab> {
    if (options.publicNet !== undefined && !/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(options.publicNet)) {
      throw new Error(`publicNet must be three octets (like 10.77.0), not ${JSON.stringify(options.publicNet)}`);
    }
    await requireNetnsPrivileges();
    const lab = new NetnsLab(options);
    try {
      await lab.#build();
      return lab;
    } catch (err) {
      await lab.destroy();
      throw err;
    }
  }

  async #build(): Promise<void> {
    for (const host of ['pub', ...this.#publicHosts, 'l1', 'l2'] as const) {
      await sh('ip', ['netns', 'add', this.ns(host)]);
      this.#namespaces.push(this.ns(host));
      await this.exec(host, ['ip', 'link', 'set', 'lo', 'up']);
    }
    await this.exec('pub', ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
    await this.exec('pub', ['ip', 'link', 'set', 'br0', 'up']);
    // Servers, routers (and p1): eth0 in their namespace, its peer (named after the host) on the bridge.
    for (const host of this.#publicHosts) {
      await this.#veth(host, 'eth0', 'pub', host);
      await this.exec('pub', ['ip', 'link', 'set', host, 'master', 'br0', 'up']);
      await this.exec(host, ['ip', 'addr', 'add', `${this.addrs[host]}/24`, 'dev', 'eth0']);
      await this.exec(host, ['ip', 'link', 'set', 'eth0', 'up']);
    }
    // Home networks: the router's lan0 and the laptop's eth0; the laptop's default route is its router.
    for (const [router, laptop, net] of [
      ['r1', 'l1', '192.168.1'],
      ['r2', 'l2', '192.168.2'],
    ] as const) {
      await this.#veth(router, 'lan0', laptop, 'eth0');
      await this.exec(router, ['ip', 'addr', 'add', `${net}.1/24`, 'dev', 'lan0']);
      await this.exec(router, ['ip', 'link', 'set', 'lan0', 'up']);
      await this.exec(laptop, ['ip', 'addr', 'add', `${net}.2/24`, 'dev', 'eth0']);
      await this.exec(laptop, ['ip', 'link', 'set', 'eth0', 'up']);
      await this.exec(laptop, ['ip', 'route', 'add', 'default', 'via', `${net}.1`]);
      await this.exec(router, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      // Masquerade what leaves by eth0; forward only what the home network started (a NAT without port
      // forwarding: nothing outside can open a connection to the laptop).
      await this.exec(router, [
        'nft',
        [
          'add table ip nat',
          'add chain ip nat postrouting { type nat hook postrouting priority 100 ; }',
          'add rule ip nat postrouting oifname "eth0" masquerade',
          'add table ip filter',
          'add chain ip filter forward { type filter hook forward priority 0 ; policy drop ; }',
          'add rule ip filter forward iifname "lan0" accept',
          'add rule ip filter forward ct state established,related accept',
        ].join(' ; '),
      ]);
    }
  }

  async #veth(a: Host | 'pub', nameA: string, b: Host | 'pub', nameB: string): Promise<void> {
    // Made directly in the two namespaces: the names need be unique only there, not in the test's namespace.
    await sh('ip', [
      'link',
      'add',
      nameA,
      'netns',
      this.ns(a),
      'type',
      'veth',
      'peer',
      'name',
      nameB,
      'netns',
      this.ns(b),
    ]);
  }

  /** Runs a command in a host's namespace. */
  async exec(host: Host | 'pub', command: string[], timeout = COMMAND_TIMEOUT_MS): Promise<string> {
    return sh('ip', ['netns', 'exec', this.ns(host), ...command], timeout);
  }

  /** Starts a long-running process in a namespace; destroy() kills it if it still runs. */
  spawn(host: Host, command: string[], env: Record<string, string>): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(host), ...command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#children.add(child);
    child.on('exit', () => this.#children.delete(child));
    return child;
  }

  /** Whether a TCP connection from one host to an address opens within `ms` (a Node client in the namespace). */
  async canConnect(from: Host, host: string, port: number, ms = 3_000): Promise<boolean> {
    const script =
      `const s = require('net').connect({ host: ${JSON.stringify(host)}, port: ${port} });` +
      `s.setTimeout(${ms}, () => { console.log('timeout'); process.exit(0); });` +
      `s.on('connect', () => { console.log('connected'); process.exit(0); });` +
      `s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
    const out = await this.exec(from, [process.execPath, '-e', script], ms + COMMAND_TIMEOUT_MS);
    return out.trim() === 'connected';
  }

  /** An HTTP request from inside a namespace (curl): status and parsed JSON body. */
  async http(
    host: Host,
    method: string,
    url: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const args = ['curl', '-sS', '-m', '30', '-X', method, '-w', '\n%{http_code}'];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
    args.push(url);
    const out = await this.exec(host, args, 45_000);
    const cut = out.lastIndexOf('\n');
    const text = out.slice(0, cut);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      parsed = { text };
    }
    return { status: Number(out.slice(cut + 1)), body: parsed };
  }

  /** Takes a host's link to the public segment down (its eth0) or up again. */
  async link(host: 's1' | 's2' | 'r1' | 'r2' | 'p1', state: 'up' | 'down'): Promise<void> {
    await this.exec(host, ['ip', 'link', 'set', 'eth0', state]);
  }

  /** Kills the processes and deletes the namespaces; collects failures and throws them together at the end. */
  async destroy(): Promise<void> {
    process.off('exit', this.#onExit);
    const exits = [...this.#children].map(
      (child) =>
        new Promise<void>((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', () => resolve()))),
    );
    for (const child of this.#children) child.kill('SIGKILL');
    await Promise.race([Promise.all(exits), new Promise((resolve) => setTimeout(resolve, 10_000))]);
    const failures: string[] = [];
    for (const ns of this.#namespaces.splice(0).reverse()) {
      await sh('ip', ['netns', 'del', ns]).catch((err: Error) => failures.push(err.message));
    }
    if (failures.length > 0) throw new Error(`namespaces not removed: ${failures.join('; ')}`);
  }

  /** Whether any namespace of this run is left (for the test that checks the cleanup). */
  async leftovers(): Promise<string[]> {
    const list = await sh('ip', ['netns', 'list']);
    return list
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(`${this.prefix}-`));
  }

  // The last resort when the test process exits without destroy(): synchronous, best effort.
  #destroySync(): void {
    for (const child of this.#children) child.kill('SIGKILL');
    for (const ns of this.#namespaces.splice(0)) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: COMMAND_TIMEOUT_MS });
      } catch {
        // Nothing more can be done while exiting.
      }
    }
  }
}
