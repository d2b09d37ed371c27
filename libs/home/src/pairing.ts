// Pairing of a node made with `init --join`: the code it holds, how many wrong proofs it took, and the codes a
// home was given for the nodes it adds. The joining side's gate (Home.adopt) asks the offering home for a
// proof (the /polyhome/pairing/1.0.0 protocol of @polyhome/p2p) and counts wrong ones here.
import { randomBytes } from 'node:crypto';
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { newPairingCode } from '@polyhome/p2p';

// The code's format belongs to the protocol; apps that add homes check codes through this package.
export { newPairingCode, normalizePairingCode } from '@polyhome/p2p';

/** Wrong proofs a pairing code takes; the next one replaces the code (the guesses of a stranger are bounded). */
export const PAIRING_MAX_FAILURES = 5;
/** How long a home keeps a pairing code its user gave it for a node it adds, ms: time to start that node. */
export const PAIRING_CODE_KEPT_MS = 24 * 60 * 60_000;
/** Most pairing codes a home keeps at once (the oldest is dropped). */
export const PAIRING_CODES_KEPT = 256;

/** The pairing code of a joining node and the wrong proofs it took so far. */
export interface PairingState {
  code: string;
  failures: number;
}

/** Where a joining node keeps its pairing code (a file of the data directory for the client node). */
export interface PairingCodeStore {
  /** The current code, or undefined when there is none (spent, or never made). */
  read(): Promise<PairingState | undefined>;
  write(state: PairingState): Promise<void>;
  /** Spends the code: the node took an account in. */
  clear(): Promise<void>;
}

/** A pairing code in memory (tests). */
export class MemoryPairingCodeStore implements PairingCodeStore {
  constructor(private state: PairingState | undefined = { code: newPairingCode(), failures: 0 }) {}
  async read(): Promise<PairingState | undefined> {
    return this.state === undefined ? undefined : { ...this.state };
  }
  async write(state: PairingState): Promise<void> {
    this.state = { ...state };
  }
  async clear(): Promise<void> {
    this.state = undefined;
  }
}

/** A pairing code in a JSON file `{ code, failures }`, mode 0600, replaced atomically (write, then rename). */
export class FilePairingCodeStore implements PairingCodeStore {
  constructor(readonly file: string) {}

  async read(): Promise<PairingState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const parsed = JSON.parse(text) as Partial<PairingState>;
    if (typeof parsed.code !== 'string' || typeof parsed.failures !== 'number') {
      throw new Error(`${this.file} is not a pairing code file: delete it and run \`polyhome pairing-code --new\`.`);
    }
    return { code: parsed.code, failures: parsed.failures };
  }

  async write(state: PairingState): Promise<void> {
    const tmp = `${this.file}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(state)}\n`, { mode: 0o600, flag: 'wx' });
    try {
      await chmod(tmp, 0o600);
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async clear(): Promise<void> {
    await rm(this.file, { force: true });
  }
}

/** The codes a home's user gave it for the nodes it adds, by account and PeerId, kept for a day. */
export class PairingCodes {
  readonly #codes = new Map<string, { code: string; until: number }>();

  /** Keeps the code the user gave for `peerId` joining `account` (a newer one replaces it). */
  expect(account: string, peerId: string, code: string): void {
    const key = `${account}\n${peerId}`;
    this.#codes.delete(key);
    this.#codes.set(key, { code, until: Date.now() + PAIRING_CODE_KEPT_MS });
    for (const old of this.#codes.keys()) {
      if (this.#codes.size <= PAIRING_CODES_KEPT) break;
      this.#codes.delete(old);
    }
  }

  /** The code kept for `peerId` joining `account`, while it has not expired. */
  lookup(account: string, peerId: string): string | undefined {
    const key = `${account}\n${peerId}`;
    const held = this.#codes.get(key);
    if (held === undefined) return undefined;
    if (held.until < Date.now()) {
      this.#codes.delete(key);
      return undefined;
    }
    return held.code;
  }
}
