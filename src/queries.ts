// The read side of the log: find (keyset pages), stats (computed in SQL) and the sections held
// now. One implementation, used by the API, the CLI and the dashboard. Every value is a bound
// parameter; only fixed fragments chosen in this file are spliced into the SQL text.
import { z } from 'zod';
import { InvalidOptionsError, JobLogError } from './errors.ts';
import { checkDate, dateSchema } from './dates.ts';
import { groupSchema, userIdSchema } from './ids.ts';
import { assertJobTypes } from './job-types.ts';
import { parseOptions } from './options.ts';
import { boundedRead } from './reads.ts';
import { toJobLogListRow, toJobLogRow } from './rows.ts';
import { byJid, LIST_COLUMNS } from './sql.ts';
import { addTo, bucketSql, percentile, type Histogram } from './digest.ts';
import { assertSummaryTables } from './summary-tables.ts';
import type {
  BossJobState,
  FindQuery,
  FindResult,
  HeldSection,
  JobLogRow,
  JobState,
  JobTypeStats,
  PrismaLike,
  ReadOptions,
  SectionsQuery,
  StatsBucketRow,
  StatsQuery,
  StatsResult,
} from './types.ts';

export const FIND_DEFAULT_LIMIT = 50;
export const FIND_MAX_LIMIT = 500;
export const STATS_MAX_BUCKETS = 1000;

export const JOB_STATES = ['started', 'finished', 'failed', 'dead', 'skipped'] as const satisfies readonly JobState[];

const text = z.string().trim().min(1, 'must be a non-empty string');
// Checked against the "JobType" enum before the query (assertJobTypes).
const typesSchema = z.array(z.string().min(1, 'must be a non-empty string')).min(1, 'give at least one type, or leave it out');
const stateSchema = z.enum(JOB_STATES, { message: `expected one of ${JOB_STATES.join(', ')}` });

export const findQuerySchema = z.strictObject({
  userId: userIdSchema.optional(),
  types: typesSchema.optional(),
  states: z.array(stateSchema).min(1, 'give at least one state, or leave it out').optional(),
  group: groupSchema.optional(),
  queue: text.optional(),
  since: dateSchema.optional(),
  until: dateSchema.optional(),
  jid: z.uuid({ message: 'expected a UUID' }).optional(),
  minWaitedMs: z.int().min(0).max(2 ** 31 - 1, 'at most 2147483647 (waited_ms is an int)').optional(),
  limit: z.int().min(1).max(FIND_MAX_LIMIT, `at most ${FIND_MAX_LIMIT}`).default(FIND_DEFAULT_LIMIT),
  cursor: z.string().nullish(),
});

const BUCKET = /^(\d+)\s*(minute|hour|day|week)s?$/;
const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000, week: 604_800_000 } as const;
export const STATS_MAX_BUCKET_MS = 366 * BUCKET_MS.day;

/** A bucket's width in ms; 1 when it does not parse (the regex check reports that). */
function bucketMs(bucket: string): number {
  const match = BUCKET.exec(bucket);
  return match ? Number(match[1]) * BUCKET_MS[match[2] as keyof typeof BUCKET_MS] : 1;
}

export const statsQuerySchema = z.strictObject({
  since: dateSchema,
  until: dateSchema.optional(),
  bucket: z
    .string()
    .trim()
    .regex(BUCKET, "expected '<n> minute(s)|hour(s)|day(s)|week(s)', e.g. '1 hour'")
    // zod runs this check even when the regex failed
    .refine((b) => bucketMs(b) > 0, 'must be longer than zero')
    .refine((b) => bucketMs(b) <= STATS_MAX_BUCKET_MS, `must be at most a year (${STATS_MAX_BUCKET_MS / BUCKET_MS.day} days)`)
    .optional(),
  types: typesSchema.optional(),
});

export const sectionsQuerySchema = z.strictObject({
  userId: userIdSchema.optional(),
  group: groupSchema.optional(),
  bossSchema: text.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected a plain schema name').default('pgboss'),
});

/** Builds a WHERE clause of bound parameters. */
class Where {
  readonly clauses: string[] = [];
  readonly values: unknown[] = [];

  add(fragment: (param: string) => string, value: unknown): void {
    this.values.push(value);
    this.clauses.push(fragment(`$${this.values.length}`));
  }

