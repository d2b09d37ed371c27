// Matrix: time from the moment home B applied a device login made on home A (B's port reports the change) to
// its appearance in the /sync of a client long-polling on B, per sample (one account, two server homes on
// embedded PGlite, real libp2p on 127.0.0.1), p50 and p99; beside it, the whole way from the login on A.
// Then key backup: GET /room_keys/version (its count and etag) with BENCH_MATRIX_BACKUP_KEYS keys in the version,
// answered from the summary the store keeps, beside the same request answered the way it was before the summary
// (reading and hashing every key of the version: the port's stateSummary hidden), and a loopback GET /versions.
// Uses the built server (apps/server/dist).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { AccountsService } from '../../apps/server/dist/accounts/accounts.service.js';
import { createServerApp } from '../../apps/server/dist/app.js';
import { loadConfig } from '../../apps/server/dist/config/config.js';
import { LoginTokensService } from '../../apps/server/dist/login-tokens/login-tokens.service.js';
import { createLogger } from '../../apps/server/dist/logging/logger.js';
import { openResources } from '../../apps/server/dist/resources.js';
import { MATRIX_HOME_PORT } from '@polyhome/matrix';

export const description = 'a device login applied on home B to /sync wake-up on B, per sample (p50, p99)';

const LOGINS = Number(process.env.BENCH_MATRIX_LOGINS ?? 60);
const BACKUP_KEYS = Number(process.env.BENCH_MATRIX_BACKUP_KEYS ?? 5000);
const BACKUP_GETS = 50;
const PASSWORD = 'correct horse battery staple';

async function startHome(dir) {
  const config = loadConfig({
    DATA_DIR: dir,
    PORT: '1',
    P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
    LOG_LEVEL: 'silent',
    RATE_LIMIT_PER_MINUTE: '0',
  });
  const resources = await openResources(config, createLogger('silent'));
  const app = await createServerApp(resources);
  await app.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${app.getHttpServer().address().port}`;
  return { app, url, resources };
}

/**
 * BENCH_MATRIX_TRACE=1: what happens between B's report and the answer, per sample. Every statement either home's
 * embedded database runs (its text, start and end) is noted with its time;
 * `report` prints where the time went. Wraps the homes' objects from the bench, nothing in the server.
 */
function stageTracer(homes) {
  let events = null;
  const note = (name, t0, t1) => events?.push({ name, t0, t1 });
  for (const [label, home] of Object.entries(homes)) {
    const db = home.resources.storage.dataSource.driver.master.db;
    for (const method of ['query', 'exec']) {
      const original = db[method].bind(db);
      db[method] = async (sql, ...rest) => {
        const t0 = performance.now();
        try {
          return await original(sql, ...rest);
        } finally {
          note(`${label} ${sql.replace(/\s+/g, ' ').slice(0, 70)}`, t0, performance.now());
        }
      };
    }
  }
  const samples = [];
  return {
    start: () => (events = []),
    end(appliedAt, answeredAt) {
      samples.push({ appliedAt, answeredAt, events: events.filter((e) => e.t1 >= appliedAt && e.t0 <= answeredAt) });
      events = null;
    },
    report() {
      samples.sort((x, y) => x.answeredAt - x.appliedAt - (y.answeredAt - y.appliedAt));
      const mid = samples[Math.floor(samples.length / 2)];
      console.log(`median sample: ${(mid.answeredAt - mid.appliedAt).toFixed(1)} ms from B's report to the answer`);
      for (const e of mid.events) {
        console.log(
          `  +${(e.t0 - mid.appliedAt).toFixed(1).padStart(6)} ${(e.t1 - e.t0).toFixed(1).padStart(5)} ms  ${e.name}`,
        );
      }
      const med = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? NaN;
      const per = (fn) => med(samples.map(fn)).toFixed(1);
      const sum = (s, prefix) => s.events.filter((e) => e.name.startsWith(prefix)).reduce((n, e) => n + e.t1 - e.t0, 0);
      const count = (s, prefix) => s.events.filter((e) => e.name.startsWith(prefix)).length;
      console.log(
        `medians over ${samples.length} samples: B statements ${per((s) => count(s, 'B '))} taking ${per((s) => sum(s, 'B '))} ms; ` +
          `A statements ${per((s) => count(s, 'A '))} taking ${per((s) => sum(s, 'A '))} ms; answer at +${per((s) => s.answeredAt - s.appliedAt)} ms`,
      );
    },
  };
}

