import { randomBytes } from 'node:crypto';
import { sqlStatementsSent } from '@polyhome/storage';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueRegistry } from '../queue/queue-registry.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';
import { MetricsService } from './metrics.service.js';

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const METRICS_TOKEN = 'test-metrics-token-0123456789';

/** The value of one sample line of a scrape (`name{labels} value`), or undefined when absent. */
function sample(scrape: string, series: string): number | undefined {
  const line = scrape.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.each(SERVER_BACKENDS)('GET /metrics on $name', (backend) => {
  let server: TestServer;
  const http = () => request(server.app.getHttpServer());
  const scrape = async () => (await http().get('/metrics').expect(200)).text;

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers Prometheus text without a token when METRICS_TOKEN is unset, default process metrics included', async () => {
    const res = await http().get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(res.text).toContain('nodejs_heap_size_used_bytes');
    for (const name of [
      'polyhome_ops_received_total',
      'polyhome_ops_accepted_total',
      'polyhome_ops_rejected_total',
      'polyhome_delivery_latency_seconds',
      'polyhome_queue_jobs',
      'polyhome_connected_peers',
      'polyhome_http_requests_total',
      'polyhome_http_request_duration_seconds',
      'polyhome_sql_statements_total',
      'nodejs_eventloop_lag_p99_seconds',
    ]) {
      expect(res.text).toContain(`# HELP ${name} `);
    }
  });

  it('shows what other modules record through MetricsService', async () => {
    const metrics = server.app.get(MetricsService);
    const before = await scrape();
    metrics.opsReceived(5);
    metrics.opsAccepted(3);
    metrics.opsRejected('bad_signature');
    metrics.opsRejected('revoked', 1);
    metrics.deliveryLatency(0.2);
    metrics.deliveryLatency(42);
    metrics.setConnectedPeers(7);
    const after = await scrape();
    const delta = (series: string) => (sample(after, series) ?? 0) - (sample(before, series) ?? 0);
    expect(delta('polyhome_ops_received_total')).toBe(5);
    expect(delta('polyhome_ops_accepted_total')).toBe(3);
    expect(delta('polyhome_ops_rejected_total{reason="bad_signature"}')).toBe(1);
    expect(delta('polyhome_ops_rejected_total{reason="revoked"}')).toBe(1);
    expect(delta('polyhome_delivery_latency_seconds_count')).toBe(2);
    expect(delta('polyhome_delivery_latency_seconds_bucket{le="0.25"}')).toBe(1);
    expect(delta('polyhome_delivery_latency_seconds_bucket{le="60"}')).toBe(2);
    expect(sample(after, 'polyhome_connected_peers')).toBe(7);
  });

  it('counts HTTP requests by route template, never by URL', async () => {
    await http().get('/health');
    await http().get('/admin/v1/node').set('Authorization', `Bearer ${ADMIN_TOKEN}`).expect(200);
    await http().get('/admin/v1/node').expect(401);
    await http().get('/no/such/route/a1b2c3').expect(404);
    const text = await scrape();
    expect(sample(text, 'polyhome_http_requests_total{method="GET",route="/health",status="200"}')).toBeGreaterThan(0);
    expect(sample(text, 'polyhome_http_requests_total{method="GET",route="/admin/v1/node",status="200"}')).toBe(1);
    expect(sample(text, 'polyhome_http_requests_total{method="GET",route="/admin/v1/node",status="401"}')).toBe(1);
    expect(sample(text, 'polyhome_http_requests_total{method="GET",route="<unmatched>",status="404"}')).toBe(1);
    expect(text).not.toContain('a1b2c3');
    expect(sample(text, 'polyhome_http_request_duration_seconds_count{method="GET",route="/admin/v1/node"}')).toBe(2);
  });

  it('counts the SQL statements the storage layer sends in polyhome_sql_statements_total', async () => {
    const before = sample(await scrape(), 'polyhome_sql_statements_total') ?? NaN;
    const sentBefore = sqlStatementsSent();
    expect(before).toBeLessThanOrEqual(sentBefore);
    // Creating an account writes it to the database.
    const localpart = `metrics${randomBytes(4).toString('hex')}`;
    await http()
      .post('/admin/v1/accounts')
      .set('Authorization', `Bearer ${ADMIN_TOKEN}`)
      .send({ localpart })
      .expect(201);
    const sentAfter = sqlStatementsSent();
    expect(sentAfter).toBeGreaterThan(sentBefore);
    const after = sample(await scrape(), 'polyhome_sql_statements_total') ?? NaN;
    expect(after).toBeGreaterThanOrEqual(sentAfter);
    expect(after).toBeLessThanOrEqual(sqlStatementsSent());
  });

  it('reads polyhome_queue_jobs from the queue backend at each scrape', async () => {
    // A queue of this test's own, so other tests' jobs on the shared Redis cannot change it.
    const name = `test-metrics-${randomBytes(4).toString('hex')}`;
    server.app.get(QueueRegistry).register(name);
    const series = (state: string) => `polyhome_queue_jobs{queue="${name}",state="${state}"}`;
    let text = await scrape();
    for (const state of ['waiting', 'active', 'delayed', 'failed', 'completed'])
      expect(sample(text, series(state))).toBe(0);
    expect(sample(text, 'polyhome_queue_jobs{queue="delivery",state="waiting"}')).toEqual(expect.any(Number));
    expect(sample(text, 'polyhome_queue_jobs{queue="dht",state="failed"}')).toEqual(expect.any(Number));

    const queue = server.resources.queue.queue<null>(name);
    const ids = [await queue.add('a', null), await queue.add('b', null), await queue.add('c', null, { delay: 60_000 })];
    text = await scrape();
    expect(sample(text, series('waiting'))).toBe(2);
    expect(sample(text, series('delayed'))).toBe(1);
    expect(sample(text, series('active'))).toBe(0);

    for (const id of ids) await queue.remove(id);
    text = await scrape();
    expect(sample(text, series('waiting'))).toBe(0);
    expect(sample(text, series('delayed'))).toBe(0);
  });
});

describe('GET /metrics with METRICS_TOKEN set', () => {
  let server: TestServer;
  const http = () => request(server.app.getHttpServer());

  beforeAll(async () => {
    server = await startTestServer(SERVER_BACKENDS[0], { ADMIN_TOKEN, METRICS_TOKEN });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('needs that token, and only that token', async () => {
    expect((await http().get('/metrics').expect(401)).body.errcode).toBe('M_MISSING_TOKEN');
    const admin = await http().get('/metrics').set('Authorization', `Bearer ${ADMIN_TOKEN}`).expect(401);
    expect(admin.body).toEqual({ errcode: 'M_UNKNOWN_TOKEN', error: 'Unknown metrics token.' });
    const ok = await http().get('/metrics').set('Authorization', `Bearer ${METRICS_TOKEN}`).expect(200);
    expect(ok.text).toContain('polyhome_ops_received_total');
    expect(server.logs.join('\n')).not.toContain(METRICS_TOKEN);
  });
});