  param(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }

  toString(): string {
    return this.clauses.length ? `WHERE ${this.clauses.join(' AND ')}` : '';
  }
}

// ---- find ----

interface CursorPosition {
  startedAt: Date;
  id: bigint;
}

/** Opaque to callers: the (started_at, id) of the last row of a page. */
export function encodeCursor(position: CursorPosition): string {
  return Buffer.from(`${position.startedAt.toISOString()}|${position.id}`).toString('base64url');
}

const INT8_MAX = 2n ** 63n - 1n;

export function decodeCursor(cursor: string): CursorPosition | null {
  const [iso, id, ...rest] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const startedAt = iso === undefined ? null : checkDate(iso);
  if (!startedAt?.ok || rest.length || id === undefined || !/^(0|[1-9]\d{0,18})$/.test(id) || BigInt(id) > INT8_MAX) return null;
  return { startedAt: startedAt.value, id: BigInt(id) };
}

/**
 * Rows matching every filter, newest first by (started_at, id), one keyset page at a time.
 * A list row leaves the error documents out (see `LIST_COLUMNS`).
 */
export async function find(prisma: PrismaLike, query: FindQuery = {}, options?: ReadOptions): Promise<FindResult> {
  const q = parseOptions(findQuerySchema, query, 'find');
  if (q.types) await assertJobTypes(prisma, q.types, 'find', 'types');
  const where = new Where();
  if (q.jid !== undefined) where.add((p) => `jid = ${p}::uuid`, q.jid);
  if (q.userId !== undefined) where.add((p) => `user_id = ${p}::text /*user_id*/`, q.userId);
  if (q.group !== undefined) where.add((p) => `"group" = ${p}::text`, q.group);
  if (q.queue !== undefined) where.add((p) => `queue = ${p}::text`, q.queue);
  // One value is an equality, not `= ANY`: PostgreSQL reads an index in order only for that.
  if (q.types?.length === 1) where.add((p) => `job_type = ${p}::text::"JobType"`, q.types[0]);
  else if (q.types !== undefined) where.add((p) => `job_type::text = ANY (${p}::text[])`, q.types);
  if (q.states?.length === 1) where.add((p) => `state = ${p}::text::"JobState"`, q.states[0]);
  else if (q.states !== undefined) where.add((p) => `state = ANY (${p}::text[]::"JobState"[])`, q.states);
  if (q.since !== undefined) where.add((p) => `started_at >= ${p}::timestamptz`, q.since);
  if (q.until !== undefined) where.add((p) => `started_at < ${p}::timestamptz`, q.until);
  if (q.minWaitedMs !== undefined) where.add((p) => `waited_ms >= ${p}::int`, q.minWaitedMs);
  if (q.cursor) {
    const position = decodeCursor(q.cursor);
    if (!position) {
      throw new InvalidOptionsError('find', [{ path: 'cursor', message: 'not a cursor returned by find(); start again without it' }]);
    }
    const at = where.param(position.startedAt);
    const id = where.param(position.id.toString());
    where.clauses.push(`(started_at, id) < (${at}::timestamptz, ${id}::bigint)`);
  }
  const limit = where.param(q.limit + 1);
  const statement = `SELECT ${LIST_COLUMNS} FROM job_logs ${where} ORDER BY started_at DESC, id DESC LIMIT ${limit}::int`;
  const raw = await boundedRead(prisma, 'find', options, async (db) =>
    (await db.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...where.values)) ?? []);
  const rows = raw.slice(0, q.limit).map(toJobLogListRow);
  const last = rows.at(-1);
  return { rows, nextCursor: raw.length > q.limit && last ? encodeCursor(last) : null };
}

/** The whole row of one job, error documents included. `jid` is a checked UUID. */
export async function get(prisma: PrismaLike, jid: string, options?: ReadOptions): Promise<JobLogRow | null> {
  const [row] = await boundedRead(prisma, 'get', options, async (db) =>
    (await db.$queryRawUnsafe<Record<string, unknown>[]>(byJid, jid)) ?? []);
  return row ? toJobLogRow(row) : null;
}

// ---- stats ----

// Buckets are aligned to this origin (a Monday, midnight UTC), so '1 hour' buckets start on the
// hour and '1 week' buckets on Mondays, whatever `since` is.
const BUCKET_ORIGIN = '2001-01-01T00:00:00Z';

