import { randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, test } from 'vitest';
import { createJobLog, InvalidOptionsError, type JobLog, type JobState } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, gate, queueName, tracked, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('queries');

const T0 = Date.parse('2026-06-01T12:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

interface Fixture {
  jid: string;
  queue: string;
  type: string;
  state: JobState;
  userId: string | null;
  group: string | null;
  startedAt: Date;
  durationMs: number | null;
  finishedAt?: Date | null;
  queuedAt?: Date | null;
  leaseUntil?: Date | null;
}

interface Inserted extends Fixture {
  id: bigint;
}

/** Writes rows straight into the table, so the queries are checked against known contents. */
async function insert(rows: Fixture[]): Promise<Inserted[]> {
  const out: Inserted[] = [];
  for (const r of rows) {
    const finishedAt = r.finishedAt !== undefined ? r.finishedAt
      : r.state === 'started' ? null : new Date(r.startedAt.getTime() + (r.durationMs ?? 0));
    const { rows: [row] } = await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, state, user_id, "group", attempt, max_attempts, queued_at,
                             started_at, finished_at, duration_ms, lease_until)
       VALUES ($1, $2, $3::"JobType", $4::"JobState", $5, $6, 1, 3, $7, $8, $9, $10, $11) RETURNING id`,
      [r.jid, r.queue, r.type, r.state, r.userId, r.group, r.queuedAt ?? null, r.startedAt, finishedAt, r.durationMs, r.leaseUntil ?? null],
    );
    out.push({ ...r, id: BigInt(row.id) });
  }
  return out;
}

const TYPES = ['financial_data_import', 'reconciliation', 'report_export', 'welcome_email'];
const STATES: JobState[] = ['finished', 'failed', 'dead', 'skipped', 'finished', 'started'];

/** 60 rows over 30 minutes, two rows per start time (the id breaks the tie). */
function history(): Fixture[] {
  return Array.from({ length: 60 }, (_, i) => {
    const type = TYPES[i % 4]!;
    const state = STATES[i % 6]!;
    return {
      jid: randomUUID(),
      queue: type.replace(/_/g, '-'),
      type,
      state,
      userId: i % 7 === 0 ? null : `u${i % 5}`,
      // started rows take no section here (no group), so any number of them can exist
      group: state === 'started' ? null : i % 3 === 0 ? 'financial' : 'reports',
      startedAt: at(Math.floor(i / 2)),
      durationMs: state === 'started' ? null : 100 * (i + 1),
    };
  });
}

/** Newest first by (started_at, id): the order find() promises, computed here independently. */
const newestFirst = (rows: Inserted[]) =>
  [...rows].sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime() || (b.id > a.id ? 1 : b.id < a.id ? -1 : 0));

async function all(joblog: JobLog, query: Parameters<JobLog['find']>[0] = {}, limit = 500) {
  const jids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await joblog.find({ ...query, limit, cursor });
    jids.push(...page.rows.map((r) => r.jid));
    cursor = page.nextCursor;
    pages += 1;
  } while (cursor);
  return { jids, pages };
}

async function invalid(promise: Promise<unknown>): Promise<InvalidOptionsError> {
  const error = await promise.then(() => undefined, (e) => e);
  expect(error).toBeInstanceOf(InvalidOptionsError);
  return error;
}
const paths = (e: InvalidOptionsError) => e.issues.map((i) => i.path);

const clear = () => db.pool.query('DELETE FROM job_logs');

describe('find', () => {
  let rows: Inserted[];
  let joblog: JobLog;
  beforeEach(async () => {
    await clear();
    rows = await insert(history());
    joblog = createJobLog({ prisma: db.prisma });
  });

  test('every filter alone and together selects exactly the matching rows, newest first', async () => {
    const cases: [Parameters<JobLog['find']>[0], (r: Inserted) => boolean][] = [
      [{}, () => true],
      [{ userId: 'u3' }, (r) => r.userId === 'u3'],
      [{ types: ['reconciliation', 'welcome_email'] }, (r) => ['reconciliation', 'welcome_email'].includes(r.type)],
      [{ states: ['failed', 'dead'] }, (r) => r.state === 'failed' || r.state === 'dead'],
      [{ group: 'financial' }, (r) => r.group === 'financial'],
      [{ queue: 'report-export' }, (r) => r.queue === 'report-export'],
      [{ since: at(10) }, (r) => r.startedAt >= at(10)],
      [{ until: at(10).toISOString() }, (r) => r.startedAt < at(10)],
      [{ jid: rows[17]!.jid }, (r) => r.jid === rows[17]!.jid],
      [
        { userId: 'u1', states: ['finished', 'skipped'], group: 'reports', since: at(3), until: at(27) },
        (r) => r.userId === 'u1' && ['finished', 'skipped'].includes(r.state) && r.group === 'reports' &&
          r.startedAt >= at(3) && r.startedAt < at(27),
      ],
    ];
    for (const [query, keep] of cases) {
      const expected = newestFirst(rows.filter(keep)).map((r) => r.jid);
      expect(expected.length, JSON.stringify(query)).toBeGreaterThan(0);
      const page = await joblog.find({ ...query, limit: 500 });
      expect(page.rows.map((r) => r.jid), JSON.stringify(query)).toEqual(expected);
      expect(page.nextCursor).toBeNull();
    }
    const { rows: [one] } = await joblog.find({ jid: rows[5]!.jid });
    expect(one).toMatchObject({ id: rows[5]!.id, state: rows[5]!.state, jobType: rows[5]!.type, durationMs: rows[5]!.durationMs });
    expect(await joblog.find({ userId: 'nobody' })).toEqual({ rows: [], nextCursor: null });
  });

  test('keyset pages: limit 50 by default, every row exactly once, in order, with filters kept', async () => {
    const first = await joblog.find();
    expect(first.rows).toHaveLength(50);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await joblog.find({ cursor: first.nextCursor });
    expect(second.rows).toHaveLength(10);
    expect(second.nextCursor).toBeNull();
    expect([...first.rows, ...second.rows].map((r) => r.jid)).toEqual(newestFirst(rows).map((r) => r.jid));

    const paged = await all(joblog, { group: 'reports' }, 7);
    const expected = newestFirst(rows.filter((r) => r.group === 'reports')).map((r) => r.jid);
    expect(paged.jids).toEqual(expected);
    expect(paged.pages).toBe(Math.ceil(expected.length / 7));
  });

  test('pages stay stable while other connections insert newer rows', async () => {
    const expected = newestFirst(rows).map((r) => r.jid);
    const first = await joblog.find({ limit: 9 });
    const jids = first.rows.map((r) => r.jid);
    let cursor = first.nextCursor;
    let inserted = 0;
    while (cursor) {
      // While each later page is read, 4 other connections insert rows that start now.
      const writers = Array.from({ length: 4 }, () => insert([{ ...history()[0]!, jid: randomUUID(), startedAt: new Date() }]));
      const [page] = await Promise.all([joblog.find({ limit: 9, cursor }), ...writers]);
      inserted += writers.length;
      jids.push(...page.rows.map((r) => r.jid));
      cursor = page.nextCursor;
    }
    expect(jids).toEqual(expected);
    const { rows: [{ n }] } = await db.pool.query('SELECT count(*)::int AS n FROM job_logs');
    expect(n).toBe(rows.length + inserted);
    // and the new rows are on the first page of a fresh query
    expect((await joblog.find({ limit: inserted })).rows.every((r) => !expected.includes(r.jid))).toBe(true);
  });

  test('bad filters are refused naming the field; nothing is queried', async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ limit: 0 }, 'limit', /too small/i],
      [{ limit: 501 }, 'limit', /at most 500/],
      [{ limit: 2.5 }, 'limit', /expected int/],
      [{ states: ['running'] }, 'states.0', /expected one of started, finished/],
      [{ states: [] }, 'states', /at least one/],
      [{ types: 'report_export' }, 'types', /expected array/],
      [{ since: 'yesterday' }, 'since', /ISO 8601/],
      [{ until: new Date('nope') }, 'until', /ISO 8601/],
      [{ jid: '42' }, 'jid', /UUID/],
      [{ userId: '' }, 'userId', /non-empty/],
      [{ userId: 1.5 }, 'userId', /string or integer user id/],
      [{ cursor: 'bm9wZQ' }, 'cursor', /not a cursor/],
      [{ user: 'u1' }, '', /unknown option\(s\) user/],
    ];
    for (const [query, path, message] of cases) {
      const error = await invalid(joblog.find(query as never));
      expect(paths(error), JSON.stringify(query)).toEqual([path]);
      expect(error.message).toMatch(message);
    }
  });
});

describe('stats', () => {
  beforeEach(clear);
  const row = (type: string, state: JobState, minute: number, durationMs: number | null): Fixture => ({
    jid: randomUUID(), queue: 'q', type, state, userId: 'u', group: null, startedAt: at(minute), durationMs,
  });

  test('counts, failure rate and percentiles per type match hand-computed figures', async () => {
    await insert([
      row('financial_data_import', 'finished', 10, 100),
      row('financial_data_import', 'finished', 20, 200),
      row('financial_data_import', 'finished', 30, 300),
      row('financial_data_import', 'finished', 40, 400),
      row('financial_data_import', 'failed', 65, 1000),
      row('financial_data_import', 'dead', 70, 2000),
      row('financial_data_import', 'skipped', 75, 0),
      row('financial_data_import', 'started', 80, null),
      row('welcome_email', 'finished', 90, 50),
      row('welcome_email', 'skipped', 95, 0),
      // outside the window [T0, T0 + 3 h): before it, and exactly at its end
      row('welcome_email', 'dead', -1, 9999),
      row('report_export', 'finished', 180, 9999),
    ]);
    const joblog = createJobLog({ prisma: db.prisma });
    const result = await joblog.stats({ since: at(0), until: at(180), bucket: '1 hour' });
    expect(result.since).toEqual(at(0));
    expect(result.until).toEqual(at(180));
    expect(result.byType).toEqual([
      {
        jobType: 'financial_data_import',
        total: 8,
        counts: { started: 1, finished: 4, failed: 1, dead: 1, skipped: 1 },
        // (failed + dead) / (finished + failed + dead) = 2 / 6
        failureRate: 2 / 6,
        // settled durations 100, 200, 300, 400, 1000, 2000 (skipped and started left out):
        // p50 between the 3rd and 4th = 350; p95 at position 4.75 = 1000 + 0.75 × 1000 = 1750
        p50Ms: 350,
        p95Ms: 1750,
        maxMs: 2000,
      },
      {
        jobType: 'welcome_email',
        total: 2,
        counts: { started: 0, finished: 1, failed: 0, dead: 0, skipped: 1 },
        failureRate: 0,
        p50Ms: 50,
        p95Ms: 50,
        maxMs: 50,
      },
    ]);
    expect(result.buckets).toEqual([
      { at: at(0), total: 4, failed: 0 },
      { at: at(60), total: 6, failed: 2 },
      // an empty hour is there, with zeros, so a chart has no gap
      { at: at(120), total: 0, failed: 0 },
    ]);
    const typed = await joblog.stats({ since: at(0), until: at(180), types: ['welcome_email'] });
    expect(typed.byType.map((t) => t.jobType)).toEqual(['welcome_email']);
    expect(typed.buckets).toBeUndefined();
  });

  test('buckets align to whole units, not to since; an empty window has no types', async () => {
    await insert([row('reconciliation', 'failed', 50, 10), row('reconciliation', 'finished', 61, 10)]);
    const joblog = createJobLog({ prisma: db.prisma });
    const result = await joblog.stats({ since: at(45), until: at(75), bucket: '30 minutes' });
    expect(result.buckets).toEqual([
      { at: at(30), total: 1, failed: 1 },
      { at: at(60), total: 1, failed: 0 },
    ]);
    expect(result.byType[0]).toMatchObject({ jobType: 'reconciliation', failureRate: 0.5 });
    const empty = await joblog.stats({ since: at(1000), until: at(1060), bucket: '1 day' });
    expect(empty.byType).toEqual([]);
    expect(empty.buckets).toEqual([{ at: new Date('2026-06-02T00:00:00Z'), total: 0, failed: 0 }]);
  });

  test('bad windows and buckets are refused naming the field', async () => {
    const joblog = createJobLog({ prisma: db.prisma });
    const cases: [unknown, string, RegExp][] = [
      [{}, 'since', /Date or an ISO 8601/],
      [{ since: at(10), until: at(5) }, 'until', /later than since/],
      [{ since: at(0), bucket: 'fortnight' }, 'bucket', /'1 hour'/],
      [{ since: at(0), bucket: '0 hours' }, 'bucket', /longer than zero/],
      [{ since: at(0), until: at(60 * 24 * 30), bucket: '1 minute' }, 'bucket', /43201 buckets.*at most 1000/],
      [{ since: at(0), types: [] }, 'types', /at least one/],
    ];
    for (const [query, path, message] of cases) {
      const error = await invalid(joblog.stats(query as never));
      expect(paths(error), JSON.stringify(query)).toEqual([path]);
      expect(error.message).toMatch(message);
    }
  });
});

describe('sections', () => {
  beforeEach(clear);

  test('each held section with its pg-boss state; stale when the job is settled or gone or the lease ran out', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('held');
    await boss.createQueue(queue, { retryLimit: 0 });
    // 1. a real worker holding its section: pg-boss says active
    const hold = gate();
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: (j: any) => j.data.userId }, () => hold.promise);
    const activeJid = (await boss.send(queue, { userId: 'u-active' }))!;
    await waitForRow(joblog, activeJid, ['started']);
    // 2. pg-boss failed the job but the row still holds (its worker died before writing)
    const failedJid = (await boss.send(queue, { userId: 'nobody-works-this' }, { startAfter: 3600 }))!;
    await boss.cancel(queue, failedJid);
    // 3. a job waiting in pg-boss (created) whose row holds the section for its retry
    const waitingJid = (await boss.send(queue, {}, { startAfter: 3600 }))!;
    const queuedAt = new Date();
    await insert([
      { jid: failedJid, queue, type: 'reconciliation', state: 'started', userId: 'u-cancelled', group: 'financial', startedAt: at(0), durationMs: null, queuedAt },
      { jid: waitingJid, queue, type: 'report_export', state: 'started', userId: 'u-waiting', group: 'reports', startedAt: at(1), durationMs: null, queuedAt },
      // 4. a pg-boss job that no longer exists
      { jid: randomUUID(), queue, type: 'report_export', state: 'started', userId: 'u-gone', group: 'reports', startedAt: at(2), durationMs: null, queuedAt },
      // 5./6. joblog.section() rows: a live lease and a lapsed one
      { jid: randomUUID(), queue: 'section', type: 'reconciliation', state: 'started', userId: 'u-lease', group: 'financial', startedAt: at(3), durationMs: null, leaseUntil: new Date(Date.now() + 60_000) },
      { jid: randomUUID(), queue: 'section', type: 'reconciliation', state: 'started', userId: 'u-lapsed', group: 'financial', startedAt: at(4), durationMs: null, leaseUntil: new Date(Date.now() - 1000) },
      // not sections: no group, or settled
      { jid: randomUUID(), queue, type: 'welcome_email', state: 'started', userId: 'u-nogroup', group: null, startedAt: at(5), durationMs: null },
      { jid: randomUUID(), queue, type: 'welcome_email', state: 'finished', userId: 'u-done', group: 'financial', startedAt: at(6), durationMs: 5 },
    ]);

    const held = await joblog.sections();
    expect(held.map((s) => [s.userId, s.group, s.bossState, s.stale])).toEqual([
      ['u-cancelled', 'financial', 'cancelled', true],
      ['u-waiting', 'reports', 'created', false],
      ['u-gone', 'reports', null, true],
      ['u-lease', 'financial', null, false],
      ['u-lapsed', 'financial', null, true],
      ['u-active', 'financial', 'active', false],
    ]);
    const active = held.find((s) => s.userId === 'u-active')!;
    expect(active).toMatchObject({ jid: activeJid, jobType: 'financial_data_import', queue, attempt: 1, maxAttempts: 1, leaseUntil: null });
    expect(active.heldForMs).toBeGreaterThanOrEqual(0);
    expect(held[0]!.heldForMs).toBeGreaterThanOrEqual(Date.now() - T0 - 5_000);

    expect((await joblog.sections({ userId: 'u-waiting' })).map((s) => s.jid)).toEqual([waitingJid]);
    expect((await joblog.sections({ group: 'reports' })).map((s) => s.userId)).toEqual(['u-waiting', 'u-gone']);
    hold.open();
    await waitForRow(joblog, activeJid, ['finished']);
    expect((await joblog.sections()).map((s) => s.userId)).not.toContain('u-active');
  });

  test('a missing pg-boss schema is named, not mistaken for "every job gone"', async () => {
    const joblog = createJobLog({ prisma: db.prisma });
    await expect(joblog.sections({ bossSchema: 'no_such_schema' })).rejects.toMatchObject({
      code: 'BOSS_SCHEMA_MISSING', message: expect.stringContaining('no_such_schema.job not found'),
    });
    expect(paths(await invalid(joblog.sections({ bossSchema: 'x; drop table job_logs' })))).toEqual(['bossSchema']);
  });
});

describe('prune', () => {
  beforeEach(clear);

  const aged = (state: JobState, daysAgo: number, extra: Partial<Fixture> = {}): Fixture => {
    const startedAt = new Date(Date.now() - daysAgo * 86_400_000);
    return {
      jid: randomUUID(), queue: 'q', type: 'report_export', state, userId: `u-${randomUUID()}`, group: 'g',
      startedAt, durationMs: state === 'started' ? null : 1000, ...extra,
    };
  };

  test('deletes settled rows older than the cut-off in batches, never started rows; dryRun counts', async () => {
    const old = [
      ...Array.from({ length: 13 }, () => aged('finished', 40)),
      ...Array.from({ length: 4 }, () => aged('failed', 35)),
      ...Array.from({ length: 3 }, () => aged('dead', 50)),
      ...Array.from({ length: 2 }, () => aged('skipped', 31)),
    ];
    const kept = [
      ...Array.from({ length: 3 }, () => aged('started', 90)), // started long ago, still holding
      ...Array.from({ length: 5 }, () => aged('finished', 10)),
      // started 45 days ago but settled 5 days ago: its age counts from finished_at
      aged('dead', 45, { finishedAt: new Date(Date.now() - 5 * 86_400_000) }),
    ];
    await insert([...old, ...kept]);
    const joblog = createJobLog({ prisma: db.prisma });

    const dry = await joblog.prune({ olderThan: '30d', dryRun: true });
    expect(dry).toMatchObject({ deleted: old.length, batches: 0, dryRun: true });
    expect(await count()).toBe(old.length + kept.length);

    const progress: { deleted: number; batches: number }[] = [];
    const result = await joblog.prune({ olderThan: 30 * 86_400_000, batchSize: 5, onProgress: (p) => progress.push(p) });
    // one state at a time: finished 5+5+3, skipped 2, failed 4, dead 3
    expect(result).toMatchObject({ deleted: old.length, batches: 6, dryRun: false });
    expect(progress.map((p) => p.deleted)).toEqual([5, 10, 13, 15, 19, 22]);
    const { rows: left } = await db.pool.query('SELECT jid::text FROM job_logs ORDER BY jid');
    expect(left.map((r) => r.jid)).toEqual(kept.map((r) => r.jid).sort());
    expect((await joblog.prune({ olderThan: '30d' })).deleted).toBe(0);
  });

  test('only the given states; a Date cut-off; an aborted prune stops between batches', async () => {
    await insert([...Array.from({ length: 6 }, () => aged('failed', 20)), ...Array.from({ length: 6 }, () => aged('finished', 20))]);
    const joblog = createJobLog({ prisma: db.prisma });
    const olderThan = new Date(Date.now() - 7 * 86_400_000);
    const stop = new AbortController();
    const partial = await joblog.prune({ olderThan, states: ['failed'], batchSize: 2, signal: stop.signal, onProgress: (p) => p.batches === 2 && stop.abort() });
    expect(partial).toMatchObject({ deleted: 4, batches: 2 });
    expect(await joblog.prune({ olderThan, states: ['failed'] })).toMatchObject({ deleted: 2 });
    const { rows } = await db.pool.query(`SELECT state::text, count(*)::int AS n FROM job_logs GROUP BY 1`);
    expect(rows).toEqual([{ state: 'finished', n: 6 }]);
  });

  test('createJobLog({ prune }) prunes on an interval until stop(), reporting each pass that deleted rows', async () => {
    await insert([aged('finished', 40), aged('skipped', 40), aged('started', 40), aged('finished', 1)]);
    const joblog = createJobLog({ prisma: db.prisma, prune: { olderThan: '30d', intervalSeconds: 1 } });
    try {
      const passes: { deleted: number }[] = [];
      joblog.on('pruned', (r) => passes.push(r));
      await waitFor('a prune pass', async () => passes.length > 0);
      expect(passes).toEqual([expect.objectContaining({ deleted: 2, dryRun: false })]);
      const { rows } = await db.pool.query(`SELECT state::text FROM job_logs ORDER BY state`);
      expect(rows.map((r) => r.state)).toEqual(['finished', 'started']); // the recent one, and started
    } finally {
      joblog.stop();
    }
    await insert([aged('dead', 40)]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await count()).toBe(3); // stopped: the new old row stays
    const cases: [unknown, string, RegExp][] = [
      [{ olderThan: '2026-01-01' }, 'prune.olderThan', /a fixed date would prune nothing new/],
      [{ olderThan: '30d', states: ['started'] }, 'prune.states.0', /started rows are never pruned/],
      [{ olderThan: '30d', intervalSeconds: 0 }, 'prune.intervalSeconds', /at least 1 second/],
      [{ olderThan: '30d', every: '1h' }, 'prune', /unknown option\(s\) every/],
    ];
    for (const [prune, path, message] of cases) {
      let error: unknown;
      try {
        createJobLog({ prisma: db.prisma, prune } as never);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidOptionsError);
      expect(paths(error as InvalidOptionsError), JSON.stringify(prune)).toEqual([path]);
      expect((error as Error).message).toMatch(message);
    }
  });

  test('bad options are refused naming the field, started above all', async () => {
    const joblog = createJobLog({ prisma: db.prisma });
    const cases: [unknown, string, RegExp][] = [
      [{}, 'olderThan', /duration such as '30d'/],
      [{ olderThan: '30 days' }, 'olderThan', /duration such as '30d'/],
      [{ olderThan: -5 }, 'olderThan', /duration/],
      [{ olderThan: '30d', states: ['started'] }, 'states.0', /started rows are never pruned/],
      [{ olderThan: '30d', batchSize: 0 }, 'batchSize', /too small/i],
      [{ olderThan: '30d', dryrun: true }, '', /unknown option\(s\) dryrun/],
    ];
    for (const [options, path, message] of cases) {
      const error = await invalid(joblog.prune(options as never));
      expect(paths(error), JSON.stringify(options)).toEqual([path]);
      expect(error.message).toMatch(message);
    }
  });
});

async function count(): Promise<number> {
  const { rows: [{ n }] } = await db.pool.query('SELECT count(*)::int AS n FROM job_logs');
  return n;
}
