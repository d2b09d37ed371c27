// The content repository of a server home, on both backend pairs: uploads through matrix-js-sdk, downloads
// through the authenticated and the legacy endpoints (bytes, type, disposition, sandboxing headers, CORS),
// thumbnails of the requested size, /create then PUT, and bad input refused with nothing stored: uploads past
// MEDIA_MAX_BYTES (413 before the body is read), no body, bad ids and names, unknown media, no token.
import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { table } from '@polyhome/storage/testing';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import sharp, { type Sharp } from 'sharp';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostedUser } from '../testing/matrix-user.js';
import { SERVER_BACKENDS, startTestServer, type TestServer } from '../testing/server-harness.js';

const ADMIN_TOKEN = 'matrix-media-admin-token';
const PASSWORD = 'correct horse battery staple';
/** The cap the test servers run with: 3 MiB, so an upload of several 1 MiB chunks fits and a bigger one does not. */
const MAX_BYTES = 3 * 1024 * 1024;

/** Width and height from a PNG's IHDR chunk (bytes 16-23), read by hand rather than by the library that wrote it. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(bytes.subarray(12, 16).toString('latin1')).toBe('IHDR');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

function image(width: number, height: number): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r: 200, g: 80, b: 20 } } });
}

describe.each(SERVER_BACKENDS)('Matrix media on $name', (backend) => {
  let server: TestServer;
  let baseUrl: string;
  let userId: string;
  let serverName: string;
  let client: MatrixClient;
  let token: string;
  const http = () => request(server.app.getHttpServer());
  const mediaRows = () => table(server.resources.storage, 'matrix_media').count();
  const chunkRows = () => table(server.resources.storage, 'matrix_media_chunk').count();
  const authed = (url: string) => fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  const upload = async (bytes: Buffer, type: string, name?: string): Promise<string> =>
    (await client.uploadContent(bytes, { type, name, includeFilename: name !== undefined })).content_uri;
  const path = (mxc: string) => mxc.slice('mxc://'.length);

  /** A raw upload that sends `sent` bytes of a body announced as `declared` (undefined: chunked), and its answer. */
  const rawUpload = (declared: number | undefined, sent: number): Promise<{ status: number; body: unknown }> =>
    new Promise((resolve, reject) => {
      const { port } = server.app.getHttpServer().address() as AddressInfo;
      const headers: Record<string, string> = {
        Authorization: `Bearer ${token}`,
        'Content-Type': 'application/octet-stream',
      };
      if (declared !== undefined) headers['Content-Length'] = String(declared);
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/_matrix/media/v3/upload', headers });
      req.on('error', reject);
      req.on('response', (res: IncomingMessage) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => {
          req.destroy();
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown });
        });
      });
      // Sent in 64 KiB pieces; the rest of a declared body is never sent.
      for (let at = 0; at < sent; at += 65_536) req.write(randomBytes(Math.min(65_536, sent - at)));
      if (declared === undefined) req.end();
    });

  beforeAll(async () => {
    server = await startTestServer(backend, { ADMIN_TOKEN, MEDIA_MAX_BYTES: String(MAX_BYTES) });
    await server.app.listen(0, '127.0.0.1');
    const user = await hostedUser(server, ADMIN_TOKEN, 'alice', PASSWORD);
    ({ baseUrl, userId, serverName, accessToken: token } = user);
    client = createClient({ baseUrl, userId, accessToken: token, deviceId: user.deviceId });
  }, 60_000);
  afterAll(async () => {
    client?.stopClient();
    await server?.close();
  });

  it('announces the upload cap, on the authenticated endpoint only with a token', async () => {
    expect((await authed(`${baseUrl}/_matrix/client/v1/media/config`).then((r) => r.json())) as unknown).toEqual({
      'm.upload.size': MAX_BYTES,
    });
    await expect(client.getMediaConfig(true)).resolves.toEqual({ 'm.upload.size': MAX_BYTES });
    const anonymous = await fetch(`${baseUrl}/_matrix/client/v1/media/config`);
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { errcode: string }).errcode).toBe('M_MISSING_TOKEN');
  });

  it("uploads with matrix-js-sdk under the account's server name and serves the same bytes on every download route", async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 777); // three chunks in the store
    const mxc = await upload(bytes, 'application/octet-stream', 'data.bin');
    expect(mxc).toMatch(new RegExp(`^mxc://${serverName}/[A-Za-z0-9_-]+$`));

    const res = await authed(client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, true)!);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-length')).toBe(String(bytes.length));
    // Not a type the spec lets through inline: the browser saves it instead of rendering it.
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="data.bin"');
    expect(res.headers.get('content-security-policy')).toMatch(/^sandbox; default-src 'none'; script-src 'none';/);
    expect(res.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('access-control-allow-origin')).toBe('*');

    // The authenticated route needs the token; the deprecated one (mxcUrlToHttp's default) does not.
    const anonymous = await fetch(client.mxcUrlToHttp(mxc, undefined, undefined, undefined, false, true, true)!);
    expect(anonymous.status).toBe(401);
    const legacy = await fetch(client.mxcUrlToHttp(mxc)!);
    expect(legacy.status).toBe(200);
    expect(Buffer.from(await legacy.arrayBuffer()).equals(bytes)).toBe(true);
    // r0, as old clients spell it.
    const r0 = await fetch(`${baseUrl}/_matrix/media/r0/download/${path(mxc)}`);
    expect(Buffer.from(await r0.arrayBuffer()).equals(bytes)).toBe(true);

    // The file name in the path replaces the uploaded one; non-ASCII names are RFC 8187 encoded.
    const named = await authed(
      `${baseUrl}/_matrix/client/v1/media/download/${path(mxc)}/${encodeURIComponent('résumé.bin')}`,
    );
    expect(named.headers.get('content-disposition')).toBe("attachment; filename*=utf-8''r%C3%A9sum%C3%A9.bin");
  });

  it('keeps the content type: safe types inline, others (HTML) as attachments; a JSON file is a file, not a body', async () => {
    const html = await upload(Buffer.from('<script>alert(1)</script>'), 'text/html', 'page.html');
    const page = await authed(`${baseUrl}/_matrix/client/v1/media/download/${path(html)}`);
    expect(page.headers.get('content-type')).toBe('text/html');
    expect(page.headers.get('content-disposition')).toBe('attachment; filename="page.html"');

    // Larger than the JSON body limit (256 KiB) and of type application/json: stored as it came.
    const json = Buffer.from(JSON.stringify({ data: 'x'.repeat(300_000) }));
    const mxc = await upload(json, 'application/json');
    const got = await authed(`${baseUrl}/_matrix/client/v1/media/download/${path(mxc)}`);
    expect(got.headers.get('content-disposition')).toBe('inline');
    expect(Buffer.from(await got.arrayBuffer()).equals(json)).toBe(true);
  });

  it('makes PNG and JPEG thumbnails of the requested size, never upscaled', async () => {
    const png = await upload(await image(400, 300).png().toBuffer(), 'image/png', 'cat.png');
    const thumb = async (mxc: string, query: string): Promise<Response> => {
      const res = await authed(`${baseUrl}/_matrix/client/v1/media/thumbnail/${path(mxc)}?${query}`);
      expect(res.status).toBe(200);
      return res;
    };
    const crop = await thumb(png, 'width=96&height=96&method=crop');
    expect(crop.headers.get('content-type')).toBe('image/png');
    expect(crop.headers.get('content-disposition')).toBe('inline; filename="thumbnail.png"');
    expect(pngSize(Buffer.from(await crop.arrayBuffer()))).toEqual({ width: 96, height: 96 });
    const scaled = await thumb(png, 'width=320&height=240&method=scale');
    expect(pngSize(Buffer.from(await scaled.arrayBuffer()))).toEqual({ width: 320, height: 240 });
    // scale keeps the aspect ratio (4:3) inside the box; method defaults to scale.
    const boxed = await thumb(png, 'width=100&height=100');
    expect(pngSize(Buffer.from(await boxed.arrayBuffer()))).toEqual({ width: 100, height: 75 });
    // Larger than the image: the original, as it was uploaded.
    const big = await thumb(png, 'width=800&height=600&method=scale');
    expect(pngSize(Buffer.from(await big.arrayBuffer()))).toEqual({ width: 400, height: 300 });
    // The legacy route too, through matrix-js-sdk's URL.
    const legacy = await fetch(client.mxcUrlToHttp(png, 32, 32, 'crop')!);
    expect(pngSize(Buffer.from(await legacy.arrayBuffer()))).toEqual({ width: 32, height: 32 });

    const jpeg = await upload(await image(640, 480).jpeg().toBuffer(), 'image/jpeg');
    const small = await thumb(jpeg, 'width=320&height=240&method=scale');
    expect(small.headers.get('content-type')).toBe('image/jpeg');
    const jpegBytes = Buffer.from(await small.arrayBuffer());
    expect(jpegBytes.subarray(0, 2).equals(Buffer.from([0xff, 0xd8]))).toBe(true);
    expect(await sharp(jpegBytes).metadata()).toMatchObject({ width: 320, height: 240 });
  });

  it('refuses thumbnails it cannot make, and bad sizes', async () => {
    const text = await upload(Buffer.from('hello'), 'text/plain');
    const notImage = await authed(`${baseUrl}/_matrix/client/v1/media/thumbnail/${path(text)}?width=32&height=32`);
    expect(notImage.status).toBe(400);
    // Said to be a PNG, but is not one.
    const fake = await upload(Buffer.from('not a png at all'), 'image/png');
    const broken = await authed(`${baseUrl}/_matrix/client/v1/media/thumbnail/${path(fake)}?width=32&height=32`);
    expect([broken.status, ((await broken.json()) as { errcode: string }).errcode]).toEqual([400, 'M_UNKNOWN']);
    for (const query of [
      'width=0&height=32',
      'width=-5&height=32',
      'width=1.5&height=3',
      'height=32',
      'width=32&height=32&method=zoom',
    ]) {
      const res = await authed(`${baseUrl}/_matrix/client/v1/media/thumbnail/${path(text)}?${query}`);
      expect([query, res.status, ((await res.json()) as { errcode: string }).errcode]).toEqual([
        query,
        400,
        'M_INVALID_PARAM',
      ]);
    }
  });

  it('refuses an upload past MEDIA_MAX_BYTES before reading it, and stores nothing', async () => {
    const [media, chunks] = [await mediaRows(), await chunkRows()];
    // Announced too large: the answer comes after 64 KiB of a body of 100 MiB that is never sent.
    const declared = await rawUpload(100 * 1024 * 1024, 65_536);
    expect(declared).toEqual({ status: 413, body: { errcode: 'M_TOO_LARGE', error: expect.any(String) } });
    // Chunked, without a length: refused once it passes the cap.
    const chunked = await rawUpload(undefined, MAX_BYTES + 65_536);
    expect(chunked).toEqual({ status: 413, body: { errcode: 'M_TOO_LARGE', error: expect.any(String) } });
    expect([await mediaRows(), await chunkRows()]).toEqual([media, chunks]);
    // The server still answers.
    await http().get('/_matrix/client/versions').expect(200);
  });

  it('refuses uploads without a body or a token, and bad names, storing nothing', async () => {
    const before = await mediaRows();
    const empty = await http().post('/_matrix/media/v3/upload').set('Authorization', `Bearer ${token}`);
    expect([empty.status, empty.body.errcode]).toEqual([400, 'M_MISSING_PARAM']);
    const anonymous = await http().post('/_matrix/media/v3/upload').set('Content-Type', 'text/plain').send('hi');
    expect([anonymous.status, anonymous.body.errcode]).toEqual([401, 'M_MISSING_TOKEN']);
    const wrongToken = await http()
      .post('/_matrix/media/v3/upload')
      .set('Authorization', 'Bearer pha_nope')
      .set('Content-Type', 'text/plain')
      .send('hi');
    expect([wrongToken.status, wrongToken.body.errcode]).toEqual([401, 'M_UNKNOWN_TOKEN']);
    for (const name of ['../../etc/passwd', 'a\\b', 'tab\there', '..']) {
      const res = await http()
        .post(`/_matrix/media/v3/upload?filename=${encodeURIComponent(name)}`)
        .set('Authorization', `Bearer ${token}`)
        .set('Content-Type', 'text/plain')
        .send('hi');
      expect([name, res.status, res.body.errcode]).toEqual([name, 400, 'M_INVALID_PARAM']);
    }
    const badType = await http()
      .post('/_matrix/media/v3/upload')
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'not a type')
      .send('hi');
    expect([badType.status, badType.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    expect(await mediaRows()).toBe(before);
  });

  it('answers bad and unknown mxc URIs: 400 for ids outside the whitelist, 404 M_NOT_FOUND for media not held', async () => {
    const mxc = await upload(Buffer.from('hello'), 'text/plain', 'hello.txt');
    const [, mediaId] = path(mxc).split('/');
    const get = (p: string) => authed(`${baseUrl}/_matrix/client/v1/media/download/${p}`);
    for (const p of [`${serverName}/a.b`, `${serverName}/..%2F..%2Fetc`, `bad_server!/${mediaId}`]) {
      const res = await get(p);
      expect([p, res.status, ((await res.json()) as { errcode: string }).errcode]).toEqual([p, 400, 'M_INVALID_PARAM']);
    }
    // Sent as it is (fetch would resolve the dots away before sending): the id decodes to "..".
    const dots = await http()
      .get(`/_matrix/client/v1/media/download/${serverName}/%2E%2E`)
      .set('Authorization', `Bearer ${token}`);
    expect([dots.status, dots.body.errcode]).toEqual([400, 'M_INVALID_PARAM']);
    // Path traversal in the file name of the download.
    const traversal = await get(`${path(mxc)}/..%2F..%2Fsecret`);
    expect(traversal.status).toBe(400);
    // Unknown here: an id nobody uploaded, and media of another server name (fetched over libp2p later).
    for (const p of [`${serverName}/unknownMediaId`, `other.example/${mediaId}`]) {
      const res = await get(p);
      expect([p, res.status, ((await res.json()) as { errcode: string }).errcode]).toEqual([p, 404, 'M_NOT_FOUND']);
    }
    const legacy = await fetch(`${baseUrl}/_matrix/media/v3/thumbnail/${serverName}/unknownMediaId?width=32&height=32`);
    expect(legacy.status).toBe(404);
  });

  it('reserves an mxc URI with /create and fills it once with PUT', async () => {
    const created = await http().post('/_matrix/media/v1/create').set('Authorization', `Bearer ${token}`).expect(200);
    const mxc: string = created.body.content_uri;
    expect(mxc).toMatch(new RegExp(`^mxc://${serverName}/[A-Za-z0-9_-]+$`));
    expect(created.body.unused_expires_at).toBeGreaterThan(Date.now());
    const early = await authed(`${baseUrl}/_matrix/client/v1/media/download/${path(mxc)}`);
    expect([early.status, ((await early.json()) as { errcode: string }).errcode]).toEqual([504, 'M_NOT_YET_UPLOADED']);

    const put = (body: string) =>
      http()
        .put(`/_matrix/media/v3/upload/${path(mxc)}?filename=note.txt`)
        .set('Authorization', `Bearer ${token}`)
        .set('Content-Type', 'text/plain')
        .send(body);
    expect((await put('first')).body).toEqual({});
    const again = await put('second');
    expect([again.status, again.body.errcode]).toEqual([409, 'M_CANNOT_OVERWRITE_MEDIA']);
    const got = await authed(`${baseUrl}/_matrix/client/v1/media/download/${path(mxc)}`);
    expect(await got.text()).toBe('first');
    expect(got.headers.get('content-disposition')).toBe('inline; filename="note.txt"');

    const unknown = await http()
      .put(`/_matrix/media/v3/upload/${serverName}/neverCreated`)
      .set('Authorization', `Bearer ${token}`)
      .set('Content-Type', 'text/plain')
      .send('x');
    expect([unknown.status, unknown.body.errcode]).toEqual([404, 'M_NOT_FOUND']);
  });
});