async function call(url, method, body, token) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Times `count` sequential GETs of `url`; sorted durations in ms. */
async function timedGets(url, token, count) {
  const out = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await call(url, 'GET', undefined, token);
    out.push(performance.now() - t0);
  }
  return out.sort((x, y) => x - y);
}

/**
 * A backup version holding BACKUP_KEYS keys on `home`, then GET /room_keys/version timed from the store's summary
 * and, hiding the port's stateSummary, the way it was answered before (every key read and hashed).
 */
async function backupVersionReads(ctx, home, token) {
  const api = `${home.url}/_matrix/client/v3`;
  const { version } = await call(
    `${api}/room_keys/version`,
    'POST',
    { algorithm: 'm.megolm_backup.v1.curve25519-aes-sha2', auth_data: { public_key: 'bench' } },
    token,
  );
  const PER_UPLOAD = 500;
  for (let i = 0; i < BACKUP_KEYS; i += PER_UPLOAD) {
    const sessions = {};
    for (let j = i; j < Math.min(BACKUP_KEYS, i + PER_UPLOAD); j++) {
      sessions[`session${j}`] = {
        first_message_index: 0,
        forwarded_count: 0,
        is_verified: false,
        session_data: {
          ciphertext: `ciphertext of session ${j} `.padEnd(120, 'x'),
          ephemeral: 'ephemeral',
          mac: 'mac',
        },
      };
    }
    await call(
      `${api}/room_keys/keys/${encodeURIComponent(`!room${i % 20}:bench`)}?version=${version}`,
      'PUT',
      { sessions },
      token,
    );
    ctx.progress(`${Math.min(BACKUP_KEYS, i + PER_UPLOAD)}/${BACKUP_KEYS} backup keys`);
  }
  const url = `${api}/room_keys/version`;
  const first = await call(url, 'GET', undefined, token);
  if (first.count !== BACKUP_KEYS) throw new Error(`the version holds ${first.count} keys, not ${BACKUP_KEYS}`);
  const summary = await timedGets(url, token, BACKUP_GETS);
  const port = home.app.get(MATRIX_HOME_PORT, { strict: false });
  port.stateSummary = undefined;
  let rows;
  try {
    const before = await call(url, 'GET', undefined, token);
    if (before.count !== first.count || before.etag !== first.etag)
      throw new Error('the summary and the rows disagree');
    rows = await timedGets(url, token, BACKUP_GETS);
  } finally {
    delete port.stateSummary;
  }
  const versions = await timedGets(`${home.url}/_matrix/client/versions`, undefined, BACKUP_GETS);
  return { summary, rows, versions };
}

