// Refusals of a peer's ops, documents and sessions as log lines that a flood cannot multiply: the first few
// of each window are written whole (with their detail: what an operator reads to see why two homes do not
// agree), the rest are counted and written as one summary line when the window ends. Counting per reason is
// the metrics' job (the server's polyhome_ops_rejected_total); this bounds the log.
import type { HomeEventMap } from './events.js';
import type { HomeLogger } from './ports.js';

/** A refusal as the Home reports it (its `rejected` event). */
export type Refusal = HomeEventMap['rejected'];

/** Options of a RefusalLog. */
export interface RefusalLogInit {
  /** Length of a window (default 10 s). */
  windowMs?: number;
  /** Refusals written whole per window; the rest go into the summary (default 5). */
  linesPerWindow?: number;
  /** Refusals of these codes are counted but never written whole (a client home ignores strangers). */
  quiet?: readonly string[];
}

/** Default length of a window. */
export const REFUSAL_WINDOW_MS = 10_000;
/** Default number of refusals written whole per window. */
export const REFUSAL_LINES_PER_WINDOW = 5;

/** The summary of a window: how many refusals were not written whole, by code and by peer. */
export interface RefusalSummary {
  suppressed: number;
  codes: Record<string, number>;
  peers: Record<string, number>;
}

/**
 * Writes at most `linesPerWindow` refusals a window through `logger.warn` ('sync rejected', with account,
 * peer, code and detail), then one 'sync rejected (summary)' line for the rest when the window ends.
 * Memory is bounded by the number of distinct codes and peers of one window; `close()` writes what is left.
 */
export class RefusalLog {
  readonly #logger: HomeLogger;
  readonly #windowMs: number;
  readonly #linesPerWindow: number;
  readonly #quiet: ReadonlySet<string>;
  #written = 0;
  #suppressed: RefusalSummary = emptySummary();
  #timer: NodeJS.Timeout | undefined;

  constructor(logger: HomeLogger, init: RefusalLogInit = {}) {
    this.#logger = logger;
    this.#windowMs = init.windowMs ?? REFUSAL_WINDOW_MS;
    this.#linesPerWindow = init.linesPerWindow ?? REFUSAL_LINES_PER_WINDOW;
    this.#quiet = new Set(init.quiet ?? []);
  }

  /** Takes one refusal: written whole while the window has room, else counted for its summary. */
  record(refusal: Refusal): void {
    this.#startWindow();
    if (!this.#quiet.has(refusal.code) && this.#written < this.#linesPerWindow) {
      this.#written += 1;
      const { account, peerId, code, detail } = refusal;
      this.#logger.warn({ account, peerId, code, detail }, 'sync rejected');
      return;
    }
    const s = this.#suppressed;
    s.suppressed += 1;
    s.codes[refusal.code] = (s.codes[refusal.code] ?? 0) + 1;
    s.peers[refusal.peerId] = (s.peers[refusal.peerId] ?? 0) + 1;
  }

  /** Writes the summary of the current window (if anything was held back) and stops its timer. */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flush();
  }

  #startWindow(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, this.#windowMs);
    this.#timer.unref();
  }

  #flush(): void {
    const summary = this.#suppressed;
    this.#written = 0;
    this.#suppressed = emptySummary();
    if (summary.suppressed === 0) return;
    this.#logger.warn({ ...summary, windowMs: this.#windowMs }, 'sync rejected (summary)');
  }
}

function emptySummary(): RefusalSummary {
  // No prototype: codes and peer ids are a peer's strings ("__proto__" must stay a key).
  return {
    suppressed: 0,
    codes: Object.create(null) as Record<string, number>,
    peers: Object.create(null) as Record<string, number>,
  };
}
