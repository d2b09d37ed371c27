// The admin console in a real browser: Debian's Chromium driven by playwright-core, against a server process
// serving the built console at /admin/. Signs in, creates an account, sees a device logged in elsewhere appear
// while the page is open, deactivates the account. Screenshots go to a scratch directory, or to docs/console/
// with POLYHOME_SCREENSHOTS=docs (how the committed ones were made).
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, ServerProcess } from './support/server-process.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const CONSOLE_INDEX = path.join(root, 'apps/server/dist/console/index.html');
/** How long the page may take to show what a step waits for (a loaded machine; polling is every 2 s). */
const UI_TIMEOUT_MS = 20_000;

describe('the admin console in Chromium', () => {
  let dir: string;
  let shots: string;
  let server: ServerProcess;
  let browser: Browser;
  let page: Page;
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
});
