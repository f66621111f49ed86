// The dashboard in a real browser (Chromium driven by playwright-core; scripts/lib/browser.ts
// says which Chromium, and these tests are skipped, with a warning, only when there is none): every page
// loads and links to the next, filters apply, the chart is drawn, a script in an error message
// stays text, a visitor without the token is refused, and it all works with JavaScript off.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { findChromium, launchChromium, type Browser } from '../scripts/lib/browser.ts';
import { createDashboard, serve, type ServedDashboard } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, queueName, tracked, waitForRow } from './helpers/joblog.ts';
import { BULK_ROWS, HELD, seedDashboard, TOKEN, XSS_MESSAGE, XSS_USER, type Seeded } from './helpers/dashboard.ts';

const chromium = await findChromium();
if (!chromium.found) console.warn(`\n*** WARNING: the dashboard's browser tests did NOT run: ${chromium.reason} ***\n`);

const db = setupTestDb('dashboard_browser');
let seeded: Seeded;
let served: ServedDashboard;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!chromium.found) return;
  seeded = await seedDashboard(db);
  served = await serve({ handler: createDashboard({ joblog: seeded.joblog, token: TOKEN }), port: 0 });
  browser = await launchChromium();
  page = await browser.context.newPage();
});
beforeEach((context) => {
  if (!chromium.found) context.skip(chromium.reason);
});
afterAll(async () => {
  await browser?.close();
  await served?.close();
  await seeded?.release();
});

const states = (p: Page) => p.locator('#jobs tbody .state').allTextContents();

