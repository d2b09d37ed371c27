// Hydrogen (the hydrogen-view-sdk 0.3.1 npm package, bundled here with esbuild as its own app does it) in Debian's
// Chromium driven by playwright-core, against a real server process from another origin (CORS): it logs in with
// a localpart and password, reaches the room list, opens a room and sends a message that a matrix-js-sdk user
// receives. Every Matrix request it makes must answer below 500, and the client must not retry one without end.
// Screenshots go to test-results/hydrogen/. Runs from dist (`npm run build` first).
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import {
  ClientEvent,
  createClient,
  MsgType,
  RoomEvent,
  SyncState,
  type MatrixClient,
  type MatrixEvent,
} from 'matrix-js-sdk';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matrixLogin, startFreshServer, type FreshServer } from './support/server-process.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SCREENSHOTS = path.join(root, 'test-results/hydrogen');
const PASSWORD = 'correct horse battery staple';
/** Debian's Chromium (.ci/run installs it when missing); playwright-core downloads no browser. */
const CHROMIUM = '/usr/bin/chromium';
/** The most times Hydrogen may make one request (method and path) in this test before it counts as a retry loop. */
const MAX_SAME_REQUEST = 40;

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
};

/** Bundles the app and puts its assets beside it; returns the directory. */
async function bundleHydrogen(): Promise<string> {
  const out = await mkdtemp(path.join(os.tmpdir(), 'polyhome-hydrogen-'));
  await build({
    entryPoints: [path.join(root, 'test/support/hydrogen/app.js')],
    bundle: true,
    format: 'esm',
    outdir: out,
    // olm.js requires these only when it runs under Node.
    external: ['crypto', 'path', 'fs'],
    loader: { '.woff': 'file', '.woff2': 'file', '.svg': 'file', '.json': 'file' },
    logLevel: 'error',
  });
  const sdk = path.join(root, 'node_modules/hydrogen-view-sdk/asset-build/assets');
  const olm = path.join(root, 'node_modules/@matrix-org/olm');
  await copyFile(path.join(root, 'test/support/hydrogen/index.html'), path.join(out, 'index.html'));
  await copyFile(path.join(sdk, 'main.js'), path.join(out, 'main.js'));
  await copyFile(path.join(sdk, 'download-sandbox.html'), path.join(out, 'download-sandbox.html'));
  await copyFile(path.join(root, 'node_modules/hydrogen-view-sdk/lib-build/sw.js'), path.join(out, 'sw.js'));
  for (const file of ['olm.wasm', 'olm.js', 'olm_legacy.js'])
    await copyFile(path.join(olm, file), path.join(out, file));
  return out;
}

