import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { isLazyNamespace } from '@polyhome/sync';
import { MATRIX_HOME_PORT, MATRIX_STORE, type MatrixHomePort, type MatrixStore } from '../port.js';

/**
 * This home's change stream for /sync: every state change the port reports (local or from another home) is
 * appended to the store, then long-polling /sync requests of that account are woken (and when the room engine
 * stores events in the account's rooms). A device deleted
 * anywhere loses its tokens and local keys here.
 */
@Injectable()
export class ChangeFeedService implements OnModuleInit {
  private readonly logger = new Logger('MatrixChangeFeed');
  private readonly waiters = new Map<string, Set<() => void>>();
  // Appends are chained so positions are handed out in the order changes were reported.
  private tail: Promise<void> = Promise.resolve();

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

  /** Appends local-only changes (one-time keys, room events) and wakes waiters, as the port's changes do. */
  async record(serverName: string, keys: string[]): Promise<void> {
    const run = this.tail.then(async () => {
      try {
        await this.store.recordChanges(serverName, keys);
        await this.dropDeletedDevices(serverName, keys);
      } catch (err) {
        this.logger.error(`recording changes of ${serverName} failed: ${String(err)}`);
      }
      this.wake(serverName);
    });
    this.tail = run;
    await run;
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

  private wake(serverName: string): void {
    for (const wake of this.waiters.get(serverName) ?? []) wake();
  }

  private async dropDeletedDevices(serverName: string, keys: string[]): Promise<void> {
    const devices = keys.filter((k) => k.startsWith('device:')).map((k) => k.slice('device:'.length));
    if (devices.length === 0) return;
    const state = await this.port.state(serverName);
    const gone = devices.filter((id) => state.devices[id] === undefined);
    if (gone.length === 0) return;
    await this.store.deleteDeviceTokens(serverName, gone);
    for (const id of gone) await this.store.deleteDeviceKeys(serverName, id);
  }
}
