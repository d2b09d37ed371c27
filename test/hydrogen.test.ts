// Hydrogen (the hydrogen-view-sdk 0.3.1 npm package, bundled here with esbuild as its own app does it) in Debian's
// Chromium driven by playwright-core, served from another origin than the homes it talks to (CORS): it logs in
// with a localpart and password, reaches the room list, opens a room and sends a message that a matrix-js-sdk
// user receives. First against one server process with bob on it too; then against a client-side home (alice's
// `polyhome` node, her account's root) and against S1, the server home of the same account, with bob's account
// on another server S2, so the message crosses accounts and servers. Every Matrix request it makes must answer
// below 500, and the client must not retry one without end. Screenshots go to test-results/hydrogen/<scene>/.
// Runs from dist (`npm run build` first).
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
import { waitFor } from '@polyhome/p2p/testing';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from './support/cli-node.js';
import { eventually, serverProcess, type Hosted } from './support/e2ee.js';
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

/** The Matrix requests a page made (method and path, counted), and the ones answered >= 500 or failed. */
interface MatrixTraffic {
  requests: Map<string, number>;
  broken: string[];
}

/** Watches a page's Matrix requests. */
function watchMatrix(page: Page): MatrixTraffic {
  const traffic: MatrixTraffic = { requests: new Map(), broken: [] };
  page.on('response', (response) => {
    const url = new URL(response.url());
    if (!url.pathname.startsWith('/_matrix/')) return;
    const key = `${response.request().method()} ${url.pathname}`;
    traffic.requests.set(key, (traffic.requests.get(key) ?? 0) + 1);
    if (response.status() >= 500) traffic.broken.push(`${key} ${response.status()}`);
  });
  page.on('requestfailed', (request) => {
    const url = new URL(request.url());
    // A long poll cut by the page closing is not a failure.
    if (url.pathname.startsWith('/_matrix/') && !url.pathname.endsWith('/sync')) {
      traffic.broken.push(`${request.method()} ${url.pathname} failed: ${request.failure()?.errorText ?? '?'}`);
    }
  });
  return traffic;
}

/** No Matrix request answered >= 500 or failed, and none (but /sync) was made more than MAX_SAME_REQUEST times. */
function expectSoundTraffic(traffic: MatrixTraffic, who: string): void {
  expect(traffic.broken, `${who}: requests answered >= 500 or failed`).toEqual([]);
  const loops = [...traffic.requests].filter(([key, n]) => n > MAX_SAME_REQUEST && !key.endsWith('/sync'));
  expect(loops, `${who}: requests repeated more than ${MAX_SAME_REQUEST} times`).toEqual([]);
}

/** A screenshot under test-results/hydrogen/<scene>/. */
async function shoot(page: Page, scene: string, name: string): Promise<void> {
  await mkdir(path.join(SCREENSHOTS, scene), { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, scene, `${name}.png`) });
}

/**
 * Opens Hydrogen (served at `assetsUrl`) on `homeserver`, logs `localpart` in with PASSWORD and waits for the
 * room list to show `roomName`; returns its tile.
 */
async function hydrogenLogin(
  page: Page,
  scene: string,
  assetsUrl: string,
  homeserver: string,
  localpart: string,
  roomName: string,
): Promise<Locator> {
  await page.goto(`${assetsUrl}/index.html?hs=${encodeURIComponent(homeserver)}`);
  const startError = () => page.locator('body').getAttribute('data-start-error');
  await page.waitForSelector('#username', { timeout: 60_000 }).catch(async (err: unknown) => {
    await shoot(page, scene, 'no-login');
    throw new Error(`no login form: ${String(await startError())} ${String(err)}`);
  });
  await shoot(page, scene, '1-login');
  // Users type their localpart.
  await page.fill('#username', localpart);
  await page.fill('#password', PASSWORD);
  await page.click('button[type=submit]');
  const tile = page.locator('.RoomList li', { hasText: roomName });
  await tile.waitFor({ timeout: 90_000 }).catch(async (err: unknown) => {
    await shoot(page, scene, 'no-room-list');
    throw err;
  });
  await shoot(page, scene, '2-room-list');
  return tile;
}

