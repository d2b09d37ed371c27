import { AsyncLocalStorage } from 'node:async_hooks';

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
