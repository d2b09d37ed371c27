// The seam for media held by other homes: MediaService asks `fetchRemote` for what its store does not hold,
// serves what it returns with the same headers as local media, and refuses what is larger than the cap.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MatrixError } from '../common/errors.js';
import type { MatrixMediaStore, MatrixRemoteMedia } from './media-port.js';
import { MediaService } from './media.service.js';

/** A store that holds nothing: every download goes to the hook. */
const EMPTY_STORE: MatrixMediaStore = {
  insert: () => Promise.reject(new Error('not used')),
  reserve: () => Promise.reject(new Error('not used')),
  countReserved: () => Promise.resolve(0),
  putContent: () => Promise.resolve('not_found'),
  info: () => Promise.resolve(null),
  content: async function* () {},
};

describe('MediaService remote fetch hook', () => {
  const asked: Array<[string, string, number]> = [];
  const held = new Map<string, MatrixRemoteMedia>([
    ['small', { contentType: 'text/plain', fileName: 'far.txt', bytes: Buffer.from('from another home') }],
    ['huge', { contentType: 'text/plain', fileName: null, bytes: Buffer.alloc(2048) }],
  ]);
  const service = new MediaService({
    store: EMPTY_STORE,
    maxUploadBytes: 1024,
    fetchRemote: (serverName, mediaId, maxBytes) => {
      asked.push([serverName, mediaId, maxBytes]);
      return Promise.resolve(held.get(mediaId) ?? null);
    },
  });
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const [, serverName, mediaId] = (req.url ?? '').split('/');
      service.download(serverName!, mediaId!, undefined, res).catch((err: unknown) => {
        const e = err as MatrixError;
        res.statusCode = e.status;
        res.end(JSON.stringify({ errcode: e.errcode }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('serves media another home holds, with the download headers', async () => {
    const res = await fetch(`${base}/other.example/small`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('from another home');
    expect(res.headers.get('content-disposition')).toBe('inline; filename="far.txt"');
    expect(res.headers.get('content-security-policy')).toMatch(/^sandbox;/);
    expect(asked).toContainEqual(['other.example', 'small', 1024]);
  });

  it('answers 404 when no home has it, and 502 M_TOO_LARGE past the cap', async () => {
    const missing = await fetch(`${base}/other.example/none`);
    expect([missing.status, await missing.json()]).toEqual([404, { errcode: 'M_NOT_FOUND' }]);
    const huge = await fetch(`${base}/other.example/huge`);
    expect([huge.status, await huge.json()]).toEqual([502, { errcode: 'M_TOO_LARGE' }]);
  });

  it('is not asked for names that are not mxc names', async () => {
    const before = asked.length;
    await expect(service.download('other.example', 'a.b', undefined, undefined as never)).rejects.toThrow(MatrixError);
    expect(asked.length).toBe(before);
  });
});
