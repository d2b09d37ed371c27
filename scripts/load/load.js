// Load generator: many Matrix clients and several client-side homes at once against one server, on loopback only.
//
//   npm run load -- --clients 40 --homes 4 --duration 30
//
// Without --target it starts the built server (apps/server/dist/main.js) as a child process on 127.0.0.1 with a
// fresh embedded database (or --database-url/--redis-url on loopback). With --target it drives a running server
// (its admin token from --admin-token or ADMIN_TOKEN; enrollment with a token from the admin API; its
// RATE_LIMIT_PER_MINUTE must be 0, or logins are limited).
//
// Clients: hosted accounts made through the admin API, each shared by a few clients; each client logs in with a
// login token from the admin API, uploads its device keys, then runs two loops until the time is up: actions
// (one-time keys upload, keys query, createRoom, leave, join, joined_rooms, devices) and /sync long polls, which
// the other clients of its account wake. Homes: client-side homes (a libp2p node with the sync service and an
// in-memory replica) of self-custody accounts enrolled on the server, each pushing device.put ops through
// /polyhome/sync/1.0.0 and timing each op until the server acknowledges it.
//
// Before the load, with everything set up, three windows measured on the server's /metrics: the idle server
// (--idle S), then the homes alone pushing ops (--push-duration S), then everything at once (--duration S). For
// the server process it reports the event-loop delay (prom-client's nodejs_eventloop_lag_*, measured inside the
// server, over each window) and the SQL statements it sent (polyhome_sql_statements_total) per op accepted
// (polyhome_ops_accepted_total) while the homes pushed alone, each beside the idle server's in the same run and the
// goals of issue 14.
//
// Reports throughput and latency percentiles per operation, and the server's errors: 5xx answers (from its
// /metrics), failed requests (network errors and unexpected statuses), error lines in its log (started server
// only), and ops not acknowledged. Exits 1 when any of them is not zero.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { multiaddr } from '@multiformats/multiaddr';
import {
  addHome,
  createAccountDocument,
  encodeBase64,
  generateKeyPair,
  peerIdFromPublicKey,
  signBytes,
  signedBytes,
} from '@polyhome/identity';
import { createPolyhomeHost, createSyncService } from '@polyhome/p2p';
import { makeLocalOp, versionVector } from '@polyhome/sync';
import { deviceKeyPair, signedDeviceBody } from '../../bench/lib/device-keys.js';
import { EVENT_LOOP_SAMPLE_MS, parseMetrics } from '../../bench/lib/metrics.js';
import { MemoryStore } from '../../bench/lib/memory-home.js';

const LIMITS = { clients: 500, homes: 50, duration: 600, clientsPerAccount: 20 };
/** Issue 14's goals for the figures measured inside the server. */
const GOALS = { statementsPerOp: 8, eventLoopP99Ms: 50 };
/** Devices each home keeps changing. */
const DEVICES_PER_HOME = 16;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// ---- options ----

