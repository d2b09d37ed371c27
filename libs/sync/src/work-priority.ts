import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

// Marks the async work of sync sessions (received ops applied, acks, what they send) so that a store with one
// session (the embedded database) can serve a client's request before the next batch of replication.
const replication = new AsyncLocalStorage<true>();

/** Runs `work`, and everything it starts, as replication: it yields the embedded database to other work. */
export function asReplicationWork<T>(work: () => T): T {
  return replication.run(true, work);
}

/** Runs `work` as ordinary work even when called from replication (what clients wait on: the /sync feed). */
export function outsideReplicationWork<T>(work: () => T): T {
  return replication.exit(work);
}

/** True inside `asReplicationWork`. */
export function isReplicationWork(): boolean {
  return replication.getStore() === true;
}

/**
 * While clients' requests are being worked on, batches of received ops take at most this share of the wall time
 * (one batch at a time, each followed by a pause of (1 / share - 1) times its own duration). With no request in
 * flight they run as they come. A floor, so replication is slowed under client load, never starved.
 */
export const REPLICATION_SHARE_UNDER_CLIENT_LOAD = 0.2;

/** A pause between two batches under client load never exceeds this, whatever the batch before it took. */
export const MAX_REPLICATION_PAUSE_MS = 1_000;

/**
 * The process's one gate between clients' requests and the batches of ops that sync sessions apply. While any
 * client's request is in flight (counted by the HTTP middleware every app mounts), batches run one at a time and
 * each is followed by a pause of (1 / REPLICATION_SHARE_UNDER_CLIENT_LOAD - 1) times its own duration: a batch
 * that arrives meanwhile waits for its turn, and requests share the process with at most that share of
 * replication. With no request in flight, every waiting batch goes and batches run side by side as they come.
 * Module state, like the replication mark above: the work it orders shares one event loop.
 */
class ReplicationGate {
  #clients = 0;
  #running = 0;
  #nextTurnAt = 0;
  #waiters: Array<() => void> = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stats = { batches: 0, waited: 0, waitedMs: 0 };

  /** A client's request is being worked on until the returned function is called (once; later calls do nothing). */
  beginClientWork(): () => void {
    this.#clients++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#clients--;
      this.#admit();
    };
  }

  /**
   * Awaits `promise` as a request that is not being worked on meanwhile (a /sync long poll waiting for a change):
   * replication is not held back for it. Only inside counted client work.
   */
  async idleWhile<T>(promise: Promise<T>): Promise<T> {
    if (this.#clients <= 0) return promise;
    this.#clients--;
    this.#admit();
    try {
      return await promise;
    } finally {
      this.#clients++;
    }
  }

  /** Runs one batch of replication when it is its turn (at once when no client's request is in flight). */
  async turn<T>(work: () => Promise<T>): Promise<T> {
    if (this.#clients > 0 || this.#waiters.length > 0) {
      const since = performance.now();
      let atOnce = true;
      // #admit counts the batch as running when it lets it go, before this continues.
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        this.#admit();
        atOnce = !this.#waiters.includes(resolve);
      });
      if (!atOnce) {
        this.#stats.waited++;
        this.#stats.waitedMs += performance.now() - since;
      }
    } else {
      this.#running++;
    }
    this.#stats.batches++;
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.#running--;
      const took = performance.now() - started;
      if (this.#clients > 0) {
        const pause = Math.min(MAX_REPLICATION_PAUSE_MS, took * (1 / REPLICATION_SHARE_UNDER_CLIENT_LOAD - 1));
        this.#nextTurnAt = Math.max(this.#nextTurnAt, performance.now() + pause);
      }
      this.#admit();
    }
  }

  /** Batches run so far, how many waited for their turn, and how long they waited in all (for /metrics). */
  stats(): { batches: number; waited: number; waitedMs: number } {
    return { ...this.#stats };
  }

  #admit(): void {
    // No client is waiting on anything: the next load starts afresh, and every waiting batch goes.
    if (this.#clients <= 0) this.#nextTurnAt = 0;
    if (this.#waiters.length === 0) return;
    if (this.#clients <= 0) {
      for (const resolve of this.#waiters.splice(0)) {
        this.#running++;
        resolve();
      }
      return;
    }
    if (this.#running > 0) return; // the batch under way re-admits when it ends
    const wait = this.#nextTurnAt - performance.now();
    if (wait <= 0) {
      this.#running++;
      this.#waiters.shift()!();
      return;
    }
    // One timer, for the next turn as it stands now.
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#admit();
    }, Math.ceil(wait));
    this.#timer.unref();
  }
}

const gate = new ReplicationGate();

/** Counts a client's request as in flight until the returned function is called. See ReplicationGate. */
export function beginClientWork(): () => void {
  return gate.beginClientWork();
}

/** Awaits `promise` without holding replication back (a long poll's wait for a change). */
export function clientIdleWhile<T>(promise: Promise<T>): Promise<T> {
  return gate.idleWhile(promise);
}

/** Runs a batch of received ops when it is replication's turn (see ReplicationGate). */
export function replicationTurn<T>(work: () => Promise<T>): Promise<T> {
  return gate.turn(work);
}

/** The gate's counters so far (batches, how many waited, milliseconds waited in all). */
export function replicationGateStats(): { batches: number; waited: number; waitedMs: number } {
  return gate.stats();
}
