import type { HomeLogger } from './ports.js';

/**
 * Work started without a caller to wait for it (acks written, dials, adoption): failures are logged, and
 * `settle()` waits for what is running, so it lands before the database closes.
 */
export class BackgroundWork {
  readonly #inFlight = new Set<Promise<unknown>>();
  #stopping = false;

  constructor(private readonly logger: HomeLogger) {}

  /** Runs `work` in the background. */
  track(work: Promise<unknown>, what: string): void {
    const tracked = work
      .catch((err: unknown) => {
        if (!this.#stopping) this.logger.warn({ err: (err as Error)?.message ?? String(err) }, `${what} failed`);
      })
      .finally(() => this.#inFlight.delete(tracked));
    this.#inFlight.add(tracked);
  }

  /** How many are running. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** Waits for everything running; later failures are not logged (the home is stopping). */
  async settle(): Promise<void> {
    this.#stopping = true;
    await Promise.allSettled([...this.#inFlight]);
  }
}
