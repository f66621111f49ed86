// Summaries for stats(): each closed hour is summarised once (counts per job type and state, a
// duration histogram of the settled runs, the exact maximum) into job_log_periods /
// job_log_period_types, and each six-hour block and UTC day whose hours are all summarised is
// summed into a row of its own.
// stats() reads the summaries of the whole hours and days of its window and scans only the rest.
//
// What keeps a summary true:
// - an hour is summarised only once it ended `graceSeconds` ago (a row's started_at is the clock of
//   its insert, or, for a job without a section, when its handler started: a second or two before
//   its row is written, since a run over a second gets its `started` row then; the grace covers
//   a transaction that commits after the hour ended) and only when no row of it is `started`: a
//   `started` row still changes (settle, reaper, cancel), so its hour stays live until the row is
//   settled;
// - the statements that change a settled row's hour (retry moves the row to now, prune deletes it,
//   the reconciler writes a row with pg-boss's start time) mark that hour and its day stale in the
//   same statement (sql.markStale); the next pass deletes stale summaries and summarises again.
// Every statement is idempotent and safe from many processes at once: a period is claimed by
// inserting its mark (`ON CONFLICT DO NOTHING`), and only the statement that inserted it writes
// its rows. Each statement is its own short transaction; a pass goes on until nothing is left, so
// it catches up after downtime.
import { assertSummaryTables } from '../summary-tables.ts';
import { bucketSql } from '../digest.ts';
import { SPAN_START } from '../sql.ts';
import { parseOptions, summaryScheduleSchema } from '../options.ts';
import type { PrismaLike, SummariseResult } from '../types.ts';

/** Hours (or days) per statement: a week of rows is a few seconds' work at most. */
const PERIODS_PER_STATEMENT = 168;

export const summariseOptionsSchema = summaryScheduleSchema.pick({ graceSeconds: true });

const STATES = ['started', 'finished', 'failed', 'dead', 'skipped'] as const;
const SETTLED_RUN = `l.state IN ('finished', 'failed', 'dead')`;

/** $1 how many stale periods to delete. */
export const deleteStale = `
DELETE FROM job_log_periods
 WHERE (span, start) IN (SELECT span, start FROM job_log_periods WHERE stale ORDER BY span, start LIMIT $1::int FOR UPDATE SKIP LOCKED)
RETURNING span`;

/**
 * The closed hours not summarised yet, oldest first: from the hour of the oldest row to the last
 * hour that ended `graceSeconds` ago, without a `started` row. A statement of its own: planned
 * together with the summarising insert, an idle pass cost a second (the insert's estimate made
 * PostgreSQL JIT-compile a statement that had nothing to do).
 * $1 grace seconds, $2 at most this many
 */
export const unsummarisedHours = `
WITH bounds AS (
  SELECT date_trunc('hour', min(started_at), 'UTC') AS first,
         date_trunc('hour', clock_timestamp() - $1::float8 * interval '1 second', 'UTC') AS closed
    FROM job_logs
)
SELECT coalesce(array_agg(h ORDER BY h), '{}') AS hours FROM (
  SELECT h FROM bounds b, generate_series(b.first, b.closed - interval '1 hour', interval '1 hour') AS h
   WHERE NOT EXISTS (SELECT 1 FROM job_log_periods p WHERE p.span = 'hour' AND p.start = h)
     AND NOT EXISTS (SELECT 1 FROM job_logs s
                      WHERE s.state = 'started' AND s.started_at >= h AND s.started_at < h + interval '1 hour')
   ORDER BY h
   LIMIT $2::int
) c`;

/**
 * Summarise the hours $1 (ascending): claim each by inserting its mark; only the hours this
 * statement claimed get rows, read from [$2, $3) (the hours' span: bounds the planner sees).
 * Returns the hours claimed.
 */
export const summariseHours = `
WITH marked AS (
  INSERT INTO job_log_periods (span, start, summarised_at)
  SELECT 'hour', h, clock_timestamp() FROM unnest($1::timestamptz[]) AS h ORDER BY h
  ON CONFLICT DO NOTHING
  RETURNING start
), per_bucket AS (
  SELECT date_trunc('hour', l.started_at, 'UTC') AS start, l.job_type,
         CASE WHEN ${SETTLED_RUN} THEN ${bucketSql('l.duration_ms')} END AS b,
         ${STATES.map((s) => `count(*) FILTER (WHERE l.state = '${s}')::int AS ${s}`).join(', ')},
         count(*) FILTER (WHERE ${SETTLED_RUN})::int AS runs,
         max(l.duration_ms) FILTER (WHERE ${SETTLED_RUN}) AS duration_max
    FROM job_logs l
   WHERE l.started_at >= $2::timestamptz AND l.started_at < $3::timestamptz
     AND date_trunc('hour', l.started_at, 'UTC') IN (SELECT start FROM marked)
   GROUP BY 1, 2, 3
), written AS (
  INSERT INTO job_log_period_types (span, start, job_type, ${STATES.join(', ')}, duration_max, duration_buckets, duration_counts)
  SELECT 'hour', start, job_type, ${STATES.map((s) => `sum(${s})`).join(', ')}, max(duration_max),
         coalesce(array_agg(b ORDER BY b) FILTER (WHERE b IS NOT NULL), '{}'),
         coalesce(array_agg(runs ORDER BY b) FILTER (WHERE b IS NOT NULL), '{}')
    FROM per_bucket
   GROUP BY start, job_type
  RETURNING 1
)
SELECT (SELECT count(*) FROM marked)::int AS periods, (SELECT count(*) FROM written)::int AS rows`;

