// Media on the client-side home as its user runs it (`polyhome start`, PGlite in its data directory): an upload
// through matrix-js-sdk, its download and a thumbnail from the node's Matrix API, and `--media-max-bytes`
// refusing a larger upload with 413 M_TOO_LARGE.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createClient, type MatrixClient } from 'matrix-js-sdk';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from './support/cli-node.js';

const MAX_BYTES = 64 * 1024;

describe('media on a client-side home', () => {
  let dir: string;
  let node: CliNode;
  let client: MatrixClient;
  let token: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-node-media-'));
    node = new CliNode('laptop', dir);
    expect((await node.run('init', '--localpart', 'alice')).code).toBe(0);
    await node.start('--media-max-bytes', String(MAX_BYTES));
    const { login_token } = await node.json<{ login_token: string }>('login-token');
    const login = await createClient({ baseUrl: node.matrixUrl }).loginRequest({
      type: 'm.login.token',
      token: login_token,
    });
    token = login.access_token;
    client = createClient({ baseUrl: node.matrixUrl, userId: login.user_id, accessToken: token });
  }, 240_000);
  afterAll(async () => {
    client?.stopClient();
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores an upload in its data directory and serves it and its thumbnail', async () => {
    const png = await sharp({ create: { width: 200, height: 100, channels: 4, background: '#3a7' } })
      .png()
      .toBuffer();
    const { content_uri } = await client.uploadContent(png, { type: 'image/png', name: 'leaf.png' });
    const serverName = client.getUserId()!.split(':')[1]!;
    expect(content_uri.startsWith(`mxc://${serverName}/`)).toBe(true);
    const auth = { headers: { Authorization: `Bearer ${token}` } };
    const download = await fetch(
      client.mxcUrlToHttp(content_uri, undefined, undefined, undefined, false, true, true)!,
      auth,
    );
    expect(Buffer.from(await download.arrayBuffer()).equals(png)).toBe(true);
    expect(download.headers.get('content-disposition')).toBe('inline; filename="leaf.png"');
    const thumb = await fetch(client.mxcUrlToHttp(content_uri, 50, 50, 'crop', false, true, true)!, auth);
    const bytes = Buffer.from(await thumb.arrayBuffer());
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([50, 50]);
  });

  it('announces --media-max-bytes and refuses a larger upload', async () => {
    await expect(client.getMediaConfig(true)).resolves.toEqual({ 'm.upload.size': MAX_BYTES });
    const res = await fetch(`${node.matrixUrl}/_matrix/media/v3/upload`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream' },
      body: Buffer.alloc(MAX_BYTES + 1),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { errcode: string }).errcode).toBe('M_TOO_LARGE');
  });
});
