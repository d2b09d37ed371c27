// Signatures known to verify, each with the exact message and public key it verified against. A hit needs all
// three bytes-for-bytes, so a lookup never says yes to anything a verification would refuse. Filled by
// verifyAhead (verify-ahead.ts); read by verifyBytes on the default backend.
/** One Ed25519 check: a signature over a message by a public key. */
export interface SignatureCheck {
  readonly signature: Uint8Array;
  readonly message: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Bounds of a memo: entries, and bytes of the messages it keeps. */
export interface SignatureMemoLimits {
  readonly entries: number;
  readonly bytes: number;
}

/** Enough for several batches of the largest op batch in flight at once; bounded in count and in bytes. */
export const SIGNATURE_MEMO_LIMITS: SignatureMemoLimits = { entries: 4_096, bytes: 4 * 1024 * 1024 };

// Node's Buffer.compare (a memcmp) where there is one; a plain loop elsewhere: this library also loads outside Node.
const nodeBuffer = (globalThis as { Buffer?: { compare(a: Uint8Array, b: Uint8Array): number } }).Buffer;

function same(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  if (nodeBuffer !== undefined) return nodeBuffer.compare(a, b) === 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// Two bytes per UTF-16 code unit: 32 characters for a signature.
function keyOf(signature: Uint8Array): string {
  let key = '';
  for (let i = 0; i < signature.length; i += 2)
    key += String.fromCharCode((signature[i]! << 8) | (signature[i + 1] ?? 0));
  return key;
}

/** Signatures known to verify, oldest dropped first once a bound is reached. */
export class SignatureMemo {
  readonly #entries = new Map<string, { message: Uint8Array; publicKey: Uint8Array }>();
  #bytes = 0;
  #hits = 0;

  constructor(readonly limits: SignatureMemoLimits = SIGNATURE_MEMO_LIMITS) {}

  /** Entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** Lookups that found their signature verified already. */
  get hits(): number {
    return this.#hits;
  }

  /** True when exactly this signature, message and key verified before. */
  has(check: SignatureCheck): boolean {
    const entry = this.#entries.get(keyOf(check.signature));
    if (entry === undefined || !same(entry.publicKey, check.publicKey) || !same(entry.message, check.message)) {
      return false;
    }
    this.#hits += 1;
    return true;
  }

  /** Keeps a check that verified (copies its bytes: the caller's buffers may be reused). */
  remember(check: SignatureCheck): void {
    if (check.message.length > this.limits.bytes) return;
    const key = keyOf(check.signature);
    const old = this.#entries.get(key);
    if (old !== undefined) {
      this.#bytes -= old.message.length;
      this.#entries.delete(key);
    }
    this.#entries.set(key, { message: Uint8Array.from(check.message), publicKey: Uint8Array.from(check.publicKey) });
    this.#bytes += check.message.length;
    while (this.#entries.size > this.limits.entries || this.#bytes > this.limits.bytes) {
      const oldest = this.#entries.entries().next();
      if (oldest.done === true) break;
      this.#bytes -= oldest.value[1].message.length;
      this.#entries.delete(oldest.value[0]);
    }
  }

  /** Forgets everything (tests). */
  clear(): void {
    this.#entries.clear();
    this.#bytes = 0;
  }
}

/** The process's memo, consulted by `verifyBytes` on the default backend. */
export const signatureMemo = new SignatureMemo();
