import { describe, expect, it } from 'vitest';
import {
  DEFAULT_GUESS_POLICY,
  GuessBackoffError,
  passwordHashesComputed,
  PasswordGuessLimiter,
  verifyAgainstDummy,
  verifyPassword,
} from './passwords.js';

function limiter(policy: Partial<typeof DEFAULT_GUESS_POLICY> = {}): {
  sut: PasswordGuessLimiter;
  clock: { t: number };
} {
  const clock = { t: 1_000_000 };
  return { sut: new PasswordGuessLimiter({ ...DEFAULT_GUESS_POLICY, ...policy }, () => clock.t), clock };
}

/** The wait a refused guess is told, or undefined when the guess was let through. */
function refusal(sut: PasswordGuessLimiter, user: string): number | undefined {
  try {
    sut.begin(user);
    return undefined;
  } catch (err) {
    if (err instanceof GuessBackoffError) return err.retryAfterMs;
    throw err;
  }
}

describe('PasswordGuessLimiter', () => {
  it('lets the free guesses through, then doubles the wait with each wrong guess up to the cap', () => {
    const { sut, clock } = limiter({ freeFailures: 3, baseDelayMs: 1_000, maxDelayMs: 5_000 });
    for (let i = 0; i < 3; i++) expect(refusal(sut, '@a:x')).toBeUndefined();
    expect(refusal(sut, '@a:x')).toBe(1_000);
    clock.t += 1_000;
    expect(refusal(sut, '@a:x')).toBeUndefined();
    expect(refusal(sut, '@a:x')).toBe(2_000);
    clock.t += 2_000;
    expect(refusal(sut, '@a:x')).toBeUndefined();
    expect(refusal(sut, '@a:x')).toBe(4_000);
    clock.t += 4_000;
    expect(refusal(sut, '@a:x')).toBeUndefined();
    expect(refusal(sut, '@a:x')).toBe(5_000);
    // Another user ID is not affected.
    expect(refusal(sut, '@b:x')).toBeUndefined();
  });

  it('counts a guess when it starts, so guesses sent at once do not all get through', () => {
    const { sut } = limiter({ freeFailures: 2 });
    // Guesses begun before any is answered: the third is already refused.
    expect(refusal(sut, '@a:x')).toBeUndefined();
    expect(refusal(sut, '@a:x')).toBeUndefined();
    expect(refusal(sut, '@a:x')).toBeGreaterThan(0);
  });

  it('clears a user ID on a right password and forgets one left alone', () => {
    const { sut, clock } = limiter({ freeFailures: 2, forgetAfterMs: 10_000 });
    sut.begin('@a:x');
    sut.begin('@a:x');
    expect(refusal(sut, '@a:x')).toBeGreaterThan(0);
    sut.succeeded('@a:x');
    expect(refusal(sut, '@a:x')).toBeUndefined();
    sut.begin('@b:x');
    sut.begin('@b:x');
    expect(refusal(sut, '@b:x')).toBeGreaterThan(0);
    clock.t += 10_001;
    expect(refusal(sut, '@b:x')).toBeUndefined();
  });

  it('keeps at most maxEntries user IDs, dropping the least recently guessed', () => {
    const { sut } = limiter({ freeFailures: 1, maxEntries: 3 });
    for (const user of ['@a:x', '@b:x', '@c:x', '@d:x']) sut.begin(user);
    expect(sut.size).toBe(3);
    // @a was dropped: it starts over; @d is still waiting.
    expect(refusal(sut, '@a:x')).toBeUndefined();
    expect(refusal(sut, '@d:x')).toBeGreaterThan(0);
  });
});

describe('password checks', () => {
  it('checks an unknown user against a dummy hash: a scrypt runs, nothing matches', async () => {
    await verifyAgainstDummy('warm up');
    const before = passwordHashesComputed();
    expect(await verifyAgainstDummy('anything')).toBe(false);
    expect(passwordHashesComputed() - before).toBe(1);
    // A malformed stored hash costs a scrypt too.
    expect(await verifyPassword('anything', 'not-a-hash')).toBe(false);
    expect(passwordHashesComputed() - before).toBe(2);
  });
});
