// stats() over summarised hours and days must say what a scan of the rows says: counts and maxima
// exactly, p50/p95 within the histogram's stated error; passes from many connections write each
// period once; a row changed after its hour was summarised does not make the summary lie.
import { randomUUID } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeEach, describe, expect, test } from 'vitest';
import { PrismaClient } from '../src/generated/prisma/client.ts';
import { createJobLog, JobLogError, type JobState, type PrismaLike, type StatsResult } from '../src/index.ts';
import { RELATIVE_ERROR } from '../src/digest.ts';
import * as sql from '../src/sql.ts';
import { deleteBatch } from '../src/maintenance/pruner.ts';
import { makeRows } from '../scripts/lib/make-rows.ts';
import { setupTestDb } from './helpers/db.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('summaries');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const STATES: JobState[] = ['started', 'finished', 'failed', 'dead', 'skipped'];

const clear = () => db.pool.query('DELETE FROM job_logs; DELETE FROM job_log_periods');

/** What a scan of the rows says, computed here from the table alone. */
async function scan(since: Date, until: Date, types: string[] | null = null) {
  const { rows } = await db.pool.query(
    `SELECT job_type::text AS type, ${STATES.map((s) => `count(*) FILTER (WHERE state = '${s}')::int AS "${s}"`).join(', ')},
            percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE state IN ('finished', 'failed', 'dead')) AS p50,
            percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FILTER (WHERE state IN ('finished', 'failed', 'dead')) AS p95,
            max(duration_ms) FILTER (WHERE state IN ('finished', 'failed', 'dead')) AS max
       FROM job_logs WHERE started_at >= $1 AND started_at < $2 AND ($3::text[] IS NULL OR job_type::text = ANY ($3)) GROUP BY 1 ORDER BY 1`,
    [since, until, types],
  );
  return rows as ({ type: string; p50: number | null; p95: number | null; max: number | null } & Record<JobState, number>)[];
}

const within = (approx: number | null, exact: number | null) => {
  if (exact === null) return approx === null;
  return approx !== null && Math.abs(approx - exact) <= RELATIVE_ERROR * Math.abs(exact) + 1;
};

/** Asserts `result` agrees with a scan: counts and max exactly, percentiles within the bound. */
async function expectAgrees(result: StatsResult, types: string[] | null = null) {
  const truth = await scan(result.since, result.until, types);
  expect(result.byType.map((t) => t.jobType)).toEqual(truth.map((t) => t.type));
  for (const [i, t] of truth.entries()) {
    const got = result.byType[i]!;
    expect(got.counts, t.type).toEqual(Object.fromEntries(STATES.map((s) => [s, t[s]])));
    expect(got.maxMs, t.type).toBe(t.max);
    expect(within(got.p50Ms, t.p50), `${t.type} p50 ${got.p50Ms} vs ${t.p50}`).toBe(true);
    expect(within(got.p95Ms, t.p95), `${t.type} p95 ${got.p95Ms} vs ${t.p95}`).toBe(true);
  }
}

async function bucketTruth(since: Date, until: Date, bucket: string, types: string[] | null) {
  const { rows } = await db.pool.query(
    `SELECT date_bin($3::interval, started_at, '2001-01-01T00:00:00Z') AS at, count(*)::int AS total,
            count(*) FILTER (WHERE state IN ('failed', 'dead'))::int AS failed
       FROM job_logs WHERE started_at >= $1 AND started_at < $2 AND ($4::text[] IS NULL OR job_type::text = ANY ($4)) GROUP BY 1 ORDER BY 1`,
    [since, until, bucket, types],
  );
  return rows as { at: Date; total: number; failed: number }[];
}

async function expectBucketsAgree(result: StatsResult, bucket: string, types: string[] | null) {
  const truth = await bucketTruth(result.since, result.until, bucket, types);
  expect(result.buckets!.filter((b) => b.total > 0)).toEqual(truth);
}

async function row(type: string, state: JobState, startedAt: Date, durationMs: number | null): Promise<string> {
  const jid = randomUUID();
  await db.pool.query(
    `INSERT INTO job_logs (jid, queue, job_type, state, attempt, max_attempts, started_at, finished_at, duration_ms)
     VALUES ($1, 'q', $2::"JobType", $3::"JobState", 1, 1, $4, CASE WHEN $3 = 'started' THEN NULL ELSE $4::timestamptz END, $5)`,
    [jid, type, state, startedAt, durationMs],
  );
  return jid;
}

const hourAgo = (hours: number) => {
  const now = Date.now();
  return new Date(now - (now % HOUR) - hours * HOUR);
};

