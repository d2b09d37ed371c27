/** The queues this server uses: outbound delivery to other homes, and DHT publishing. */
export const SERVER_QUEUES = ['delivery', 'dht'] as const;

/** A queue name the server uses. */
export type ServerQueueName = (typeof SERVER_QUEUES)[number];

/**
 * The names of the queues this process uses, so the admin API and the metrics can report every queue, even
 * one that is empty or has no processor yet. The queue backend cannot list its queues itself (BullMQ would
 * have to scan Redis keys), so they are declared here.
 */
export class QueueRegistry {
  readonly #names = new Set<string>(SERVER_QUEUES);

  /** Adds a queue a module creates beyond the declared ones; adding a known name again is a no-op. */
  register(name: string): void {
    // The queue library's rule for names (they become Redis keys); checked here so a bad name fails at boot.
    if (!/^[A-Za-z0-9._-]{1,256}$/.test(name)) throw new Error(`Invalid queue name "${name}"`);
    this.#names.add(name);
  }

  /** Every registered name, sorted. */
  names(): string[] {
    return [...this.#names].sort();
  }
}
