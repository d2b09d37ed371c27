import {
  Inject,
  Injectable,
  Logger,
  type BeforeApplicationShutdown,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { isLazyNamespace } from '@polyhome/sync';
import { MATRIX_HOME_PORT, MATRIX_STORE, type MatrixHomePort, type MatrixStore } from '../port.js';

/** Keys written by one flush at most (whole accounts; an account with more is written alone). */
export const CHANGE_FEED_FLUSH_KEYS = 2_000;

/** Changes of one account waiting for the next flush, and the callers to answer once they are written. */
interface PendingChanges {
  keys: Set<string>;
  done: Array<() => void>;
  /** Its long-polls were woken once the store said a read would see the changes. */
  woken?: boolean;
}

/**
 * This home's change stream for /sync: every state change the port reports (local or from another home) is
 * appended to the store, then long-polling /sync requests of that account are woken (and when the room engine
 * stores events in the account's rooms). A device deleted anywhere loses its tokens and local keys here.
 *
 * Appends are group-committed: changes reported while a flush is being written wait for the next one, which
 * writes the changes of every account waiting in one transaction. So a burst of changes from many accounts costs
 * one transaction, not one each, and a request that records a change (a one-time key upload, a new room) waits
 * for at most the flush in progress and its own, not for every change reported before it.
 *
 * Long-polls are woken as soon as a read sent then sees the flush (the store says when: on the embedded database
 * that is before the commit, the reads then waiting for it), and they read what they answer from the store, so a
 * /sync never answers a position that is not written nor skips one.
 */
@Injectable()
export class ChangeFeedService implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('MatrixChangeFeed');
  private readonly waiters = new Map<string, Set<() => void>>();
  // Insertion order is the order accounts first reported a change since the last flush began.
  private pending = new Map<string, PendingChanges>();
  private flushing: Promise<void> | null = null;
  // Wake-ups (and the deleted-device clean-up before them) still running after their flush committed.
  private readonly settling = new Set<Promise<void>>();

  constructor(
    @Inject(MATRIX_HOME_PORT) private readonly port: MatrixHomePort,
    @Inject(MATRIX_STORE) private readonly store: MatrixStore,
  ) {}

  onModuleInit(): void {
    this.port.onChanged((serverName, keys) => {
      // Key backup (lazy namespaces) is not in /sync: thousands of keys would only flood the stream.
      const streamed = keys.filter((key) => !isLazyNamespace(key.slice(0, key.indexOf(':'))));
      if (streamed.length > 0) void this.record(serverName, streamed);
    });
    // Room events are not in the change stream (the room engine has its own): they only wake long-polls.
    this.port.rooms?.onRoomEvents((serverNames) => {
      for (const serverName of serverNames) this.wake(serverName);
    });
    // Nor are typing, receipts and presence (kept by the home's ephemeral port): they wake long-polls too.
    this.port.ephemeral?.onEphemeral((serverNames) => {
      for (const serverName of serverNames) this.wake(serverName);
    });
    // And to-device messages, kept by the home's to-device port.
    this.port.toDevice?.onToDevice((serverNames) => {
      for (const serverName of serverNames) this.wake(serverName);
    });
  }

  /**
   * Appends changes (the port's, and local-only ones: one-time keys, new rooms) and wakes the account's
   * long-polls. Resolves once they are written (or their write failed, which is logged) and waiters were woken.
   */
  record(serverName: string, keys: string[]): Promise<void> {
    if (keys.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let entry = this.pending.get(serverName);
      if (entry === undefined) {
        entry = { keys: new Set(), done: [] };
        this.pending.set(serverName, entry);
      }
      for (const key of keys) entry.keys.add(key);
      entry.done.push(resolve);
      this.startFlushing();
    });
  }

  /** Resolves once every change reported so far is written and its waiters woken. */
  async drain(): Promise<void> {
    while (this.flushing !== null || this.pending.size > 0 || this.settling.size > 0) {
      if (this.flushing === null && this.pending.size > 0) this.startFlushing();
      await Promise.all([this.flushing, ...this.settling]);
    }
  }

  // The home stops (and reports its last changes) in these hooks too; storage closes after them.
  async beforeApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.drain();
  }

  /**
   * Resolves when the account next changes, or after `ms`. Registered before the caller reads the stream, so
   * a change landing in between still wakes it.
   */
  waitForChange(serverName: string, ms: number): { promise: Promise<void>; cancel: () => void } {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wake: () => void = () => undefined;
    const promise = new Promise<void>((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });
    const set = this.waiters.get(serverName) ?? new Set<() => void>();
    set.add(wake);
    this.waiters.set(serverName, set);
    const cancel = (): void => {
      clearTimeout(timer);
      set.delete(wake);
      if (set.size === 0 && this.waiters.get(serverName) === set) this.waiters.delete(serverName);
      wake();
    };
    return { promise: promise.finally(cancel), cancel };
  }

  private startFlushing(): void {
    if (this.flushing !== null) return;
    this.flushing = this.flushAll().finally(() => {
      this.flushing = null;
      if (this.pending.size > 0) this.startFlushing();
    });
  }

  private async flushAll(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = this.takeBatch();
      await this.write(batch);
      for (const [serverName, entry] of batch) {
        const settled = this.settle(serverName, entry).finally(() => this.settling.delete(settled));
        this.settling.add(settled);
      }
    }
  }

  // Whole accounts, oldest first, up to CHANGE_FEED_FLUSH_KEYS keys (the first account always).
  private takeBatch(): Map<string, PendingChanges> {
    const batch = new Map<string, PendingChanges>();
    let size = 0;
    for (const [serverName, entry] of this.pending) {
      if (batch.size > 0 && size + entry.keys.size > CHANGE_FEED_FLUSH_KEYS) break;
      batch.set(serverName, entry);
      size += entry.keys.size;
    }
    for (const serverName of batch.keys()) this.pending.delete(serverName);
    return batch;
  }

  private async write(batch: Map<string, PendingChanges>): Promise<void> {
    const changes = new Map([...batch].map(([serverName, entry]) => [serverName, [...entry.keys]]));
    const readable = (serverNames: Iterable<string>) => (): void => {
      for (const serverName of serverNames) {
        const entry = batch.get(serverName);
        if (entry !== undefined) entry.woken = true;
        this.wake(serverName);
      }
    };
    if (changes.size > 1) {
      try {
        await this.store.recordChangesOf(changes, readable(changes.keys()));
        return;
      } catch {
        // One account's changes can fail the whole flush (one deleted meanwhile): each is written on its own then.
      }
    }
    for (const [serverName, keys] of changes) {
      try {
        await this.store.recordChangesOf(new Map([[serverName, keys]]), readable([serverName]));
      } catch (err) {
        this.logger.error(`recording changes of ${serverName} failed: ${String(err)}`);
      }
    }
  }

  // Long-polls not woken yet are woken now. A deleted device's tokens go after the long-polls woken sent their reads
  // (a turn of the event loop): they wait for nothing of it.
  private async settle(serverName: string, entry: PendingChanges): Promise<void> {
    if (entry.woken !== true) this.wake(serverName);
    await new Promise((resolve) => setImmediate(resolve));
    try {
      await this.dropDeletedDevices(serverName, [...entry.keys]);
    } catch (err) {
      this.logger.error(`dropping the tokens of deleted devices of ${serverName} failed: ${String(err)}`);
    }
    for (const done of entry.done) done();
  }

  private wake(serverName: string): void {
    for (const wake of this.waiters.get(serverName) ?? []) wake();
  }

  private async dropDeletedDevices(serverName: string, keys: string[]): Promise<void> {
    const devices = keys.filter((k) => k.startsWith('device:')).map((k) => k.slice('device:'.length));
    if (devices.length === 0) return;
    const gone = await this.deletedDevices(serverName, devices);
    if (gone.length === 0) return;
    await this.store.deleteDeviceTokens(serverName, gone);
    for (const id of gone) await this.store.deleteDeviceKeys(serverName, id);
  }

  // Reads only the device rows asked about where the port can (one device: its own rows), else the whole state.
  private async deletedDevices(serverName: string, devices: string[]): Promise<string[]> {
    if (this.port.stateRows === undefined) {
      const state = await this.port.state(serverName);
      return devices.filter((id) => state.devices[id] === undefined);
    }
    const rows = await this.port.stateRows(serverName, 'device', devices.length === 1 ? devices[0] : '');
    const live = new Set(rows.filter((row) => row.value !== null).map((row) => row.key));
    return devices.filter((id) => !live.has(id));
  }
}