const { values: opts } = parseArgs({
  options: {
    clients: { type: 'string', default: '40' },
    homes: { type: 'string', default: '4' },
    duration: { type: 'string', default: '30' },
    idle: { type: 'string', default: '5' },
    'push-duration': { type: 'string', default: '10' },
    'clients-per-account': { type: 'string', default: '4' },
    'sync-timeout': { type: 'string', default: '5000' },
    'home-window': { type: 'string', default: '100' },
    'client-rate': { type: 'string', default: '0' },
    target: { type: 'string' },
    'admin-token': { type: 'string' },
    'database-url': { type: 'string' },
    'redis-url': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});

if (opts.help) {
  process.stdout.write(
    'npm run load -- [--clients N (40, max 500)] [--homes N (4, max 50)] [--duration S (30, max 600)]\n' +
      '  [--idle S (5): the idle server, the reference] [--push-duration S (10, 0 to skip): the homes alone]\n' +
      '  [--clients-per-account N (4)] [--sync-timeout MS (5000)] [--home-window OPS (100)]\n' +
      "  [--client-rate R (0): each client's actions per s, open loop (Poisson arrivals; latency from when each\n" +
      '   was due); 0: closed loop, each client sends its next action when the last one answered]\n' +
      '  [--target http://127.0.0.1:PORT --admin-token T] [--database-url postgres://127.0.0.1/...] [--redis-url redis://127.0.0.1]\n',
  );
  process.exit(0);
}

function count(name, max, min = 0) {
  const n = Number(opts[name]);
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

function fail(message) {
  process.stderr.write(`load: ${message}\n`);
  process.exit(2);
}

/** Whether a URL's host is a loopback address: the generator never drives anything else. */
function isLoopback(url) {
  let host;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  return host === 'localhost' || host === '[::1]' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

const CLIENTS = count('clients', LIMITS.clients);
const HOMES = count('homes', LIMITS.homes);
const DURATION_S = count('duration', LIMITS.duration, 1);
const IDLE_S = count('idle', 60, 1);
const PUSH_S = count('push-duration', LIMITS.duration);
const PER_ACCOUNT = count('clients-per-account', LIMITS.clientsPerAccount, 1);
const SYNC_TIMEOUT_MS = count('sync-timeout', 30_000);
const HOME_WINDOW = count('home-window', 10_000, 1);
const CLIENT_RATE = Number(opts['client-rate']);
if (!Number.isFinite(CLIENT_RATE) || CLIENT_RATE < 0 || CLIENT_RATE > 100)
  fail('--client-rate must be a number of actions per s per client from 0 (closed loop) to 100');
for (const name of ['target', 'database-url', 'redis-url']) {
  if (opts[name] !== undefined && !isLoopback(opts[name]))
    fail(`--${name} must be on loopback (127.0.0.0/8, ::1, localhost)`);
}
if (opts.target !== undefined && (opts['database-url'] || opts['redis-url'])) {
  fail('--database-url and --redis-url are for a server this generator starts, not with --target');
}

// ---- figures ----

/** Latencies (ms) and failures per operation. */
const stats = new Map();
const failures = [];
let failedRequests = 0;

function record(op, ms, ok) {
  let s = stats.get(op);
  if (s === undefined) stats.set(op, (s = { samples: [], failed: 0 }));
  if (ok) s.samples.push(ms);
  else s.failed++;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function noteFailure(what) {
  failedRequests++;
  if (failures.length < 20) failures.push(what);
}

// ---- HTTP ----

let base;
let adminToken;

/** One timed request; `expect` lists the statuses that count as success. Resolves to the parsed body or undefined. */
async function call(op, method, url, { body, token, due, expect = [200] } = {}) {
  // An open-loop action is timed from when it was due (`due`), so a server that falls behind is not hidden by the
  // generator waiting for it (coordinated omission).
  const started = Math.min(performance.now(), due ?? Infinity);
  try {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(SYNC_TIMEOUT_MS + 30_000),
    });
    const text = await res.text();
    const ok = expect.includes(res.status);
    record(op, performance.now() - started, ok);
    if (!ok) {
      noteFailure(`${op}: ${method} ${url.slice(0, 80)} -> ${res.status} ${text.slice(0, 200)}`);
      return undefined;
    }
    return text === '' ? {} : JSON.parse(text);
  } catch (error) {
    record(op, performance.now() - started, false);
    noteFailure(`${op}: ${method} ${url.slice(0, 80)} -> ${error.name}: ${error.message}`);
    return undefined;
  }
}

const admin = (op, method, url, body) =>
  call(op, method, url, { body, token: adminToken, expect: method === 'POST' ? [200, 201] : [200] });

/**
 * One scrape of the server's /metrics: 5xx answers, HTTP requests, SQL statements and ops accepted so far, and the
 * event-loop delay (ms) since the scrape before (prom-client resets its histogram at each scrape).
 */
async function scrape() {
  // A server under load may answer late; its answer is what counts.
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(120_000) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const at = performance.now();
  return { at, ...parseMetrics(await res.text()) };
}

/** What the server did between two scrapes: seconds, SQL statements, ops accepted, and the event-loop delay. */
function between(a, b) {
  return {
    seconds: (b.at - a.at) / 1000,
    statements: b.statements - a.statements,
    ops: b.opsAccepted - a.opsAccepted,
    requests: b.requests - a.requests,
    batches: b.replication.batches - a.replication.batches,
    batchesWaited: b.replication.waited - a.replication.waited,
    waitSeconds: b.replication.waitSeconds - a.replication.waitSeconds,
    loop: b.loop,
  };
}

// ---- the server ----

async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts the built server on 127.0.0.1; counts its log lines at level error or above. */
async function startServer() {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-load-'));
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const env = {
    ...process.env,
    HOST: '127.0.0.1',
    PORT: String(port),
    DATA_DIR: dataDir,
    ADMIN_TOKEN: token,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_MINUTE: '0',
    P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
    ENROLLMENT_POLICY: 'token',
  };
  delete env.DATABASE_URL;
  delete env.REDIS_URL;
  delete env.METRICS_TOKEN;
  if (opts['database-url']) env.DATABASE_URL = opts['database-url'];
  if (opts['redis-url']) env.REDIS_URL = opts['redis-url'];
  // BENCH_SERVER_CPU_PROF=<dir>: the server writes a V8 CPU profile there when it stops (as the benches' servers do).
  const profile = process.env.BENCH_SERVER_CPU_PROF;
  const nodeArgs = profile ? ['--cpu-prof', `--cpu-prof-dir=${profile}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, path.join(root, 'apps/server/dist/main.js')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = { errors: 0, lines: [] };
  const onLine = (line) => {
    if (line.trim() === '') return;
    let level;
    try {
      level = JSON.parse(line).level ?? 0;
    } catch {
      level = /error/i.test(line) ? 50 : 0;
    }
    if (level >= 50) {
      log.errors++;
      if (log.lines.length < 10) log.lines.push(line.slice(0, 400));
    }
  };
  for (const stream of [child.stdout, child.stderr]) {
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop();
      lines.forEach(onLine);
    });
  }
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const state = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 250))]);
    if (state !== undefined) throw new Error(`the server exited at start (${JSON.stringify(state)})`);
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('the server did not answer /health within 120 s');
  }
  return {
    url,
    token,
    log,
    async stop() {
      child.kill('SIGTERM');
      const result = await exited;
      await rm(dataDir, { recursive: true, force: true });
      return result;
    },
  };
}

// ---- Matrix clients ----

const V3 = '/_matrix/client/v3';
let stopping = false;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A logged-in client: its own device, rooms it made, and a /sync position. */
async function startClient(userId, n) {
  const made = await admin(
    'admin: login-token',
    'POST',
    `/admin/v1/accounts/${encodeURIComponent(userId)}/login-token`,
    {},
  );
  if (made === undefined) return undefined;
  const login = await call('login (m.login.token)', 'POST', `${V3}/login`, {
    body: { type: 'm.login.token', token: made.login_token, initial_device_display_name: `load client ${n}` },
  });
  if (login === undefined) return undefined;
  const client = {
    n,
    userId,
    token: login.access_token,
    deviceId: login.device_id,
    joined: [],
    left: [],
    otk: 0,
    // When the open-loop action under way was due (undefined in the closed loop).
    due: undefined,
  };
  const d = client.deviceId;
  await call('keys/upload (device keys)', 'POST', `${V3}/keys/upload`, {
    token: client.token,
    body: {
      // Self-signed by the device's own key: the server refuses device keys without a valid self-signature.
      device_keys: signedDeviceBody(userId, d),
    },
  });
  return client;
}

/** The actions a client draws from, with their weights. */
const ACTIONS = [
  [
    20,
    'keys/upload (one-time keys)',
    async (c) => {
      const keys = {};
      for (let i = 0; i < 5; i++) {
        // Signed by the device's key, as the server checks.
        const key = { key: encodeBase64(randomBytes(32)) };
        const signature = encodeBase64(signBytes(signedBytes(key), deviceKeyPair(c.deviceId).secretKey));
        keys[`signed_curve25519:${(c.otk++).toString(36)}`] = {
          ...key,
          signatures: { [c.userId]: { [`ed25519:${c.deviceId}`]: signature } },
        };
      }
      return call('keys/upload (one-time keys)', 'POST', `${V3}/keys/upload`, {
        token: c.token,
        due: c.due,
        body: { one_time_keys: keys },
      });
    },
  ],
  [
    15,
    'keys/query',
    async (c) =>
      call('keys/query', 'POST', `${V3}/keys/query`, {
        token: c.token,
        due: c.due,
        body: { device_keys: { [c.userId]: [] } },
      }),
  ],
  [
    15,
    'createRoom',
    async (c) => {
      const res = await call('createRoom', 'POST', `${V3}/createRoom`, {
        token: c.token,
        due: c.due,
        // Public, so that the client can join it again after leaving it (a private room needs an invite).
        body: { name: `load ${c.n}`, preset: 'public_chat' },
      });
      if (res?.room_id) c.joined.push(res.room_id);
    },
  ],
  [
    15,
    'rooms/leave',
    async (c) => {
      const room = c.joined.shift();
      if (room === undefined) return;
      const res = await call('rooms/leave', 'POST', `${V3}/rooms/${encodeURIComponent(room)}/leave`, {
        token: c.token,
        due: c.due,
        body: {},
      });
      (res === undefined ? c.joined : c.left).push(room);
    },
  ],
  [
    15,
    'join',
    async (c) => {
      const room = c.left.shift();
      if (room === undefined) return;
      const res = await call('join', 'POST', `${V3}/join/${encodeURIComponent(room)}`, {
        token: c.token,
        due: c.due,
        body: {},
      });
      (res === undefined ? c.left : c.joined).push(room);
    },
  ],
  [10, 'joined_rooms', async (c) => call('joined_rooms', 'GET', `${V3}/joined_rooms`, { token: c.token, due: c.due })],
  [10, 'devices', async (c) => call('devices', 'GET', `${V3}/devices`, { token: c.token, due: c.due })],
];
const ACTION_WEIGHT = ACTIONS.reduce((a, [w]) => a + w, 0);

async function actionLoop(client) {
  let due = performance.now();
  while (!stopping) {
    if (CLIENT_RATE > 0) {
      // Poisson arrivals at CLIENT_RATE per s; an action due while the one before is still in flight waits for
      // it, and its latency still counts from when it was due.
      due += (-Math.log(1 - Math.random()) / CLIENT_RATE) * 1000;
      while (!stopping && performance.now() < due) await sleep(Math.min(200, due - performance.now()));
      if (stopping) break;
      client.due = due;
    }
    let pick = Math.random() * ACTION_WEIGHT;
    const action = ACTIONS.find(([w]) => (pick -= w) < 0) ?? ACTIONS[0];
    await action[2](client);
  }
}

async function syncLoop(client) {
  const first = await call('sync (initial)', 'GET', `${V3}/sync`, { token: client.token });
  let since = first?.next_batch;
  while (!stopping) {
    const url = since === undefined ? `${V3}/sync` : `${V3}/sync?since=${since}&timeout=${SYNC_TIMEOUT_MS}`;
    const res = await call('sync (long poll)', 'GET', url, { token: client.token });
    if (res?.next_batch) {
      if (
        res.device_lists?.changed?.length ||
        Object.keys(res.rooms?.join ?? {}).length ||
        Object.keys(res.rooms?.leave ?? {}).length
      ) {
        wakeups++;
      }
      since = res.next_batch;
    } else await sleep(100);
  }
}
let wakeups = 0;

// ---- client-side homes ----

const newHomeFigures = () => ({ published: 0, acked: 0, latencies: [] });
/** The homes' ops of the window under way (replaced when the load starts after the homes' window). */
let homeFigures = newHomeFigures();

/** A self-custody account whose client home enrolls the server and then pushes device.put ops through sync. */
async function startHome(i, server, enrollToken) {
  const rootKey = generateKeyPair().secretKey;
  const homeKey = generateKeyPair().secretKey;
  const peerId = peerIdFromPublicKey(homeKey.publicKey);
  const first = createAccountDocument({
    localpart: `loadhome${i}`,
    rootKey,
    home: { peer_id: peerId, role: 'client', name: 'laptop', addrs: [] },
  });
  const document = addHome(
    first,
    { peer_id: server.peerId, role: 'server', name: 'companion', addrs: [server.addr] },
    rootKey,
  );
  const host = await createPolyhomeHost({ nodeKey: homeKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
  const sync = createSyncService(host);
  await sync.start();
  const store = new MemoryStore();
  const account = store.host(document);
  await sync.host(account, store);
  const enrolled = await call('enroll (HTTP)', 'POST', '/_polyhome/v1/enroll', {
    body: { document, token: enrollToken },
    expect: [201],
  });
  if (enrolled === undefined) throw new Error(`home ${i} could not enroll`);
  const sent = new Map();
  let n = 0;
  /** The last display name given to each device: what the server must hold in the end. */
  const latest = new Map();
  let acked = 0;
  sync.on('acked', (e) => {
    if (e.account !== account || e.peerId !== server.peerId) return;
    const upTo = e.vv[peerId] ?? 0;
    const now = performance.now();
    for (let seq = acked + 1; seq <= upTo; seq++) {
      const at = sent.get(seq);
      if (at !== undefined) {
        homeFigures.latencies.push(now - at);
        sent.delete(seq);
      }
    }
    if (upTo > acked) {
      homeFigures.acked += upTo - acked;
      acked = upTo;
    }
  });
  await host.dial(multiaddr(server.addr));
  await sync.connectHomes(account);
  const home = {
    account,
    userId: document.user_id,
    latest,
    get published() {
      return store.replicas.get(account) ? (versionVector(store.replicas.get(account))[peerId] ?? 0) : 0;
    },
    get acked() {
      return acked;
    },
    /** Pushes ops until the load stops or `over()` says this window is over. */
    async run(over = () => false) {
      while (!stopping && !over()) {
        if (sent.size >= HOME_WINDOW) {
          await sleep(5);
          continue;
        }
        const ops = [];
        for (let k = 0; k < 10; k++) {
          // A home renames a few devices over and over: an account's state stays
          // the size of a real account's while the op log grows.
          const deviceId = `LOAD${i}D${n % DEVICES_PER_HOME}`;
          const displayName = `load ${deviceId} #${n++}`;
          latest.set(deviceId, displayName);
          const op = makeLocalOp(
            store.replicas.get(account),
            homeKey,
            {
              op: 'device.put',
              key: deviceId,
              // Self-signed by the device's key (every home checks it), the display name beside the signed keys.
              body: signedDeviceBody(document.user_id, deviceId, { display_name: displayName }),
            },
            Date.now(),
          );
          const result = await store.applyOps(account, [op]);
          if (result.accepted.length !== 1) throw new Error(`local op refused: ${JSON.stringify(result.rejected[0])}`);
          sent.set(op.seq, performance.now());
          ops.push(op);
        }
        homeFigures.published += ops.length;
        sync.publish(account, ops);
        await sleep(1);
      }
    },
    async stop() {
      await sync.stop();
      await host.stop();
    },
  };
  return home;
}

