// The job log end to end, the same every run: on alice's `financial` section one job holds it
// while a reconciliation is skipped, a bank sync is busy and retried (onBusy: 'throw') and an
// import waits its turn (onBusy: { wait }); besides, a report that succeeds on its retry, one that
// dies on its last retry, a non-retryable email and a bad payload. Prints the log, then the
// commands that show the same rows (scripts/lib/demo-scenario.ts has the cases).
//
//   npm run demo                             embedded PostgreSQL, started and removed for the run
//   npm run demo -- --keep                   the same, kept running (Ctrl-C stops it) to look around
//   DATABASE_URL=postgres://… npm run demo   that database (migrated first)
import { parseArgs } from 'node:util';
import { PrismaPg } from '@prisma/adapter-pg';
import { PgBoss } from 'pg-boss';
import { PrismaClient } from '../src/generated/prisma/client.ts';
import { migrate, openDatabase, type Database } from './lib/database.ts';
import { formatReport, runScenario, type DemoCase } from './lib/demo-scenario.ts';

const DASHBOARD_TOKEN = 'joblog-demo-token';
const CLI = 'node src/cli/main.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { keep: { type: 'boolean', default: false } } });
  const db = await openDatabase('joblog_demo');
  console.log(db.embedded ? 'embedded PostgreSQL (started for this run)' : `DATABASE_URL ${redact(db.url)}`);
  await migrate(db.url);

  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
  const boss = new PgBoss({ connectionString: db.url, schedule: false, supervise: false });
  let stopping = false;
  boss.on('error', (error: Error & { code?: string }) => {
    // 57P01 admin_shutdown: the embedded server being stopped by this script.
    if (!(stopping && error.code === '57P01')) console.error('pg-boss:', error.message);
  });
  try {
    await boss.start();
    const since = new Date();
    const cases = await runScenario(prisma, boss, (w) => console.warn(`joblog warning: ${w.message}`));
    console.log(formatReport(cases));
    console.log(whereToLook(db, since, cases, values.keep));
    await boss.stop({ graceful: true, timeout: 5000 });
    if (db.embedded && values.keep) await untilInterrupted();
  } finally {
    await boss.stop({ graceful: false }).catch(() => {});
    await prisma.$disconnect();
    stopping = true;
    await db.stop();
  }
}

/** The CLI and dashboard commands that show these rows; `since` starts a little before the first. */
function whereToLook(db: Database, since: Date, cases: DemoCase[], keep: boolean): string {
  const env = db.embedded ? `DATABASE_URL=${db.url} ` : '';
  const throwJob = cases.find((c) => c.label === "onBusy: throw")!.jid;
  const from = new Date(since.getTime() - 1000).toISOString();
  const lines = [
    'where to look next (the same rows):',
    `  ${env}${CLI} list --since ${from}`,
    `  ${env}${CLI} show ${throwJob}     # the bank sync, attempt by attempt`,
    `  ${env}${CLI} dashboard --port 4000 --token ${DASHBOARD_TOKEN}`,
    `      then http://127.0.0.1:4000/jobs?since=${encodeURIComponent(from)}&token=${DASHBOARD_TOKEN}`,
  ];
  if (db.embedded) {
    lines.push(keep
      ? 'the embedded server keeps running for these until Ctrl-C'
      : 'the embedded server stops now: `npm run demo -- --keep` keeps it running for these, or set DATABASE_URL');
  }
  return lines.join('\n');
}

function untilInterrupted(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

function redact(url: string): string {
  return url.replace(/:[^:@/]*@/, ':***@');
}

await main();
