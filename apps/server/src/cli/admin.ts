#!/usr/bin/env node
// polyhome-admin: the server's admin REST API from a shell, one verb per route, for operators who script.
// The answer goes to stdout (a table or key/value lines, or the API's JSON with --json); errors are one line on
// stderr saying what to do. Exit codes: 0 done, 1 the server refused, 2 usage, 3 the server was not reached.
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import {
  AdminCliError,
  callAdmin,
  DEFAULT_ADMIN_URL,
  EXIT_REFUSED,
  EXIT_USAGE,
  segment,
  type AdminTarget,
} from './admin-client.js';

/** Pages `--all` follows at most (500 items each): a bound, not a limit anyone should reach. */
const MAX_PAGES = 10_000;

interface GlobalOptions {
  url?: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
}

interface ListOptions {
  limit?: string;
  from?: string;
  all?: boolean;
}

type Json = Record<string, unknown>;

async function targetOf(options: GlobalOptions): Promise<AdminTarget> {
  // An empty variable counts as unset (`POLYHOME_ADMIN_TOKEN= polyhome-admin ...`).
  const env = (name: string): string | undefined => (process.env[name] === '' ? undefined : process.env[name]);
  const url = options.url ?? env('POLYHOME_ADMIN_URL') ?? DEFAULT_ADMIN_URL;
  let token = options.token ?? env('POLYHOME_ADMIN_TOKEN');
  const file = options.tokenFile ?? env('POLYHOME_ADMIN_TOKEN_FILE');
  if (token === undefined && file !== undefined) {
    try {
      token = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new AdminCliError(`Cannot read the token file ${file}: ${(err as Error).message}.`, EXIT_USAGE);
    }
  }
  if (token === undefined || token === '') {
    throw new AdminCliError(
      'No admin token: pass --token <token>, --token-file <path> (e.g. DATA_DIR/admin-token), or set POLYHOME_ADMIN_TOKEN.',
      EXIT_USAGE,
    );
  }
  return { url, token };
}

