import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { replicationTurn } from '@polyhome/sync';
import { describe, expect, it } from 'vitest';
import { matrixHttp } from './matrix-http.js';

/** A response with what the middleware touches; `close` is emitted by the test. */
function response(): EventEmitter & { statusCode: number; setHeader(): void; end(): void } {
  return Object.assign(new EventEmitter(), { statusCode: 200, setHeader: () => undefined, end: () => undefined });
}

describe('matrixHttp counts Matrix requests as clients in flight for the replication gate', () => {
  it('holds a batch under client load until the open Matrix request is closed; other paths do not count', async () => {
    const middleware = matrixHttp();
    const log: string[] = [];
    const admin = response();
    middleware({ method: 'GET', url: '/admin/v1/stats' }, admin, () => undefined);
    const matrix = response();
    middleware({ method: 'GET', url: '/_matrix/client/v3/joined_rooms' }, matrix, () => undefined);
    // A batch of 300 ms under that request's load earns the next one a pause longer than the test waits.
    await replicationTurn(async () => {
      await sleep(300);
      log.push('first');
    });
    const second = replicationTurn(async () => {
      log.push('second');
    });
    await sleep(50);
    expect(log).toEqual(['first']);
    // The admin request is still open, but is not a client's: the batch goes at once, not after its pause.
    matrix.emit('close');
    await sleep(20);
    expect(log).toEqual(['first', 'second']);
    await second;
    admin.emit('close');
  });
});