describe('summaries', () => {
  beforeEach(clear);
  const clients: PrismaClient[] = [];
  afterAll(async () => { await Promise.all(clients.map((c) => c.$disconnect())); });

  test('stats over summarised hours and days agree with a scan of the rows, whatever the window', async () => {
    await makeRows(db.pool, { rows: 30_000, days: 10, users: 300 });
    const joblog = createJobLog({ prisma: db.prisma });
    const now = Date.now();
    const windows = [
      { since: new Date(now - DAY) },
      { since: new Date(now - 3 * DAY - 17 * 60_000), until: new Date(now - DAY + 5 * 60_000), bucket: '1 hour' },
      { since: new Date(now - 10 * DAY), bucket: '1 day' },
      { since: new Date(now - 7 * DAY), bucket: '30 minutes' },
      { since: new Date(now - 9 * DAY), types: ['welcome_email', 'reconciliation'], bucket: '6 hours' },
    ];
    const before = await Promise.all(windows.map((w) => joblog.stats({ until: new Date(now), ...w })));

    const pass = await joblog.summarise();
    expect(pass.hours).toBeGreaterThan(200);
    expect(pass.sixHours).toBeGreaterThanOrEqual(36);
    expect(pass.days).toBeGreaterThanOrEqual(8);
    const { rows: [kept] } = await db.pool.query(`SELECT count(*)::int AS n FROM job_log_period_types WHERE span = 'day'`);
    expect(kept.n).toBeGreaterThan(0);

    for (const [i, w] of windows.entries()) {
      const after = await joblog.stats({ until: new Date(now), ...w });
      await expectAgrees(after, w.types ?? null);
      if (w.bucket) {
        await expectBucketsAgree(after, w.bucket, w.types ?? null);
        expect(after.buckets).toEqual(before[i]!.buckets);
      }
      // Counts and maxima do not move at all; only percentiles may, within the bound.
      expect(after.byType.map(({ p50Ms, p95Ms, ...t }) => t)).toEqual(before[i]!.byType.map(({ p50Ms, p95Ms, ...t }) => t));
    }

    // A 24 h window reads six-hour blocks where they fit (make-rows' last hour holds started rows, so
    // the newest block may be open): 2 or 3 blocks and the hours at each end, not 23 hours.
    const read: unknown[][] = [];
    const capturing: PrismaLike = { $queryRawUnsafe: (q: string, ...v: unknown[]) => (read.push(v), db.prisma.$queryRawUnsafe(q, ...v)) };
    await createJobLog({ prisma: capturing }).stats({ since: new Date(now - DAY), until: new Date(now) });
    const spans = read.map((v) => v[1]).find((v): v is string[] => Array.isArray(v) && v.length > 0)!;
    expect(spans.filter((x) => x === 'six_hours').length).toBeGreaterThanOrEqual(2);
    expect(spans.length).toBeLessThanOrEqual(14);

    // The summaries are what is read: rows removed behind the library's back are still counted.
    // (whole hours inside the window only: its partial first hour is read live)
    const { rowCount } = await db.pool.query(`DELETE FROM job_logs WHERE started_at >= $1 AND started_at < $2`, [
      new Date(now - 10 * DAY - ((now - 10 * DAY) % HOUR) + HOUR), new Date(now - 5 * DAY - ((now - 5 * DAY) % HOUR)),
    ]);
    expect(rowCount).toBeGreaterThan(0);
    const stale = await joblog.stats({ since: new Date(now - 10 * DAY), until: new Date(now) });
    expect(stale.byType.map(({ p50Ms, p95Ms, ...t }) => t)).toEqual(before[2]!.byType.map(({ p50Ms, p95Ms, ...t }) => t));
  });

  test('percentiles from histograms stay within the stated error on hostile durations', async () => {
    const start = hourAgo(3);
    const durations = [0, 0, 0.4, 1, 1.5, 2, 3, 7, 999, 1000, 1001, 65_535, 2 ** 31, 1e12, 2 ** 63, 1.2e19];
    for (const [i, d] of durations.entries()) await row('report_export', i % 3 === 0 ? 'failed' : 'finished', new Date(start.getTime() + i * 1000), d);
    // Rows of one type in two summarised hours and one live: all three sources combine.
    await row('report_export', 'finished', new Date(start.getTime() + HOUR + 5), 12);
    const joblog = createJobLog({ prisma: db.prisma });
    // No grace: the hour that just ended is summarised too, whenever in the hour the test runs.
    expect((await joblog.summarise({ graceSeconds: 0 })).hours).toBe(3);
    await row('report_export', 'dead', new Date(), 40);
    const result = await joblog.stats({ since: new Date(start.getTime() + 999), until: new Date() });
    await expectAgrees(result);
    expect(result.byType[0]!.maxMs).toBe(1.2e19);
  });

  test('passes from two connections at once write each period once; another pass finds nothing', async () => {
    await makeRows(db.pool, { rows: 10_000, days: 4, users: 100 });
    const other = new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) });
    clients.push(other);
    const viaPg: PrismaLike = { $queryRawUnsafe: async (s: string, ...v: unknown[]) => (await db.pool.query(s, v)).rows as never };
    const [a, b, c] = await Promise.all([
      createJobLog({ prisma: db.prisma }).summarise(),
      createJobLog({ prisma: other }).summarise(),
      createJobLog({ prisma: viaPg }).summarise(),
    ]);
    const { rows: [periods] } = await db.pool.query(
      `SELECT count(*) FILTER (WHERE span = 'hour')::int AS hours, count(*) FILTER (WHERE span = 'day')::int AS days FROM job_log_periods`,
    );
    expect(a.hours + b.hours + c.hours).toBe(periods.hours);
    expect(a.days + b.days + c.days).toBe(periods.days);
    expect(periods.hours).toBeGreaterThan(80);
    expect(await createJobLog({ prisma: other }).summarise()).toEqual({ hours: 0, sixHours: 0, days: 0, redone: 0 });
    await expectAgrees(await createJobLog({ prisma: db.prisma }).stats({ since: new Date(Date.now() - 5 * DAY) }));
  });

  test('late changes: a started row keeps its hour live; retry and prune mark their hours stale; the next pass redoes them', async () => {
    const joblog = createJobLog({ prisma: db.prisma });
    const h = hourAgo(30);
    const running = await row('reconciliation', 'started', new Date(h.getTime() + 60_000), null);
    await row('reconciliation', 'finished', new Date(h.getTime() + 120_000), 50);
    const dead = await row('reconciliation', 'dead', new Date(h.getTime() + HOUR + 60_000), 700);
    for (let i = 0; i < 5; i++) await row('welcome_email', 'finished', new Date(h.getTime() + 2 * HOUR + i * 1000), 10 + i);
    await joblog.summarise();
    const { rows: hours } = await db.pool.query(`SELECT start FROM job_log_periods WHERE span = 'hour' ORDER BY start`);
    // the hour with the started row is not summarised
    expect(hours.map((r) => r.start.getTime())).not.toContain(h.getTime());
    expect(hours.map((r) => r.start.getTime())).toContain(h.getTime() + HOUR);
    const window = { since: new Date(h.getTime() - HOUR), until: new Date(Date.now() + HOUR) };

    // The late settle of the started row is seen: its hour was read live.
    await db.pool.query(`UPDATE job_logs SET state = 'finished', duration_ms = 30, finished_at = now() WHERE jid = $1`, [running]);
    await expectAgrees(await joblog.stats(window));

    // Retry moves the dead row to now: its old hour's summary is stale and read live.
    const reopened = await db.pool.query(sql.reopenForRetry, [dead, JSON.stringify({ action: 'retry' })]);
    expect(reopened.rowCount).toBe(1);
    const { rows: [mark] } = await db.pool.query(`SELECT stale FROM job_log_periods WHERE span = 'hour' AND start = $1`, [new Date(h.getTime() + HOUR)]);
    expect(mark.stale).toBe(true);
    const block = new Date(h.getTime() + HOUR - ((h.getTime() + HOUR) % (6 * HOUR)));
    const { rows: [blockMark] } = await db.pool.query(`SELECT stale FROM job_log_periods WHERE span = 'six_hours' AND start = $1`, [block]);
    expect(blockMark?.stale).toBe(true); // its six-hour block with it
    const afterRetry = await joblog.stats(window);
    expect(afterRetry.byType.find((t) => t.jobType === 'reconciliation')!.counts).toMatchObject({ dead: 0, started: 1 });
    await expectAgrees(afterRetry);

    // Prune deletes rows of a summarised hour: it is marked stale in the same statement.
    await db.pool.query(deleteBatch, ['finished', new Date(), null, 3]);
    await expectAgrees(await joblog.stats(window));
    const pass = await joblog.summarise();
    expect(pass.redone).toBeGreaterThan(0);
    expect(pass.hours).toBeGreaterThan(0);
    await expectAgrees(await joblog.stats(window));
  });

  test('createJobLog({ summaries }) runs a pass on an interval until stop(), reporting each pass that wrote something', async () => {
    await row('welcome_email', 'finished', hourAgo(5), 12);
    const joblog = createJobLog({ prisma: db.prisma, summaries: { intervalSeconds: 0.2 } });
    const seen: unknown[] = [];
    joblog.on('summarised', (r) => seen.push(r));
    try {
      await waitFor('a summarised event', async () => seen.length > 0, 10_000);
      expect(seen[0]).toMatchObject({ hours: expect.any(Number), redone: 0 });
      expect((seen[0] as { hours: number }).hours).toBeGreaterThan(0);
    } finally {
      joblog.stop();
    }
    expect(() => createJobLog({ prisma: db.prisma, summaries: { intervalSeconds: 0 } })).toThrow(/summaries\.intervalSeconds: must be at least 0\.1/);
  });

  test('a database without the summary tables is refused with the migration to apply', async () => {
    await db.pool.query('DROP TABLE job_log_period_types; DROP TABLE job_log_periods');
    const joblog = createJobLog({ prisma: db.prisma });
    const error = await joblog.stats({ since: new Date(Date.now() - DAY) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobLogError);
    expect(error).toMatchObject({ code: 'SUMMARIES_MISSING' });
    expect((error as Error).message).toMatch(/job_log_periods.*migrate dev/);
    await expect(joblog.summarise()).rejects.toMatchObject({ code: 'SUMMARIES_MISSING' });
  });
});
