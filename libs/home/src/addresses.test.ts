// Home targets and body-parser refusals: the one parsing and the one mapping both apps use.
import { makeHome } from '@polyhome/sync/testing';
import { describe, expect, it } from 'vitest';
import { parseHomeTarget, peerIdOfMultiaddr } from './addresses.js';
import { HomeAddressError } from './errors.js';
import { jsonTextDepth } from '@polyhome/identity';
import { bodyParserError, jsonDepthCheck, MAX_JSON_DEPTH } from './http-errors.js';

const peer = makeHome('libs-home:addresses').peerId;

function reasonOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (err) {
    return err instanceof HomeAddressError ? err.reason : `other: ${(err as Error).message}`;
  }
}

describe('home targets', () => {
  it('takes the PeerId from the last /p2p/ component of a multiaddr', () => {
    const address = `/ip4/127.0.0.1/tcp/4001/p2p/${peer}`;
    expect(peerIdOfMultiaddr(address)).toBe(peer);
    expect(parseHomeTarget(address, 'server')).toEqual({ peerId: peer, address });
  });

  it('takes a bare PeerId for a client home only', () => {
    expect(parseHomeTarget(peer, 'client')).toEqual({ peerId: peer });
    expect(reasonOf(() => parseHomeTarget(peer, 'server'))).toBe('server_needs_address');
  });

  it('refuses what is neither, saying why', () => {
    expect(reasonOf(() => parseHomeTarget('not-a-peer', 'client'))).toBe('not_peer_id');
    expect(reasonOf(() => parseHomeTarget('/ip4/999.1.1.1/tcp/1', 'client'))).toBe('not_multiaddr');
    expect(reasonOf(() => parseHomeTarget('/ip4/127.0.0.1/tcp/4001', 'client'))).toBe('no_peer_id');
  });
});

describe('bodyParserError', () => {
  it('maps body-parser refusals, bare or as the cause of a wrapping error, to Matrix errcodes', () => {
    expect(bodyParserError({ type: 'entity.parse.failed', status: 400 })).toMatchObject({
      status: 400,
      errcode: 'M_NOT_JSON',
    });
    const tooLarge = Object.assign(new Error('wrapped'), { cause: { type: 'entity.too.large', status: 413 } });
    expect(bodyParserError(tooLarge)).toMatchObject({ status: 413, errcode: 'M_TOO_LARGE' });
    expect(bodyParserError({ type: 'charset.unsupported', status: 415 })).toMatchObject({
      status: 415,
      errcode: 'M_NOT_JSON',
    });
    expect(bodyParserError({ type: 'request.aborted', status: 400 })).toMatchObject({ status: 400 });
  });

  it('leaves everything else to the caller', () => {
    expect(bodyParserError(new Error('boom'))).toBeUndefined();
    expect(bodyParserError({ type: 'stream.not.readable', status: 500 })).toBeUndefined();
    expect(bodyParserError(null)).toBeUndefined();
  });
});

describe('jsonDepthCheck', () => {
  const text = (json: string): Uint8Array => new TextEncoder().encode(json);
  const deep = (depth: number): Uint8Array => text(`${'['.repeat(depth)}${']'.repeat(depth)}`);

  it('measures nesting from the bytes, skipping strings, stopping past the limit', () => {
    expect(jsonTextDepth(text('1'), 64)).toBe(0);
    expect(jsonTextDepth(text('{"a":[{"b":{}}],"c":1}'), 64)).toBe(4);
    // Brackets, escaped quotes and multi-byte characters inside strings are not structure.
    expect(jsonTextDepth(text('{"a":"[[[{{{\\"\\"]]]","é[":["ü"]}'), 64)).toBe(2);
    expect(jsonTextDepth(text(JSON.stringify({ a: '\\"[[[' }) + ''), 64)).toBe(1);
    expect(jsonTextDepth(deep(100_000), 64)).toBe(65);
  });

  it('agrees with the depth of the parsed value on what JSON.stringify writes', () => {
    const depthOf = (v: unknown): number =>
      typeof v !== 'object' || v === null ? 0 : 1 + Math.max(0, ...Object.values(v).map(depthOf));
    const values: unknown[] = [
      { a: [{ b: { c: ['x]"\\', { d: [] }] } }], e: '{{' },
      ['"', '\\', '\\"', ['[', [']]]']]],
      { 'k[': { '"}': 'é{', ü: [[[]]] } },
    ];
    for (const value of values) expect(jsonTextDepth(text(JSON.stringify(value)), 64)).toBe(depthOf(value));
  });

  it('passes a body at the limit, and refuses a deeper one as 400 M_BAD_JSON', () => {
    const check = jsonDepthCheck();
    expect(() => check({}, {}, deep(MAX_JSON_DEPTH))).not.toThrow();
    let refused: unknown;
    try {
      check({}, {}, deep(MAX_JSON_DEPTH + 1));
    } catch (error) {
      refused = error;
    }
    expect(bodyParserError(refused)).toMatchObject({ status: 400, errcode: 'M_BAD_JSON' });
  });
});