/**
 * The periods longer than an hour: each is the sum of its summarised hours, written once all of
 * them are. Six-hour blocks (00, 06, 12, 18 UTC) let a 24 h window read about 10 summaries
 * instead of 23; days serve longer windows.
 */
export const LONG_SPANS = [
  { span: 'six_hours', hours: 6, startOf: SPAN_START.six_hours },
  { span: 'day', hours: 24, startOf: SPAN_START.day },
] as const;

type LongSpan = (typeof LONG_SPANS)[number];

/** $1 periods per statement. Sums the hour rows of each period of `long` whose hours are all summarised. Returns the periods. */
export const summariseLong = ({ span, hours, startOf }: LongSpan) => `
WITH candidates AS (
  SELECT ${startOf('start')} AS d FROM job_log_periods
   WHERE span = 'hour' AND NOT stale
   GROUP BY 1 HAVING count(*) = ${hours}
  EXCEPT
  SELECT start FROM job_log_periods WHERE span = '${span}'
   ORDER BY 1
   LIMIT $1::int
), marked AS (
  INSERT INTO job_log_periods (span, start, summarised_at)
  SELECT '${span}', d, clock_timestamp() FROM candidates ORDER BY d
  ON CONFLICT DO NOTHING
  RETURNING start
), hours AS (
  SELECT m.start AS period, t.* FROM marked m
    JOIN job_log_period_types t ON t.span = 'hour' AND t.start >= m.start AND t.start < m.start + interval '${hours} hours'
), merged AS (
  SELECT h.period, h.job_type, x.b, sum(x.n)::int AS n
    FROM hours h CROSS JOIN LATERAL unnest(h.duration_buckets, h.duration_counts) AS x(b, n)
   GROUP BY 1, 2, 3
), written AS (
  INSERT INTO job_log_period_types (span, start, job_type, ${STATES.join(', ')}, duration_max, duration_buckets, duration_counts)
  SELECT '${span}', h.period, h.job_type, ${STATES.map((s) => `sum(h.${s})`).join(', ')}, max(h.duration_max),
         coalesce((SELECT array_agg(b ORDER BY b) FROM merged x WHERE x.period = h.period AND x.job_type = h.job_type), '{}'),
         coalesce((SELECT array_agg(n ORDER BY b) FROM merged x WHERE x.period = h.period AND x.job_type = h.job_type), '{}')
    FROM hours h
   GROUP BY h.period, h.job_type
  RETURNING 1
)
SELECT (SELECT count(*) FROM marked)::int AS periods, (SELECT count(*) FROM written)::int AS rows`;

/** Deletes the stale periods (their rows go with them), so the hour pass summarises them again. */
async function redoStale(prisma: PrismaLike): Promise<number> {
  let redone = 0;
  for (;;) {
    const rows = (await prisma.$queryRawUnsafe<unknown[]>(deleteStale, PERIODS_PER_STATEMENT)) ?? [];
    redone += rows.length;
    if (rows.length < PERIODS_PER_STATEMENT) return redone;
  }
}

async function summariseClosedHours(prisma: PrismaLike, graceSeconds: number): Promise<number> {
  let hours = 0;
  for (;;) {
    const [found] = (await prisma.$queryRawUnsafe<{ hours: (Date | string)[] }[]>(unsummarisedHours, graceSeconds, PERIODS_PER_STATEMENT)) ?? [];
    const todo = (found?.hours ?? []).map((h) => new Date(h));
    if (todo.length === 0) return hours;
    const [done] = (await prisma.$queryRawUnsafe<{ periods: number }[]>(
      summariseHours, todo, todo[0], new Date(todo.at(-1)!.getTime() + 3_600_000),
    )) ?? [];
    hours += Number(done?.periods ?? 0);
    if (todo.length < PERIODS_PER_STATEMENT) return hours;
  }
}

async function summariseFull(prisma: PrismaLike, long: LongSpan): Promise<number> {
  let periods = 0;
  for (;;) {
    const [row] = (await prisma.$queryRawUnsafe<{ periods: number }[]>(summariseLong(long), PERIODS_PER_STATEMENT)) ?? [];
    const n = Number(row?.periods ?? 0);
    periods += n;
    if (n < PERIODS_PER_STATEMENT) return periods;
  }
}

/** One summary pass: redo stale periods, summarise every closed hour not yet summarised, then the six-hour blocks and days. */
export async function summarise(prisma: PrismaLike, options: { graceSeconds?: number } = {}): Promise<SummariseResult> {
  const o = parseOptions(summariseOptionsSchema, options, 'summarise');
  await assertSummaryTables(prisma, 'summarise');
  const redone = await redoStale(prisma);
  const hours = await summariseClosedHours(prisma, o.graceSeconds);
  const sixHours = await summariseFull(prisma, LONG_SPANS[0]);
  const days = await summariseFull(prisma, LONG_SPANS[1]);
  return { hours, sixHours, days, redone };
}
