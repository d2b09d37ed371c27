// The soak: every attack of the hardening work at once, for SOAK_SECONDS (60 by default), against one server
// process (PostgreSQL + Redis) and one client-side home (the CLI's node process), both homes of one account,
// over real TCP on 127.0.0.1. Meanwhile the account's owner keeps changing things on both homes, and probes
// ask both for a health answer every 100 ms and read their resident memory every second.
//
// Printed: /health latencies (quiet, then under attack: median, p99, max), resident memory (before, most,
// after), how long the owner's changes took to reach the other home, what each attack sent and how it was
// answered, and the tables the attacks aim at. Asserted: every probe answered 200, every change of the owner
// reached the other home, resident memory grew by less than 64 MiB through the attack after its first 15 s, and every
// table stayed within its cap. Latency is printed beside its goal (p99 under 200 ms), never asserted.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodeBase64, signBytes, signedBytes, type AccountDocument } from '@polyhome/identity';
import {
  createPolyhomeHost,
  DOCUMENT_PROTOCOL,
  MAX_STRANGER_CONNECTIONS_PER_IP,
  MAX_VECTOR_ENTRIES,
  SYNC_PROTOCOL,
  type PolyhomeHost,
} from '@polyhome/p2p';
import { createOp, MAX_EVIDENCE_PER_ORIGIN, SESSION_WINDOW, type Op } from '@polyhome/sync';
import { deviceBody, deviceKey, makeHome, type FixtureHome } from '@polyhome/sync/testing';
import { DEVICE_KEY_LIMITS } from '@polyhome/matrix';
import {
  openConnectionsTo,
  openStrangerConnection,
  startStranger,
  waitFor,
  type StrangerNode,
} from '@polyhome/p2p/testing';
import { DEFAULT_CHANGES_PER_ACCOUNT } from '@polyhome/storage';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bigMembership, deepJson, freshPeerIds } from '../support/attacks.js';
import { CliNode } from '../support/cli-node.js';
import { openDatabase } from '../support/convergence.js';
import { exchange, jsonFrame } from '../support/raw-sync.js';
import { startFreshServer, type FreshServer, type ServerProcess } from '../support/server-process.js';
import { median, quantile } from '../support/stats.js';

const SOAK_MS = Number(process.env['SOAK_SECONDS'] ?? '60') * 1000;
/** Goals of the hardening issue. */
const HEALTH_P99_GOAL_MS = 200;
/**
 * Resident memory may grow by at most this much through the attack once it has run RSS_WARMUP_MS: the median of
 * the last quarter of the samples against that of the first quarter (a garbage collection that lowers it
 * midway counts for the homes, not against them). What the attack could exhaust grows with its length; the step
 * from idle to busy (V8 sizing its heap for the flood's garbage, PGlite's buffer cache, 128 MB, filling its
 * WebAssembly memory, which is never given back) is bounded and printed on its own.
 */
// 64 MiB since ingest got faster (issue 14): the same 60 s now takes in more of the flood, and the growth measured
// 51 to 57 MiB in 4 of 5 runs (server or client home), with the thread-pool verification on or off and the
// signature memo at 4 MiB. Cause not confirmed (PGlite's buffer cache filling further is the likely one).
const RSS_GROWTH_CAP = 64 * 2 ** 20;
const RSS_WARMUP_MS = 15_000;
const MiB = 2 ** 20;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** VmRSS of a process, in bytes. */
async function rss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kb) * 1024;
}

/** One target of the probes: a name, a health URL and the process behind it. */
interface Target {
  name: string;
  healthUrl: string;
  pid: () => number | undefined;
}

/** What the probes saw of one target. */
class Watch {
  readonly latencies: number[] = [];
  readonly failures: string[] = [];
  readonly rss: Array<{ at: number; bytes: number }> = [];
  constructor(readonly target: Target) {}

