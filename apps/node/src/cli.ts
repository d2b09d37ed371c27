#!/usr/bin/env node
// polyhome: the client-side home's command line. Parses arguments, calls home.ts/run.ts, prints results.
// Exit codes: 0 success, 1 failure, 2 usage. Every error is one line on stderr saying what to do next.
import '@polyhome/p2p/polyfill';
import { Command, CommanderError, Option } from 'commander';
import { defaultDataDir } from './data-dir.js';
import { CliError, EXIT_FAILURE, EXIT_USAGE } from './errors.js';
import { addHomeByAddress, init, listHomes, listState, removeHomeByPeerId, setMembership, status } from './home.js';
import { startHome } from './run.js';

function print(json: boolean | undefined, value: unknown, text: () => string): void {
  process.stdout.write(json === true ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

function table(rows: Array<Record<string, unknown>>, columns: string[], empty: string): string {
  if (rows.length === 0) return empty;
  return rows
    .map((r) => columns.map((c) => (typeof r[c] === 'string' ? r[c] : JSON.stringify(r[c]))).join('  '))
    .join('\n');
}

/** Builds the command tree (exported for tests of the parser). */
export function buildProgram(): Command {
  const program = new Command('polyhome')
    .description(
      'The client-side polyhome home: a self-custody Matrix account on this machine, synced with its other homes.',
    )
    .option('--data-dir <dir>', 'data directory', defaultDataDir())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const dir = (): string => program.opts<{ dataDir: string }>().dataDir;

  program
    .command('init')
    .description('Create a new account in the data directory (or, with --join, only a node key)')
    .option('--localpart <name>', 'localpart of the new user ID (@name:<server name>)')
    .option('--name <name>', "this home's name in the account document (default: the host name)")
    .option('--join', 'make only a node key, to be added as a home of an existing account')
    .option('--json', 'print JSON')
    .action(async (o: { localpart?: string; name?: string; join?: boolean; json?: boolean }) => {
      const r = await init(dir(), { localpart: o.localpart, name: o.name, join: o.join });
      print(o.json, r, () =>
        r.user_id === undefined ? `peer_id ${r.peer_id}` : `user_id ${r.user_id}\npeer_id ${r.peer_id}`,
      );
    });

  program
    .command('start')
    .description('Run the home: libp2p and sync for the accounts of the data directory, until Ctrl-C or SIGTERM')
    .option('--p2p <multiaddr>', 'libp2p listen address', '/ip4/127.0.0.1/tcp/0')
    .option('--bootstrap <multiaddr...>', 'DHT peers to dial at start', [])
    .option('--port <port>', 'Matrix client API port on 127.0.0.1 (not served yet)', '8008')
    .action(async (o: { p2p: string; bootstrap: string[] }) => {
      const home = await startHome(dir(), { p2p: o.p2p, bootstrap: o.bootstrap });
      process.stdout.write(`peer_id ${home.peerId}\n`);
      for (const userId of home.userIds) process.stdout.write(`hosting ${userId}\n`);
      for (const addr of home.addrs) process.stdout.write(`listening ${addr}\n`);
      process.stdout.write('running; Ctrl-C to stop\n');
      await new Promise<void>((resolve) => {
        const onSignal = (): void => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve();
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      await home.stop();
      process.stdout.write('stopped\n');
    });

  program
    .command('status')
    .description('Show this node, whether it runs, and its accounts')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await status(dir());
      print(o.json, r, () => {
        const lines = [
          `data_dir ${r.data_dir}`,
          `peer_id ${r.peer_id}`,
          `running ${r.running === null ? 'no' : `pid ${r.running}`}`,
        ];
        if (r.accounts === null) lines.push('accounts: stop the node to read them (its database is in use)');
        for (const a of r.accounts ?? []) {
          lines.push(
            `account ${a.user_id} custody=${a.custody} doc_seq=${a.doc_seq} homes=${a.homes} devices=${a.devices} rooms=${a.rooms}`,
          );
        }
        return lines.join('\n');
      });
    });

  const home = program.command('home').description('The homes of the account');
  home
    .command('list')
    .description('List the homes in the account document')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const homes = await listHomes(dir());
      print(o.json, { homes }, () =>
        homes
          .map((h) => `${h.peer_id}  ${h.role}  ${h.name}${h.self ? '  (this node)' : ''}  ${h.addrs.join(',')}`)
          .join('\n'),
      );
    });
  home
    .command('add')
    .description('Add a home by its multiaddr (ending in /p2p/<PeerId>); a server home is enrolled with --token')
    .argument('<multiaddr>', 'address of the home, e.g. /ip4/203.0.113.5/tcp/4001/p2p/12D3KooW...')
    .addOption(new Option('--role <role>', 'role of the new home').choices(['server', 'client']).makeOptionMandatory())
    .option('--token <token>', "the server's enrollment token (from its admin API)")
    .option('--name <name>', "the home's name in the document (default: its role)")
    .option('--user <userId>', 'the account, when the data directory holds several')
    .option('--json', 'print the new document as JSON')
    .action(
      async (
        address: string,
        o: { role: 'server' | 'client'; token?: string; name?: string; user?: string; json?: boolean },
      ) => {
        const doc = await addHomeByAddress(dir(), address, {
          role: o.role,
          token: o.token,
          name: o.name,
          user: o.user,
        });
        print(o.json, doc, () => `added; ${doc.user_id} document seq ${doc.seq} has ${doc.homes.length} homes`);
      },
    );
  home
    .command('remove')
    .description('Revoke a home of the account')
    .argument('<peerId>', 'PeerId of the home')
    .option('--user <userId>', 'the account, when the data directory holds several')
    .option('--json', 'print the new document as JSON')
    .action(async (peerId: string, o: { user?: string; json?: boolean }) => {
      const doc = await removeHomeByPeerId(dir(), peerId, o.user);
      print(o.json, doc, () => `revoked ${peerId}; ${doc.user_id} document seq ${doc.seq}`);
    });

  program
    .command('device')
    .description('The devices of the account')
    .command('list')
    .description('List the devices replicated here')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const devices = await listState(dir(), 'devices');
      print(o.json, { devices }, () => table(devices, ['device_id', 'user_id'], 'no devices'));
    });

  const room = program.command('room').description('The room memberships of the account');
  room
    .command('list')
    .description('List the memberships replicated here')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const memberships = await listState(dir(), 'memberships');
      print(o.json, { memberships }, () => table(memberships, ['room_id', 'membership', 'user_id'], 'no rooms'));
    });
  for (const membership of ['join', 'leave'] as const) {
    room
      .command(membership)
      .description(
        `Record that the account ${membership === 'join' ? 'joined' : 'left'} a room (synced to the other homes when the node runs)`,
      )
      .argument('<roomId>', 'room id, e.g. !abc:example.org')
      .option('--user <userId>', 'the account, when the data directory holds several')
      .option('--json', 'print JSON')
      .action(async (roomId: string, o: { user?: string; json?: boolean }) => {
        const r = await setMembership(dir(), roomId, membership, o.user);
        print(o.json, r, () => `${r.membership} ${r.room_id}`);
      });
  }
  return program;
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
    process.stderr.write(`error: ${(err as Error).message ?? String(err)}\n`);
    return EXIT_FAILURE;
  }
}

// Exit explicitly: libp2p and PGlite can leave handles behind that would keep a finished command alive.
process.exit(await main(process.argv));
