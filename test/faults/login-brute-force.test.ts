// Password guessing against a real server process. The per-address limit is off here (RATE_LIMIT_PER_MINUTE=0,
// as for an attacker with as many addresses as it likes), so only the per-user-ID limit stands: after 5 wrong
// passwords at one user ID, over the Matrix login and the custody route alike, every further guess is answered
// 429 M_LIMIT_EXCEEDED with retry_after_ms until the wait is over, each wrong guess after a wait doubles it,
// and the right password, once the wait is over, logs in and starts the count over. Before, nothing but the
// per-address limit stood, and the custody route had a budget of its own.
//
// Unknown user IDs are counted alike, and their password is checked against a dummy scrypt hash: what is asserted
// is the server's own count of password hashes computed (`polyhome_password_hashes_total`, one per guess, known
// or not), never a timing. The median times of both are printed.
import { waitFor } from '@polyhome/p2p/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { median } from '../support/stats.js';
import { startFreshServer, type Answer, type FreshServer, type ServerProcess } from '../support/server-process.js';

/** The first wait after 5 wrong guesses: long enough that the doubled one is told apart on a loaded machine. */
const BACKOFF_MS = 4_000;
/** Wrong guesses let through before the first wait (the server's policy). */
const FREE_FAILURES = 5;
const PASSWORD = 'the right password, at last';

describe('password guessing at one user ID from any number of addresses, over every password route', () => {
  let fresh: FreshServer;
  let server: ServerProcess;
  const users: Record<string, string> = {};

  beforeAll(async () => {
    fresh = await startFreshServer('brute', { LOGIN_BACKOFF_MS: String(BACKOFF_MS) });
    server = fresh.server;
    for (const localpart of ['alice', 'bob', 'carol']) {
      const created = await server.admin('POST', '/admin/v1/accounts', { localpart, password: PASSWORD });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      users[localpart] = String(created.body['user_id']);
    }
  }, 180_000);

  afterAll(async () => {
    await fresh?.dispose();
  }, 60_000);

  function login(user: string, password: string): Promise<Answer> {
    return server.request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user },
      password,
    });
  }

  function custody(user: string, password: string): Promise<Answer> {
    return server.request('POST', '/_polyhome/v1/custody', {
      user_id: user,
      password,
      passphrase: 'a long enough passphrase for the export',
    });
  }

  /** The server's count of password hashes computed, from /metrics. */
  async function hashes(): Promise<number> {
    const scraped = await server.request('GET', '/metrics');
    const match = /^polyhome_password_hashes_total (\d+)/m.exec(String(scraped.body['text']));
    if (match === null)
      throw new Error(`no password hash count in /metrics: ${String(scraped.body['text']).slice(0, 200)}`);
    return Number(match[1]);
  }

  function expectLimited(answer: Answer, what: string): number {
    expect([answer.status, answer.body.errcode], `${what}: ${JSON.stringify(answer.body)}`).toEqual([
      429,
      'M_LIMIT_EXCEEDED',
    ]);
    const wait = answer.body['retry_after_ms'];
    expect(typeof wait, what).toBe('number');
    return wait as number;
  }

  /** Waits until a guess at `user` is checked again (429s do not count), then makes it. */
  async function guessWhenLetIn(guess: () => Promise<Answer>): Promise<Answer> {
    let answer: Answer | undefined;
    await waitFor(
      async () => {
        answer = await guess();
        return answer.status !== 429;
      },
      'the backoff to be over',
      8 * BACKOFF_MS + 60_000,
      250,
    );
    return answer!;
  }

  it('answers 429 with a growing retry_after_ms after 5 wrong guesses, on login and custody alike, until the right password', async () => {
    const alice = users['alice']!;
    // Wrong guesses spread over both routes share one budget.
    for (let i = 0; i < FREE_FAILURES; i++) {
      const answer = i % 2 === 0 ? await login(alice, `guess ${i}`) : await custody(alice, `guess ${i}`);
      expect([answer.status, answer.body.errcode], `guess ${i}`).toEqual([403, 'M_FORBIDDEN']);
    }
    // Now even the right password waits, on both routes; nothing is checked (no device, no key handed out).
    const first = expectLimited(await login(alice, PASSWORD), 'right password during the first wait');
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThanOrEqual(BACKOFF_MS);
    expectLimited(await custody(alice, 'another guess'), 'custody during the first wait');
    // The first wait over, one more wrong guess is checked, and the next wait is twice as long.
    const sixth = await guessWhenLetIn(() => login(alice, 'guess after the wait'));
    expect([sixth.status, sixth.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    const second = expectLimited(await custody(alice, 'too soon'), 'after the sixth wrong guess');
    console.log(`retry_after_ms after 5 wrong guesses: ${first}; after 6: ${second}`);
    expect(second).toBeGreaterThan(BACKOFF_MS);
    expect(second).toBeLessThanOrEqual(2 * BACKOFF_MS);
    // The wait over, the right password logs in, and the count starts over: a wrong guess is a 403 again.
    const right = await guessWhenLetIn(() => login(alice, PASSWORD));
    expect(right.status, JSON.stringify(right.body)).toBe(200);
    expect(right.body['user_id']).toBe(alice);
    const after = await login(alice, 'one wrong guess after logging in');
    expect([after.status, after.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
    // Another account was never affected.
    expect((await login(users['bob']!, PASSWORD)).status).toBe(200);
  }, 240_000);

  it('limits a user ID that is not hosted here exactly as one that is', async () => {
    const nobody = users['carol']!.replace('@carol:', '@nobody:');
    for (let i = 0; i < FREE_FAILURES; i++) {
      const answer = await login(nobody, `guess ${i}`);
      expect([answer.status, answer.body.errcode], `guess ${i}`).toEqual([403, 'M_FORBIDDEN']);
    }
    const wait = expectLimited(await custody(nobody, 'one more'), 'unknown user after 5 guesses');
    expect(wait).toBeLessThanOrEqual(BACKOFF_MS);
  }, 120_000);

  it('computes a password hash for an unknown user ID as for a known one (timings printed, not asserted)', async () => {
    const n = 8;
    const known: number[] = [];
    const unknown: number[] = [];
    const before = await hashes();
    for (let i = 0; i < n; i++) {
      // Fresh user IDs not hosted here (one of them no valid user ID at all), and wrong guesses at carol (under 5).
      const stranger = i === 0 ? '@nobody:not-a-server-name' : users['carol']!.replace('@carol:', `@ghost${i}:`);
      let start = performance.now();
      const u = await login(stranger, 'a wrong password');
      unknown.push(performance.now() - start);
      expect([u.status, u.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      if (i < FREE_FAILURES - 1) {
        start = performance.now();
        const k = await login(users['carol']!, 'a wrong password');
        known.push(performance.now() - start);
        expect([k.status, k.body.errcode]).toEqual([403, 'M_FORBIDDEN']);
      }
    }
    const computed = (await hashes()) - before;
    console.log(
      `login with a wrong password: known user median ${median(known).toFixed(1)} ms (${known.length}), unknown ` +
        `user median ${median(unknown).toFixed(1)} ms (${unknown.length}); password hashes computed: ${computed}`,
    );
    // One scrypt per guess, known or not (before: none for the unknown ones).
    expect(computed).toBe(unknown.length + known.length);
  }, 120_000);
});