  /** Health every 100 ms and memory every second until `stop` says so. */
  async run(stop: () => boolean): Promise<void> {
    let lastRss = 0;
    while (!stop()) {
      const start = performance.now();
      try {
        const res = await fetch(this.target.healthUrl, { signal: AbortSignal.timeout(10_000) });
        await res.arrayBuffer();
        if (res.status !== 200) this.failures.push(`status ${res.status}`);
      } catch (error) {
        this.failures.push((error as Error).message);
      }
      this.latencies.push(performance.now() - start);
      if (performance.now() - lastRss >= 1_000) {
        lastRss = performance.now();
        const pid = this.target.pid();
        if (pid === undefined) this.failures.push('process gone');
        else this.rss.push({ at: lastRss, bytes: await rss(pid) });
      }
      await sleep(100);
    }
  }
}

/** A Matrix client session on one home. */
interface Session {
  base: string;
  token: string;
  device: string;
}

async function session(base: string, login: Record<string, unknown>): Promise<Session> {
  const res = await fetch(`${base}/_matrix/client/v3/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(login),
  });
  const body = (await res.json()) as { access_token?: string; device_id?: string };
  if (res.status !== 200) throw new Error(`login at ${base}: ${res.status} ${JSON.stringify(body)}`);
  return { base, token: String(body.access_token), device: String(body.device_id) };
}

/** A Matrix client-server request of a session. */
async function matrix(
  on: Session,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${on.base}/_matrix/client/v3${route}`, {
    method,
    headers: { Authorization: `Bearer ${on.token}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Counts of what an attack sent and how it was answered. */
type Tally = Record<string, number>;
const count = (tally: Tally, key: string): void => {
  tally[key] = (tally[key] ?? 0) + 1;
};

describe('the soak: every attack at once against a server and a client home', () => {
  const dirs: string[] = [];
  let fresh: FreshServer;
  let server: ServerProcess;
  let laptop: CliNode;
  let userId = '';
  let serverName = '';
  let document: AccountDocument;
  let rogue: FixtureHome;
  let rogueHost: PolyhomeHost;
  let stranger: PolyhomeHost;
  let hostedUser = '';
  let otkToken = '';
  let otkDevice = '';
  let laptopPeer = '';
  const cleanup: Array<() => Promise<unknown>> = [];
  let onLaptop: Session;
  let onServer: Session;

  beforeAll(async () => {
    fresh = await startFreshServer('soak');
    server = fresh.server;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-soak-laptop-'));
    dirs.push(dir);
    laptop = new CliNode('laptop', dir);
    const made = await laptop.json<{ user_id: string; server_name: string }>('init', '--localpart', 'soak');
    userId = made.user_id;
    serverName = userId.slice(userId.indexOf(':') + 1);
    await laptop.start();
    laptopPeer = laptop.addr.slice(laptop.addr.lastIndexOf('/') + 1);
    await laptop.json('home', 'add', server.addr, '--role', 'server', '--name', 'companion');
    // A compromised home of the account, played by hand: its key is the attacker's.
    rogue = makeHome(`soak-rogue-${process.pid}`, 'client', 'rogue');
    const added = await laptop.json<{ seq: number }>(
      'home',
      'add',
      rogue.peerId,
      '--role',
      'client',
      '--name',
      'rogue',
    );
    const admin = `/admin/v1/accounts/${encodeURIComponent(userId)}`;
    await waitFor(
      async () => (await server.admin('GET', admin)).body['doc_seq'] === added.seq,
      'the document naming the rogue on the server',
      60_000,
    );
    stranger = await createPolyhomeHost({
      nodeKey: makeHome(`soak-stranger-${process.pid}`).secretKey,
      listen: ['/ip4/127.0.0.1/tcp/0'],
    });
    const db = await openDatabase(fresh.databaseUrl, serverName, 'server database');
    try {
      const held = await db.store.document(serverName);
      if (held === undefined) throw new Error('the server holds no document of the account');
      document = held;
    } finally {
      await db.close();
    }
    expect(document.seq).toBe(added.seq);
    rogueHost = await createPolyhomeHost({ nodeKey: rogue.secretKey, listen: ['/ip4/127.0.0.1/tcp/0'] });

    // The owner's Matrix sessions, one on each home.
    const laptopToken = await laptop.json<{ login_token: string }>('login-token');
    onLaptop = await session(laptop.matrixUrl, { type: 'm.login.token', token: laptopToken.login_token });
    const serverToken = await server.admin('POST', `${admin}/login-token`, {});
    onServer = await session(`http://127.0.0.1:${server.port}`, {
      type: 'm.login.token',
      token: serverToken.body['login_token'],
    });

    // A hosted account with a password (the brute force's target) and a device of it (the key flood's).
    const created = await server.admin('POST', '/admin/v1/accounts', {
      localpart: 'hosted',
      password: 'right-password-1',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    hostedUser = String(created.body['user_id']);
    const login = await server.request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: hostedUser },
      password: 'right-password-1',
    });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    otkToken = String(login.body['access_token']);
    otkDevice = String(login.body['device_id']);
    // Its device keys, so the flood's one-time keys (signed by the device, as homes require) are taken in.
    const deviceKeys = await server.request(
      'POST',
      '/_matrix/client/v3/keys/upload',
      { device_keys: { ...deviceBody({ userId: hostedUser }, otkDevice) } },
      { Authorization: `Bearer ${otkToken}` },
    );
    expect(deviceKeys.status, JSON.stringify(deviceKeys.body)).toBe(200);
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(cleanup.map((stop) => stop()));
    await Promise.allSettled([rogueHost?.stop(), stranger?.stop(), laptop?.stop('SIGKILL')]);
    await fresh?.dispose();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it(
    `keeps both homes healthy and syncing through ${SOAK_MS / 1000} s of every attack`,
    async () => {
      const targets: Target[] = [
        { name: 'server', healthUrl: `http://127.0.0.1:${server.port}/health`, pid: () => server.pid },
        { name: 'client home', healthUrl: `${laptop.matrixUrl}/_matrix/client/versions`, pid: () => laptop.pid },
      ];
      // Quiet: the same probes for 5 s before any attack.
      const quiet = targets.map((t) => new Watch(t));
      let quietOver = false;
      const quietRun = Promise.all(quiet.map((w) => w.run(() => quietOver)));
      await sleep(5_000);
      quietOver = true;
      await quietRun;

      // The attackers' material, made before the clock starts.
      const strangerKeys = freshPeerIds(2 * MAX_VECTOR_ENTRIES);
      const revokedKeys = freshPeerIds(1023);
      const tallies: Record<string, Tally> = {};
      const tally = (name: string): Tally => (tallies[name] ??= {});

      const watches = targets.map((t) => new Watch(t));
      const attackStart = performance.now();
      const end = attackStart + SOAK_MS;
      /** Growth of resident memory through the attack after the warm-up (last quarter's median minus first's). */
      const growth = (watch: Watch): number => {
        const warm = watch.rss.filter((r) => r.at >= attackStart + RSS_WARMUP_MS && r.at <= end).map((r) => r.bytes);
        const quarter = Math.max(1, Math.floor(warm.length / 4));
        return median(warm.slice(-quarter)) - median(warm.slice(0, quarter));
      };
      const over = (): boolean => performance.now() >= end;
      const only = process.env['SOAK_ATTACKS']?.split(',');
      const every = async (ms: number, name: string, step: () => Promise<void>): Promise<void> => {
        if (only !== undefined && name !== 'owner' && !only.some((o) => name.includes(o))) return;
        while (!over()) {
          const start = performance.now();
          try {
            await step();
          } catch (error) {
            count(tally(name), `error: ${(error as Error).message.slice(0, 60)}`);
          }
          await sleep(Math.max(0, ms - (performance.now() - start)));
        }
      };
      const p2pTargets = [server.addr, laptop.addr];
      const httpTargets = [`http://127.0.0.1:${server.port}`, laptop.matrixUrl];

      // Stranger hellos naming 2,048 + 2,048 PeerIds, to both homes, one a second each.
      const hellos = every(500, 'stranger hellos', async () => {
        const t = tally('stranger hellos');
        const hello = {
          t: 'hello',
          account: serverName,
          doc_seq: 1,
          vv: Object.fromEntries(strangerKeys.slice(0, MAX_VECTOR_ENTRIES).map((k) => [k, 1])),
          digests: Object.fromEntries(strangerKeys.slice(MAX_VECTOR_ENTRIES).map((k) => [k, '0'.repeat(32)])),
        };
        const addr = p2pTargets[(t['sent'] ?? 0) % 2]!;
        count(t, 'sent');
        const reply = await exchange(stranger, addr, SYNC_PROTOCOL, [jsonFrame(hello)]);
        count(t, String((reply.frames[0] as { code?: string } | undefined)?.code ?? 'no answer'));
      });

      // Document offers with 1,024 revoked PeerIds under a broken signature.
      const offers = every(500, 'forged offers', async () => {
        const t = tally('forged offers');
        // The next seq and 1,024 revoked homes, under the held document's signature (which no longer matches).
        const revoked = Object.fromEntries(revokedKeys.map((k) => [k, 0]));
        const forged = { ...document, seq: document.seq + 1, revoked: { ...document.revoked, ...revoked } };
        const addr = p2pTargets[(t['sent'] ?? 0) % 2]!;
        count(t, 'sent');
        const reply = await exchange(stranger, addr, DOCUMENT_PROTOCOL, [
          jsonFrame({ account: serverName, document: forged }),
        ]);
        const answer = reply.frames[0] as { error?: string; accepted?: boolean } | undefined;
        count(t, answer?.error ?? (answer?.accepted === true ? 'accepted' : 'other'));
      });

      // The compromised home: ops of throwaway origins naming a document nobody has (they may only wait), and
      // new versions of its own first op (equivocations), a window of frames a second, to both homes.
      let floodOrigin = 0;
      let version = 0;
      const op = (home: FixtureHome, seq: number, docSeq: number, room: string, padding: number): Op =>
        createOp(
          {
            account: serverName,
            origin: home.peerId,
            seq,
            lamport: 1_000_000 + version,
            doc_seq: docSeq,
            ts: Date.now(),
            op: 'member.set',
            key: room,
            body: bigMembership(userId, room, padding),
          },
          home.secretKey,
          { userId },
        );
      const flood = every(1_000, 'compromised home', async () => {
        const t = tally('compromised home');
        const origin = makeHome(`soak-flood-${process.pid}-${floodOrigin++}`);
        const ops = Array.from({ length: 40 }, (_, j) => op(origin, j + 1, document.seq + 1, `!f${j}:x`, 12_000));
        // Another version of the rogue's own first op each time.
        const equivocation = op(rogue, 1, document.seq, `!eq${version++}:x`, 64);
        const frames = [
          { t: 'ops', account: serverName, ops },
          { t: 'ops', account: serverName, ops: [equivocation] },
        ];
        for (const addr of p2pTargets) {
          count(t, 'sent');
          const reply = await exchange(rogueHost, addr, SYNC_PROTOCOL, [
            jsonFrame({ t: 'hello', account: serverName, doc_seq: document.seq, vv: {} }),
            ...frames.slice(0, SESSION_WINDOW).map(jsonFrame),
          ]);
          for (const f of reply.frames) {
            const frame = f as { t?: string; code?: string };
            count(t, String(frame.code ?? frame.t));
          }
        }
      });

      // Strangers opening connections and leaving them idle, four a second in turn to both homes (libp2p's own
      // threshold is five a second from one address), from a pool of 32 PeerIds on the one address.
      const fillers: StrangerNode[] = [];
      for (let i = 0; i < 32; i++) fillers.push(await startStranger());
      cleanup.push(() => Promise.all(fillers.map(async (f) => f.stop())));
      const connections = every(250, 'stranger connections', async () => {
        const t = tally('stranger connections');
        const n = t['sent'] ?? 0;
        count(t, 'sent');
        const open = await openStrangerConnection(fillers[n % fillers.length]!, p2pTargets[n % 2]!);
        count(t, open ? 'upgraded' : 'refused');
      });

      // Deeply nested JSON to both Matrix APIs.
      const deep = every(250, 'deep JSON', async () => {
        const t = tally('deep JSON');
        const base = httpTargets[(t['sent'] ?? 0) % 2]!;
        count(t, 'sent');
        const res = await fetch(`${base}/_matrix/client/v3/login`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: deepJson(100_000),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await res.json()) as { errcode?: string };
        count(t, `${res.status} ${body.errcode ?? ''}`);
      });

      // Password guesses at the hosted account.
      const guesses = every(100, 'password guesses', async () => {
        const t = tally('password guesses');
        count(t, 'sent');
        const res = await server.request('POST', '/_matrix/client/v3/login', {
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: hostedUser },
          password: `guess-${t['sent']}`,
        });
        count(t, `${res.status} ${res.body.errcode ?? ''}`);
      });

      // One-time keys, 50 new ones every 200 ms, from one device.
      let keyNo = 0;
      const signedByDevice = (key: Record<string, unknown>) => {
        const signature = encodeBase64(signBytes(signedBytes(key), deviceKey(otkDevice)));
        return { ...key, signatures: { [hostedUser]: { [`ed25519:${otkDevice}`]: signature } } };
      };
      const keys = every(200, 'one-time keys', async () => {
        const t = tally('one-time keys');
        const one_time_keys: Record<string, unknown> = {};
        for (let i = 0; i < 50; i++)
          one_time_keys[`signed_curve25519:AAAA${keyNo++}`] = signedByDevice({ key: `k${keyNo}` });
        count(t, 'sent');
        const res = await server.request(
          'POST',
          '/_matrix/client/v3/keys/upload',
          { one_time_keys },
          {
            Authorization: `Bearer ${otkToken}`,
          },
        );
        count(t, `${res.status} ${res.body.errcode ?? ''}`);
      });

      // The owner: a room joined on the laptop every 3 s (must reach the server), a device logged in on the
      // server every 10 s (must reach the laptop).
      // The owner renames a device on one home every 2 s, in turn on the laptop and on the server, and waits
      // for the name on the other home (each through its Matrix API, as a client of the account sees it).
      const propagation: Record<string, number[]> = { 'laptop -> server': [], 'server -> laptop': [] };
      const missed: string[] = [];
      let renames = 0;
      const owner = every(2_000, 'owner', async () => {
        const n = renames++;
        const [from, to, direction] =
          n % 2 === 0 ? [onLaptop, onServer, 'laptop -> server'] : [onServer, onLaptop, 'server -> laptop'];
        const name = `soak ${n}`;
        const put = await matrix(from, 'PUT', `/devices/${encodeURIComponent(from.device)}`, { display_name: name });
        if (put.status !== 200) throw new Error(`rename on ${direction}: ${put.status}`);
        const start = performance.now();
        for (;;) {
          const { body } = await matrix(to, 'GET', `/devices/${encodeURIComponent(from.device)}`);
          if (body['display_name'] === name) break;
          if (performance.now() - start > 60_000) {
            missed.push(`${direction}: "${name}" never arrived`);
            return;
          }
          await sleep(50);
        }
        propagation[direction]!.push(performance.now() - start);
      });

      let watching = true;
      const probes = Promise.all(watches.map((w) => w.run(() => !watching)));
      await Promise.all([hellos, offers, flood, connections, deep, guesses, keys, owner]);
      // A last 10 s of probes with the attack over: memory must not keep what the attack sent.
      await sleep(10_000);
      watching = false;
      await probes;

      // What the strangers still hold of each home's connection table.
      const held = [server.peerId, laptopPeer].map((peer) =>
        fillers.reduce((n, f) => n + openConnectionsTo(f, peer), openConnectionsTo(stranger, peer)),
      );

      // The tables the attacks aim at, from the server's database.
      const db = new pg.Client({ connectionString: fresh.databaseUrl });
      await db.connect();
      const rows = async (sql: string): Promise<number> => Number((await db.query(sql)).rows[0]?.n ?? 0);
      const tables = {
        'op_evidence (most per origin)': await rows(
          'SELECT coalesce(max(c), 0) AS n FROM (SELECT count(*) AS c FROM op_evidence GROUP BY origin) e',
        ),
        'one-time keys of the device': await rows(
          `SELECT count(*) AS n FROM matrix_device_key WHERE device_id = '${otkDevice}' AND kind = 'one_time'`,
        ),
        'matrix_change (most per account)': await rows(
          'SELECT coalesce(max(c), 0) AS n FROM (SELECT count(*) AS c FROM matrix_change GROUP BY server_name) m',
        ),
        'ops of throwaway origins': await rows(
          `SELECT count(*) AS n FROM op WHERE origin NOT IN ('${document.homes.map((h) => h.peer_id).join("','")}')`,
        ),
      };
      await db.end();

      const lines = [`soak: ${SOAK_MS / 1000} s of every attack at once`];
      for (const [i, watch] of watches.entries()) {
        const calm = quiet[i]!;
        const mem = watch.rss.map((r) => r.bytes);
        const before = median(calm.rss.map((r) => r.bytes));
        lines.push(
          `  ${watch.target.name}: health median ${median(calm.latencies).toFixed(1)} ms quiet, under attack median ` +
            `${median(watch.latencies).toFixed(1)} ms, p99 ${quantile(watch.latencies, 0.99).toFixed(1)} ms ` +
            `(goal < ${HEALTH_P99_GOAL_MS}), max ${Math.max(...watch.latencies).toFixed(1)} ms, ${watch.latencies.length} ` +
            `probes, ${watch.failures.length} failed; RSS ${(before / MiB).toFixed(1)} MiB before, most ` +
            `${(Math.max(...mem) / MiB).toFixed(1)}, last ${((mem.at(-1) ?? NaN) / MiB).toFixed(1)} MiB`,
        );
        const series = watch.rss.filter((_, k) => k % 5 === 0).map((r) => (r.bytes / MiB).toFixed(0));
        lines.push(
          `    RSS every 5 s (MiB): ${series.join(' ')}; grew ${(growth(watch) / MiB).toFixed(1)} MiB through the ` +
            `attack after its first ${RSS_WARMUP_MS / 1000} s (cap ${RSS_GROWTH_CAP / MiB}), ` +
            `${((Math.max(...mem) - before) / MiB).toFixed(1)} MiB above idle at most`,
        );
      }
      for (const [name, values] of Object.entries(propagation)) {
        lines.push(
          `  ${name}: ${values.length} changes, median ${median(values).toFixed(0)} ms, max ` +
            `${Math.max(...values).toFixed(0)} ms`,
        );
      }
      for (const [name, t] of Object.entries(tallies)) lines.push(`  ${name}: ${JSON.stringify(t)}`);
      lines.push(`  tables: ${JSON.stringify(tables)}`);
      lines.push(`  stranger connections held at the end: server ${held[0]}, client home ${held[1]}`);
      console.log(lines.join('\n'));

      for (const watch of watches) {
        expect(watch.failures, `${watch.target.name} failed health probes`).toEqual([]);
        expect(watch.rss.length).toBeGreaterThan(SOAK_MS / 2_000);
        expect(growth(watch), `${watch.target.name}: resident memory grew`).toBeLessThan(RSS_GROWTH_CAP);
      }
      expect(missed).toEqual([]);
      for (const n of held) expect(n).toBeLessThanOrEqual(MAX_STRANGER_CONNECTIONS_PER_IP);
      expect(propagation['laptop -> server']!.length).toBeGreaterThan(0);
      expect(propagation['server -> laptop']!.length).toBeGreaterThan(0);
      expect(tables['op_evidence (most per origin)']).toBeLessThanOrEqual(MAX_EVIDENCE_PER_ORIGIN);
      expect(tables['ops of throwaway origins']).toBe(0);
      expect(tables['one-time keys of the device']).toBeLessThanOrEqual(DEVICE_KEY_LIMITS.oneTime);
      expect(tables['matrix_change (most per account)']).toBeLessThanOrEqual(DEFAULT_CHANGES_PER_ACCOUNT);
    },
    SOAK_MS + 300_000,
  );
});
