// The HTTP/1.1 framing of /polyhome/federation/1.0.0 on its own: heads parsed or refused, and the depth scan.
import { describe, expect, it } from 'vitest';
import {
  encodeRequest,
  encodeResponse,
  jsonDepthExceeds,
  parseRequestHead,
  parseResponseHead,
  WireRefusal,
} from './federation-codec.js';

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const headOf = (bytes: Uint8Array): string => text(bytes).split('\r\n\r\n')[0]!;

function refusal(head: string): WireRefusal {
  try {
    parseRequestHead(head);
  } catch (err) {
    if (err instanceof WireRefusal) return err;
    throw err;
  }
  throw new Error(`accepted: ${head}`);
}

describe('federation framing', () => {
  it('round-trips a request head and an answer head, with the body length in bytes', () => {
    const body = new TextEncoder().encode('{"body":"héllo ✓"}');
    const request = encodeRequest('PUT', '/_matrix/federation/v1/send/t1?a=1', body);
    expect(parseRequestHead(headOf(request))).toEqual({
      method: 'PUT',
      target: '/_matrix/federation/v1/send/t1?a=1',
      contentLength: body.byteLength,
      headers: new Map([
        ['content-type', 'application/json'],
        ['content-length', String(body.byteLength)],
      ]),
    });
    expect(text(request).endsWith('{"body":"héllo ✓"}')).toBe(true);
    expect(parseRequestHead(headOf(encodeRequest('GET', '/x', undefined))).contentLength).toBe(0);
    const answer = encodeResponse(404, body);
    expect(parseResponseHead(headOf(answer), (r) => new Error(r))).toMatchObject({
      status: 404,
      contentLength: body.byteLength,
    });
  });

  it('refuses heads that are not one plain HTTP/1.1 request', () => {
    expect(refusal('GET /x HTTP/1.0').status).toBe(400);
    expect(refusal('get /x HTTP/1.1').status).toBe(400);
    expect(refusal('GET http://evil/x HTTP/1.1').status).toBe(400);
    expect(refusal('GET /x y HTTP/1.1').status).toBe(400);
    expect(refusal('PUT /x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6').message).toMatch(/repeated/);
    expect(refusal('PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked').message).toMatch(/Content-Length/);
    expect(refusal('PUT /x HTTP/1.1\r\nContent-Length: -1').status).toBe(400);
    expect(refusal('PUT /x HTTP/1.1\r\nno colon here').status).toBe(400);
    expect(parseRequestHead('PUT /x HTTP/1.1\r\ncontent-length:  12 \r\nX-Other: y').contentLength).toBe(12);
  });

  it('refuses answers without a status line or a Content-Length', () => {
    const fail = (reason: string): Error => new Error(reason);
    expect(() => parseResponseHead('HTTP/1.1 200 OK', fail)).toThrow(/Content-Length/);
    expect(() => parseResponseHead('SPDY/9 200', fail)).toThrow(/status line/);
  });

  it('measures nesting outside strings only, escapes included', () => {
    expect(jsonDepthExceeds('[[[]]]', 3)).toBe(false);
    expect(jsonDepthExceeds('[[[[]]]]', 3)).toBe(true);
    expect(jsonDepthExceeds('{"a":"[[[[[[","b":{"c":[1]}}', 3)).toBe(false);
    expect(jsonDepthExceeds('{"a":"\\"[[[[","b":1}', 1)).toBe(false);
    expect(jsonDepthExceeds('{"a":"\\\\","b":[[[1]]]}', 3)).toBe(true);
  });
});
