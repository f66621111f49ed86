import { randomBytes } from 'node:crypto';
import type { PgBoss } from 'pg-boss';
import { createJobLog, type JobLog, type JobLogWarning } from '../../src/index.ts';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import type { TestDb } from './db.ts';
import { cuttableProxy } from './proxy.ts';
import { waitFor } from './wait.ts';

/** A unique queue name, so tests in one file never see each other's jobs. */
export const queueName = (label: string): string => `${label}-${randomBytes(3).toString('hex')}`;

export interface Tracked {
  boss: PgBoss;
  joblog: JobLog;
  warnings: JobLogWarning[];
}

/** A started PgBoss and a job log on the test database; warnings are collected. */
export async function tracked(db: TestDb, bossOptions: Parameters<TestDb['boss']>[0] = {}): Promise<Tracked> {
  const boss = await db.boss(bossOptions);
  const joblog = createJobLog({ prisma: db.prisma, boss });
  const warnings: JobLogWarning[] = [];
  joblog.on('warning', (w) => warnings.push(w));
  return { boss, joblog, warnings };
}

/** The pg-boss job, read straight from its table (the log under test is not consulted). */
export async function bossJob(db: TestDb, id: string): Promise<{ state: string; retry_count: number; output: any }> {
  const { rows } = await db.pool.query(`SELECT state::text, retry_count, output FROM pgboss.job WHERE id = $1`, [id]);
  return rows[0];
}

export function waitForBossState(db: TestDb, id: string, states: string[], timeoutMs?: number) {
  return waitFor(`pg-boss job ${id} in ${states.join('/')}`, async () => {
    const job = await bossJob(db, id);
    return job && states.includes(job.state) ? job : undefined;
  }, timeoutMs);
}

/** The log row of a job once it is in one of `states`. */
export function waitForRow(joblog: JobLog, jid: string, states: string[], timeoutMs?: number) {
  return waitFor(`log row of ${jid} in ${states.join('/')}`, async () => {
    const row = await joblog.get(jid);
    return row && states.includes(row.state) ? row : undefined;
  }, timeoutMs);
}

/** A promise with its resolve function, to hold a handler until the test lets it go. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/** Holds the (user, group) section with joblog.section() until `release()`. */
export async function holdSection(joblog: JobLog, userId: string, group = 'financial', type = 'reconciliation') {
  const held = gate();
  let holderJid = '';
  const done = joblog.section({ type, userId, group }, async ({ jid }) => {
    holderJid = jid;
    await held.promise;
  });
  await waitFor('section held', async () => (await joblog.holder(userId, group)) ?? undefined);
  return { holderJid: () => holderJid, release: async () => { held.open(); await done; } };
}

export const FAST = { pollingIntervalSeconds: 0.5 } as const;

/** A tracked log whose Prisma connection runs through a proxy the test can cut; pg-boss keeps its own, direct one. */
export async function withCuttableLog(
  db: TestDb,
  run: (log: { proxy: Awaited<ReturnType<typeof cuttableProxy>>; boss: PgBoss; joblog: JobLog; warnings: JobLogWarning[] }) => Promise<void>,
): Promise<void> {
  const proxy = await cuttableProxy(new URL(db.url));
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: proxy.url }) });
  try {
    const boss = await db.boss();
    const joblog = createJobLog({ prisma, boss, reaper: false });
    const warnings: JobLogWarning[] = [];
    joblog.on('warning', (w) => warnings.push(w));
    await run({ proxy, boss, joblog, warnings });
    joblog.stop();
  } finally {
    proxy.restore();
    await prisma.$disconnect();
    await proxy.close();
  }
}
