// What every measurement shares: the bench database, one PgBoss, one job log, a pg pool for
// the bench's own reads (never the library's connections), and one connection of its own that
// polls for drained queues and reads PostgreSQL's CPU (its own backend left out of that figure).
import { randomBytes } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PgBoss } from 'pg-boss';
import { PrismaClient } from '../../src/generated/prisma/client.ts';
import { createJobLog, type JobLog } from '../../src/index.ts';
import { type ServerCpu, serverCpu } from './cpu.ts';

export interface BenchContext {
  url: string;
  prisma: PrismaClient;
  boss: PgBoss;
  joblog: JobLog;
  pool: pg.Pool;
  probe: pg.Client;
  serverCpu: ServerCpu;
  warnings: string[];
  close(): Promise<void>;
}

/** Bench options for pg-boss: no cron, and a queue cache refreshed every second so burst mode sees the backlog. */
export const BOSS_OPTIONS = { schedule: false, supervise: false, queueCacheIntervalSeconds: 1 } as const;

/** `ownServer`: the server was started for the run, so all of its CPU is the bench's. */
export async function openContext(url: string, ownServer: boolean, poolSize = 20): Promise<BenchContext> {
  const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url, max: poolSize }) });
  const boss = new PgBoss({ connectionString: url, max: poolSize, ...BOSS_OPTIONS });
  const warnings: string[] = [];
  boss.on('error', (error) => warnings.push(`pg-boss: ${error.message}`));
  await boss.start();
  const joblog = createJobLog({ prisma, boss });
  joblog.on('warning', (w) => warnings.push(`joblog: ${w.message}`));
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {}); // an idle connection cut when the bench database is dropped WITH (FORCE)
  const probe = new pg.Client({ connectionString: url });
  probe.on('error', () => {});
  await probe.connect();
  return {
    url,
    prisma,
    boss,
    joblog,
    pool,
    probe,
    serverCpu: await serverCpu(probe, ownServer),
    warnings,
    async close() {
      await boss.stop({ graceful: false });
      await prisma.$disconnect();
      await pool.end();
      await probe.end();
    },
  };
}

export const uniqueName = (label: string): string => `${label}-${randomBytes(3).toString('hex')}`;
