// The admin console in a real browser: Debian's Chromium driven by playwright-core, against a server process
// serving the built console at /admin/. Signs in, creates an account, sees a device logged in elsewhere appear
// while the page is open, deactivates the account; shows a room in detail and deletes it with a block; resyncs
// an account with its client home (a libp2p node in this process), following the job until it ends.
// Screenshots go to a scratch directory, or to docs/console/ with POLYHOME_SCREENSHOTS=docs (how the committed
// ones were made).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from '@polyhome/p2p/testing';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientNode, serverHomeOf } from './support/client-node.js';
import { ADMIN_TOKEN, ServerProcess } from './support/server-process.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const CONSOLE_INDEX = path.join(root, 'apps/server/dist/console/index.html');
/** How long the page may take to show what a step waits for (a loaded machine; polling is every 2 s). */
const UI_TIMEOUT_MS = 20_000;
/** Ops the client home stores without pushing them: only the resync brings them to the server. */
const LOST_PUSH_OPS = 30;

describe('the admin console in Chromium', () => {
  let dir: string;
  let shots: string;
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
  let laptop: ClientNode | undefined;
  const base = () => `http://127.0.0.1:${server.port}`;
  const shot = (name: string) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), or set CHROMIUM_PATH.`,
      );
    }
    if (!existsSync(CONSOLE_INDEX)) throw new Error(`${CONSOLE_INDEX} is missing: run \`npm run build\` first.`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'polyhome-console-'));
    shots = process.env['POLYHOME_SCREENSHOTS'] === 'docs' ? path.join(root, 'docs/console') : path.join(dir, 'shots');
    await mkdir(shots, { recursive: true });
    server = await ServerProcess.create({ name: 'server', dataDir: path.join(dir, 'data'), env: {} });
    await server.start();
    // Root in a container: Chromium's sandbox needs user namespaces it may not have.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(UI_TIMEOUT_MS);
  }, 120_000);
  afterAll(async () => {
    await laptop?.stop().catch(() => undefined);
    await browser?.close();
    await server?.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  });

  it('signs in with the admin token (a wrong one is refused with what to use)', async () => {
    await page.goto(`${base()}/admin/`);
    await expect(page.locator('h1').textContent()).resolves.toBe('polyhome admin');
    await page.fill('#token', 'not-the-token');
    await page.click('button[type=submit]');
    await page.getByRole('alert').waitFor();
    expect(await page.getByRole('alert').textContent()).toContain('The server refused this token');
    await shot('sign-in-refused');
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('button[type=submit]');
    await page.getByRole('heading', { name: 'Accounts' }).waitFor();
    await page.getByRole('cell', { name: 'delivery' }).waitFor();
    expect(await page.getByText('No rooms on this server.').count()).toBe(1);
    expect(await page.getByText('Nothing done yet.').count()).toBe(1);
    expect(await page.locator('.card').allTextContents()).toEqual(
      expect.arrayContaining(['Accounts0', 'Devices0', 'Rooms0']),
    );
  });

  it('creates an account, shows a device logged in elsewhere as it appears, and deactivates the account', async () => {
    await page.fill('#new-localpart', 'carol');
    await page.fill('#new-password', 'correct horse battery staple');
    await page.getByRole('button', { name: 'Create account' }).click();
    const panel = page.locator('article.account');
    await panel.getByText('Devices (0)').waitFor();
    const userId = await panel.locator('header strong').getAttribute('title');
    expect(userId).toMatch(/^@carol:[0-9a-f]{64}$/);
    expect(await panel.locator('.status').textContent()).toBe('active');
    expect(await panel.getByRole('cell', { name: 'server (this server)' }).count()).toBe(1);

    // A Matrix client logs in elsewhere (not through this page): the open page shows its device.
    const login = await server.request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: 'correct horse battery staple',
      initial_device_display_name: 'Phone elsewhere',
    });
    expect(login.status).toBe(200);
    await panel.getByRole('cell', { name: 'Phone elsewhere' }).waitFor();
    expect(await panel.getByText('Devices (1)').count()).toBe(1);
    expect(await panel.locator('table.devices').textContent()).toContain(String(login.body['device_id']));
    await page.locator('.card', { hasText: 'Devices' }).getByText('1').waitFor();
    // That client makes a room: it shows in the rooms list and in the account's rooms.
    const room = await server.request(
      'POST',
      '/_matrix/client/v3/createRoom',
      { name: 'Console room' },
      { Authorization: `Bearer ${String(login.body['access_token'])}` },
    );
    expect(room.status).toBe(200);
    await page.locator('table.rooms tr', { hasText: 'Console room' }).waitFor();
    const roomRow = panel.locator('tr', { has: page.locator(`td[title="${String(room.body['room_id'])}"]`) });
    await roomRow.getByText('join').waitFor();
    await shot('account-with-device');

    await panel.getByRole('button', { name: 'Deactivate…' }).click();
    const confirm = page.getByRole('button', { name: 'Confirm deactivation' });
    expect(await confirm.isDisabled()).toBe(true);
    await page.fill('#reason', 'Spam reported by three users');
    await shot('deactivate-confirm');
    await confirm.click();
    await panel.locator('.status', { hasText: 'deactivated' }).waitFor();
    await panel.getByText('Devices (0)').waitFor();
    await roomRow.getByText('leave').waitFor();
    await page
      .locator('table.rooms tr', { hasText: 'Console room' })
      .getByRole('cell', { name: '0', exact: true })
      .waitFor();
    expect(await panel.getByRole('button', { name: 'Reactivate…' }).count()).toBe(1);
    await page.locator('tr.selected', { hasText: 'deactivated' }).waitFor();
    await page.locator('table.audit tr', { hasText: 'Spam reported by three users' }).waitFor();
    expect(await page.locator('table.audit tbody tr').first().textContent()).toContain('account.deactivate');
    await shot('account-deactivated');

    const audit = await server.admin('GET', '/admin/v1/audit');
    expect(audit.body['chunk']).toEqual([
      expect.objectContaining({ action: 'account.deactivate', target: userId, reason: 'Spam reported by three users' }),
    ]);
    const relogin = await server.request('POST', '/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: userId },
      password: 'correct horse battery staple',
    });
    expect(relogin.status).toBe(403);
  });

  it('shows a room in detail (members, servers and homes, state) and deletes it with a block', async () => {
    const login = async (localpart: string): Promise<{ userId: string; token: string }> => {
      const created = await server.admin('POST', '/admin/v1/accounts', { localpart, password: 'pw pw pw pw' });
      expect(created.status).toBe(201);
      const userId = String(created.body['user_id']);
      const res = await server.request('POST', '/_matrix/client/v3/login', {
        type: 'm.login.password',
        identifier: { type: 'm.id.user', user: userId },
        password: 'pw pw pw pw',
      });
      expect(res.status).toBe(200);
      return { userId, token: String(res.body['access_token']) };
    };
    const dave = await login('dave');
    const erin = await login('erin');
    const asUser = (token: string) => ({ Authorization: `Bearer ${token}` });
    const created = await server.request(
      'POST',
      '/_matrix/client/v3/createRoom',
      { name: 'Ops room', topic: 'Where the on-call team talks', preset: 'public_chat' },
      asUser(dave.token),
    );
    expect(created.status).toBe(200);
    const roomId = String(created.body['room_id']);
    const join = () =>
      server.request('POST', `/_matrix/client/v3/join/${encodeURIComponent(roomId)}`, {}, asUser(erin.token));
    expect((await join()).status).toBe(200);

    await page.locator('table.rooms tr', { hasText: 'Ops room' }).getByRole('link').click();
    const room = page.locator('article.room');
    await room.locator('header strong', { hasText: 'Ops room' }).waitFor();
    expect(await room.locator('header strong').getAttribute('title')).toBe(roomId);
    await room.getByText('Members (2)').waitFor();
    const memberRows = await room.locator('table.members tbody tr').allTextContents();
    expect(memberRows).toHaveLength(2);
    for (const user of [dave, erin]) {
      expect(await room.locator(`table.members td[title="${user.userId}"]`).count()).toBe(1);
    }
    expect(memberRows.every((row) => row.endsWith('join'))).toBe(true);
    // Two accounts, each served by this server (its only home).
    await room.getByText('Servers and homes (2)').waitFor();
    const servers = await room.locator('table.servers tbody tr').allTextContents();
    expect(servers).toEqual([
      expect.stringContaining('1yesserver (server)'),
      expect.stringContaining('1yesserver (server)'),
    ]);
    const state = room.locator('table.state');
    await state.locator('tr', { hasText: 'm.room.topic' }).getByText('Where the on-call team talks').waitFor();
    expect(await state.locator('tr', { hasText: 'm.room.name' }).textContent()).toContain('Ops room');
    expect(await state.locator('tr', { hasText: 'm.room.join_rules' }).textContent()).toContain('public');
    expect(await state.locator('tr', { hasText: 'm.room.member' }).count()).toBe(2);
    await shot('room-detail');

    await room.getByRole('button', { name: 'Delete room…' }).click();
    const confirm = page.getByRole('button', { name: 'Confirm deletion' });
    expect(await confirm.isDisabled()).toBe(true);
    await page.fill('#reason', 'Abuse report 91');
    await page.check('#also-block');
    await shot('room-delete-confirm');
    await confirm.click();
    await room.getByRole('status').getByText('Deleted: 2 left, 2 forgot it, 0 failed; blocked.').waitFor();
    await room.locator('header .status.blocked').waitFor();
    await room.locator('.block-note', { hasText: 'Abuse report 91' }).waitFor();
    await room.locator('table.members tbody tr', { hasText: 'leave' }).nth(1).waitFor();
    expect(await room.getByRole('button', { name: 'Unblock…' }).count()).toBe(1);
    await page.locator('table.rooms tr', { hasText: 'Ops room' }).locator('.status.blocked').waitFor();
    await page.locator('table.audit tr', { hasText: 'Abuse report 91' }).getByText('room.delete').waitFor();
    await shot('room-deleted-blocked');

    // Blocked: the users who left cannot come back.
    const again = await join();
    expect([again.status, again.body['errcode'], again.body['error']]).toEqual([
      403,
      'M_FORBIDDEN',
      `Room ${roomId} is blocked by the server's administrator.`,
    ]);
  });

  it('resyncs an account with one of its homes and follows the job until it ends', async () => {
    const node = await ClientNode.start({ seed: `console-laptop-${process.pid}`, port: await freePort() });
    laptop = node;
    await node.addHome(serverHomeOf(server, 'server'));
    expect((await node.enroll(server)).status).toBe(201);
    await node.connect(server);
    await node.write(5, 'FIRST');
    const account = `/admin/v1/accounts/${encodeURIComponent(node.userId)}`;
    const held = async (): Promise<number> => {
      const homes = (await server.admin('GET', account)).body['homes'] as Array<{
        self: boolean;
        acked: Record<string, number>;
      }>;
      return homes.find((h) => h.self)?.acked[node.home.peerId] ?? 0;
    };
    await waitFor(async () => (await held()) === 5, 'the server to hold the laptop’s first ops', 60_000, 200);
    // Ops the laptop holds and never pushed: the open session does not bring them by itself.
    await node.write(LOST_PUSH_OPS, 'LOST', 50, false);

    // Searched: the list keeps the laptop's account only (clicked once the list has changed, not while it does).
    await page.fill('#account-search', node.userId.slice(1, 12));
    const accountRows = page.locator('.accounts > table tbody tr');
    await waitFor(async () => (await accountRows.count()) === 1, 'the search to keep one account', UI_TIMEOUT_MS, 100);
    await accountRows.locator(`a[title="${node.userId}"]`).click();
    await page.locator('tr.selected', { has: page.locator(`a[title="${node.userId}"]`) }).waitFor();
    const panel = page.locator('article.account');
    const homeRow = panel.locator('tr.home', { has: page.locator(`td[title="${node.home.peerId}"]`) });
    await homeRow.getByRole('cell', { name: 'client', exact: true }).waitFor();
    expect(await panel.locator('tr.home', { hasText: '(this server)' }).getByRole('button').count()).toBe(0);
    expect(await held()).toBe(5);
    await homeRow.getByRole('button', { name: 'Resync with this home' }).click();
    await page.fill('#reason', 'Laptop devices missing here (ticket 8)');
    await page.getByRole('button', { name: 'Start resync' }).click();
    const job = panel.locator('article.job');
    await job.locator('.status', { hasText: 'done' }).waitFor();
    expect(await job.locator('header strong').textContent()).toBe(node.home.home.name);
    expect(await job.locator('.progress').textContent()).toBe(
      `converged: ${LOST_PUSH_OPS} ops received, 0 sent, 0 missing here, 0 missing there`,
    );
    expect(await job.locator('progress').count()).toBe(0);
    expect(await job.getByRole('alert').count()).toBe(0);
    expect(await held()).toBe(5 + LOST_PUSH_OPS);
    await page
      .locator('table.audit tr', { hasText: 'Laptop devices missing here (ticket 8)' })
      .getByText('account.resync')
      .waitFor();
    await shot('account-resync');
  });
});