/** Waits for the open room's timeline to show `text`. */
async function timelineShows(page: Page, scene: string, text: string): Promise<void> {
  await page
    .locator('.Timeline', { hasText: text })
    .waitFor({ timeout: 60_000 })
    .catch(async (err: unknown) => {
      await shoot(page, scene, 'no-message');
      throw err;
    });
}

/**
 * Opens the room of `tile` and waits for its timeline to show `text`. When the room is `unread`, Hydrogen marks it
 * read after 2 s: the receipt must be taken. Either way the tile ends with its unread badge hidden.
 */
async function openRoom(page: Page, scene: string, tile: Locator, text: string, unread: boolean): Promise<void> {
  const receipt = unread
    ? page.waitForResponse((r) => /\/receipt\/m\.read\//.test(new URL(r.url()).pathname), { timeout: 30_000 })
    : undefined;
  await tile.click();
  await timelineShows(page, scene, text);
  if (receipt !== undefined) expect((await receipt).status()).toBe(200);
  await tile.locator('.badge.hidden').waitFor({ state: 'attached', timeout: 30_000 });
}

/**
 * Types `body` into the open room's composer and resolves with the sender bob's client sees it from; then waits for
 * Hydrogen's timeline to show it as sent.
 */
async function sendToBob(page: Page, scene: string, bob: MatrixClient, roomId: string, body: string): Promise<string> {
  const received = new Promise<string>((resolve) => {
    const listener = (event: MatrixEvent): void => {
      if (event.getRoomId() === roomId && event.getContent()['body'] === body) {
        bob.off(RoomEvent.Timeline, listener);
        resolve(String(event.getSender()));
      }
    };
    bob.on(RoomEvent.Timeline, listener);
  });
  const composer = page.locator('.MessageComposer textarea');
  await composer.fill(body);
  await composer.press('Enter');
  const sender = await received;
  await timelineShows(page, scene, body);
  await shoot(page, scene, '3-sent');
  return sender;
}

/** A matrix-js-sdk client logged in with its password, syncing (no crypto: Hydrogen's room is not encrypted). */
async function syncingClient(baseUrl: string, userId: string): Promise<MatrixClient> {
  const login = await createClient({ baseUrl }).loginRequest({
    type: 'm.login.password',
    identifier: { type: 'm.id.user', user: userId },
    password: PASSWORD,
  });
  const client = createClient({
    baseUrl,
    userId: login.user_id,
    accessToken: login.access_token,
    deviceId: login.device_id,
  });
  const prepared = new Promise<void>((resolve) =>
    client.on(ClientEvent.Sync, (state: SyncState) => {
      if (state === SyncState.Prepared) resolve();
    }),
  );
  await client.startClient({ initialSyncLimit: 10 });
  await prepared;
  return client;
}

describe('Hydrogen in Chromium against a server process', () => {
  let fresh: FreshServer;
  let baseUrl: string;
  let bundle: string;
  let assets: Server;
  let browser: Browser;
  let page: Page;
  let traffic: MatrixTraffic;
  let bob: MatrixClient;
  let roomId: string;

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
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage();
    traffic = watchMatrix(page);
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
    const tile = await hydrogenLogin(page, 'same-server', assetsUrl, baseUrl, 'alice', 'Hydrogen lab');
    await openRoom(page, 'same-server', tile, 'welcome, alice', true);
    expect(await sendToBob(page, 'same-server', bob, roomId, 'hello from hydrogen')).toMatch(/^@alice:/);
    expectSoundTraffic(traffic, 'Hydrogen on the server');
  }, 240_000);
});

