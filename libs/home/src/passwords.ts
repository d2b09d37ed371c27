// Password hashes of hosted accounts (scrypt) and the per-account limit on wrong guesses. A user ID that is
// not hosted here costs the same scrypt as one that is (against a dummy hash with the stored parameters) and
// counts against the same limit, so neither the answer, its delay nor its timing tells whether it exists.
import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';

const scrypt = promisify(scryptCallback) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: object,
) => Promise<Buffer>;

/** scrypt parameters of stored password hashes (about 50 ms here; the cost is in the stored string). */
const PASSWORD_SCRYPT = { N: 2 ** 15, r: 8, p: 1 };
const SCRYPT_MAXMEM = 64 * 1024 * 1024;

let computed = 0;

/** How many password hashes this process computed (stored, checked or dummy): the metric's source. */
export function passwordHashesComputed(): number {
  return computed;
}

/** A new stored hash, `scrypt$N$r$p$salt$hash`. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  computed++;
  const hash = await scrypt(password, salt, 32, { ...PASSWORD_SCRYPT, maxmem: SCRYPT_MAXMEM });
  const { N, r, p } = PASSWORD_SCRYPT;
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Whether `password` matches a stored hash; a malformed one matches nothing (and costs the same scrypt). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash) {
    await verifyPassword(password, await dummyHash());
    return false;
  }
  const expected = Buffer.from(hash, 'base64');
  computed++;
  const actual = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: SCRYPT_MAXMEM,
  });
  return timingSafeEqual(actual, expected);
}

let dummy: Promise<string> | undefined;

/** A hash of a random password with the stored parameters, made once: what an unknown user is checked against. */
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('base64'));
  return dummy;
}

/** Checks `password` against nothing, as long as a real check takes; always false. */
export async function verifyAgainstDummy(password: string): Promise<false> {
  await verifyPassword(password, await dummyHash());
  return false;
}

/** The backoff of the per-account limit on wrong passwords. */
export interface PasswordGuessPolicy {
  /** Wrong guesses let through before the first wait. */
  freeFailures: number;
  /** The first wait; each further wrong guess doubles it. */
  baseDelayMs: number;
  /** The longest wait. */
  maxDelayMs: number;
  /** A user ID with no wrong guess for this long starts over. */
  forgetAfterMs: number;
  /** User IDs tracked at most (least recently guessed go first). */
  maxEntries: number;
}

export const DEFAULT_GUESS_POLICY: PasswordGuessPolicy = {
  freeFailures: 5,
  baseDelayMs: 1_000,
  maxDelayMs: 15 * 60_000,
  forgetAfterMs: 60 * 60_000,
  maxEntries: 100_000,
};

interface Guesses {
  /** Guesses counted as wrong (a guess counts when it starts; a right one then clears the entry). */
  failures: number;
  /** No guess is checked before this time (epoch ms). */
  blockedUntil: number;
  /** When the last guess started. */
  lastAt: number;
}

/** A guess refused because the user ID is waiting out its backoff. */
export class GuessBackoffError extends Error {
  constructor(readonly retryAfterMs: number) {
    super(`Too many wrong passwords for this user; retry in ${Math.ceil(retryAfterMs / 1000)} s.`);
    this.name = 'GuessBackoffError';
  }
}

/**
 * Wrong password guesses per user ID (any user ID, hosted here or not), in this process's memory. After
 * `freeFailures` wrong guesses each further one makes the user ID wait, twice as long each time up to
 * `maxDelayMs`; a right password clears it. A guess counts as wrong when it starts, so guesses sent at once
 * cannot all pass before the first one fails. The map is bounded: the least recently guessed user ID goes first.
 */
export class PasswordGuessLimiter {
  readonly #entries = new Map<string, Guesses>();

  constructor(
    private readonly policy: PasswordGuessPolicy = DEFAULT_GUESS_POLICY,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a guess at `userId` before it is checked. Throws GuessBackoffError while the user ID must wait. */
  begin(userId: string): void {
    const now = this.now();
    let entry = this.#entries.get(userId);
    if (entry !== undefined && now - entry.lastAt > this.policy.forgetAfterMs) entry = undefined;
    if (entry !== undefined && entry.blockedUntil > now) throw new GuessBackoffError(entry.blockedUntil - now);
    entry ??= { failures: 0, blockedUntil: 0, lastAt: now };
    entry.failures++;
    entry.lastAt = now;
    const over = entry.failures - this.policy.freeFailures;
    if (over >= 0) {
      entry.blockedUntil = now + Math.min(this.policy.maxDelayMs, this.policy.baseDelayMs * 2 ** Math.min(over, 30));
    }
    // Re-inserted, so the map's order is least recently guessed first.
    this.#entries.delete(userId);
    this.#entries.set(userId, entry);
    while (this.#entries.size > this.policy.maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }

  /** The guess at `userId` was right: it starts over. */
  succeeded(userId: string): void {
    this.#entries.delete(userId);
  }

  /** How many user IDs are tracked. */
  get size(): number {
    return this.#entries.size;
  }
}

/** The password verifier an account's replicated state holds (`password.set`), if any. */
export function replicatedVerifier(state: { password?: Record<string, Record<string, unknown>> }): string | undefined {
  const verifier = state.password?.['verifier']?.['verifier'];
  return typeof verifier === 'string' ? verifier : undefined;
}

/**
 * One password check under the guess limit: counts the guess for `userId` (throws GuessBackoffError while it
 * must wait), checks `password` against `verifier` (against the dummy, as slowly, when there is none), and clears
 * the count on success.
 */
export async function checkPasswordGuess(
  limiter: PasswordGuessLimiter,
  userId: string,
  password: string,
  verifier: string | undefined,
): Promise<boolean> {
  limiter.begin(userId);
  const right = verifier === undefined ? await verifyAgainstDummy(password) : await verifyPassword(password, verifier);
  if (right) limiter.succeeded(userId);
  return right;
}
