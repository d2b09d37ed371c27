import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import {
  beginClientWork,
  clientIdleWhile,
  MAX_REPLICATION_PAUSE_MS,
  REPLICATION_SHARE_UNDER_CLIENT_LOAD,
  replicationGateStats,
  replicationTurn,
} from './work-priority.js';

// The gate is the process's: every test ends the client work it began.
const ends: Array<() => void> = [];
function client(): () => void {
  const end = beginClientWork();
  ends.push(end);
  return end;
}
afterEach(() => {
  for (const end of ends.splice(0)) end();
});

/** A batch that records when it ran and takes `ms`. */
function batch(log: string[], name: string, ms = 0): () => Promise<string> {
  return async () => {
    log.push(`${name} start`);
    if (ms > 0) await sleep(ms);
    log.push(`${name} end`);
    return name;
  };
}

describe('replicationTurn', () => {
  it('runs batches at once, side by side, while no client request is in flight', async () => {
    const log: string[] = [];
    const before = replicationGateStats();
    const results = await Promise.all([replicationTurn(batch(log, 'a', 5)), replicationTurn(batch(log, 'b', 5))]);
    expect(results).toEqual(['a', 'b']);
    expect(log.slice(0, 2)).toEqual(['a start', 'b start']);
    const after = replicationGateStats();
    expect(after.batches - before.batches).toBe(2);
    expect(after.waited - before.waited).toBe(0);
  });

  it('under client load holds the next batch for the pause after one, and lets it go when the requests end', async () => {
    const log: string[] = [];
    const before = replicationGateStats();
    const end = client();
    // The first batch under load runs; its 300 ms earn the one after it a pause of 900 ms.
    await replicationTurn(batch(log, 'a', 300));
    const done = replicationTurn(batch(log, 'b'));
    await sleep(50);
    expect(log).toEqual(['a start', 'a end']);
    log.push('request end');
    end();
    expect(await done).toBe('b');
    expect(log).toEqual(['a start', 'a end', 'request end', 'b start', 'b end']);
    expect(replicationGateStats().waited - before.waited).toBe(1);
  });

  it('is never starved: under constant client load batches run one at a time, each after a pause', async () => {
    client();
    const times: Array<{ start: number; end: number }> = [];
    const timed = (ms: number) => async () => {
      const start = performance.now();
      await sleep(ms);
      times.push({ start, end: performance.now() });
    };
    await Promise.all([replicationTurn(timed(10)), replicationTurn(timed(10)), replicationTurn(timed(10))]);
    expect(times).toHaveLength(3);
    for (let i = 1; i < times.length; i++) {
      const previous = times[i - 1]!;
      const took = previous.end - previous.start;
      const pause = Math.min(MAX_REPLICATION_PAUSE_MS, took * (1 / REPLICATION_SHARE_UNDER_CLIENT_LOAD - 1));
      // One at a time, and not before the pause its predecessor earned (timers may fire a millisecond early).
      expect(times[i]!.start).toBeGreaterThanOrEqual(previous.end + pause - 2);
    }
  });

  it('lets all waiting batches go once the last client request ends, in the order they came', async () => {
    const log: string[] = [];
    const first = client();
    const second = client();
    await replicationTurn(batch(log, 'before', 300));
    const done = [replicationTurn(batch(log, 'a')), replicationTurn(batch(log, 'b'))];
    first();
    await sleep(50);
    expect(log).toEqual(['before start', 'before end']);
    second();
    await Promise.all(done);
    expect(log.slice(2).filter((l) => l.endsWith('start'))).toEqual(['a start', 'b start']);
  });

  it('does not hold batches back for a long poll waiting for a change (clientIdleWhile)', async () => {
    const log: string[] = [];
    client();
    await replicationTurn(batch(log, 'a', 300));
    let wake!: () => void;
    const change = new Promise<void>((resolve) => (wake = resolve));
    const polling = clientIdleWhile(change);
    // Within a's pause, but the only request is waiting: b goes at once.
    expect(await replicationTurn(batch(log, 'b'))).toBe('b');
    wake();
    await polling;
    // The request is counted again once its wait is over: the next batch under load runs, and the one after it
    // waits for its pause.
    await replicationTurn(batch(log, 'c', 300));
    const next = replicationTurn(batch(log, 'd'));
    await sleep(50);
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
    for (const end of ends.splice(0)) end();
    await next;
    expect(log.slice(-2)).toEqual(['d start', 'd end']);
  });

  it('counts a request once however often its end is reported', async () => {
    const log: string[] = [];
    const end = client();
    end();
    end();
    const other = client();
    await replicationTurn(batch(log, 'a', 300));
    const done = replicationTurn(batch(log, 'b'));
    await sleep(50);
    expect(log).toEqual(['a start', 'a end']);
    other();
    await done;
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end']);
  });
});