describe("Hydrogen on alice's client-side home and on her server home S1, bob's account on S2", () => {
  let s1: Hosted;
  let s2: Hosted;
  let laptop: CliNode;
  let laptopDir: string;
  let bundle: string;
  let assets: Server;
  let assetsUrl: string;
  let browser: Browser;
  let aliceId: string;
  let bob: MatrixClient;
  let roomId: string;
  const ROOM = 'Across homes';

  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium).`);
    [s1, bundle] = await Promise.all([serverProcess('hyd-s1', true), bundleHydrogen()]);
    laptopDir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-hyd-laptop-'));
    laptop = new CliNode('laptop', laptopDir);
    [s2, aliceId] = await Promise.all([
      serverProcess('hyd-s2', false, { P2P_BOOTSTRAP: s1.server.addr }),
      (async () => {
        const id = (await laptop.initAccount('alice', 'laptop')).user_id;
        await laptop.start('--bootstrap', s1.server.addr);
        await laptop.json('home', 'add', s1.server.addr, '--role', 'server', '--name', 'companion');
        return id;
      })(),
    ]);
    // The account's password, set on its server home: the verifier replicates (`password.set`) to the laptop.
    const reset = await s1.server.admin('POST', `/admin/v1/accounts/${encodeURIComponent(aliceId)}/password`, {
      password: PASSWORD,
      logout_devices: false,
      reason: 'hydrogen test',
    });
    expect(reset.status, JSON.stringify(reset.body)).toBe(200);
    const madeBob = await s2.server.admin('POST', '/admin/v1/accounts', { localpart: 'bob', password: PASSWORD });
    expect(madeBob.status, JSON.stringify(madeBob.body)).toBe(201);
    bob = await syncingClient(`http://127.0.0.1:${s2.server.port}`, String(madeBob.body['user_id']));

    // alice's other device, on the laptop, makes the room and invites bob across servers; bob joins and writes.
    const token = (await laptop.json<{ login_token: string }>('login-token')).login_token;
    const login = await createClient({ baseUrl: laptop.matrixUrl }).loginRequest({ type: 'm.login.token', token });
    const aliceDevice = createClient({
      baseUrl: laptop.matrixUrl,
      userId: login.user_id,
      accessToken: login.access_token,
      deviceId: login.device_id,
    });
    roomId = (await aliceDevice.createRoom({ name: ROOM })).room_id;
    await eventually(() => aliceDevice.invite(roomId, bob.getUserId()!), 'the invite to reach bob on S2', 120_000);
    await eventually(() => bob.joinRoom(roomId), 'bob to join on S2', 90_000);
    await bob.sendMessage(roomId, { msgtype: MsgType.Text, body: 'welcome from S2' });
    // The laptop offers password login once the verifier has arrived.
    await waitFor(
      async () => {
        const flows = (await (await fetch(`${laptop.matrixUrl}/_matrix/client/v3/login`)).json()) as {
          flows?: { type: string }[];
        };
        return flows.flows?.some((f) => f.type === 'm.login.password') === true;
      },
      "the password's verifier to reach the laptop",
      60_000,
      1_000,
    );

    assets = await serveDirectory(bundle);
    assetsUrl = `http://127.0.0.1:${(assets.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    bob?.stopClient();
    await new Promise((resolve) => (assets ? assets.close(resolve) : resolve(undefined)));
    await laptop?.stop('SIGKILL');
    await s1?.dispose();
    await s2?.dispose();
    if (laptopDir !== undefined) await rm(laptopDir, { recursive: true, force: true });
    if (bundle !== undefined) await rm(bundle, { recursive: true, force: true });
  }, 60_000);

  it("logs in on the laptop's home, shows the room with bob's message and sends one bob receives on S2", async () => {
    const page = await browser.newPage();
    const traffic = watchMatrix(page);
    const tile = await hydrogenLogin(page, 'client-home', assetsUrl, laptop.matrixUrl, 'alice', ROOM);
    await openRoom(page, 'client-home', tile, 'welcome from S2', true);
    expect(await sendToBob(page, 'client-home', bob, roomId, 'hello from the laptop')).toBe(aliceId);
    expectSoundTraffic(traffic, 'Hydrogen on the client-side home');
    await page.close();
  }, 180_000);

  it('logs in on S1, the same account and room, and sends a message bob receives on S2', async () => {
    const page = await browser.newPage();
    const traffic = watchMatrix(page);
    const tile = await hydrogenLogin(
      page,
      'server-home',
      assetsUrl,
      `http://127.0.0.1:${s1.server.port}`,
      'alice',
      ROOM,
    );
    // Read already when the laptop's receipt has reached S1; else Hydrogen marks it read here.
    await openRoom(page, 'server-home', tile, 'welcome from S2', false);
    await timelineShows(page, 'server-home', 'hello from the laptop');
    expect(await sendToBob(page, 'server-home', bob, roomId, 'hello from S1')).toBe(aliceId);
    expectSoundTraffic(traffic, 'Hydrogen on S1');
    await page.close();
  }, 180_000);
});