export async function run(ctx) {
  const dirs = [
    await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-a-')),
    await mkdtemp(path.join(os.tmpdir(), 'polyhome-bench-b-')),
  ];
  ctx.progress('starting two server homes (embedded PGlite)');
  const [a, b] = await Promise.all(dirs.map((d) => startHome(d)));
  try {
    const accountsA = a.app.get(AccountsService);
    const accountsB = b.app.get(AccountsService);
    const created = await accountsA.createHosted('bench', PASSWORD);
    const document = await accountsA.addHome(created.user_id, accountsB.selfHome());
    await accountsB.hostCoHosted(document, null);
    const { login_token: token } = await b.app.get(LoginTokensService).create(created.user_id);
    const loginB = await call(`${b.url}/_matrix/client/v3/login`, 'POST', { type: 'm.login.token', token });
    let since = (await call(`${b.url}/_matrix/client/v3/sync`, 'GET', undefined, loginB.access_token)).next_batch;
    const samples = [];
    const whole = [];
    const logins = [];
    // When B applies the login's device op; the /sync change feed hears the same report first.
    let appliedAt;
    const tracer = process.env.BENCH_MATRIX_TRACE === '1' ? stageTracer({ A: a, B: b }) : undefined;
    b.app.get(MATRIX_HOME_PORT, { strict: false }).onChanged((serverName, keys) => {
      if (serverName === created.server_name && keys.some((key) => key.startsWith('device:')))
        appliedAt ??= performance.now();
    });
    for (let i = 0; i < LOGINS; i++) {
      appliedAt = undefined;
      tracer?.start();
      const poll = (async () => {
        // Long-poll until B's /sync names the account in device_lists.changed.
        for (;;) {
          const res = await call(
            `${b.url}/_matrix/client/v3/sync?timeout=20000&since=${since}`,
            'GET',
            undefined,
            loginB.access_token,
          );
          since = res.next_batch;
          if (res.device_lists?.changed?.includes(created.user_id)) return performance.now();
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 20));
      const started = performance.now();
      await call(`${a.url}/_matrix/client/v3/login`, 'POST', {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: created.user_id },
        password: PASSWORD,
      });
      logins.push(performance.now() - started);
      const woken = await poll;
      if (appliedAt === undefined) throw new Error('home B never reported the login as applied');
      samples.push(woken - appliedAt);
      tracer?.end(appliedAt, woken);
      whole.push(woken - started);
      if (i % 10 === 0) ctx.progress(`${i + 1}/${LOGINS} logins`);
    }
    tracer?.report();
    samples.sort((x, y) => x - y);
    whole.sort((x, y) => x - y);
    logins.sort((x, y) => x - y);
    const backup = await backupVersionReads(ctx, b, loginB.access_token);
    return [
      {
        figure: 'sync_wakeup.p50_ms',
        value: percentile(samples, 50),
        unit: 'ms',
        reference: `applied on B to /sync on B (${LOGINS} samples); goal <= 10 ms; loopback GET /versions p50 ${percentile(backup.versions, 50).toFixed(2)} ms`,
      },
      {
        figure: 'sync_wakeup.p99_ms',
        value: percentile(samples, 99),
        unit: 'ms',
        reference: `loopback GET /versions p99 ${percentile(backup.versions, 99).toFixed(2)} ms`,
      },
      {
        figure: 'login_to_sync.p50_ms',
        value: percentile(whole, 50),
        unit: 'ms',
        reference: `login on A to /sync on B; the login request alone p50 ${percentile(logins, 50).toFixed(1)} ms (scrypt)`,
      },
      {
        figure: 'login_to_sync.p99_ms',
        value: percentile(whole, 99),
        unit: 'ms',
        reference: `the login request alone p99 ${percentile(logins, 99).toFixed(1)} ms`,
      },
      {
        figure: 'room_keys_version_get.p50_ms',
        value: percentile(backup.summary, 50),
        unit: 'ms',
        reference: `${BACKUP_KEYS} keys; reading every key as before the summary p50 ${percentile(backup.rows, 50).toFixed(1)} ms, p99 ${percentile(backup.rows, 99).toFixed(1)} ms; loopback GET /versions p50 ${percentile(backup.versions, 50).toFixed(2)} ms`,
      },
      {
        figure: 'room_keys_version_get.p99_ms',
        value: percentile(backup.summary, 99),
        unit: 'ms',
        reference: `${BACKUP_GETS} requests each way, same home, same keys`,
      },
    ];
  } finally {
    await Promise.all([a.app.close(), b.app.close()]);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}