const SETTLED_RUN = `l.state IN ('finished', 'failed', 'dead')`;

// The summarised periods inside the window (maintenance/summariser.ts): whole UTC days, six-hour
// blocks and hours whose summaries are not stale. $1 since, $2 until
const periodsSql = `
SELECT coalesce(array_agg(start ORDER BY start) FILTER (WHERE span = 'hour'), '{}') AS hours,
       coalesce(array_agg(start ORDER BY start) FILTER (WHERE span = 'six_hours'), '{}') AS six_hours,
       coalesce(array_agg(start ORDER BY start) FILTER (WHERE span = 'day'), '{}') AS days
  FROM job_log_periods
 WHERE NOT stale AND start >= $1::timestamptz
   AND start + CASE span WHEN 'day' THEN interval '1 day' WHEN 'six_hours' THEN interval '6 hours' ELSE interval '1 hour' END <= $2::timestamptz`;

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

interface Periods {
  /** Summarised hours, ascending. */
  hours: Date[];
  sixHours: Date[];
  days: Date[];
}

const SIX_HOURS_MS = 6 * HOUR_MS;
const startOf = (t: Date, ms: number) => t.getTime() - (t.getTime() % ms);

/** The fewest summaries that cover the summarised hours: each day, then each six-hour block outside one, then each hour outside both. */
function coveringSummaries(periods: Periods): { spans: string[]; starts: Date[] } {
  const inDay = new Set(periods.days.map((d) => d.getTime()));
  const blocks = periods.sixHours.filter((b) => !inDay.has(startOf(b, DAY_MS)));
  const inBlock = new Set(blocks.map((b) => b.getTime()));
  const hours = periods.hours.filter((h) => !inDay.has(startOf(h, DAY_MS)) && !inBlock.has(startOf(h, SIX_HOURS_MS)));
  return {
    spans: [...periods.days.map(() => 'day'), ...blocks.map(() => 'six_hours'), ...hours.map(() => 'hour')],
    starts: [...periods.days, ...blocks, ...hours],
  };
}

/** The parts of [since, until) no summarised hour covers, read live: edges, open hour, stale or unsummarised hours. */
function gapsOf(since: Date, until: Date, hours: readonly Date[]): [Date, Date][] {
  const gaps: [Date, Date][] = [];
  let from = since.getTime();
  for (const hour of hours) {
    if (hour.getTime() > from) gaps.push([new Date(from), hour]);
    from = hour.getTime() + HOUR_MS;
  }
  if (until.getTime() > from) gaps.push([new Date(from), until]);
  return gaps;
}

/**
 * The rows of the gaps, as a WHERE clause: each gap's bounds are parameters of their own, so the
 * planner sees them and reads each through the started_at index (a join to a list of gaps made it
 * guess a ninth of the table per gap, then scan it). `values` receives the bounds.
 */
function liveRows(gaps: [Date, Date][], values: unknown[]): string {
  if (gaps.length === 0) return 'false';
  return `(${gaps.map(([lo, hi]) => {
    values.push(lo, hi);
    return `(l.started_at >= $${values.length - 1}::timestamptz AND l.started_at < $${values.length}::timestamptz)`;
  }).join(' OR ')})`;
}

const stateSums = JOB_STATES.map((s) => `sum(${s})::int AS "${s}"`).join(', ');
const TYPES_FILTER = (column: string) => `($1::text[] IS NULL OR ${column}::text = ANY ($1::text[]))`;