describe('in Chromium', () => {
  test('without the token the dashboard is refused', async () => {
    const response = await page.goto(`${served.url}jobs`);
    expect(response!.status()).toBe(401);
    await expect(page.locator('h1').textContent()).resolves.toContain('Token required');
    expect(await page.locator('#jobs').count()).toBe(0);
    const wrong = await page.goto(`${served.url}?token=not-the-token-at-all`);
    expect(wrong!.status()).toBe(403);
  });

  test('?token= lets the browser in and leaves the address without it; the overview draws its chart', async () => {
    const response = await page.goto(`${served.url}?token=${TOKEN}`);
    expect(response!.status()).toBe(200);
    expect(page.url()).toBe(served.url);
    const cookies = await browser.context.cookies();
    expect(cookies.find((c) => c.name === 'joblog_dashboard')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });

    const bars = page.locator('svg.chart rect.total');
    expect(await bars.count()).toBeGreaterThan(5);
    expect(await page.locator('svg.chart rect.failed').count()).toBeGreaterThan(0);
    const box = await bars.first().boundingBox();
    expect(box!.height).toBeGreaterThan(0);
    expect(box!.width).toBeGreaterThan(0);
    const total = Number((await page.locator('[data-count="all"]').textContent())!.replaceAll(',', ''));
    // The seed spreads its rows over the last day with up to 10 minutes of jitter, so a few sit at
    // the 24 h window's edge and leave it while the test runs. Rows only ever leave the window, so
    // the database's own count taken after the page is a lower bound, and the seed an upper one.
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM job_logs WHERE started_at >= now() - interval '24 hours'`);
    expect(rows[0].n).toBeGreaterThan(350);
    expect(total).toBeGreaterThanOrEqual(rows[0].n);
    expect(total).toBeLessThanOrEqual(BULK_ROWS + 4);
    // The section held through joblog.section shows with its holder.
    const held = page.locator('#sections-held tr', { hasText: seeded.jids.held.slice(0, 8) });
    await expect(held.locator('td').first().textContent()).resolves.toBe(HELD.userId);
  });

  test('another window redraws the page for it', async () => {
    await page.getByRole('link', { name: '1h', exact: true }).click();
    expect(new URL(page.url()).searchParams.get('window')).toBe('1h');
    await expect(page.locator('.windows a[aria-current="true"]').textContent()).resolves.toBe('1h');
    expect(await page.locator('svg.chart g.bucket').count()).toBeGreaterThanOrEqual(60);
  });

  test('the job list applies a filter, and a job link opens the job with its attempts and errors', async () => {
    await page.getByRole('link', { name: 'Jobs', exact: true }).click();
    expect(await page.locator('#jobs tbody tr').count()).toBe(50);
    await page.locator('input[name=state][value=dead]').check();
    await page.locator('input[name=type][value=reconciliation]').check();
    await page.getByRole('button', { name: 'Filter' }).click();
    const url = new URL(page.url());
    expect(url.searchParams.getAll('state')).toEqual(['dead']);
    expect(url.searchParams.getAll('type')).toEqual(['reconciliation']);
    const shown = await states(page);
    expect(shown.length).toBeGreaterThan(0);
    expect(new Set(shown)).toEqual(new Set(['dead']));
    expect(new Set(await page.locator('#jobs tbody td:nth-child(3)').allTextContents())).toEqual(new Set(['reconciliation']));

    await page.locator(`a.job-link[href$="${seeded.jids.dead}"]`).click();
    expect(page.url()).toBe(`${served.url}jobs/${seeded.jids.dead}`);
    await expect(page.locator('h1').textContent()).resolves.toContain(seeded.jids.dead);
    const attempts = page.locator('#attempts tbody tr');
    expect(await attempts.count()).toBe(2);
    await expect(attempts.nth(0).textContent()).resolves.toContain('bank API timeout (attempt 1)');
    await expect(attempts.nth(1).textContent()).resolves.toMatch(/dead.*bank API timeout \(attempt 2\)/s);
    // From the job back to the user's other jobs.
    await page.getByRole('link', { name: /other reconciliation jobs of user carol/ }).click();
    expect(await page.locator('#jobs tbody tr').count()).toBe(1);
  });

  test('keyset pages: "older" shows the next rows, none twice', async () => {
    await page.goto(`${served.url}jobs?user=user-2&limit=10`);
    const first = await page.locator('#jobs tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-jid')));
    await page.locator('#older').click();
    const second = await page.locator('#jobs tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-jid')));
    expect(first).toHaveLength(10);
    expect(second.length).toBeGreaterThan(0);
    expect(second.filter((jid) => first.includes(jid))).toEqual([]);
    await page.getByRole('link', { name: '« newest' }).click();
    expect(await page.locator('#jobs tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-jid')))).toEqual(first);
  });

  test('a <script> in an error message or a user id renders as text and never runs', async () => {
    await page.goto(`${served.url}jobs/${seeded.jids.xss}`);
    await expect(page.locator('#attempts .error-message').first().textContent()).resolves.toBe(XSS_MESSAGE);
    await expect(page.locator('#fields a', { hasText: 'mallory' }).textContent()).resolves.toBe(XSS_USER);
    await page.locator('#fields a', { hasText: 'mallory' }).hover();
    expect(await page.evaluate(() => (globalThis as { __xss?: unknown }).__xss)).toBeUndefined();
    expect(await page.locator('main script, main img, main b[onmouseover]').count()).toBe(0);
    // The same in the list, where the message and the user id show again.
    await page.goto(`${served.url}jobs?type=welcome_email&state=failed`);
    await expect(page.locator(`tr[data-jid="${seeded.jids.xss}"] td.msg`).textContent()).resolves.toContain('<script>window.__xss = 1</script>');
    expect(await page.evaluate(() => (globalThis as { __xss?: unknown }).__xss)).toBeUndefined();
  });

  test('a bad parameter shows a 400 page naming it', async () => {
    const response = await page.goto(`${served.url}jobs?limit=lots`);
    expect(response!.status()).toBe(400);
    await expect(page.locator('#bad-parameter').textContent()).resolves.toBe('limit');
  });
});

describe('with JavaScript disabled', () => {
  test('links and the filter form still work', async () => {
    const noJs = await launchChromium({ javaScriptEnabled: false });
    try {
      const p = await noJs.context.newPage();
      await p.goto(`${served.url}?token=${TOKEN}`);
      expect(await p.locator('svg.chart rect.total').count()).toBeGreaterThan(0);
      await p.getByRole('link', { name: 'Jobs', exact: true }).click();
      await p.locator('input[name=user]').fill('carol');
      await p.locator('input[name=state][value=dead]').check();
      await p.getByRole('button', { name: 'Filter' }).click();
      expect(new URL(p.url()).searchParams.get('user')).toBe('carol');
      expect(await states(p)).toEqual(['dead']);
      await p.locator('a.job-link').first().click();
      expect(p.url()).toBe(`${served.url}jobs/${seeded.jids.dead}`);
      // The header's jump-to-job form.
      await p.locator('header input[name=jid]').fill(seeded.jids.finished);
      await p.locator('header button').click();
      expect(await p.locator('#jobs tbody tr').count()).toBe(1);
      await expect(p.locator('#jobs tbody .state').textContent()).resolves.toBe('finished');
    } finally {
      await noJs.close();
    }
  });
});

describe('actions, with JavaScript off', () => {
  /** Two dead jobs whose handler succeeds once `failing` is false, and a dashboard with actions on. */
  async function deadJobs() {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('browser-retry');
    let failing = true;
    await boss.createQueue(queue, { retryLimit: 1, retryDelay: 0 });
    await joblog.work(queue, { ...FAST, type: 'reconciliation', userId: () => 'dora' }, async () => {
      if (failing) throw new Error('ledger locked');
    });
    const jobs = [(await boss.send(queue, {}))!, (await boss.send(queue, {}))!];
    await Promise.all(jobs.map((jid) => waitForRow(joblog, jid, ['dead'])));
    failing = false;
    const dashboard = await serve({ handler: createDashboard({ joblog, token: TOKEN, actions: true, actor: () => 'ops@example.com' }), port: 0 });
    return { joblog, jobs, dashboard };
  }

  test('a click retries a dead job (its row starts again and finishes); the same form in an older tab is refused', async () => {
    const { joblog, jobs: [jid], dashboard } = await deadJobs();
    const noJs = await launchChromium({ javaScriptEnabled: false });
    try {
      const tab = await noJs.context.newPage();
      await tab.goto(`${dashboard.url}jobs/${jid}?token=${TOKEN}`);
      const older = await noJs.context.newPage();
      await older.goto(`${dashboard.url}jobs/${jid}`);
      expect(await tab.locator('#actions button').allTextContents()).toEqual(['Retry']);

      const [post] = await Promise.all([tab.waitForResponse(`${dashboard.url}jobs/${jid}/retry`), tab.getByRole('button', { name: 'Retry' }).click()]);
      expect(post.status()).toBe(303);
      await tab.waitForURL(`${dashboard.url}jobs/${jid}`);
      await expect(tab.locator('#flash').textContent()).resolves.toMatch(/^Retried: pg-boss runs the job again; its row is (started|finished)\.$/);
      const row = await waitForRow(joblog, jid!, ['finished']);
      expect(row.errors.at(-1)!.error).toMatchObject({ code: 'RETRY_REQUESTED', message: 'retry requested by ops@example.com; the job had ended dead' });
      await tab.reload();
      await expect(tab.locator('h1 .state').textContent()).resolves.toBe('finished');
      expect(await tab.locator('#flash').count()).toBe(0);
      expect(await tab.locator('#actions').count()).toBe(0);

      // The tab opened before the retry still shows the dead job's form: sending it does nothing.
      await Promise.all([older.waitForURL(`${dashboard.url}jobs/${jid}`), older.getByRole('button', { name: 'Retry' }).click()]);
      await expect(older.locator('#flash.refused').textContent()).resolves.toMatch(/^Not done: this form was for the job as it was \(dead, attempt 2\); it is finished/);
      expect((await joblog.get(jid!))!.errors.filter((e) => e.error.code === 'RETRY_REQUESTED')).toHaveLength(1);
    } finally {
      await noJs.close();
      await dashboard.close();
    }
  });

  test('a form on another site that posts to the dashboard is refused with 403, even with a stolen token', async () => {
    const { joblog, jobs: [, jid], dashboard } = await deadJobs();
    const noJs = await launchChromium({ javaScriptEnabled: false });
    // The other site is served as http://localhost:<port>, the dashboard as http://127.0.0.1:<port>: another site.
    let evilPage = '';
    const evil = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(evilPage));
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    try {
      const tab = await noJs.context.newPage();
      await tab.goto(`${dashboard.url}jobs/${jid}?token=${TOKEN}`);
      const stolen = Object.fromEntries(
        await tab.locator('#actions form input[type=hidden]').evaluateAll((inputs) => inputs.map((i) => [i.getAttribute('name'), i.getAttribute('value')])),
      );
      evilPage = `<!doctype html><form method="post" action="${dashboard.url}jobs/${jid}/retry">${Object.entries(stolen)
        .map(([name, value]) => `<input type="hidden" name="${name}" value="${value}">`)
        .join('')}<button>Win a prize</button></form>`;
      await tab.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`);
      const [response] = await Promise.all([tab.waitForResponse(`${dashboard.url}jobs/${jid}/retry`), tab.getByRole('button', { name: 'Win a prize' }).click()]);
      expect(response.status()).toBe(403);
      await expect(tab.locator('#error-message').textContent()).resolves.toMatch(/^Refused: the form was sent from another site/);
      expect((await joblog.get(jid!))!.state).toBe('dead');
    } finally {
      await noJs.close();
      await dashboard.close();
      await new Promise((resolve) => evil.close(resolve));
    }
  });
});
