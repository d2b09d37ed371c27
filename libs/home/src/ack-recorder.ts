import { joinVectors, type VersionVector } from '@polyhome/sync';

/**
 * Writes what peers acknowledged, one write at a time per (account, peer): vectors that arrive while a write runs
 * are merged (highest seq per origin) and written once it ends. A burst of acks and received batches from one peer
 * costs one transaction per write round, not one per frame; no vector is dropped, since the store's merge is
 * monotonic too. At most `maxQueued` (account, peer) pairs wait at once; past that a vector is written at once.
 */
export class AckRecorder {
  readonly #running = new Map<string, { next: VersionVector | undefined }>();

  constructor(
    private readonly write: (account: string, peerId: string, vv: VersionVector) => Promise<void>,
    private readonly track: (work: Promise<unknown>) => void,
    private readonly maxQueued = 10_000,
  ) {}

  /** Records `vv` as held by `peerId` for `account`. */
  record(account: string, peerId: string, vv: VersionVector): void {
    const key = `${account} ${peerId}`;
    const running = this.#running.get(key);
    if (running !== undefined) {
      running.next = joinVectors(running.next ?? {}, vv);
      return;
    }
    if (this.#running.size >= this.maxQueued) {
      this.track(this.write(account, peerId, vv));
      return;
    }
    const state: { next: VersionVector | undefined } = { next: undefined };
    this.#running.set(key, state);
    const rounds = async (): Promise<void> => {
      let current: VersionVector | undefined = vv;
      try {
        while (current !== undefined) {
          await this.write(account, peerId, current);
          current = state.next;
          state.next = undefined;
        }
      } finally {
        this.#running.delete(key);
      }
    };
    this.track(rounds());
  }
}
