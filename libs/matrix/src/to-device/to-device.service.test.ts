import { describe, expect, it } from 'vitest';
import { parseSyncPosition, syncToken } from '../sync/sync-token.js';
import { MAX_TO_DEVICE_MESSAGES, parseToDeviceMessages } from './to-device.service.js';

describe('sendToDevice bodies', () => {
  it('takes user IDs to device IDs (or *) to content objects', () => {
    const parsed = parseToDeviceMessages({ messages: { '@a:x': { D1: { k: 1 }, '*': {} }, '@b:y': {} } });
    expect([...parsed.keys()]).toEqual(['@a:x']);
    expect(Object.fromEntries(parsed.get('@a:x')!)).toEqual({ D1: { k: 1 }, '*': {} });
  });

  it('refuses what is not messages, with the spec error', () => {
    const refuse = (body: unknown) => {
      try {
        parseToDeviceMessages(body);
      } catch (err) {
        return (err as { errcode: string }).errcode;
      }
      return 'taken';
    };
    expect(refuse({})).toBe('M_MISSING_PARAM');
    expect(refuse({ messages: [] })).toBe('M_BAD_JSON');
    expect(refuse({ messages: { 'not a user': {} } })).toBe('M_INVALID_PARAM');
    expect(refuse({ messages: { '@a:x': [] } })).toBe('M_BAD_JSON');
    expect(refuse({ messages: { '@a:x': { D: 'text' } } })).toBe('M_BAD_JSON');
    expect(refuse({ messages: { '@a:x': { 'D\n': {} } } })).toBe('M_INVALID_PARAM');
    expect(refuse({ messages: { '@a:x': { D: { big: 'x'.repeat(70_000) } } } })).toBe('M_TOO_LARGE');
    const many = Object.fromEntries(Array.from({ length: MAX_TO_DEVICE_MESSAGES + 1 }, (_, i) => [`D${i}`, {}]));
    expect(refuse({ messages: { '@a:x': many } })).toBe('M_TOO_LARGE');
  });
});

describe('sync tokens with a to-device position', () => {
  it('round-trips, and reads the older forms', () => {
    const full = { change: 1, room: 2, ephemeral: { receipt: 3, memory: 4 }, toDevice: 5 };
    expect(syncToken(full)).toBe('s1_2_3_4_d5');
    expect(parseSyncPosition('s1_2_3_4_d5', 'since')).toEqual(full);
    expect(parseSyncPosition('s1_2_3_4', 'since')).toEqual({
      change: 1,
      room: 2,
      ephemeral: { receipt: 3, memory: 4 },
    });
    expect(parseSyncPosition('s1_2', 'since')).toEqual({ change: 1, room: 2 });
    expect(parseSyncPosition('s1_d7', 'since')).toEqual({ change: 1, toDevice: 7 });
    expect(syncToken({ change: 1, toDevice: 7 })).toBe('s1_d7');
    expect(() => parseSyncPosition('s1_2_3_4_5', 'since')).toThrow();
  });
});
