// The refusal log bounds what a flood of refused ops writes: a few lines a window in full, then one summary.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HomeLogger } from './ports.js';
import { RefusalLog, type Refusal } from './refusal-log.js';

function recorder(): { logger: HomeLogger; lines: Array<{ msg: string; fields: Record<string, unknown> }> } {
  const lines: Array<{ msg: string; fields: Record<string, unknown> }> = [];
  const at = (fields: Record<string, unknown>, msg: string): void => void lines.push({ msg, fields });
  return { logger: { debug: at, info: at, warn: at, error: at }, lines };
}

const refusal = (peerId: string, code: string, n = 0): Refusal => ({
  account: 'a'.repeat(64),
  peerId,
  code,
  detail: `op ${n}`,
});

describe('RefusalLog', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('writes the first refusals of a window whole and the rest as one summary when the window ends', () => {
    const { logger, lines } = recorder();
    const log = new RefusalLog(logger, { windowMs: 1_000, linesPerWindow: 2 });
    for (let i = 0; i < 1_000; i++)
      log.record(refusal(i % 2 === 0 ? 'peerA' : 'peerB', i < 600 ? 'pending_full' : 'revoked', i));
    expect(lines.map((l) => l.msg)).toEqual(['sync rejected', 'sync rejected']);
    expect(lines[0]!.fields).toEqual({
      account: 'a'.repeat(64),
      peerId: 'peerA',
      code: 'pending_full',
      detail: 'op 0',
    });

    vi.advanceTimersByTime(1_000);
    expect(lines).toHaveLength(3);
    expect(lines[2]!.msg).toBe('sync rejected (summary)');
    expect(lines[2]!.fields).toMatchObject({
      suppressed: 998,
      codes: { pending_full: 598, revoked: 400 },
      peers: { peerA: 499, peerB: 499 },
      windowMs: 1_000,
    });

    // A new window writes whole lines again; a quiet window writes nothing.
    log.record(refusal('peerC', 'bad_signature'));
    expect(lines[3]!.fields['peerId']).toBe('peerC');
    vi.advanceTimersByTime(5_000);
    expect(lines).toHaveLength(4);
  });

  it('never writes quiet codes whole, and close() writes what the window held back', () => {
    const { logger, lines } = recorder();
    const log = new RefusalLog(logger, { quiet: ['NOT_A_HOME'] });
    log.record(refusal('stranger', 'NOT_A_HOME'));
    log.record(refusal('__proto__', 'NOT_A_HOME'));
    expect(lines).toEqual([]);
    log.close();
    expect(lines).toHaveLength(1);
    expect(lines[0]!.fields).toMatchObject({ suppressed: 2, codes: { NOT_A_HOME: 2 } });
    expect(Object.keys(lines[0]!.fields['peers'] as object).sort()).toEqual(['__proto__', 'stranger']);
    log.close();
    expect(lines).toHaveLength(1);
  });
});