function print(options: GlobalOptions, value: unknown, text: () => string): void {
  process.stdout.write(options.json === true ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Rows as aligned columns, with a header. */
function table(rows: Json[], columns: string[], empty: string): string {
  if (rows.length === 0) return empty;
  const cells = [columns, ...rows.map((r) => columns.map((c) => cell(r[c])))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells
    .map((line) =>
      line
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** An object as `key: value` lines (nested values as JSON). */
function fields(value: Json, keys?: string[]): string {
  return (keys ?? Object.keys(value))
    .filter((k) => value[k] !== undefined)
    .map((k) => `${k}: ${cell(value[k])}`)
    .join('\n');
}

/** Reads a password from a file or stdin (never from the command line, where `ps` would show it). */
async function readPassword(options: { passwordFile?: string; passwordStdin?: boolean }): Promise<string | undefined> {
  if (options.passwordFile !== undefined) {
    try {
      return (await readFile(options.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (err) {
      throw new AdminCliError(`Cannot read ${options.passwordFile}: ${(err as Error).message}.`, EXIT_USAGE);
    }
  }
  if (options.passwordStdin === true) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  return undefined;
}

/** GETs a list route a page at a time: one page, or every page with `--all`. */
async function list(
  target: AdminTarget,
  route: string,
  query: Record<string, string | undefined>,
  options: ListOptions,
) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, v);
  if (options.limit !== undefined) params.set('limit', options.limit);
  if (options.from !== undefined) params.set('from', options.from);
  const chunk: Json[] = [];
  for (let page = 0; page < MAX_PAGES; page++) {
    const answer = (await callAdmin(target, 'GET', `${route}?${params.toString()}`)) as {
      chunk: Json[];
      next_from?: string;
    };
    chunk.push(...answer.chunk);
    if (answer.next_from === undefined) return { chunk };
    if (options.all !== true) return { chunk, next_from: answer.next_from };
    params.set('from', answer.next_from);
  }
  throw new AdminCliError(`More than ${MAX_PAGES} pages: narrow the list (--search) instead of --all.`, EXIT_USAGE);
}

/** Prints a page, and on stderr how to get the next one. */
function printPage(
  options: GlobalOptions,
  page: { chunk: Json[]; next_from?: string },
  columns: string[],
  empty: string,
) {
  print(options, page, () => table(page.chunk, columns, empty));
  if (options.json !== true && page.next_from !== undefined) {
    process.stderr.write(`More: add --from ${page.next_from} (or --all).\n`);
  }
}

function listOptions(command: Command): Command {
  return command
    .option('--limit <n>', 'items per page (1-500)')
    .option('--from <cursor>', 'the next page, as the previous answer named it')
    .option('--all', 'follow every page to the end');
}

const reasonOption = (): Option =>
  new Option('--reason <text>', 'why (written to the server’s audit log)').makeOptionMandatory();

/** How often --wait asks for a job's state (ms). */
const JOB_POLL_MS = 500;
/** --wait gives up after this long (ms): the server ends a resync by itself well before (120 s). */
const JOB_WAIT_MS = 300_000;
/** --wait on a migration gives up after this long (ms): its catch-up alone may take 15 minutes. */
const MIGRATION_WAIT_MS = 30 * 60_000;

/** A job as `key: value` lines, its progress on one line. */
function jobText(job: Json): string {
  const progress = (job['progress'] ?? {}) as Json;
  const lines = [fields(job, ['job_id', 'kind', 'target', 'state']), `progress: ${progressLine(progress)}`];
  if (job['error'] !== null && job['error'] !== undefined) lines.push(`error: ${cell(job['error'])}`);
  return lines.join('\n');
}

function progressLine(progress: Json): string {
  if (progress['step'] !== undefined) {
    // A migration: its step, and what the new home still lacks while it catches up.
    const parts = [`step ${cell(progress['step'])}`];
    if (progress['ops_missing_there'] !== undefined)
      parts.push(`${cell(progress['ops_missing_there'])} ops missing there`);
    if (progress['rooms'] !== undefined)
      parts.push(`${cell(progress['rooms_behind'])} of ${cell(progress['rooms'])} rooms behind`);
    if (progress['handover_attempts'] !== undefined)
      parts.push(`${cell(progress['handover_attempts'])} handover attempts`);
    if (progress['last_error'] !== undefined) parts.push(`last error: ${cell(progress['last_error'])}`);
    return parts.join(', ');
  }
  return (
    `${cell(progress['phase'])}, ${cell(progress['ops_received'])} ops received, ${cell(progress['ops_sent'])} sent` +
    `, ${cell(progress['missing_here'])} missing here, ${cell(progress['missing_there'])} missing there`
  );
}

/** Polls a job until it is done or failed; each change of state or progress is a line on stderr. */
async function waitForJob(target: AdminTarget, jobId: string, verbose: boolean, waitMs = JOB_WAIT_MS): Promise<Json> {
  const until = Date.now() + waitMs;
  let last = '';
  for (;;) {
    const job = (await callAdmin(target, 'GET', `/admin/v1/jobs/${segment(jobId)}`)) as Json;
    const line = `${cell(job['state'])}: ${progressLine((job['progress'] ?? {}) as Json)}`;
    if (verbose && line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (job['state'] === 'done' || job['state'] === 'failed') return job;
    if (Date.now() > until) {
      throw new AdminCliError(
        `Job ${jobId} has not ended after ${waitMs / 1000} s; see jobs show ${jobId}.`,
        EXIT_REFUSED,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, JOB_POLL_MS));
  }
}

/**
 * Prints a job just started; with `wait`, follows it to its end (progress on stderr) and fails (exit 1) when the
 * job failed.
 */
async function followJob(
  options: GlobalOptions,
  target: AdminTarget,
  job: Json,
  how: { wait: boolean; what: string; waitMs?: number },
): Promise<void> {
  if (!how.wait) {
    print(
      options,
      job,
      () => `${fields(job, ['job_id', 'state'])}\nFollow it: polyhome-admin jobs show ${cell(job['job_id'])}`,
    );
    return;
  }
  const ended = await waitForJob(target, String(job['job_id']), options.json !== true, how.waitMs);
  print(options, ended, () => jobText(ended));
  if (ended['state'] === 'failed') {
    throw new AdminCliError(`The ${how.what} failed: ${cell(ended['error'])}`, EXIT_REFUSED);
  }
}

/** The command tree; `run` parses and reports./** The command tree; `run` parses and reports. Exported for the tests of the usage errors. */
export function buildProgram(): Command {
  const program = new Command('polyhome-admin')
    .description('The polyhome server’s admin API from a shell: accounts, devices, rooms, statistics, audit log.')
    .option('--url <url>', `the server (env POLYHOME_ADMIN_URL; default ${DEFAULT_ADMIN_URL})`)
    .option('--token <token>', 'the admin token (env POLYHOME_ADMIN_TOKEN)')
    .option(
      '--token-file <path>',
      'read the admin token from a file, e.g. DATA_DIR/admin-token (env POLYHOME_ADMIN_TOKEN_FILE)',
    )
    .option('--json', 'print the API’s JSON answer')
    .showHelpAfterError('(run with --help for the commands)')
    .exitOverride();
  const ctx = async (command: Command) => {
    const options = command.optsWithGlobals<GlobalOptions>();
    return { options, target: await targetOf(options) };
  };

  program
    .command('node')
    .description('this server: PeerId, addresses, version, backends')
    .action(async (_o, command: Command) => {
      const { options, target } = await ctx(command);
      const node = (await callAdmin(target, 'GET', '/admin/v1/node')) as Json;
      print(options, node, () => fields(node));
    });

  program
    .command('stats')
    .description('accounts, devices, rooms, events, ops, ops/s and delivery backlog per home')
    .action(async (_o, command: Command) => {
      const { options, target } = await ctx(command);
      const stats = (await callAdmin(target, 'GET', '/admin/v1/stats')) as Json;
      print(options, stats, () =>
        [
          fields(stats, ['accounts', 'accounts_by_status', 'devices', 'rooms', 'events', 'ops', 'ops_per_second']),
          'delivery backlog:',
          table(stats['delivery_backlog'] as Json[], ['peer_id', 'accounts', 'pending_ops'], '  (none)'),
          'room delivery backlog (events owed):',
          table((stats['room_delivery_backlog'] ?? []) as Json[], ['peer_id', 'pending_events'], '  (none)'),
        ].join('\n'),
      );
    });

  const audit = program
    .command('audit')
    .description('the audit log, newest first')
    .option('--target <id>', 'only entries about this user or room ID');
  listOptions(audit).action(async (o: ListOptions & { target?: string }, command: Command) => {
    const { options, target } = await ctx(command);
    const page = await list(target, '/admin/v1/audit', { target: o.target }, o);
    printPage(options, page, ['created_at', 'action', 'target', 'reason'], 'No audit entries.');
  });

  const accounts = program.command('accounts').description('hosted accounts');
  listOptions(
    accounts.command('list').description('accounts by user ID').option('--search <text>', 'user IDs containing it'),
  ).action(async (o: ListOptions & { search?: string }, command: Command) => {
    const { options, target } = await ctx(command);
    const page = await list(target, '/admin/v1/accounts', { search: o.search }, o);
    printPage(options, page, ['user_id', 'status', 'custody', 'created_at'], 'No accounts.');
  });
  accounts
    .command('show <userId>')
    .description('one account: homes and their sync, devices, rooms, last activity')
    .action(async (userId: string, _o, command: Command) => {
      const { options, target } = await ctx(command);
      const a = (await callAdmin(target, 'GET', `/admin/v1/accounts/${segment(userId)}`)) as Json;
      print(options, a, () =>
        [
          fields(a, ['user_id', 'status', 'custody', 'doc_seq', 'created_at', 'last_activity']),
          'homes:',
          table(
            a['homes'] as Json[],
            ['name', 'role', 'peer_id', 'connected', 'pending_ops', 'last_seen_at'],
            '  (none)',
          ),
          'devices:',
          table(a['devices'] as Json[], ['device_id', 'display_name', 'home'], '  (none)'),
          'rooms:',
          table(a['rooms'] as Json[], ['room_id', 'membership'], '  (none)'),
        ].join('\n'),
      );
    });
  accounts
    .command('create <localpart>')
    .description('a hosted account (this server holds its key)')
    .option('--password-file <path>', 'its password, read from a file')
    .option('--password-stdin', 'its password, read from stdin')
    .option('--allow-duplicate-localpart', 'make it even if this server hosts that localpart already')
    .action(
      async (
        localpart: string,
        o: { passwordFile?: string; passwordStdin?: boolean; allowDuplicateLocalpart?: boolean },
        command: Command,
      ) => {
        const { options, target } = await ctx(command);
        const password = await readPassword(o);
        const body = {
          localpart,
          ...(password === undefined ? {} : { password }),
          ...(o.allowDuplicateLocalpart === true ? { allow_duplicate_localpart: true } : {}),
        };
        const a = (await callAdmin(target, 'POST', '/admin/v1/accounts', body)) as Json;
        print(options, a, () => fields(a));
      },
    );
  for (const [verb, description] of [
    ['deactivate', 'leave its rooms, refuse logins, revoke tokens, delete the devices logged in here'],
    ['takedown', 'stop serving it here (logins, tokens, sync), changing nothing of its replicated state'],
    ['reactivate', 'serve a deactivated or taken-down account again'],
  ] as const) {
    accounts
      .command(`${verb} <userId>`)
      .description(description)
      .addOption(reasonOption())
      .action(async (userId: string, o: { reason: string }, command: Command) => {
        const { options, target } = await ctx(command);
        const a = (await callAdmin(target, 'POST', `/admin/v1/accounts/${segment(userId)}/${verb}`, {
          reason: o.reason,
        })) as Json;
        print(options, a, () => fields(a));
      });
  }
  accounts
    .command('resync <userId>')
    .description('start a forced resync of the account with one of its homes, as a job; --wait follows it to its end')
    .requiredOption('--home <peerId>', 'the PeerId of a home of the account (accounts show lists them)')
    .addOption(reasonOption())
    .option('--wait', 'print its progress until it ends; exit 1 if it failed')
    .action(async (userId: string, o: { home: string; reason: string; wait?: boolean }, command: Command) => {
      const { options, target } = await ctx(command);
      const route = `/admin/v1/accounts/${segment(userId)}/resync`;
      const job = (await callAdmin(target, 'POST', route, { home: o.home, reason: o.reason })) as Json;
      await followJob(options, target, job, { wait: o.wait === true, what: 'resync' });
    });
  accounts
    .command('migrate <userId>')
    .description(
      'move a hosted account to another provider’s server (enroll it, catch it up, hand over the key, leave), as a ' +
        'job; --wait follows it to its end',
    )
    .requiredOption('--to <multiaddr>', 'the new server home, a multiaddr ending in /p2p/<PeerId>')
    .option('--token-file <path>', 'the new provider’s enrollment token, read from a file')
    .option('--name <name>', 'its name in the account document (default server)')
    .addOption(reasonOption())
    .option('--wait', 'print its progress until it ends; exit 1 if it failed')
    .action(
      async (
        userId: string,
        o: { to: string; tokenFile?: string; name?: string; reason: string; wait?: boolean },
        command: Command,
      ) => {
        const { options, target } = await ctx(command);
        const token = o.tokenFile === undefined ? undefined : (await readFile(o.tokenFile, 'utf8')).trim();
        const body = {
          to: o.to,
          reason: o.reason,
          ...(token === undefined ? {} : { token }),
          ...(o.name === undefined ? {} : { name: o.name }),
        };
        const job = (await callAdmin(target, 'POST', `/admin/v1/accounts/${segment(userId)}/migrate`, body)) as Json;
        await followJob(options, target, job, { wait: o.wait === true, what: 'migration', waitMs: MIGRATION_WAIT_MS });
      },
    );
  accounts
    .command('password <userId>')
    .description('set a new password (replicated to every home); ends this server’s sessions unless --keep-sessions')
    .addOption(reasonOption())
    .option('--password-file <path>', 'the new password, read from a file')
    .option('--password-stdin', 'the new password, read from stdin')
    .option('--keep-sessions', 'keep the access tokens this server issued')
    .action(
      async (
        userId: string,
        o: { reason: string; passwordFile?: string; passwordStdin?: boolean; keepSessions?: boolean },
        command: Command,
      ) => {
        const { options, target } = await ctx(command);
        const password = await readPassword(o);
        if (password === undefined) {
          throw new AdminCliError('Give the new password with --password-file <path> or --password-stdin.', EXIT_USAGE);
        }
        const body = { password, reason: o.reason, ...(o.keepSessions === true ? { logout_devices: false } : {}) };
        const a = (await callAdmin(target, 'POST', `/admin/v1/accounts/${segment(userId)}/password`, body)) as Json;
        print(options, a, () => fields(a));
      },
    );
  accounts
    .command('delete <userId>')
    .description('stop hosting the account (a hosted account’s key and data here are destroyed)')
    .addOption(reasonOption())
    .action(async (userId: string, o: { reason: string }, command: Command) => {
      const { options, target } = await ctx(command);
      const a = await callAdmin(target, 'DELETE', `/admin/v1/accounts/${segment(userId)}`, { reason: o.reason });
      print(options, a, () => `Deleted ${userId}.`);
    });

  program
    .command('jobs')
    .description('jobs started through the admin API (forced resyncs, migrations)')
    .command('show <jobId>')
    .description('a job: its state, progress, and what to do if it failed')
    .action(async (jobId: string, _o, command: Command) => {
      const { options, target } = await ctx(command);
      const job = (await callAdmin(target, 'GET', `/admin/v1/jobs/${segment(jobId)}`)) as Json;
      print(options, job, () => jobText(job));
    });

  const devices = program.command('devices').description('devices of an account');
  listOptions(devices.command('list <userId>').description('its devices, on every home')).action(
    async (userId: string, o: ListOptions, command: Command) => {
      const { options, target } = await ctx(command);
      const page = await list(target, `/admin/v1/accounts/${segment(userId)}/devices`, {}, o);
      printPage(options, page, ['device_id', 'display_name', 'home'], 'No devices.');
    },
  );
  devices
    .command('delete <userId> <deviceId>')
    .description('delete a device on every home')
    .addOption(reasonOption())
    .action(async (userId: string, deviceId: string, o: { reason: string }, command: Command) => {
      const { options, target } = await ctx(command);
      const route = `/admin/v1/accounts/${segment(userId)}/devices/${segment(deviceId)}`;
      const a = await callAdmin(target, 'DELETE', route, { reason: o.reason });
      print(options, a, () => `Deleted device ${deviceId} of ${userId}.`);
    });

  const rooms = program.command('rooms').description('rooms this server holds');
  listOptions(
    rooms.command('list').description('rooms by room ID').option('--search <text>', 'room IDs or names containing it'),
  ).action(async (o: ListOptions & { search?: string }, command: Command) => {
    const { options, target } = await ctx(command);
    const page = await list(target, '/admin/v1/rooms', { search: o.search }, o);
    printPage(options, page, ['room_id', 'name', 'joined_members', 'events', 'blocked'], 'No rooms.');
  });
  rooms
    .command('show <roomId>')
    .description('one room: members, servers and homes, current state')
    .action(async (roomId: string, _o, command: Command) => {
      const { options, target } = await ctx(command);
      const r = (await callAdmin(target, 'GET', `/admin/v1/rooms/${segment(roomId)}`)) as Json;
      print(options, r, () =>
        [
          fields(r, ['room_id', 'name', 'room_version', 'joined_members', 'events', 'created_at']),
          r['block'] === null ? 'blocked: no' : `blocked: ${fields(r['block'] as Json, ['reason', 'blocked_at'])}`,
          'members:',
          table(r['members'] as Json[], ['user_id', 'membership'], '  (none)'),
          'servers:',
          table(r['servers'] as Json[], ['server_name', 'members', 'hosted_here'], '  (none)'),
        ].join('\n'),
      );
    });
  rooms
    .command('delete <roomId>')
    .description('the users hosted here leave the room and forget it (other servers keep it)')
    .addOption(reasonOption())
    .option('--block', 'also block the room first: no user of this server may join it again')
    .action(async (roomId: string, o: { reason: string; block?: boolean }, command: Command) => {
      const { options, target } = await ctx(command);
      const body = o.block === true ? { reason: o.reason, block: true } : { reason: o.reason };
      const r = (await callAdmin(target, 'DELETE', `/admin/v1/rooms/${segment(roomId)}`, body)) as Json;
      print(options, r, () => fields(r, ['room_id', 'left', 'forgotten', 'failed', 'blocked']));
    });
  for (const [verb, block, description] of [
    ['block', true, 'no user of this server may join the room or be invited into it (members stay)'],
    ['unblock', false, 'lift the room’s block'],
  ] as const) {
    rooms
      .command(`${verb} <roomId>`)
      .description(description)
      .addOption(reasonOption())
      .action(async (roomId: string, o: { reason: string }, command: Command) => {
        const { options, target } = await ctx(command);
        const route = `/admin/v1/rooms/${segment(roomId)}/block`;
        const r = (await callAdmin(target, 'PUT', route, { block, reason: o.reason })) as Json;
        print(options, r, () =>
          r['block'] === true ? `Blocked ${roomId}: ${String(r['reason'])}` : `${roomId} is not blocked.`,
        );
      });
  }
  return program;
}

/** Runs the CLI on `argv` (without node and the script); resolves with the exit code. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander printed its message (and the help pointer) already; --help and --version are not errors.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (err instanceof AdminCliError) {
      process.stderr.write(`polyhome-admin: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`polyhome-admin: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT_REFUSED;
  }
}

// Run when executed (directly, or through the npm bin link), not when imported.
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await run(process.argv.slice(2));
}
