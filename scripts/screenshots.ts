// Renders the dashboard's pages from demo data into docs/screenshots/*.png, for the README.
//
//   npm run screenshots                        embedded PostgreSQL, started and removed for the run
//   DATABASE_URL=postgres://… npm run screenshots   a throwaway database on that server
//
// Data: a week of history made in bulk (scripts/lib/make-rows.ts), then demo-like jobs run
// through the library on real pg-boss (an import that succeeds on retry, a report that dies, a
// non-retryable email that throws, a skipped reconciliation) and two sections held while the
// pictures are taken.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { JobType, PrismaClient } from '../src/generated/prisma/client.ts';
import { createDashboard, createJobLog, serve, type JobLog } from '../src/index.ts';
import { launchChromium } from './lib/browser.ts';
import { databaseUrl, migrate, openDatabase, withClient } from './lib/database.ts';
import { makeRows } from './lib/make-rows.ts';

const OUT = path.resolve(import.meta.dirname, '..', 'docs', 'screenshots');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<void> {
  const db = await throwawayDatabase();
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
  const pool = new pg.Pool({ connectionString: db.url });
  const boss = new PgBoss({ connectionString: db.url, schedule: false, supervise: false });
  boss.on('error', (error) => console.error('pg-boss:', error.message));
  const holds: (() => void)[] = [];
  try {
    await migrate(db.url);
    await makeRows(pool, { rows: 6000, days: 7, users: 40 });
    await boss.start();
    const joblog = createJobLog({ prisma, boss });
    const { dead } = await runJobs(joblog, boss, prisma);
    holds.push(await holdSection(joblog, 'alice', 'financial'), await holdSection(joblog, 'bob', 'reports', JobType.report_export));

    const token = randomBytes(24).toString('base64url');
    const served = await serve({ handler: createDashboard({ joblog, token, actions: true }), port: 0 });
    const browser = await launchChromium({ viewport: { width: 1280, height: 900 } });
    try {
      await fs.mkdir(OUT, { recursive: true });
      const page = await browser.context.newPage();
      await page.goto(`${served.url}?token=${token}&window=7d&refresh=off`);
      await page.screenshot({ path: path.join(OUT, 'overview.png'), fullPage: true });
      await page.goto(`${served.url}jobs?state=failed&state=dead&limit=15`);
      await page.screenshot({ path: path.join(OUT, 'jobs.png'), fullPage: true });
      await page.goto(`${served.url}jobs/${dead}`);
      await page.locator('#attempts details').first().evaluate((d) => d.setAttribute('open', ''));
      await page.screenshot({ path: path.join(OUT, 'job.png'), fullPage: true });
      console.log(`wrote ${['overview', 'jobs', 'job'].map((n) => path.join('docs/screenshots', `${n}.png`)).join(', ')}`);
    } finally {
      await browser.close();
      await served.close();
    }
  } finally {
    for (const release of holds) release();
    await boss.stop({ graceful: false }).catch(() => {});
    await prisma.$disconnect();
    await pool.end();
    await db.stop();
  }
}

/** A database of its own: on the embedded server, or created (and dropped) on DATABASE_URL's. */
async function throwawayDatabase(): Promise<{ url: string; stop(): Promise<void> }> {
  const name = `joblog_screenshots_${randomBytes(3).toString('hex')}`;
  const server = await openDatabase(name);
  if (server.embedded) return server;
  const url = databaseUrl(server.url, name);
  await withClient(server.url, (c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  return {
    url,
    stop: () => withClient(server.url, (c) => c.query(`DROP DATABASE ${pg.escapeIdentifier(name)} WITH (FORCE)`)).then(() => {}),
  };
}

async function runJobs(joblog: JobLog, boss: PgBoss, prisma: PrismaClient): Promise<{ dead: string }> {
  const fast = { pollingIntervalSeconds: 0.5, localConcurrency: 4 };
  await boss.createQueue('financial-data-import', { retryLimit: 3, retryDelay: 1 });
  await boss.createQueue('reconciliation', { retryLimit: 0 });
  await boss.createQueue('report-export', { retryLimit: 2, retryDelay: 1 });
  await boss.createQueue('welcome-email', { retryLimit: 0 });
  await joblog.work<{ userId: string; fail: number }>('financial-data-import', {
    ...fast, type: JobType.financial_data_import, group: 'financial', userId: (j) => j.data.userId,
  }, async (job, ctx) => {
    await sleep(300);
    if (ctx.attempt <= job.data.fail) throw new Error(`bank API timeout after 30 s (attempt ${ctx.attempt})`);
  });
  await joblog.work<{ userId: string }>('reconciliation', {
    ...fast, type: JobType.reconciliation, group: 'financial', userId: (j) => j.data.userId, onBusy: 'skip',
  }, async () => sleep(200));
  await joblog.work<{ userId: string }>('report-export', {
    ...fast, type: JobType.report_export, userId: (j) => j.data.userId,
  }, async (_job, ctx) => {
    throw Object.assign(new Error(`export service unavailable: 503 from reports.internal (attempt ${ctx.attempt})`), { code: 'E_UPSTREAM' });
  });
  await joblog.work<{ userId: string }>('welcome-email', {
    ...fast, type: JobType.welcome_email, userId: (j) => j.data.userId,
  }, async () => {
    throw new Error('mail server rejected the message: 550 mailbox unavailable');
  });
  const jids = [
    await boss.send('financial-data-import', { userId: 'carol', fail: 1 }),
    await boss.send('reconciliation', { userId: 'carol' }),
    await boss.send('financial-data-import', { userId: 'dave', fail: 0 }),
    await boss.send('welcome-email', { userId: 'erin' }),
  ];
  const dead = (await boss.send('report-export', { userId: 'bob' }))!;
  const all = [...jids, dead].filter((j): j is string => j !== null);
  const deadline = Date.now() + 60_000;
  while ((await prisma.jobLog.count({ where: { jid: { in: all }, state: { not: 'started' } } })) < all.length) {
    if (Date.now() > deadline) throw new Error('screenshots: the demo jobs did not settle within 60 s');
    await sleep(250);
  }
  return { dead };
}

/** Holds a (user, group) section through joblog.section until the returned function is called. */
async function holdSection(joblog: JobLog, userId: string, group: string, type: string = JobType.financial_data_import): Promise<() => void> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let entered!: () => void;
  const inside = new Promise<void>((resolve) => (entered = resolve));
  void joblog.section({ type, userId, group, queue: 'admin-request' }, async () => {
    entered();
    await released;
  });
  await inside;
  return release;
}

await main();
