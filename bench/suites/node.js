// The client-side home as its user runs it (the built CLI, apps/node/dist/cli.js, one process per home):
// - `init` of an empty data directory, the first start to ready, and a restart to ready, next to a bare
//   `node -e ''` process start;
// - a device logged in on the laptop's Matrix API until the phone's /sync wakes with it, over an open
//   laptop-phone connection (p50, p99);
// - the same through the companion server after the phone reconnects: from the phone's start to the device
//   in its /devices, next to the phone's restart time alone.
import { spawn, spawnSync } from 'node:child_process';
import { cli, startNode } from '../lib/node-home.js';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

export const description = 'client-side home: init, first start and restart to ready; device login laptop -> phone';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const SERVER = path.join(root, 'apps/server/dist/main.js');
const LOGINS = Number(process.env.BENCH_NODE_LOGINS ?? 30);
const STARTS = Number(process.env.BENCH_NODE_STARTS ?? 5);
const ADMIN_TOKEN = 'bench-node-admin-token-0123456789';

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function median(values) {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

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

async function waitUntil(what, probe, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function control(dir, command, args = {}) {
  const file = JSON.parse(await readFile(path.join(dir, 'control.json'), 'utf8'));
  const res = await fetch(`${file.url}/v1/${command}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${file.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(args),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`${command}: ${body.error}`);
  return body.result;
}

async function matrix(url, method, route, body, token) {
  const res = await fetch(`${url}/_matrix/client/v3${route}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function login(url, loginToken) {
  return matrix(url, 'POST', '/login', { type: 'm.login.token', token: loginToken });
}

async function startServer(dir) {
  const port = await freePort();
  const p2pPort = await freePort();
  const child = spawn(process.execPath, [SERVER], {
    env: {
      PATH: process.env.PATH,
      DATA_DIR: dir,
      PORT: String(port),
      P2P_LISTEN: `/ip4/127.0.0.1/tcp/${p2pPort}`,
      ADMIN_TOKEN,
      ENROLLMENT_POLICY: 'open',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
    },
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const admin = async (route) => {
    const res = await fetch(`http://127.0.0.1:${port}${route}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return res.ok ? res.json() : undefined;
  };
  const node = await waitUntil('the server', () => admin('/admin/v1/node'), 120_000);
  return {
    addr: `/ip4/127.0.0.1/tcp/${p2pPort}/p2p/${node.peer_id}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export async function run(ctx) {
  const rows = [];
  const dirs = [];
  const temp = async (label) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), `polyhome-bench-node-${label}-`));
    dirs.push(dir);
    return dir;
  };
  const running = [];
  try {
    // Reference: a bare Node.js process.
    const bare = [];
    for (let i = 0; i < STARTS; i++) {
      const t = performance.now();
      spawnSync(process.execPath, ['-e', '']);
      bare.push(performance.now() - t);
    }
    const bareMs = median(bare);

    ctx.progress(`init and first start of ${STARTS} empty data directories`);
    const inits = [];
    const firsts = [];
    const restarts = [];
    for (let i = 0; i < STARTS; i++) {
      const dir = await temp(`start${i}`);
      const t = performance.now();
      cli(dir, 'init', '--localpart', 'bench');
      inits.push(performance.now() - t);
      const port = await freePort();
      const first = await startNode(dir, port);
      firsts.push(first.ms);
      await first.stop();
      const again = await startNode(dir, port);
      restarts.push(again.ms);
      await again.stop();
    }
    const ref = `node -e '' ${bareMs.toFixed(0)} ms`;
    rows.push({ figure: 'node.init_ms', value: median(inits), unit: 'ms', reference: ref });
    rows.push({ figure: 'node.first_start_to_ready_ms', value: median(firsts), unit: 'ms', reference: ref });
    rows.push({ figure: 'node.restart_to_ready_ms', value: median(restarts), unit: 'ms', reference: ref });

    ctx.progress('laptop and phone connected directly: device login on the laptop until the phone /sync wakes');
    const server = await startServer(await temp('server'));
    running.push(server);
    const laptopDir = await temp('laptop');
    const phoneDir = await temp('phone');
    const account = cli(laptopDir, 'init', '--localpart', 'alice', '--name', 'laptop');
    const laptop = await startNode(laptopDir, await freePort());
    running.push(laptop);
    await control(laptopDir, 'home.add', { target: server.addr, role: 'server', name: 'companion' });
    const joined = cli(phoneDir, 'init', '--join');
    // The phone takes the account in only from a home that proves the pairing code it printed.
    await control(laptopDir, 'home.add', {
      target: joined.peer_id,
      role: 'client',
      name: 'phone',
      pairing_code: joined.pairing_code,
    });
    const phonePort = await freePort();
    let phone = await startNode(phoneDir, phonePort, ['--bootstrap', laptop.addr, server.addr]);
    running.push(phone);
    await waitUntil('the phone to join', async () => (await control(phoneDir, 'status')).accounts.length === 1);
    const phoneLogin = await login(phone.url, (await control(phoneDir, 'login-token')).login_token);
    let since = (await matrix(phone.url, 'GET', '/sync?timeout=0', undefined, phoneLogin.access_token)).next_batch;
    const direct = [];
    for (let i = 0; i < LOGINS; i++) {
      const token = (await control(laptopDir, 'login-token')).login_token;
      const polling = (async () => {
        for (;;) {
          const r = await matrix(
            phone.url,
            'GET',
            `/sync?timeout=20000&since=${since}`,
            undefined,
            phoneLogin.access_token,
          );
          since = r.next_batch;
          if ((r.device_lists?.changed ?? []).includes(account.user_id)) return performance.now();
        }
      })();
      await new Promise((r) => setTimeout(r, 20));
      const t = performance.now();
      await login(laptop.url, token);
      direct.push((await polling) - t);
      if ((i + 1) % 10 === 0) ctx.progress(`  ${i + 1}/${LOGINS} logins`);
    }
    direct.sort((a, b) => a - b);
    rows.push({ figure: 'node.login_to_phone_sync.direct.p50_ms', value: percentile(direct, 50), unit: 'ms' });
    rows.push({ figure: 'node.login_to_phone_sync.direct.p99_ms', value: percentile(direct, 99), unit: 'ms' });

    ctx.progress('through the server: the phone away, a login on the laptop, the phone restarts');
    const viaServer = [];
    const phoneRestarts = [];
    for (let i = 0; i < Math.min(STARTS, 5); i++) {
      await phone.stop();
      running.splice(running.indexOf(phone), 1);
      const made = await login(laptop.url, (await control(laptopDir, 'login-token')).login_token);
      // The laptop's session with the server carries it; the phone learns it from the server alone.
      const t = performance.now();
      phone = await startNode(phoneDir, phonePort, ['--bootstrap', server.addr]);
      running.push(phone);
      phoneRestarts.push(phone.ms);
      await waitUntil(
        'the device on the phone',
        async () =>
          (await matrix(phone.url, 'GET', '/devices', undefined, phoneLogin.access_token)).devices.some(
            (d) => d.device_id === made.device_id,
          ),
        120_000,
      );
      viaServer.push(performance.now() - t);
    }
    rows.push({
      figure: 'node.login_to_phone_via_server_after_restart_ms',
      value: median(viaServer),
      unit: 'ms',
      reference: `phone restart to ready ${median(phoneRestarts).toFixed(0)} ms`,
    });
  } finally {
    for (const r of running.reverse()) await r?.stop().catch(() => undefined);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }
  return rows;
}
