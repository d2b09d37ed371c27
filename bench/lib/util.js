// Small helpers shared by suites: percentiles, timings, bounded waits and JSON requests to a server's HTTP API.
import { performance } from 'node:perf_hooks';

/** The p-th percentile of an ascending array. */
export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Times `fn(i)` `rounds` times after `warmUp` untimed calls; the durations in ms, ascending. */
export async function timed(rounds, fn, warmUp = 0) {
  for (let i = 0; i < warmUp; i++) await fn(i);
  const out = [];
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    await fn(i);
    out.push(performance.now() - t0);
  }
  return out.sort((x, y) => x - y);
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `condition` every `everyMs` until it is true; throws naming `what` after `timeoutMs`. */
export async function until(condition, what, timeoutMs = 600_000, everyMs = 2) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Retries `step` every second until it succeeds (a document still travelling, a join not yet possible). */
export async function eventually(step, what, timeoutMs = 180_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await step();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${err.message}`, { cause: err });
      await sleep(1_000);
    }
  }
}

/** A JSON request with an optional bearer token; throws with the answer on a non-2xx status. */
export async function call(url, method, body, token, timeoutMs = 60_000) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(`${method} ${url}: ${res.status} ${JSON.stringify(json)}`), json);
  return json;
}

/** A logged-in Matrix client of `server` (from bench/lib/server.js): request(method, route, body) under /v3. */
export function matrixClient(server, login) {
  const matrix = `${server.url}/_matrix/client/v3`;
  return {
    userId: login.user_id,
    deviceId: login.device_id,
    request: (method, route, body, timeoutMs) => call(`${matrix}${route}`, method, body, login.access_token, timeoutMs),
  };
}

/** Password login of `userId` on `server`; the login response. */
export async function passwordLogin(server, userId, password) {
  return call(`${server.url}/_matrix/client/v3/login`, 'POST', {
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: userId },
    password,
  });
}
