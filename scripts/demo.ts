// The job log end to end: financial imports and reconciliations for a few users at once (some
// collide on the `financial` section), a job that succeeds on its retry, one that dies on its
// last retry, a non-retryable one that throws, and a bad payload. Prints the log and a summary.
//
//   npm run demo                       embedded PostgreSQL, started and removed for the run
//   DATABASE_URL=postgres://… npm run demo   that database (migrated first)
import { PrismaPg } from '@prisma/adapter-pg';
import { PgBoss } from 'pg-boss';
import { z } from 'zod';
import { JobType, PrismaClient } from '../src/generated/prisma/client.ts';
import { createJobLog } from '../src/index.ts';
import { migrate, openDatabase } from './lib/database.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const QUEUES = {
  import: 'financial-data-import',
  reconcile: 'reconciliation',
  report: 'report-export',
  email: 'welcome-email',
} as const;

async function main(): Promise<void> {
  const db = await openDatabase('joblog_demo');
  console.log(db.embedded ? `embedded PostgreSQL at ${redact(db.url)}` : `DATABASE_URL ${redact(db.url)}`);
  await migrate(db.url);

  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
  const boss = new PgBoss({ connectionString: db.url, schedule: false, supervise: false });
  boss.on('error', (error) => console.error('pg-boss:', error.message));
  try {
    await boss.start();
    const sent = await runDemo(prisma, boss);
    await waitUntilSettled(prisma, sent);
    await report(prisma, sent);
  } finally {
    await boss.stop({ graceful: true, timeout: 5000 });
    await prisma.$disconnect();
    await db.stop();
  }
}

async function runDemo(prisma: PrismaClient, boss: PgBoss): Promise<string[]> {
  await boss.createQueue(QUEUES.import, { retryLimit: 3, retryDelay: 1 });
  await boss.createQueue(QUEUES.reconcile, { retryLimit: 2, retryDelay: 1 });
  await boss.createQueue(QUEUES.report, { retryLimit: 2, retryDelay: 1 });
  await boss.createQueue(QUEUES.email, { retryLimit: 0 });

  const joblog = createJobLog({ prisma, boss });
  joblog.on('warning', (w) => console.warn(`joblog warning: ${w.message}`));
  const fast = { pollingIntervalSeconds: 0.5, localConcurrency: 4 };
  const financial = z.object({ userId: z.string(), fileId: z.string() });

  // Imports wait for a busy section by throwing into pg-boss's retry; reconciliations skip.
  await joblog.work(QUEUES.import, {
    ...fast, type: JobType.financial_data_import, group: 'financial', userId: (job) => job.data.userId,
    schema: financial, onBusy: 'throw',
  }, async () => sleep(400));
  await joblog.work(QUEUES.reconcile, {
    ...fast, type: JobType.reconciliation, group: 'financial', userId: (job) => job.data.userId,
    schema: financial, onBusy: 'skip',
  }, async () => sleep(300));
  await joblog.work<{ userId: string; failUntilAttempt: number }>(QUEUES.report, {
    ...fast, type: JobType.report_export, userId: (job) => job.data.userId,
  }, async (job, ctx) => {
    if (ctx.attempt <= job.data.failUntilAttempt) throw new Error(`export service unavailable (attempt ${ctx.attempt})`);
  });
  await joblog.work(QUEUES.email, { ...fast, type: JobType.welcome_email, userId: (job) => job.data.userId }, async () => {
    throw new Error('mail server rejected the message');
  });

  const ids: (string | null)[] = [];
  // Sent together, an import and a reconciliation of one user collide on the section. Whoever
  // comes second is busy: a reconciliation is skipped, an import retries until the section opens.
  for (const userId of ['alice', 'bob']) {
    ids.push(await boss.send(QUEUES.import, { userId, fileId: `${userId}-2026-11.csv` }));
    ids.push(await boss.send(QUEUES.reconcile, { userId, fileId: `${userId}-2026-11.csv` }));
  }
  ids.push(await boss.send(QUEUES.reconcile, { userId: 'carol', fileId: 'carol-2026-11.csv' }));
  await sleep(100);
  ids.push(await boss.send(QUEUES.import, { userId: 'carol', fileId: 'carol-2026-11.csv' }));
  ids.push(await boss.send(QUEUES.import, { userId: 'dave' })); // bad payload: no fileId
  ids.push(await boss.send(QUEUES.report, { userId: 'alice', failUntilAttempt: 1 })); // succeeds on retry
  ids.push(await boss.send(QUEUES.report, { userId: 'bob', failUntilAttempt: 99 })); // dies on its last retry
  ids.push(await boss.send(QUEUES.email, { userId: 'erin' })); // non-retryable, throws
  return ids.filter((id): id is string => id !== null);
}

/** Every job sent has a row in a terminal state. */
async function waitUntilSettled(prisma: PrismaClient, jids: string[]): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const settled = await prisma.jobLog.count({ where: { jid: { in: jids }, state: { not: 'started' } } });
    if (settled === jids.length) return;
    await sleep(250);
  }
  throw new Error('demo: jobs did not settle within 60 s');
}

async function report(prisma: PrismaClient, jids: string[]): Promise<void> {
  const rows = await prisma.jobLog.findMany({ where: { jid: { in: jids } }, orderBy: { startedAt: 'asc' } });
  console.table(rows.map((r) => ({
    job: r.jid.slice(0, 8),
    type: r.jobType,
    user: r.userId ?? '',
    group: r.group ?? '',
    state: r.state,
    attempt: `${r.attempt}/${r.maxAttempts}`,
    ms: r.durationMs ?? '',
    note: r.holderJid ? `held by ${r.holderJid.slice(0, 8)}` : ((r.error as { message?: string } | null)?.message ?? '').slice(0, 60),
  })));
  const byState = await prisma.jobLog.groupBy({ by: ['state'], where: { jid: { in: jids } }, _count: true });
  const counts = Object.fromEntries(byState.map((g) => [g.state, g._count]));
  console.log(`summary: jobs=${rows.length} ${['finished', 'failed', 'dead', 'skipped', 'started'].map((s) => `${s}=${counts[s] ?? 0}`).join(' ')}`);
}

function redact(url: string): string {
  return url.replace(/:[^:@/]*@/, ':***@');
}

await main();