// ---- run ----

function progress(started, lastLine) {
  const elapsed = (performance.now() - started) / 1000;
  let requests = 0;
  for (const s of stats.values()) requests += s.samples.length + s.failed;
  const line =
    `  ${elapsed.toFixed(0).padStart(4)} s  requests ${requests}  (${(requests / elapsed).toFixed(0)}/s)  ` +
    `failed ${failedRequests}  ops acked ${homeFigures.acked}/${homeFigures.published}  sync wake-ups ${wakeups}`;
  if (line !== lastLine) process.stderr.write(`${line}\n`);
  return line;
}

/** A table row for the homes' ops of one window: pushed until acknowledged by the server. */
function homeRow(operation, figures, seconds) {
  const lat = [...figures.latencies].sort((a, b) => a - b);
  return {
    operation,
    count: figures.acked,
    failed: figures.published - figures.acked,
    'per s': (figures.acked / seconds).toFixed(1),
    'p50 ms': percentile(lat, 50).toFixed(1),
    'p90 ms': percentile(lat, 90).toFixed(1),
    'p99 ms': percentile(lat, 99).toFixed(1),
    'max ms': (lat.at(-1) ?? NaN).toFixed(1),
  };
}

function report(seconds, pushed) {
  const rows = [];
  for (const [op, s] of [...stats.entries()].sort((a, b) => a[0].localeCompare(b[0]))) {
    const sorted = [...s.samples].sort((a, b) => a - b);
    rows.push({
      operation: op,
      count: sorted.length,
      failed: s.failed,
      'per s': (sorted.length / seconds).toFixed(1),
      'p50 ms': percentile(sorted, 50).toFixed(1),
      'p90 ms': percentile(sorted, 90).toFixed(1),
      'p99 ms': percentile(sorted, 99).toFixed(1),
      'max ms': (sorted.at(-1) ?? NaN).toFixed(1),
    });
  }
  rows.push(homeRow('home op pushed -> acked by the server', homeFigures, seconds));
  if (pushed !== undefined) rows.push(homeRow('home op pushed -> acked, homes alone', pushed.figures, pushed.seconds));
  console.table(rows);
}

