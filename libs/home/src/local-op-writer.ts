import type { SecretKey } from '@polyhome/identity';
import { createOp, OpRejectedError, type Op, type OpKind } from '@polyhome/sync';
import type { LocalOpStore } from './ports.js';
import { KeyedQueue } from './keyed-queue.js';

/** A change to an account's replicated state, to be signed as an op of this home. */
export interface LocalChange {
  op: OpKind;
  key: string;
  body: Record<string, unknown>;
}

/** Thrown when the store refuses a local change (the op validator's reason); nothing of the batch was applied. */
export class LocalChangeRefusedError extends Error {
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super(`Change refused: ${reason}: ${detail}`);
    this.name = 'LocalChangeRefusedError';
  }
}

/**
 * Signs changes as ops of this home and stores them, one batch after another per account. Each batch takes the
 * next seq from the database, so two batches running at once would sign two different ops with the same seq
 * (an equivocation by this home). Only one process signs as a home (each has its own node key), so queueing in
 * memory is enough. The Home runs it; neither app signs ops itself.
 */
export class LocalOpWriter {
  readonly #queue = new KeyedQueue();

  constructor(
    private readonly store: LocalOpStore,
    private readonly origin: string,
    private readonly nodeKey: SecretKey,
  ) {}

  /** Signs and stores a batch; resolves with its ops, or throws LocalChangeRefusedError and applies none. */
  write(account: string, changes: readonly LocalChange[]): Promise<Op[]> {
    return this.#queue.run(account, () => this.#writeNow(account, changes));
  }

  async #writeNow(account: string, changes: readonly LocalChange[]): Promise<Op[]> {
    const ctx = await this.store.localOpContext(account, this.origin);
    const ops = changes.map((change, i) =>
      signed(
        {
          account,
          origin: this.origin,
          seq: ctx.seq + i,
          lamport: ctx.lamport + i,
          doc_seq: ctx.docSeq,
          ts: Date.now(),
          op: change.op,
          key: change.key,
          body: change.body,
        },
        this.nodeKey,
      ),
    );
    const result = await this.store.applyOps(account, ops, this.origin);
    if (result.accepted.length !== ops.length) {
      const rejected = result.rejected[0];
      throw new LocalChangeRefusedError(rejected?.reason ?? 'not_applied', rejected?.detail ?? 'not applied');
    }
    return ops;
  }
}

// createOp checks the op as the validator would; a malformed change is refused like one the store refuses.
function signed(...args: Parameters<typeof createOp>): Op {
  try {
    return createOp(...args);
  } catch (err) {
    if (err instanceof OpRejectedError) throw new LocalChangeRefusedError(err.reason, err.detail);
    throw err;
  }
}
