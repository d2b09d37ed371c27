import type { EventLookup, Pdu } from './types.js';

/**
 * An `EventLookup` that remembers what it was asked, so one state resolution reads each event from the store
 * at most once however many of its steps need it. Events that are not held are remembered as absent too.
 * Lives for one call: a store's events do not change, but it may learn new ones between calls.
 */
export class EventCache implements EventLookup {
  private readonly known = new Map<string, Pdu | null>();

  constructor(private readonly lookup: EventLookup) {}

  /** Reads from the store, in one batch, the events among `eventIds` not asked for before. */
  async load(eventIds: Iterable<string>): Promise<void> {
    const wanted = [...new Set(eventIds)].filter((id) => !this.known.has(id));
    if (wanted.length === 0) return;
    const found = await this.lookup.getEvents(wanted);
    for (const id of wanted) this.known.set(id, found.get(id) ?? null);
  }

  async getEvents(eventIds: readonly string[]): Promise<ReadonlyMap<string, Pdu>> {
    await this.load(eventIds);
    const result = new Map<string, Pdu>();
    for (const id of eventIds) {
      const pdu = this.known.get(id);
      if (pdu) result.set(id, pdu);
    }
    return result;
  }

  /** The event if it was loaded and is held; undefined otherwise. */
  peek(eventId: string): Pdu | undefined {
    return this.known.get(eventId) ?? undefined;
  }

  /** The event, read from the store if not loaded yet; undefined when not held. */
  async get(eventId: string): Promise<Pdu | undefined> {
    await this.load([eventId]);
    return this.peek(eventId);
  }
}