/** Serves a directory's files (GET only) on 127.0.0.1. */
async function serveDirectory(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const name = path.normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^\/+/, '');
    const file = path.join(dir, name === '' ? 'index.html' : name);
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    readFile(file).then(
      (bytes) => {
        res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(bytes);
      },
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

describe('Hydrogen in Chromium against a server process', () => {
  let fresh: FreshServer;
  let baseUrl: string;
  let bundle: string;
  let assets: Server;
  let browser: Browser;
  let page: Page;
  let bob: MatrixClient;
  let roomId: string;
  /** Matrix requests Hydrogen made, and the answers >= 500 or failed ones. */
  const requests = new Map<string, number>();
  const broken: string[] = [];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium).`);
    [fresh, bundle] = await Promise.all([startFreshServer('hydrogen'), bundleHydrogen()]);
    baseUrl = `http://127.0.0.1:${fresh.server.port}`;
    const users: Record<string, string> = {};
    for (const localpart of ['alice', 'bob']) {
      const made = await fresh.server.admin('POST', '/admin/v1/accounts', { localpart, password: PASSWORD });
      expect(made.status, JSON.stringify(made.body)).toBe(201);
      users[localpart] = String(made.body['user_id']);
    }
    const bobLogin = await matrixLogin(fresh.server, users['bob']!);
    bob = createClient({ baseUrl, userId: users['bob']!, ...bobLogin });
    const prepared = new Promise<void>((resolve) =>
      bob.on(ClientEvent.Sync, (state: SyncState) => {
        if (state === SyncState.Prepared) resolve();
      }),
    );
    await bob.startClient({ initialSyncLimit: 10 });
    await prepared;
    roomId = (await bob.createRoom({ name: 'Hydrogen lab', invite: [users['alice']!] })).room_id;
    // Alice joins from another device, so Hydrogen finds a joined room with history.
    const aliceDevice = await matrixLogin(fresh.server, users['alice']!);
    const join = await fresh.server.request(
      'POST',
      `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`,
      {},
      {
        Authorization: `Bearer ${aliceDevice.accessToken}`,
      },
    );
    expect(join.status).toBe(200);
    await bob.sendMessage(roomId, { msgtype: MsgType.Text, body: 'welcome, alice' });

    assets = await serveDirectory(bundle);
    await mkdir(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage();
    page.on('response', (response) => {
      const url = new URL(response.url());
      if (!url.pathname.startsWith('/_matrix/')) return;
      const key = `${response.request().method()} ${url.pathname}`;
      requests.set(key, (requests.get(key) ?? 0) + 1);
      if (response.status() >= 500) broken.push(`${key} ${response.status()}`);
    });
    page.on('requestfailed', (request) => {
      const url = new URL(request.url());
      // A long poll cut by the page closing is not a failure.
      if (url.pathname.startsWith('/_matrix/') && !url.pathname.endsWith('/sync')) {
        broken.push(`${request.method()} ${url.pathname} failed: ${request.failure()?.errorText ?? '?'}`);
      }
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    bob?.stopClient();
    await new Promise((resolve) => (assets ? assets.close(resolve) : resolve(undefined)));
    await fresh?.dispose();
    if (bundle !== undefined) await rm(bundle, { recursive: true, force: true });
  });

  it('logs in with a password, shows the room list, opens the room and sends a message bob receives', async () => {
    const assetsUrl = `http://127.0.0.1:${(assets.address() as AddressInfo).port}`;
    await page.goto(`${assetsUrl}/index.html?hs=${encodeURIComponent(baseUrl)}`);
    const startError = () => page.locator('body').getAttribute('data-start-error');
    await page.waitForSelector('#username', { timeout: 60_000 }).catch(async (err: unknown) => {
      await page.screenshot({ path: path.join(SCREENSHOTS, 'no-login.png') });
      throw new Error(`no login form: ${String(await startError())} ${String(err)}`);
    });
    await page.screenshot({ path: path.join(SCREENSHOTS, '1-login.png') });
    // Users type their localpart.
    await page.fill('#username', 'alice');
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    const tile = page.locator('.RoomList li', { hasText: 'Hydrogen lab' });
    await tile.waitFor({ timeout: 90_000 }).catch(async (err: unknown) => {
      await page.screenshot({ path: path.join(SCREENSHOTS, 'no-room-list.png') });
      throw err;
    });
    await page.screenshot({ path: path.join(SCREENSHOTS, '2-room-list.png') });
    await tile.click();
    await page.locator('.Timeline', { hasText: 'welcome, alice' }).waitFor({ timeout: 60_000 });

    const received = new Promise<string>((resolve) => {
      bob.on(RoomEvent.Timeline, (event: MatrixEvent) => {
        if (event.getRoomId() === roomId && event.getContent()['body'] === 'hello from hydrogen') {
          resolve(String(event.getSender()));
        }
      });
    });
    const composer = page.locator('.MessageComposer textarea');
    await composer.fill('hello from hydrogen');
    await composer.press('Enter');
    expect(await received).toMatch(/^@alice:/);
    await page.locator('.Timeline', { hasText: 'hello from hydrogen' }).waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(SCREENSHOTS, '3-sent.png') });

    expect(broken).toEqual([]);
    const loops = [...requests].filter(([key, n]) => n > MAX_SAME_REQUEST && !key.endsWith('/sync'));
    expect(loops).toEqual([]);
  }, 240_000);
});
