// The server's /metrics as the bench and `npm run load` read them.

/**
 * The server samples its event loop every this many ms (EVENT_LOOP_SAMPLE_MS in apps/server/src/metrics): each
 * nodejs_eventloop_lag_* value is a whole interval between two samples, so the delay is the value minus it.
 */
export const EVENT_LOOP_SAMPLE_MS = 10;

/**
 * The figures of one /metrics text: 5xx answers, HTTP requests, SQL statements and ops accepted so far, the
 * replication turn's counts (batches, those that waited behind clients' requests, seconds waited), and the
 * event-loop delay (ms) since the scrape before (prom-client resets its histogram at each scrape).
 */
export function parseMetrics(text) {
  const out = {
    fiveXX: 0,
    requests: 0,
    statements: NaN,
    opsAccepted: NaN,
    loop: {},
    replication: { batches: NaN, waited: NaN, waitSeconds: NaN },
  };
  for (const line of text.split('\n')) {
    const m = /^([a-z_0-9]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const [, name, labels = '', value] = m;
    if (name === 'polyhome_http_requests_total') {
      out.requests += Number(value);
      if (/status="5\d\d"/.test(labels)) out.fiveXX += Number(value);
    } else if (name === 'polyhome_sql_statements_total') out.statements = Number(value);
    else if (name === 'polyhome_ops_accepted_total') out.opsAccepted = Number(value);
    else if (name === 'polyhome_replication_batches_total') out.replication.batches = Number(value);
    else if (name === 'polyhome_replication_batches_waited_total') out.replication.waited = Number(value);
    else if (name === 'polyhome_replication_wait_seconds_total') out.replication.waitSeconds = Number(value);
    else {
      const lag = /^nodejs_eventloop_lag_(p50|p99|max)_seconds$/.exec(name);
      if (lag) out.loop[lag[1]] = Math.max(0, Number(value) * 1000 - EVENT_LOOP_SAMPLE_MS);
    }
  }
  return out;
}
