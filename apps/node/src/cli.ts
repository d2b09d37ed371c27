#!/usr/bin/env node
// polyhome: the client-side home's command line. Parses arguments, runs each command in the node running on
// the data directory (through its control API) or, when none runs, on the directory itself, and prints.
// Exit codes: 0 success, 1 failure, 2 usage. Every error is one line on stderr saying what to do next.
import { constants } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { HomeView, StatusResult } from './commands.js';
import type { HomeContext } from './context.js';
import { callControl } from './control.js';
import { dataDirPaths, defaultDataDir, readKey, runningPid } from './data-dir.js';
import { CliError, EXIT_FAILURE, EXIT_USAGE, storageProblem } from './errors.js';
import { MIN_PASSPHRASE_LENGTH, peerIdFromPublicKey } from '@polyhome/identity';
import { NODE_VERSION } from './version.js';
import { keepWasmOnBaselineTier } from './wasm-tiering.js';

// The modules of the commands are loaded by the command that needs them: libp2p, the Matrix API and the
// database driver take a second or more to load, which `--version`, `--help` and commands that need none of
// them should not pay.
const commands = (): Promise<typeof import('./commands.js')> => import('./commands.js');

/**
 * Progress lines are for a person watching: shown when stderr is a terminal, or with POLYHOME_PROGRESS=1
 * (POLYHOME_PROGRESS=0 hides them). A script reading stderr keeps the one-line error and nothing else.
 */
const SHOW_PROGRESS =
  process.env['POLYHOME_PROGRESS'] === '1' || (process.env['POLYHOME_PROGRESS'] !== '0' && process.stderr.isTTY);

/** One progress line on stderr (stdout stays the answer, which scripts read), with the time since the start. */
export function progress(message: string): void {
  if (!SHOW_PROGRESS) return;
  process.stderr.write(`${message}… (${((performance.now() - STARTED) / 1000).toFixed(1)} s)\n`);
}
const STARTED = performance.now();

