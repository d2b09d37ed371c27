/**
 * Runs tasks one at a time per key (an account, a room id), in the order they were queued; tasks of different keys run
 * concurrently. A failed task does not stop the next. Keys are dropped once their queue is empty, so the map
 * holds only keys with work under way.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  /** Queues `task` behind the tasks of `key` and resolves (or rejects) with its outcome. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }
}
