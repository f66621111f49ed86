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

const SETTLED_RUN = `state IN ('finished', 'failed', 'dead')`;

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

  const where = new Where();
  where.add((p) => `started_at >= ${p}::timestamptz`, since);
  where.add((p) => `started_at < ${p}::timestamptz`, until);
  if (q.types) where.add((p) => `job_type::text = ANY (${p}::text[])`, q.types);

  const byTypeSql = `
SELECT job_type::text AS job_type, count(*)::int AS total,
       ${JOB_STATES.map((s) => `count(*) FILTER (WHERE state = '${s}')::int AS "${s}"`).join(',\n       ')},
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE ${SETTLED_RUN}) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE ${SETTLED_RUN}) AS p95,
       max(duration_ms) FILTER (WHERE ${SETTLED_RUN}) AS max
  FROM job_logs ${where}
 GROUP BY job_type
 ORDER BY job_type::text`;
  return boundedRead(prisma, 'stats', options, async (db) => {
    const rawTypes = (await db.$queryRawUnsafe<Record<string, unknown>[]>(byTypeSql, ...where.values)) ?? [];
    const result: StatsResult = { since, until, byType: rawTypes.map(toTypeStats) };
    if (bucket) result.buckets = await bucketCounts(db, where, bucket);
    return result;
  });
}

function normaliseBucket(bucket: string, since: Date, until: Date): string {
  const [, n, unit] = BUCKET.exec(bucket)! as unknown as [string, string, keyof typeof BUCKET_MS];
  const width = bucketMs(bucket);
  const count = Math.ceil((until.getTime() - since.getTime()) / width) + 1;
  if (count > STATS_MAX_BUCKETS) {
    throw new InvalidOptionsError('stats', [
      { path: 'bucket', message: `'${bucket}' makes ${count} buckets between since and until; at most ${STATS_MAX_BUCKETS}, choose a wider bucket` },
    ]);
  }
  return `${Number(n)} ${unit}s`;
}

// $1 and $2 are since and until: `where` always starts with them.
async function bucketCounts(prisma: PrismaLike, where: Where, bucket: string): Promise<StatsBucketRow[]> {
  const values = [...where.values, bucket, BUCKET_ORIGIN];
  const b = `$${values.length - 1}::interval`;
  const origin = `$${values.length}::timestamptz`;
  const statement = `
WITH counted AS (
  SELECT date_bin(${b}, started_at, ${origin}) AS at, count(*)::int AS total,
         count(*) FILTER (WHERE state IN ('failed', 'dead'))::int AS failed
    FROM job_logs ${where}
   GROUP BY 1
)
SELECT s.at, coalesce(c.total, 0) AS total, coalesce(c.failed, 0) AS failed
  FROM generate_series(date_bin(${b}, $1::timestamptz, ${origin}), $2::timestamptz - interval '1 millisecond', ${b}) AS s(at)
  LEFT JOIN counted c ON c.at = s.at
 ORDER BY s.at`;
  const raw = (await prisma.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...values)) ?? [];
  return raw.map((r) => ({ at: new Date(r.at as Date | string), total: Number(r.total), failed: Number(r.failed) }));
}

const num = (v: unknown): number | null => (v == null ? null : Number(v));

function toTypeStats(raw: Record<string, unknown>): JobTypeStats {
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, Number(raw[s])])) as Record<JobState, number>;
  const settled = counts.finished + counts.failed + counts.dead;
  return {
    jobType: String(raw.job_type),
    total: Number(raw.total),
    counts,
    failureRate: settled === 0 ? null : (counts.failed + counts.dead) / settled,
    p50Ms: num(raw.p50),
    p95Ms: num(raw.p95),
    maxMs: num(raw.max),
  };
}

// ---- sections ----

const SETTLED_BOSS_STATES: BossJobState[] = ['completed', 'failed', 'cancelled'];

/** Every section held now, oldest first, with its pg-boss job's state and a staleness verdict. */
export async function sections(prisma: PrismaLike, query: SectionsQuery = {}, options?: ReadOptions): Promise<HeldSection[]> {
  const q = parseOptions(sectionsQuerySchema, query, 'sections');
  const where = new Where();
  where.clauses.push(`l.state = 'started'`, `l.user_id IS NOT NULL`, `l."group" IS NOT NULL`);
  if (q.userId !== undefined) where.add((p) => `l.user_id = ${p}::text /*user_id*/`, q.userId);
  if (q.group !== undefined) where.add((p) => `l."group" = ${p}::text`, q.group);
  const statement = `
SELECT l.user_id::text AS user_id, l."group", l.jid::text AS jid, l.job_type::text AS job_type, l.queue, l.attempt,
       l.max_attempts, l.started_at, l.queued_at, l.lease_until,
       l.lease_until IS NOT NULL AND l.lease_until < clock_timestamp() AS lease_expired,
       floor(extract(epoch FROM clock_timestamp() - l.started_at) * 1000)::bigint AS held_for_ms,
       j.state::text AS boss_state
  FROM job_logs l
  LEFT JOIN "${q.bossSchema}".job j ON j.name = l.queue AND j.id = l.jid
 ${where}
 ORDER BY l.started_at, l.id`;
  return boundedRead(prisma, 'sections', options, async (db) => {
    const [exists] = (await db.$queryRawUnsafe<{ found: boolean }[]>(
      `SELECT to_regclass($1::text) IS NOT NULL AS found`,
      `${q.bossSchema}.job`,
    )) ?? [];
    if (!exists?.found) {
      throw new JobLogError(
        'BOSS_SCHEMA_MISSING',
        `sections: table ${q.bossSchema}.job not found; start pg-boss on this database once, or name pg-boss's schema (bossSchema, --boss-schema)`,
      );
    }
    const raw = (await db.$queryRawUnsafe<Record<string, unknown>[]>(statement, ...where.values)) ?? [];
    return raw.map(toHeldSection);
  });
}

function toHeldSection(raw: Record<string, unknown>): HeldSection {
  const bossState = (raw.boss_state as BossJobState | null) ?? null;
  const leaseUntil = raw.lease_until == null ? null : new Date(raw.lease_until as Date | string);
  // A joblog.section() row holds its section by a lease its holder renews; a tracked worker's
  // row has no lease but carries its pg-boss job's creation time, so a missing job means gone.
  const fromBoss = leaseUntil === null && raw.queued_at != null;
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
    bossState,
    leaseUntil,
    stale: leaseUntil !== null
      ? raw.lease_expired === true
      : bossState === null ? fromBoss : SETTLED_BOSS_STATES.includes(bossState),
  };
}

