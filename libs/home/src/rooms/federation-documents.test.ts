import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AccountDocument } from '@polyhome/identity';
import { FederationDocuments } from './federation-documents.js';

// Hosted documents are read through a cache of HOSTED_TTL_MS (1 s); what has expired must not stay held.
describe('FederationDocuments: hosted documents held in memory', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reuses a hosted document within a second, and holds only those read in the last second', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const reads: string[] = [];
    const hosted = {
      document: async (serverName: string): Promise<AccountDocument | undefined> => {
        reads.push(serverName);
        return { user_id: `@u:${serverName}`, homes: [] } as unknown as AccountDocument;
      },
    };
    const store = { foreignDocument: async () => null, putForeignDocument: async () => undefined };
    const documents = new FederationDocuments(hosted, store);
    for (let i = 0; i < 100; i++) await documents.document(`a${i}`);
    expect(documents.hostedHeld).toBe(100);
    await documents.document('a0');
    expect(reads).toHaveLength(100);
    vi.setSystemTime(1_000_000 + 1_500);
    // One read after the others expired: only it is held.
    await documents.document('b');
    expect(documents.hostedHeld).toBe(1);
    await documents.document('a0');
    expect(reads).toHaveLength(102);
    expect(documents.hostedHeld).toBe(2);
  });
});