// $1 types or null, $2 spans and $3 starts of the summaries read; then the gaps' bounds.
const byTypeSql = (live: string) => `
WITH used AS (
  SELECT * FROM unnest($2::text[], $3::timestamptz[]) AS u(span, start)
), summary AS (
  SELECT t.* FROM used u JOIN job_log_period_types t ON t.span = u.span AND t.start = u.start
   WHERE ${TYPES_FILTER('t.job_type')}
), live AS (
  SELECT l.job_type, l.state, l.duration_ms FROM job_logs l WHERE ${live} AND ${TYPES_FILTER('l.job_type')}
), from_summary AS (
  SELECT job_type, ${stateSums}, sum(finished + failed + dead)::int AS runs, max(duration_max) AS max
    FROM summary GROUP BY job_type
), from_live AS (
  SELECT job_type, ${JOB_STATES.map((s) => `count(*) FILTER (WHERE l.state = '${s}')::int AS "${s}"`).join(', ')},
         percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE ${SETTLED_RUN}) AS p50,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE ${SETTLED_RUN}) AS p95,
         max(duration_ms) FILTER (WHERE ${SETTLED_RUN}) AS max
    FROM live l GROUP BY job_type
), histogram AS (
  SELECT job_type, b, sum(n)::int AS n FROM (
    SELECT job_type, unnest(duration_buckets) AS b, unnest(duration_counts) AS n FROM summary
    UNION ALL
    SELECT l.job_type, ${bucketSql('l.duration_ms')}, count(*) FROM live l
     WHERE ${SETTLED_RUN} AND EXISTS (SELECT 1 FROM summary) GROUP BY 1, 2
  ) y GROUP BY 1, 2
)
SELECT coalesce(s.job_type, l.job_type)::text AS job_type,
       ${JOB_STATES.map((st) => `coalesce(s."${st}", 0) + coalesce(l."${st}", 0) AS "${st}"`).join(',\n       ')},
       coalesce(s.runs, 0) AS summarised_runs, l.p50, l.p95, greatest(s.max, l.max) AS max,
       (SELECT array_agg(b ORDER BY b) FROM histogram h WHERE h.job_type = coalesce(s.job_type, l.job_type)) AS buckets,
       (SELECT array_agg(n ORDER BY b) FROM histogram h WHERE h.job_type = coalesce(s.job_type, l.job_type)) AS counts,
       (SELECT count(*) FROM used u JOIN job_log_periods p ON p.span = u.span AND p.start = u.start)::int AS found
  FROM from_summary s FULL JOIN from_live l ON l.job_type = s.job_type
 ORDER BY 1`;

/** Per job type: counts by state, failure rate, duration percentiles; optionally per bucket. */
export async function stats(prisma: PrismaLike, query: StatsQuery, options?: ReadOptions): Promise<StatsResult> {
  const q = parseOptions(statsQuerySchema, query, 'stats');
  if (q.types) await assertJobTypes(prisma, q.types, 'stats', 'types');
  const { since } = q;
  const until = q.until ?? new Date();
  if (until <= since) {
    throw new InvalidOptionsError('stats', [{ path: 'until', message: 'must be later than since' }]);
  }
  const bucket = q.bucket === undefined ? undefined : normaliseBucket(q.bucket, since, until);
  await assertSummaryTables(prisma, 'stats');
  return boundedRead(prisma, 'stats', options, async (db) => {
    for (let tries = 1; ; tries++) {
      const [raw] = (await db.$queryRawUnsafe<Record<'hours' | 'six_hours' | 'days', (Date | string)[]>[]>(periodsSql, since, until)) ?? [];
      const dates = (xs: (Date | string)[] | undefined) => (xs ?? []).map((d) => new Date(d));
      const periods: Periods = { hours: dates(raw?.hours), sixHours: dates(raw?.six_hours), days: dates(raw?.days) };
      const byType = await typeStats(db, since, until, periods, q.types ?? null);
      // A summary pass deleted a stale summary between the two statements: read again.
      if (!byType && tries < 3) continue;
      const result: StatsResult = { since, until, byType: byType ?? [] };
      if (bucket) result.buckets = await bucketCounts(db, since, until, bucket.wholeHours ? periods.hours : [], bucket.interval, q.types ?? null);
      return result;
    }
  });
}

/** Null when a summary it meant to read was gone by then. */
async function typeStats(db: PrismaLike, since: Date, until: Date, periods: Periods, types: string[] | null): Promise<JobTypeStats[] | null> {
  const { spans, starts } = coveringSummaries(periods);
  const values: unknown[] = [types, spans, starts];
  const statement = byTypeSql(liveRows(gapsOf(since, until, periods.hours), values));
  const raw = (await db.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...values)) ?? [];
  if (raw.some((r) => Number(r.found) < spans.length)) return null;
  return raw.map(toTypeStats);
}