function print(json: boolean | undefined, value: unknown, text: () => string): void {
  process.stdout.write(json === true ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

function table(rows: Array<Record<string, unknown>>, columns: string[], empty: string): string {
  if (rows.length === 0) return empty;
  return rows
    .map((r) => columns.map((c) => (typeof r[c] === 'string' ? r[c] : JSON.stringify(r[c]))).join('  '))
    .join('\n');
}

/**
 * Runs a command in the node running on the data directory, or (none running) on the directory opened here.
 * Both paths run the same function of commands.ts, so they answer alike.
 */
async function run<T>(
  dir: string,
  command: string,
  args: Record<string, unknown>,
  offline: (ctx: HomeContext) => Promise<T>,
): Promise<T> {
  const answer = await callControl(dataDirPaths(dir), command, args);
  if (answer.ran) return answer.result as T;
  const { withOfflineContext } = await import('./context.js');
  return withOfflineContext(dir, offline, progress);
}

/** Reads a secret from a file (its first line) or, without one, from an environment variable. */
async function secretOf(file: string | undefined, variable: string, what: string, minLength: number): Promise<string> {
  const text =
    file !== undefined
      ? await readFile(file, 'utf8').catch((err: unknown) => {
          throw new CliError(`Cannot read the ${what} file ${file}: ${(err as Error).message}`);
        })
      : process.env[variable];
  const secret = text?.replace(/\r?\n$/, '');
  if (secret === undefined || secret.length < minLength) {
    throw new CliError(
      `Give a ${what} of at least ${minLength} characters with --${what}-file FILE or the ${variable} variable.`,
      EXIT_USAGE,
    );
  }
  return secret;
}

/** The node's Matrix port: not the server's 8008, so both run on one machine with their defaults. */
export const DEFAULT_MATRIX_PORT = 8009;

function mediaMaxBytesOf(value: string, flag = '--media-max-bytes'): number {
  const bytes = Number(value);
  if (!/^\d+$/.test(value) || bytes < 1024 || bytes > 1024 * 1024 * 1024) {
    throw new CliError(`${flag} ${value}: expected a whole number from 1024 to 1073741824.`, EXIT_USAGE);
  }
  return bytes;
}

function portOf(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new CliError(`--port ${value}: expected 0-65535 (0 picks a free port).`, EXIT_USAGE);
  }
  return port;
}

/** Resolves at the first SIGINT or SIGTERM (caught from the call on, so one that comes early is not lost). */
function untilStopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const onSignal = (): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** Builds the command tree (exported for tests of the parser). */
export function buildProgram(): Command {
  const program = new Command('polyhome')
    .description(
      'The client-side polyhome home: a self-custody Matrix account on this machine, synced with its other homes.',
    )
    .version(NODE_VERSION, '--version', 'print the version')
    .option('--data-dir <dir>', 'data directory', defaultDataDir())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // Only `start` runs for long; every other command opens the database (if at all), answers and exits.
    .hook('preAction', (_program, action) => {
      if (action.name() !== 'start') keepWasmOnBaselineTier();
    });
  const dir = (): string => program.opts<{ dataDir: string }>().dataDir;

  program
    .command('init')
    .description('Create a new account in the data directory (or, with --join, only a node key)')
    .option('--localpart <name>', 'localpart of the new user ID (@name:<server name>)')
    .option('--name <name>', "this home's name in the account document (default: the host name)")
    .option('--join', 'make only a node key, to be added as a home of an existing account')
    .option('--import <file>', 'restore the account from a `polyhome export` file (this node becomes a new home)')
    .option('--passphrase-file <file>', 'with --import: file holding the passphrase (else POLYHOME_PASSPHRASE)')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        localpart?: string;
        name?: string;
        join?: boolean;
        import?: string;
        passphraseFile?: string;
        json?: boolean;
      }) => {
        // The export file first: a missing one is the first thing to fix, before any passphrase.
        if (o.import !== undefined) {
          await access(o.import, constants.R_OK).catch((err: unknown) => {
            throw new CliError(`Cannot read the export file ${o.import}: ${(err as Error).message}`);
          });
        }
        const passphrase =
          o.import === undefined ? undefined : await secretOf(o.passphraseFile, 'POLYHOME_PASSPHRASE', 'passphrase', 1);
        const { init } = await import('./init.js');
        const r = await init(dir(), {
          localpart: o.localpart,
          name: o.name,
          join: o.join,
          importFile: o.import,
          passphrase,
          onProgress: progress,
        });
        print(o.json, r, () =>
          r.user_id === undefined
            ? `peer_id ${r.peer_id}\npairing_code ${r.pairing_code}\nadd this node from a running home of the account: polyhome home add ${r.peer_id} --role client --pairing-code ${r.pairing_code}`
            : `user_id ${r.user_id}\npeer_id ${r.peer_id}`,
        );
      },
    );

  program
    .command('start')
    .description(
      'Run the home: libp2p sync, the Matrix client API and the control API on 127.0.0.1, until Ctrl-C or SIGTERM',
    )
    .option('--p2p <multiaddr>', 'libp2p listen address', '/ip4/127.0.0.1/tcp/0')
    .option('--bootstrap <multiaddr...>', 'peers to dial at start (a home of the account, or any DHT peer)', [])
    .option(
      '--announce <multiaddr...>',
      'addresses to tell peers instead of the listen addresses (a public address or a port forward libp2p would otherwise announce only once AutoNAT confirms it)',
      [],
    )
    .option('--port <port>', 'Matrix client API port on 127.0.0.1 (0 picks a free one)', String(DEFAULT_MATRIX_PORT))
    .option(
      '--media-max-bytes <bytes>',
      'largest media upload in bytes; larger ones get 413 M_TOO_LARGE',
      // DEFAULT_MEDIA_MAX_BYTES of @polyhome/matrix (50 MiB), written out: the CLI loads NestJS only in `start`.
      String(50 * 1024 * 1024),
    )
    .option('--no-client-api-over-p2p', 'do not serve the Matrix client API over libp2p (for `polyhome proxy`)')
    .option(
      '--advertise-relayed',
      "put this node's relayed addresses in its entry of the account documents whose root key it holds (each change signs a new document)",
    )
    .action(
      async (o: {
        p2p: string;
        bootstrap: string[];
        announce: string[];
        port: string;
        mediaMaxBytes: string;
        advertiseRelayed?: boolean;
        clientApiOverP2p: boolean;
      }) => {
        const started = Date.now();
        // Signals are caught from the start: one that arrives while the node starts stops it once it is up.
        const stopRequested = untilStopSignal();
        const { isPeerMultiaddr, isMultiaddrText } = await import('@polyhome/p2p');
        const wrong = o.bootstrap.find((addr) => !isPeerMultiaddr(addr));
        if (wrong !== undefined) {
          throw new CliError(
            `--bootstrap ${wrong}: not a peer's multiaddr; give one ending in /p2p/<PeerId>, like /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW...`,
            EXIT_USAGE,
          );
        }
        const notAddr = o.announce.find((addr) => !isMultiaddrText(addr));
        if (notAddr !== undefined) {
          throw new CliError(
            `--announce ${notAddr}: not a multiaddr; give one like /ip4/203.0.113.5/tcp/4001`,
            EXIT_USAGE,
          );
        }
        const { startHome } = await import('./runtime.js');
        const home = await startHome(dir(), {
          p2p: o.p2p,
          bootstrap: o.bootstrap,
          announce: o.announce,
          port: portOf(o.port),
          mediaMaxBytes: mediaMaxBytesOf(o.mediaMaxBytes),
          advertiseRelayed: o.advertiseRelayed === true,
          clientApiOverP2p: o.clientApiOverP2p,
          onLine: (line) => process.stdout.write(`${line}\n`),
        });
        process.stdout.write(`peer_id ${home.peerId}\n`);
        for (const userId of home.userIds()) process.stdout.write(`hosting ${userId}\n`);
        for (const addr of home.addrs) process.stdout.write(`listening ${addr}\n`);
        process.stdout.write(`matrix ${home.matrixUrl}\n`);
        process.stdout.write(`ready in ${Date.now() - started} ms; Ctrl-C to stop\n`);
        await stopRequested;
        await home.stop();
        process.stdout.write('stopped\n');
      },
    );

  program
    .command('status')
    .description('Show this node, whether it runs, and its accounts')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await statusOf(dir());
      print(o.json, r, () => {
        const lines = [
          `data_dir ${r.data_dir}`,
          `peer_id ${r.peer_id}`,
          `running ${r.running === null ? 'no' : `pid ${r.running}`}`,
        ];
        if (r.matrix_url !== undefined) lines.push(`matrix ${r.matrix_url}`);
        for (const addr of r.listening ?? []) lines.push(`listening ${addr}`);
        if (r.connected_peers !== undefined) lines.push(`connected_peers ${r.connected_peers.length}`);
        if (r.accounts.length === 0) lines.push('no account yet');
        for (const a of r.accounts) {
          lines.push(
            `account ${a.user_id} custody=${a.custody} root_key=${a.root_key ? 'here' : 'elsewhere'} doc_seq=${a.doc_seq} homes=${a.homes} devices=${a.devices} rooms=${a.rooms}`,
          );
        }
        return lines.join('\n');
      });
    });

  program
    .command('pairing-code')
    .description(
      'Show the pairing code of a node made with `init --join` (the home adding it must prove it); --new replaces it',
    )
    .option('--new', 'replace the code (the old one stops working)')
    .option('--json', 'print JSON')
    .action(async (o: { new?: boolean; json?: boolean }) => {
      const { pairingCode } = await import('./init.js');
      const r = await pairingCode(dir(), o.new === true);
      print(o.json, r, () => `pairing_code ${r.pairing_code}\nwrong_proofs ${r.wrong_proofs}`);
    });

  const home = program.command('home').description('The homes of the account');
  home
    .command('list')
    .description('List the homes in the account document')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const homes = await run<HomeView[]>(dir(), 'home.list', {}, async (ctx) => (await commands()).listHomes(ctx));
      print(o.json, { homes }, () =>
        homes
          .map((h) => `${h.peer_id}  ${h.role}  ${h.name}${h.self ? '  (this node)' : ''}  ${h.addrs.join(',')}`)
          .join('\n'),
      );
    });
  home
    .command('add')
    .description(
      'Add a home: a server by its multiaddr (enrolled with --token), a client (a node made with `init --join`) by its PeerId and --pairing-code',
    )
    .argument('<multiaddr|peerId>', 'e.g. /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW... or 12D3KooW...')
    .addOption(new Option('--role <role>', 'role of the new home').choices(['server', 'client']).makeOptionMandatory())
    .option('--token <token>', "the server's enrollment token (from its admin API)")
    .option(
      '--pairing-code <code>',
      'the pairing code the client printed at `init --join` (this node must run; it proves the code to the client)',
    )
    .option('--name <name>', "the home's name in the document (default: its role)")
    .option('--user <userId>', 'the account, when the data directory holds several')
    .option('--json', 'print the new document as JSON')
    .action(
      async (
        target: string,
        o: {
          role: 'server' | 'client';
          token?: string;
          pairingCode?: string;
          name?: string;
          user?: string;
          json?: boolean;
        },
      ) => {
        const args = {
          target,
          role: o.role,
          token: o.token,
          pairing_code: o.pairingCode,
          name: o.name,
          user: o.user,
        };
        const doc = await run(dir(), 'home.add', args, async (ctx) =>
          (await commands()).addHomeByAddress(ctx, target, { ...o, onProgress: progress }),
        );
        print(o.json, doc, () => `added; ${doc.user_id} document seq ${doc.seq} has ${doc.homes.length} homes`);
      },
    );
  home
    .command('remove')
    .description('Revoke a home of the account: what it sends afterwards is refused by every home')
    .argument('<peerId>', 'PeerId of the home')
    .option('--user <userId>', 'the account, when the data directory holds several')
    .option('--json', 'print the new document as JSON')
    .action(async (peerId: string, o: { user?: string; json?: boolean }) => {
      const doc = await run(dir(), 'home.remove', { peer_id: peerId, user: o.user }, async (ctx) =>
        (await commands()).removeHomeByPeerId(ctx, peerId, o.user),
      );
      print(o.json, doc, () => `revoked ${peerId}; ${doc.user_id} document seq ${doc.seq}`);
    });

  const device = program.command('device').description('The devices of the account');
  device
    .command('list')
    .description('List the devices replicated here')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const devices = await run(dir(), 'device.list', {}, async (ctx) => (await commands()).listState(ctx, 'devices'));
      print(o.json, { devices }, () => table(devices, ['device_id', 'display_name', 'user_id'], 'no devices'));
    });
  device
    .command('remove')
    .description('Log a device out everywhere: remove it from the account on every home')
    .argument('<deviceId>', 'device ID (see `device list`)')
    .option('--user <userId>', 'the account, when the data directory holds several')
    .option('--json', 'print JSON')
    .action(async (deviceId: string, o: { user?: string; json?: boolean }) => {
      const r = await run(dir(), 'device.remove', { device_id: deviceId, user: o.user }, async (ctx) =>
        (await commands()).removeDevice(ctx, deviceId, o.user),
      );
      print(o.json, r, () => `removed ${r.device_id}`);
    });

  const room = program.command('room').description('The room memberships of the account');
  room
    .command('list')
    .description('List the memberships replicated here')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const memberships = await run(dir(), 'room.list', {}, async (ctx) =>
        (await commands()).listState(ctx, 'memberships'),
      );
      print(o.json, { memberships }, () => table(memberships, ['room_id', 'membership', 'user_id'], 'no rooms'));
    });
  for (const membership of ['join', 'leave'] as const) {
    room
      .command(membership)
      .description(
        `Record that the account ${membership === 'join' ? 'joined' : 'left'} a room (synced to the other homes)`,
      )
      .argument('<roomId>', 'room id, e.g. !abc:example.org')
      .option('--user <userId>', 'the account, when the data directory holds several')
      .option('--json', 'print JSON')
      .action(async (roomId: string, o: { user?: string; json?: boolean }) => {
        const r = await run(dir(), `room.${membership}`, { room_id: roomId, user: o.user }, async (ctx) =>
          (await commands()).setMembership(ctx, roomId, membership, o.user),
        );
        print(o.json, r, () => `${r.membership} ${r.room_id}`);
      });
  }

  program
    .command('login-token')
    .description('Make a single-use login token for a Matrix client of this home (m.login.token, 2 minutes)')
    .option('--user <userId>', 'the account, when the data directory holds several')
    .option('--json', 'print JSON')
    .action(async (o: { user?: string; json?: boolean }) => {
      const r = await run(dir(), 'login-token', { user: o.user }, async (ctx) =>
        (await commands()).loginToken(ctx, o.user),
      );
      print(o.json, r, () => r.login_token);
    });

  program
    .command('export')
    .description('Write the account document and its root key, sealed under a passphrase, for a backup')
    .option('--passphrase-file <file>', 'file holding the passphrase (else POLYHOME_PASSPHRASE)')
    .option('--out <file>', 'write the export to this file (mode 0600) instead of stdout')
    .option('--user <userId>', 'the account, when the data directory holds several')
    .action(async (o: { passphraseFile?: string; out?: string; user?: string }) => {
      const passphrase = await secretOf(o.passphraseFile, 'POLYHOME_PASSPHRASE', 'passphrase', MIN_PASSPHRASE_LENGTH);
      const r = await run(dir(), 'export', { passphrase, user: o.user }, async (ctx) =>
        (await commands()).exportAccount(ctx, passphrase, o.user),
      );
      const text = `${JSON.stringify(r, null, 2)}\n`;
      if (o.out === undefined) process.stdout.write(text);
      else {
        await writeFile(o.out, text, { mode: 0o600, flag: 'wx' }).catch((err: unknown) => {
          throw new CliError(`Cannot write ${o.out}: ${(err as Error).message} (an existing file is not overwritten).`);
        });
        process.stdout.write(`exported ${r.user_id} to ${o.out}\n`);
      }
    });

  program
    .command('backup')
    .description(
      'Back up the whole data directory (keys and database) to one new file (mode 0600); a running node takes ' +
        'the snapshot itself',
    )
    .requiredOption('--out <file>', 'the backup file to create (never overwritten)')
    .option('--json', 'print JSON')
    .action(async (o: { out: string; json?: boolean }) => {
      const out = path.resolve(o.out);
      const { backupDataDir } = await import('./backup.js');
      const r = await run(dir(), 'backup', { out }, (ctx) => backupDataDir(ctx, out));
      print(
        o.json,
        r,
        () => `backed up ${r.user_ids.join(', ') || 'the data directory'} (${r.peer_id}) to ${r.out}, ${r.bytes} bytes`,
      );
    });

  program
    .command('restore')
    .description('Make the data directory from a `polyhome backup` file (into an empty one, with no node running)')
    .argument('<file>', 'the backup file')
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const { restoreDataDir } = await import('./backup.js');
      const r = await restoreDataDir(dir(), file);
      print(o.json, r, () =>
        [
          `restored ${r.user_ids.join(', ') || 'the data directory'} (${r.peer_id}) as of ${r.created_at} into ${r.data_dir}`,
          'run `polyhome start`: its other homes send what changed since; wait for "sync: caught up" before changing anything',
        ].join('\n'),
      );
    });

  program
    .command('claim')
    .description('Take custody of an account a server hosts: its root key comes to this device, which becomes a home')
    .argument('<url>', "the server's HTTP address, e.g. https://home.example.org")
    .requiredOption('--user <userId>', 'the account, @name:<server name>')
    .option('--password-file <file>', "file holding the account's password (else POLYHOME_PASSWORD)")
    .option('--name <name>', "this home's name in the account document", 'client')
    .option('--json', 'print JSON')
    .action(async (url: string, o: { user: string; passwordFile?: string; name: string; json?: boolean }) => {
      const password = await secretOf(o.passwordFile, 'POLYHOME_PASSWORD', 'password', 1);
      const { claim } = await import('./claim.js');
      progress(`Claiming ${o.user} from ${url} (the server checks the password and seals the key)`);
      const r = await claim(dir(), url, { userId: o.user, password, name: o.name });
      print(
        o.json,
        r,
        () => `user_id ${r.user_id}\npeer_id ${r.peer_id}\nthe root key is now on this device; run polyhome start`,
      );
    });

  program
    .command('lookup')
    .description("Find an account's homes through the DHT, from its user ID and one DHT peer")
    .argument('<userId>', 'e.g. @alice:<server name>')
    .option('--bootstrap <multiaddr...>', 'DHT peers to start from', [])
    .option('--timeout <seconds>', 'give up after this long', '30')
    .option('--json', 'print JSON')
    .action(async (userId: string, o: { bootstrap: string[]; timeout: string; json?: boolean }) => {
      const seconds = Number(o.timeout);
      if (!Number.isFinite(seconds) || seconds <= 0)
        throw new CliError(`--timeout ${o.timeout}: expected seconds > 0.`, EXIT_USAGE);
      const { lookup } = await import('./lookup.js');
      progress(`Looking up ${userId} through the DHT (up to ${seconds} s)`);
      const r = await lookup(userId, o.bootstrap, seconds * 1000);
      print(o.json, r, () =>
        [
          `user_id ${r.user_id} doc_seq ${r.doc_seq}`,
          ...r.homes.map((h) => `${h.peerId}  ${h.role}  ${h.name}  ${h.addrs.join(',') || '(no address known)'}`),
        ].join('\n'),
      );
    });

  program
    .command('proxy')
    .description(
      'Serve the Matrix client API on 127.0.0.1 and forward every request over libp2p to a home of the account (this machine runs no home); until Ctrl-C',
    )
    .option(
      '--listen <host:port>',
      'where Matrix clients connect: 127.0.0.1:<port> (0 picks a free port)',
      '127.0.0.1:8010',
    )
    .option('--home <multiaddr>', 'the home to use, e.g. /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW...')
    .option('--user <userId>', "find the account's homes through the DHT (server homes first); needs --bootstrap")
    .option('--bootstrap <multiaddr...>', 'DHT peers to start from (with --user)', [])
    .option(
      '--max-body-bytes <bytes>',
      'largest request body (media upload); larger ones get 413',
      String(50 * 1024 * 1024),
    )
    .option('--timeout <seconds>', 'give up finding or dialling the home after this long', '30')
    .action(
      async (o: {
        listen: string;
        home?: string;
        user?: string;
        bootstrap: string[];
        maxBodyBytes: string;
        timeout: string;
      }) => {
        const seconds = Number(o.timeout);
        if (!Number.isFinite(seconds) || seconds <= 0)
          throw new CliError(`--timeout ${o.timeout}: expected seconds > 0.`, EXIT_USAGE);
        const stopRequested = untilStopSignal();
        const { startProxy } = await import('./proxy.js');
        if (o.user !== undefined) progress(`Looking up ${o.user} through the DHT`);
        const proxy = await startProxy({
          listen: o.listen,
          home: o.home,
          user: o.user,
          bootstrap: o.bootstrap,
          maxBodyBytes: mediaMaxBytesOf(o.maxBodyBytes, '--max-body-bytes'),
          timeoutMs: seconds * 1000,
          onLine: (line) => process.stdout.write(`${line}\n`),
        });
        process.stdout.write(`home ${proxy.home}\n`);
        process.stdout.write(`matrix ${proxy.url}\n`);
        process.stdout.write(`proxying ${proxy.url} to ${proxy.home}; Ctrl-C to stop\n`);
        await stopRequested;
        await proxy.stop();
        process.stdout.write('stopped\n');
      },
    );
  return program;
}

