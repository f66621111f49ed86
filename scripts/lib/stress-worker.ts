// One worker process of `npm run stress`. Runs handlers for both job types of the stress run; each
// handler records when it enters and leaves in the `witness` table, through a pool of its own, so
// overlaps are counted without trusting the job log.
//   node scripts/lib/stress-worker.ts <url> section|groupConcurrency <run> <concurrency> <import queue> <reconcile queue>
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PgBoss, type Job } from 'pg-boss';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { createJobLog } from '../../src/index.ts';

interface Payload { userId: string; ms: number; failOnAttempts: number[] }

const [url, mode, run, concurrency, importQueue, reconcileQueue] = process.argv.slice(2) as string[] as [string, string, string, string, string, string];
const witness = new pg.Pool({ connectionString: url, max: 4 });
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: 4 }) });
const boss = new PgBoss({ connectionString: url, supervise: false, schedule: false, max: 6 });
boss.on('error', (error) => console.error(`stress worker ${process.pid}: pg-boss: ${error.message}`));
await boss.start();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The work: witnessed, of random length, failing on the attempts the sender chose. */
async function work(jid: string, data: Payload, attempt: number): Promise<void> {
  const { rows } = await witness.query<{ id: string }>(
    `INSERT INTO witness (run, jid, user_id, entered) VALUES ($1, $2, $3, clock_timestamp()) RETURNING id`,
    [run, jid, data.userId],
  );
  try {
    await sleep(data.ms);
  } finally {
    await witness.query(`UPDATE witness SET exited = clock_timestamp() WHERE id = $1`, [rows[0]!.id]);
  }
  if (data.failOnAttempts.includes(attempt)) throw new Error(`planned failure on attempt ${attempt}`);
}

const polling = { pollingIntervalSeconds: 0.5, localConcurrency: Number(concurrency), batchSize: 2 };
if (mode === 'section') {
  const joblog = createJobLog({ prisma, boss, reaper: false });
  joblog.on('warning', (w) => console.error(`stress worker ${process.pid}: ${w.code}: ${w.message}`));
  for (const [queue, type] of [[importQueue, 'financial_data_import'], [reconcileQueue, 'reconciliation']] as const) {
    await joblog.work<Payload>(queue, {
      ...polling, type, group: 'financial', userId: (job) => job.data.userId,
      onBusy: { wait: { retryEverySeconds: 1, giveUpAfterSeconds: 600 } },
    }, (job, ctx) => work(job.id, job.data, ctx.attempt));
  }
} else {
  for (const queue of [importQueue, reconcileQueue]) {
    // batchSize 1: a throwing pg-boss handler fails its whole batch, which the tracked worker does not.
    await boss.work<Payload>(queue, { ...polling, batchSize: 1, groupConcurrency: 1 }, async (jobs: Job<Payload>[]) => {
      for (const job of jobs) await work(job.id, job.data, job.retryCount + 1);
    });
  }
}
console.log('ready');

process.on('SIGTERM', async () => {
  await boss.stop({ graceful: true, timeout: 5000 });
  await prisma.$disconnect();
  await witness.end();
  process.exit(0);
});