function normaliseBucket(bucket: string, since: Date, until: Date): { interval: string; wholeHours: boolean } {
  const [, n, unit] = BUCKET.exec(bucket)! as unknown as [string, string, keyof typeof BUCKET_MS];
  const width = bucketMs(bucket);
  const count = Math.ceil((until.getTime() - since.getTime()) / width) + 1;
  if (count > STATS_MAX_BUCKETS) {
    throw new InvalidOptionsError('stats', [
      { path: 'bucket', message: `'${bucket}' makes ${count} buckets between since and until; at most ${STATS_MAX_BUCKETS}, choose a wider bucket` },
    ]);
  }
  return { interval: `${Number(n)} ${unit}s`, wholeHours: width % HOUR_MS === 0 };
}

// Buckets of whole hours (the origin is on the hour) add up the summarised hours' counts; other
// buckets read every row live (`hours` empty).
// $1 types or null, $2 interval, $3 origin, $4 since, $5 until, $6 summarised hours; then the gaps' bounds.
const bucketStatement = (live: string) => `
WITH counted AS (
  SELECT date_bin($2::interval, at, $3::timestamptz) AS at, sum(total)::int AS total, sum(failed)::int AS failed FROM (
    SELECT t.start AS at, t.started + t.finished + t.failed + t.dead + t.skipped AS total, t.failed + t.dead AS failed
      FROM unnest($6::timestamptz[]) AS h(start)
      JOIN job_log_period_types t ON t.span = 'hour' AND t.start = h.start
     WHERE ${TYPES_FILTER('t.job_type')}
    UNION ALL
    SELECT l.started_at, 1, (l.state IN ('failed', 'dead'))::int FROM job_logs l WHERE ${live} AND ${TYPES_FILTER('l.job_type')}
  ) x
   GROUP BY 1
)
SELECT s.at, coalesce(c.total, 0) AS total, coalesce(c.failed, 0) AS failed
  FROM generate_series(date_bin($2::interval, $4::timestamptz, $3::timestamptz), $5::timestamptz - interval '1 millisecond', $2::interval) AS s(at)
  LEFT JOIN counted c ON c.at = s.at
 ORDER BY s.at`;

async function bucketCounts(
  db: PrismaLike, since: Date, until: Date, hours: Date[], interval: string, types: string[] | null,
): Promise<StatsBucketRow[]> {
  const values: unknown[] = [types, interval, BUCKET_ORIGIN, since, until, hours];
  const statement = bucketStatement(liveRows(gapsOf(since, until, hours), values));
  const raw = (await db.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...values)) ?? [];
  return raw.map((r) => ({ at: new Date(r.at as Date | string), total: Number(r.total), failed: Number(r.failed) }));
}

const num = (v: unknown): number | null => (v == null ? null : Number(v));

function toTypeStats(raw: Record<string, unknown>): JobTypeStats {
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, Number(raw[s])])) as Record<JobState, number>;
  const settled = counts.finished + counts.failed + counts.dead;
  const max = num(raw.max);
  // Exact percentiles while every settled run was read live; from the combined histogram once
  // summaries take part.
  const approximate = Number(raw.summarised_runs) > 0;
  const histogram: Histogram = new Map();
  if (approximate) addTo(histogram, (raw.buckets as number[] | null) ?? [], (raw.counts as number[] | null) ?? []);
  return {
    jobType: String(raw.job_type),
    total: JOB_STATES.reduce((sum, s) => sum + counts[s], 0),
    counts,
    failureRate: settled === 0 ? null : (counts.failed + counts.dead) / settled,
    p50Ms: approximate ? percentile(histogram, 0.5, max) : num(raw.p50),
    p95Ms: approximate ? percentile(histogram, 0.95, max) : num(raw.p95),
    maxMs: max,
  };
}

// ---- sections ----


/** Every section held now, oldest first, with its pg-boss job's state and a staleness verdict. */
/**
 * Does a held section's holder look dead? A `joblog.section()` row holds it by a lease its holder
 * renews; a tracked worker's row has no lease but carries its pg-boss job's creation time, so a
 * missing job means gone, and a settled one means its row outlived it. (`l` the row, `j` its pg-boss job.)
 */
const STALE_HOLDER = `CASE WHEN l.lease_until IS NOT NULL THEN l.lease_until < clock_timestamp()
            WHEN j.state IS NULL THEN l.queued_at IS NOT NULL
            ELSE j.state::text IN ('completed', 'failed', 'cancelled') END`;