/** Status from the running node, or read from the directory; the PeerId alone while the node is starting. */
async function statusOf(dir: string): Promise<StatusResult> {
  const paths = dataDirPaths(dir);
  const answer = await callControl(paths, 'status', {});
  if (answer.ran) return answer.result as StatusResult;
  const peerId = peerIdFromPublicKey((await readKey(paths.nodeKey, 'node key', paths.dir)).publicKey);
  const pid = await runningPid(paths);
  if (pid !== undefined) {
    throw new CliError(`The node (pid ${pid}) is starting or does not answer; try again in a moment.`);
  }
  const { withOfflineContext } = await import('./context.js');
  return withOfflineContext(
    dir,
    async (ctx) => ({
      data_dir: paths.dir,
      peer_id: peerId,
      running: null,
      accounts: await (await commands()).accountStatuses(ctx),
    }),
    progress,
  );
}

/** Runs the CLI and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed the message or the help already; help and version are not failures.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (err instanceof CliError) {
      process.stderr.write(`error: ${err.message}\n`);
      return err.exitCode;
    }
    const problem = storageProblem(err, program.opts<{ dataDir: string }>().dataDir);
    if (problem !== undefined) {
      process.stderr.write(`error: ${problem.message}\n`);
      return problem.exitCode;
    }
    process.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`);
    return EXIT_FAILURE;
  }
}

// Exit explicitly: libp2p and PGlite can leave handles behind that would keep a finished command alive. Output
// to a pipe is written asynchronously, so let it drain first (a large --json answer would be cut otherwise).
// Everything the node writes is its user's alone: keys, control.json, the database (PGlite's own chmods are
// undone when it opens, see @polyhome/storage).
process.umask(0o077);
const code = await main(process.argv);
await Promise.all(
  [process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))),
);
process.exit(code);
