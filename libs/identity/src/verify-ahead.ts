// Signatures verified ahead of the code that needs them. A home that receives a batch of ops verifies their
// signatures on Node's thread pool (both cores) as soon as the batch arrives, before it waits for the account's
// lock; the synchronous check inside the lock then finds each one here and costs a lookup. Only signatures that
// verified are kept, each with the exact message and public key it verified against: a hit needs all three
// bytes-for-bytes, so a lookup never says yes to anything a verification would refuse.
import { SIGNATURE_LENGTH, defaultEd25519, type Ed25519Backend } from './ed25519.js';
import { PUBLIC_KEY_LENGTH } from './secret-key.js';
import { signatureMemo, type SignatureCheck, type SignatureMemo } from './signature-memo.js';

// Checks on the thread pool at once, process-wide. A flood of batches would otherwise queue thousands of native
// jobs, each holding copies of its message, and the memory they take is not given back to the system.
const MAX_IN_FLIGHT = 16;
let inFlight = 0;
const waiting: Array<() => void> = [];

async function slot<T>(work: () => Promise<T>): Promise<T> {
  if (inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => waiting.push(resolve));
  inFlight += 1;
  try {
    return await work();
  } finally {
    inFlight -= 1;
    waiting.shift()?.();
  }
}

function wellFormed(check: SignatureCheck): boolean {
  return (
    check.signature instanceof Uint8Array &&
    check.signature.length === SIGNATURE_LENGTH &&
    check.publicKey instanceof Uint8Array &&
    check.publicKey.length === PUBLIC_KEY_LENGTH &&
    check.message instanceof Uint8Array
  );
}

/**
 * Verifies checks ahead, off the main thread where the backend can (Node's thread pool), and remembers those that
 * verify in `memo`. Returns how many verified; one that does not is simply not remembered (the synchronous check
 * later refuses it with its own error). Checks already in the memo are not verified again.
 */
export async function verifyAhead(
  checks: readonly SignatureCheck[],
  options: { backend?: Ed25519Backend; memo?: SignatureMemo } = {},
): Promise<number> {
  const backend = options.backend ?? defaultEd25519;
  const memo = options.memo ?? signatureMemo;
  const results = await Promise.all(
    checks.map(async (check) => {
      if (!wellFormed(check)) return false;
      if (memo.has(check)) return true;
      const valid =
        backend.verifyAsync === undefined
          ? backend.verify(check.signature, check.message, check.publicKey)
          : await slot(async () => backend.verifyAsync!(check.signature, check.message, check.publicKey));
      if (valid) memo.remember(check);
      return valid;
    }),
  );
  return results.filter(Boolean).length;
}
