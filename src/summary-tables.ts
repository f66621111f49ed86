// The tables of stats()' summaries (maintenance/summariser.ts) come with a migration of their own.
import { LogTableError } from './errors.ts';
import type { PrismaLike } from './types.ts';

const TABLES_EXIST = `SELECT to_regclass('job_log_periods') IS NOT NULL AND to_regclass('job_log_period_types') IS NOT NULL AS found`;

const checked = new WeakMap<PrismaLike, Promise<void>>();

/**
 * The summary tables must exist: stats() and the summary pass refuse a database without them
 * (the migration `*_stats_summaries` adds them), checked once per client. A refusal, not a fallback
 * to scanning: a log that quietly scans would be a hundred times slower on long windows with
 * nothing to say why.
 */
export function assertSummaryTables(prisma: PrismaLike, where: string): Promise<void> {
  let check = checked.get(prisma);
  if (!check) {
    check = Promise.resolve(prisma.$queryRawUnsafe<{ found: boolean }[]>(TABLES_EXIST)).then(([row]) => {
      if (row?.found !== true) {
        throw new LogTableError(
          'SUMMARIES_MISSING',
          `${where}: tables job_log_periods and job_log_period_types not found; copy the JobLogPeriod and JobLogPeriodType ` +
            'models into your schema and run `npx prisma migrate dev` (see docs/adding-to-your-app.md, "Upgrading")',
        );
      }
    });
    checked.set(prisma, check);
    // A failed or refused check is not kept: after the migration the next call passes.
    check.catch(() => { if (checked.get(prisma) === check) checked.delete(prisma); });
  }
  return check;
}
