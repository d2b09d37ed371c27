import type { AccountDocument } from '@polyhome/identity';
import type { SyncEvents } from '@polyhome/p2p';

/** The events of a Home, by name. */
export interface HomeEventMap {
  /** An account's state changed here, by a local op or ops from a peer: the state keys touched (`device:ABC`). */
  changed: { account: string; keys: string[] };
  /**
   * Data of an account kept only on this home changed without a client of it asking (one-time keys claimed by
   * another home): the keys touched, as `changed` names them (`keys:ABC`). Not replicated.
   */
  'local-changed': { account: string; keys: string[] };
  /** Ops were accepted from a peer. */
  applied: SyncEvents['applied'];
  /** A peer's op, document or session was refused. */
  rejected: SyncEvents['rejected'];
  /** A peer brought a second document of the seq in force, signed by the root key (once per pair): see SyncEvents. */
  equivocation: SyncEvents['equivocation'];
  /** An account is newly hosted or its document changed; `peerId` and `document` when a peer brought it. */
  document: { account: string; peerId?: string; document?: AccountDocument };
  /** An account was taken in from a home that named this one (see Home.adopt). */
  adopted: { account: string; peerId: string; document: AccountDocument };
  /**
   * An account offered to this empty home was not taken in (`reason`: `no-code` this home has none, `no-proof`
   * the offering home proved none, `wrong-proof` it proved a wrong one).
   */
  'adoption-refused': { account: string; peerId: string; reason: string };
  /**
   * A tick of the republish schedule: the slots due and the accounts republished; `skipped` says why none was
   * tried (no peer in the DHT routing table).
   */
  republish: { slots: number[]; accounts: string[]; skipped?: 'no DHT peers' };
  /** A peer connected; `peers` is the number connected now. */
  'peer:connect': { peerId: string; peers: number };
  /** A peer disconnected; `peers` is the number connected now. */
  'peer:disconnect': { peerId: string; peers: number };
}

type Listener<K extends keyof HomeEventMap> = (detail: HomeEventMap[K]) => void;

/** A typed event emitter; a listener that throws does not keep the others from running. */
export class HomeEvents {
  readonly #listeners = new Map<keyof HomeEventMap, Set<(detail: never) => void>>();

  /** Subscribes; returns the unsubscribe function. */
  on<K extends keyof HomeEventMap>(event: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(event);
    if (set === undefined) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (detail: never) => void);
    return () => set.delete(listener as (detail: never) => void);
  }

  /** Calls every listener of `event` with `detail`. */
  emit<K extends keyof HomeEventMap>(event: K, detail: HomeEventMap[K]): void {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      (listener as Listener<K>)(detail);
    }
  }
}