/** The `started` rows that hold a section, each with its pg-boss job (`j`), filtered by `where`. */
const heldSections = (bossSchema: string, where: Where) => `
  FROM job_logs l
  LEFT JOIN "${bossSchema}".job j ON j.name = l.queue AND j.id = l.jid
 ${where}`;

function sectionsWhere(q: { userId?: string; group?: string }): Where {
  const where = new Where();
  where.clauses.push(`l.state = 'started'`, `l.user_id IS NOT NULL`, `l."group" IS NOT NULL`);
  if (q.userId !== undefined) where.add((p) => `l.user_id = ${p}::text /*user_id*/`, q.userId);
  if (q.group !== undefined) where.add((p) => `l."group" = ${p}::text`, q.group);
  return where;
}

export async function sections(prisma: PrismaLike, query: SectionsQuery = {}, options?: ReadOptions): Promise<HeldSection[]> {
  const q = parseOptions(sectionsQuerySchema, query, 'sections');
  const where = sectionsWhere(q);
  const statement = `
SELECT l.user_id::text AS user_id, l."group", l.jid::text AS jid, l.job_type::text AS job_type, l.queue, l.attempt,
       l.max_attempts, l.started_at, l.lease_until, ${STALE_HOLDER} AS stale,
       floor(extract(epoch FROM clock_timestamp() - l.started_at) * 1000)::bigint AS held_for_ms,
       j.state::text AS boss_state
${heldSections(q.bossSchema, where)}
 ORDER BY l.started_at, l.id`;
  return boundedRead(prisma, 'sections', options, async (db) => {
    await assertBossTable(db, q.bossSchema, 'sections');
    const raw = (await db.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...where.values)) ?? [];
    return raw.map(toHeldSection);
  });
}

/** Sections held now, per group: how many, how many look stale, the longest held. */
export interface SectionGroup {
  group: string;
  held: number;
  stale: number;
  maxHeldMs: number;
}

/** `sections()` counted per group by the database: what metrics read, whatever the number of sections held. */
export async function sectionGroups(prisma: PrismaLike, query: { bossSchema?: string } = {}, options?: ReadOptions): Promise<SectionGroup[]> {
  const q = parseOptions(sectionsQuerySchema, query, 'sections');
  const where = sectionsWhere({});
  const statement = `
SELECT l."group", count(*)::int AS held, count(*) FILTER (WHERE ${STALE_HOLDER})::int AS stale,
       floor(extract(epoch FROM clock_timestamp() - min(l.started_at)) * 1000)::bigint AS max_held_ms
${heldSections(q.bossSchema, where)}
 GROUP BY l."group"
 ORDER BY l."group"`;
  return boundedRead(prisma, 'sections', options, async (db) => {
    await assertBossTable(db, q.bossSchema, 'sections');
    const raw = (await db.$queryRawUnsafe<Record<string, unknown>[]>(statement)) ?? [];
    return raw.map((r) => ({ group: String(r.group), held: Number(r.held), stale: Number(r.stale), maxHeldMs: Number(r.max_held_ms) }));
  });
}

async function assertBossTable(db: PrismaLike, bossSchema: string, what: string): Promise<void> {
  const [exists] = (await db.$queryRawUnsafe<{ found: boolean }[]>(`SELECT to_regclass($1::text) IS NOT NULL AS found`, `${bossSchema}.job`)) ?? [];
  if (!exists?.found) {
    throw new JobLogError(
      'BOSS_SCHEMA_MISSING',
      `${what}: table ${bossSchema}.job not found; start pg-boss on this database once, or name pg-boss's schema (bossSchema, --boss-schema)`,
    );
  }
}

function toHeldSection(raw: Record<string, unknown>): HeldSection {
  return {
    userId: String(raw.user_id),
    group: String(raw.group),
    jid: String(raw.jid),
    jobType: String(raw.job_type),
    queue: String(raw.queue),
    attempt: Number(raw.attempt),
    maxAttempts: Number(raw.max_attempts),
    startedAt: new Date(raw.started_at as Date | string),
    heldForMs: Number(raw.held_for_ms),
    bossState: (raw.boss_state as BossJobState | null) ?? null,
    leaseUntil: raw.lease_until == null ? null : new Date(raw.lease_until as Date | string),
    stale: raw.stale === true,
  };
}