const ms = (n) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
const perOp = (statements, ops) => (ops > 0 && Number.isFinite(statements) ? (statements / ops).toFixed(1) : 'n/a');

/** The figures measured inside the server process, each beside its goal and the idle server of this run. */
function serverReport(idle, pushed, load) {
  const idleLoop = `idle server: p50 ${ms(idle.loop.p50)}, p99 ${ms(idle.loop.p99)}, max ${ms(idle.loop.max)}`;
  const rows = [
    {
      figure: 'event-loop delay p50, ms (everything at once)',
      goal: '',
      value: ms(load.loop.p50),
      'reference (same run)': idleLoop,
    },
    {
      figure: 'event-loop delay p99, ms (everything at once)',
      goal: `<= ${GOALS.eventLoopP99Ms}`,
      value: ms(load.loop.p99),
      'reference (same run)': idleLoop,
    },
    {
      figure: 'event-loop delay max, ms (everything at once)',
      goal: '',
      value: ms(load.loop.max),
      'reference (same run)': idleLoop,
    },
  ];
  const idleRate = idle.statements / idle.seconds;
  if (pushed !== undefined) {
    const w = pushed.window;
    rows.push(
      {
        figure: 'SQL statements per op pushed by a connected home (homes alone)',
        goal: `<= ${GOALS.statementsPerOp}`,
        value: perOp(w.statements, w.ops),
        'reference (same run)':
          `${w.statements} statements / ${w.ops} ops accepted in ${w.seconds.toFixed(1)} s; ` +
          `the idle server sent ${(idleRate * w.seconds).toFixed(0)} in as long (${idleRate.toFixed(1)}/s)`,
      },
      {
        figure: 'ops accepted per s (homes alone)',
        goal: '',
        value: (w.ops / w.seconds).toFixed(1),
        'reference (same run)': `${HOMES} homes, at most ${HOME_WINDOW} ops each unacknowledged`,
      },
      {
        figure: 'event-loop delay p99, ms (homes alone)',
        goal: `<= ${GOALS.eventLoopP99Ms}`,
        value: ms(w.loop.p99),
        'reference (same run)': `p50 ${ms(w.loop.p50)}, max ${ms(w.loop.max)}; ${idleLoop}`,
      },
    );
  }
  rows.push({
    figure: 'batches of received ops that waited for their turn behind clients (everything at once)',
    goal: '',
    value: Number.isFinite(load.batchesWaited) ? `${load.batchesWaited} of ${load.batches}` : 'n/a',
    'reference (same run)': Number.isFinite(load.waitSeconds)
      ? `${load.waitSeconds.toFixed(1)} s waited in all, ${load.batchesWaited > 0 ? ((1000 * load.waitSeconds) / load.batchesWaited).toFixed(0) : 0} ms per batch that waited`
      : 'the server exports no polyhome_replication_* counters',
  });
  rows.push({
    figure: 'SQL statements per (HTTP request + op accepted) (everything at once)',
    goal: '',
    value: perOp(load.statements, load.requests + load.ops),
    'reference (same run)': `${load.statements} statements, ${load.requests} requests, ${load.ops} ops accepted in ${load.seconds.toFixed(1)} s`,
  });
  console.log(
    `\nThe server process (/metrics; event-loop delay = nodejs_eventloop_lag_* - its ${EVENT_LOOP_SAMPLE_MS} ms sampling interval):`,
  );
  console.table(rows);
}

/** Waits until every home's ops are acknowledged, or `ms` passed. */
async function drain(homes, ms) {
  const deadline = performance.now() + ms;
  while (homes.some((h) => h.acked < h.published) && performance.now() < deadline) await sleep(100);
}

async function main() {
  let server;
  if (opts.target !== undefined) {
    base = opts.target.replace(/\/$/, '');
    adminToken = opts['admin-token'] ?? process.env.ADMIN_TOKEN;
    if (!adminToken) fail("--target needs the server's admin token (--admin-token or ADMIN_TOKEN)");
  } else {
    process.stderr.write('starting the server (built dist, 127.0.0.1)...\n');
    server = await startServer();
    base = server.url;
    adminToken = server.token;
  }
  const errorsBefore = (await scrape()).fiveXX;
  const node = await admin('admin: node', 'GET', '/admin/v1/node');
  if (node === undefined) throw new Error(`GET /admin/v1/node failed: ${failures.join('; ')}`);
  const addr = node.listen_addrs.find((a) => a.startsWith('/ip4/127.'));
  if (addr === undefined) throw new Error(`the server has no loopback libp2p address: ${node.listen_addrs.join(', ')}`);
  const p2p = { peerId: node.peer_id, addr: addr.includes('/p2p/') ? addr : `${addr}/p2p/${node.peer_id}` };

  process.stderr.write(
    `setting up ${CLIENTS} clients on ${Math.ceil(CLIENTS / PER_ACCOUNT)} accounts and ${HOMES} homes...\n`,
  );
  const runId = randomBytes(3).toString('hex');
  const accounts = [];
  for (let a = 0; a < Math.ceil(CLIENTS / PER_ACCOUNT); a++) {
    const made = await admin('admin: create account', 'POST', '/admin/v1/accounts', { localpart: `load${runId}a${a}` });
    if (made === undefined) throw new Error(`could not create an account: ${failures.at(-1)}`);
    accounts.push(made.user_id);
  }
  const clients = [];
  for (let start = 0; start < CLIENTS; start += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, CLIENTS - start) }, (_, k) =>
        startClient(accounts[Math.floor((start + k) / PER_ACCOUNT)], start + k),
      ),
    );
    clients.push(...batch.filter(Boolean));
  }
  const enrollToken =
    HOMES > 0
      ? (await admin('admin: enrollment token', 'POST', '/admin/v1/enrollment-tokens', { uses: HOMES }))?.token
      : undefined;
  const homes = [];
  for (let i = 0; i < HOMES; i++) homes.push(await startHome(`${runId}h${i}`, p2p, enrollToken));

  // The reference: the same server, everything set up and connected, nothing asked of it.
  process.stderr.write(`the idle server for ${IDLE_S} s (reference)...\n`);
  const idleStart = await scrape();
  await sleep(IDLE_S * 1000);
  const idle = between(idleStart, await scrape());

  let pushed;
  if (HOMES > 0 && PUSH_S > 0) {
    process.stderr.write(`the ${HOMES} homes alone for ${PUSH_S} s, then until their ops are acknowledged...\n`);
    const from = await scrape();
    const t0 = performance.now();
    const until = t0 + PUSH_S * 1000;
    await Promise.all(homes.map((h) => h.run(() => performance.now() >= until)));
    await drain(homes, 60_000);
    const seconds = (performance.now() - t0) / 1000;
    pushed = { figures: homeFigures, seconds, window: between(from, await scrape()) };
    homeFigures = newHomeFigures();
  }

  process.stderr.write(`everything at once for ${DURATION_S} s (progress every 2 s)...\n`);
  const loadStart = await scrape();
  const started = performance.now();
  let line = '';
  const ticker = setInterval(() => (line = progress(started, line)), 2000);
  const loops = [...clients.flatMap((c) => [actionLoop(c), syncLoop(c)]), ...homes.map((h) => h.run())];
  const end = performance.now() + DURATION_S * 1000;
  while (!stopping && performance.now() < end) await sleep(200);
  // Read at the end of the window, before the drain: the event-loop delay covers the load and nothing after.
  const load = between(loadStart, await scrape());
  stopping = true;
  const loadSeconds = (performance.now() - started) / 1000;
  process.stderr.write('stopping: waiting for requests in flight and for the last ops to be acknowledged...\n');
  await Promise.all(loops);
  await drain(homes, 60_000);
  clearInterval(ticker);
  progress(started, '');

  // What the server holds of each home's account: the last change of every device.
  let missingOnServer = 0;
  for (const h of homes) {
    const res = await admin(
      'admin: account devices',
      'GET',
      `/admin/v1/accounts/${encodeURIComponent(h.userId)}/devices`,
    );
    const held = new Map((res?.chunk ?? []).map((d) => [d.device_id, d.display_name]));
    for (const [deviceId, name] of h.latest) if (held.get(deviceId) !== name) missingOnServer++;
  }
  await Promise.all(homes.map((h) => h.stop()));
  const errorsAfter = (await scrape()).fiveXX;

  report(loadSeconds, pushed);
  serverReport(idle, pushed, load);
  let requests = 0;
  for (const s of stats.values()) requests += s.samples.length;
  const fiveXX = errorsAfter - errorsBefore;
  let logErrors = 0;
  if (server !== undefined) {
    const exit = await server.stop();
    logErrors = server.log.errors;
    if (exit.code !== 0 && exit.signal !== 'SIGTERM') noteFailure(`the server exited with ${JSON.stringify(exit)}`);
  }
  // Counted per home: an op of the homes' window acknowledged late is not counted twice.
  const unacked = homes.reduce((n, h) => n + h.published - h.acked, 0);
  console.log(
    `\n${CLIENTS} clients (${clients.length} logged in; ` +
      (CLIENT_RATE > 0
        ? `open loop, ${CLIENT_RATE} actions/s each, timed from when due`
        : 'closed loop, each sending its next action when the last answered') +
      `), ${HOMES} homes, ${loadSeconds.toFixed(1)} s: ` +
      `${requests} requests (${(requests / loadSeconds).toFixed(0)}/s), ${homeFigures.acked} home ops acknowledged ` +
      `(${(homeFigures.acked / loadSeconds).toFixed(0)}/s), ${wakeups} /sync wake-ups with changes.`,
  );
  console.log(
    `Server errors: ${fiveXX} 5xx answers, ${failedRequests} failed requests, ` +
      `${server === undefined ? 'n/a (not started here)' : logErrors} error log lines, ${unacked} ops not acknowledged, ` +
      `${missingOnServer} devices not in their last state on the server.`,
  );
  if (failures.length > 0) console.log(`First failures:\n  ${failures.join('\n  ')}`);
  if (server?.log.lines.length) console.log(`First error log lines:\n  ${server.log.lines.join('\n  ')}`);
  const clean = fiveXX === 0 && failedRequests === 0 && logErrors === 0 && unacked === 0 && missingOnServer === 0;
  process.exit(clean ? 0 : 1);
}

process.on('SIGINT', () => {
  stopping = true;
});
main().catch((error) => {
  process.stderr.write(`load: ${error.stack ?? error}\n`);
  process.exit(1);
});
