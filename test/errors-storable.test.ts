import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { createJobLog, SectionBusyError, type JobLogWarning } from '../src/index.ts';
import { reap } from '../src/maintenance/reaper.ts';
import { jobPage } from '../src/dashboard/pages/job.ts';
import { recordError } from '../src/rows.ts';
import type { JobLogRow } from '../src/types.ts';
import { LogStore, type JobIdentity } from '../src/store.ts';
import { setupTestDb } from './helpers/db.ts';
import { waitFor } from './helpers/wait.ts';
import { bossJob, FAST, holdSection, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';

const db = setupTestDb('errors-storable');

/** What the database refuses in jsonb text: a NUL, and half of a surrogate pair (a cut emoji). */
const HOSTILE = 'bad\u0000byte, cut \ud83d emoji';
const CLEANED = 'bad\ufffdbyte, cut \ufffd emoji';

function hostileError(): Error {
  const error = new Error(HOSTILE);
  error.stack = `Error: ${HOSTILE}\n    at handler (app\u0000.ts:1:1)\n    at \udc00run (app.ts:2:2)`;
  return error;
}

/** Throwables the library cannot describe with String() or error.stack.split(). */
const throwables: Record<string, () => unknown> = {
  nullProto: () => Object.create(null),
  numericStack: () => Object.assign(new Error('numeric stack'), { stack: 42 }),
  hostile: hostileError,
  throwingToString: () => ({ toString() { throw new Error('no string for you'); } }),
  throwingGetters: () => {
    const error = new Error('getters');
    for (const key of ['name', 'message', 'stack', 'code']) {
      Object.defineProperty(error, key, { get() { throw new Error(`no ${key}`); } });
    }
    return error;
  },
  symbol: () => Symbol('thrown'),
  bigint: () => 10n ** 30n,
  revokedProxy: () => { const p = Proxy.revocable({}, {}); p.revoke(); return p.proxy; },
  aggregate: () => new AggregateError([new Error('a'), Object.create(null)], 'several', { cause: Object.create(null) }),
};

/** The row's stored JSON as the database holds it. */
async function storedSizes(jid: string): Promise<{ error: number; errors: number; count: number }> {
  const { rows } = await db.pool.query(
    `SELECT octet_length(error::text) AS error, octet_length(errors::text) AS errors, jsonb_array_length(errors) AS count
       FROM job_logs WHERE jid = $1`, [jid]);
  return { error: Number(rows[0].error), errors: Number(rows[0].errors), count: Number(rows[0].count) };
}

describe('recordError', () => {
  test('drops the stack header that repeats name and message, keeps 12 frames and 4,000 characters', () => {
    const frames = (n: number, width = 20) => Array.from({ length: n }, (_, i) => `    at f${i} (${'p'.repeat(width)}.ts:1:1)`);
    const multi = Object.assign(new Error('two\nlines'), { stack: ['Error: two', 'lines', ...frames(2)].join('\n') });
    expect(recordError(multi).stack).toBe(frames(2).join('\n'));
    const renamed = Object.assign(new Error('m'), { name: 'Renamed', stack: ['Error: m', ...frames(1)].join('\n') });
    expect(recordError(renamed)).toEqual({ name: 'Renamed', message: 'm', stack: frames(1)[0] });
    expect(recordError(Object.assign(new Error(''), { stack: ['Error', ...frames(1)].join('\n') })).stack).toBe(frames(1)[0]);
    expect(recordError(Object.assign(new Error('x'), { stack: 'a custom stack\nline 2' })).stack).toBe('a custom stack\nline 2');
    expect(recordError(Object.assign(new Error('x'), { stack: 'Error: x' }))).toEqual({ name: 'Error', message: 'x' });
    expect(recordError(Object.assign(new Error('x'), { stack: ['Error: x', ...frames(30)].join('\n') })).stack).toBe(frames(12).join('\n'));
    const wide = recordError(Object.assign(new Error('x'), { stack: ['Error: x', ...frames(12, 1000)].join('\n') })).stack!;
    expect(wide).toMatch(/… \[\d+ more characters\]$/);
    expect(wide.length).toBeLessThan(4100);
  });

  test('cuts a long message between, never inside, a surrogate pair', () => {
    const message = 'a'.repeat(1999) + '😀' + 'b'.repeat(10);
    expect(recordError(new Error(message)).message).toBe(`${'a'.repeat(1999)}… [12 more characters]`);
  });
});

test('the job page says which attempts\' errors the capped history no longer keeps', () => {
  const entry = (attempt: number) => ({ attempt, at: new Date().toISOString(), error: { name: 'Error', message: `boom ${attempt}` } });
  const row = {
    id: 1n, jid: randomUUID(), queue: 'q', jobType: 'reconciliation', state: 'dead', userId: null, group: null, attempt: 30,
    maxAttempts: 30, holderJid: null, queuedAt: null, startedAt: new Date(), finishedAt: new Date(), durationMs: 1, waitedMs: null,
    leaseUntil: null, error: entry(30).error, errors: [entry(1), ...Array.from({ length: 19 }, (_, i) => entry(12 + i))],
    createdAt: new Date(), updatedAt: new Date(),
  } satisfies JobLogRow;
  const page = jobPage('/', row, { showStacks: true }).toString();
  expect(page.match(/error not kept \(errors keeps the first and the last 19\)/g)).toHaveLength(10); // attempts 2–11
  expect(page).toContain('boom 1');
  expect(page).toContain('boom 12');
  expect(page).not.toContain('no error recorded');
});

describe('errors the database cannot store', () => {
  test('a batch-mate throwing Object.create(null) (retryLimit 0): the mates that returned end finished, it ends failed', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('odd-mate');
    await boss.createQueue(queue, { retryLimit: 0 });
    const jids = (await boss.insert(queue, [{ data: { odd: true } }, { data: {} }, { data: {} }], { returnId: true }))!;
    const ran: string[] = [];
    await joblog.work(queue, { ...FAST, batchSize: 3, type: 'reconciliation' }, async (job: any) => {
      ran.push(job.id);
      if (job.data.odd) throw Object.create(null);
    });
    const rows = await Promise.all(jids.map((jid: string) => waitForRow(joblog, jid, ['finished', 'failed', 'dead'])));
    expect(rows.map((r) => r.state)).toEqual(['failed', 'finished', 'finished']);
    expect(rows[0]!.error).toMatchObject({ name: 'NonError' });
    expect(ran).toHaveLength(3);
    expect((await Promise.all(jids.map((jid: string) => waitForBossState(db, jid, ['completed', 'failed'])))).map((j) => j.state))
      .toEqual(['failed', 'completed', 'completed']);
    expect(warnings).toEqual([]);
  });

  test('whatever a handler throws, its row ends failed with a storable error and pg-boss holds the same error', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('throwables');
    await boss.createQueue(queue, { retryLimit: 0 });
    const kinds = Object.keys(throwables);
    const jids = (await boss.insert(queue, kinds.map((kind) => ({ data: { kind } })), { returnId: true }))!;
    await joblog.work(queue, { ...FAST, batchSize: kinds.length, type: 'reconciliation' }, async (job: any) => {
      throw throwables[job.data.kind]!();
    });
    const rows = await Promise.all(jids.map((jid: string) => waitForRow(joblog, jid, ['failed', 'dead'])));
    const byKind = Object.fromEntries(kinds.map((kind, i) => [kind, rows[i]!]));
    for (const row of rows) {
      expect(row.state).toBe('failed');
      expect(typeof row.error!.name).toBe('string');
      expect(typeof row.error!.message).toBe('string');
      expect(row.errors).toHaveLength(1);
    }
    expect(byKind.numericStack!.error).toEqual({ name: 'Error', message: 'numeric stack' });
    expect(byKind.hostile!.error).toMatchObject({ name: 'Error', message: CLEANED });
    // The stack's first line repeated the message: it is not stored twice.
    expect(byKind.hostile!.error!.stack).toBe('    at handler (app\ufffd.ts:1:1)\n    at \ufffdrun (app.ts:2:2)');
    expect(byKind.nullProto!.error).toMatchObject({ name: 'NonError', message: '{}' });
    expect(byKind.throwingToString!.error!.name).toBe('NonError');
    expect(byKind.throwingGetters!.error).toMatchObject({ name: 'Error' });
    expect(byKind.symbol!.error).toMatchObject({ name: 'NonError', message: 'Symbol(thrown)' });
    expect(byKind.bigint!.error).toMatchObject({ name: 'NonError', message: String(10n ** 30n) });
    expect(byKind.aggregate!.error).toMatchObject({ name: 'AggregateError', message: 'several' });
    const hostileJob = await waitForBossState(db, jids[kinds.indexOf('hostile')]!, ['failed']);
    expect(hostileJob.output).toMatchObject({ name: 'Error', message: CLEANED });
    expect(warnings).toEqual([]);
  });

  test('a 1 MB message on each of 3 attempts: the row stores a bounded error and history, pg-boss a bounded output', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('huge');
    await boss.createQueue(queue, { retryLimit: 2, retryDelay: 0 });
    const huge = (attempt: number) => `attempt ${attempt} ` + 'x'.repeat(1_000_000);
    await joblog.work(queue, { ...FAST, type: 'reconciliation' }, async (_job, ctx) => {
      throw new Error(huge(ctx.attempt));
    });
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['dead'], 30_000);
    expect(row.errors.map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(row.error!.message.length).toBeLessThanOrEqual(2100);
    expect(row.error!.message).toMatch(/^attempt 3 x+… \[\d+ more characters\]$/);
    expect(row.error!.stack).toMatch(/^\s+at /);
    const sizes = await storedSizes(jid);
    expect(sizes.error).toBeLessThan(8_000);
    expect(sizes.errors).toBeLessThan(3 * 8_000);
    const job = await waitForBossState(db, jid, ['failed']);
    expect(JSON.stringify(job.output).length).toBeLessThan(8_000);
  });

  test('every append to errors keeps the first entry and the last 19: settles, a lost attempt, the reaper, an action', async () => {
    const store = new LogStore(db.prisma);
    const identity = (): JobIdentity => ({
      jid: randomUUID(), queue: 'q', type: 'reconciliation', userId: null, group: null, attempt: 1, maxAttempts: 99, queuedAt: null,
    });
    const seeded = async (): Promise<JobIdentity> => {
      const job = identity();
      expect(await store.claimBatch([job])).toEqual([{ outcome: 'claimed' }]);
      await db.pool.query(
        `UPDATE job_logs SET errors = (SELECT jsonb_agg(jsonb_build_object('attempt', 0, 'at', now(), 'error',
                  jsonb_build_object('name', 'Seed', 'message', 'seed ' || i)) ORDER BY i) FROM generate_series(0, 29) i)
          WHERE jid = $1`, [job.jid]);
      return job;
    };
    const history = async (jid: string) => (await store.byJid(jid))!.errors.map((e) => e.error.message);
    const expectCapped = (messages: string[], last: string[]) => {
      expect(messages).toHaveLength(20);
      expect(messages[0]).toBe('seed 0');
      expect(messages.slice(-last.length)).toEqual(last);
      expect(messages.slice(1, 20 - last.length)).toEqual(Array.from({ length: 19 - last.length }, (_, i) => `seed ${30 - 19 + last.length + i}`));
    };

    const [a, b] = [await seeded(), await seeded()];
    expect(await store.settleBatch([
      { jid: a.jid, attempt: 1, state: 'started', error: new Error('a1') },
      { jid: b.jid, attempt: 1, state: 'dead', error: new Error('b1') },
    ])).toEqual([true, true]);
    expectCapped(await history(a.jid), ['a1']);
    expectCapped(await history(b.jid), ['b1']);

    expect(await store.recordFailure(a.jid, 1, new Error('a1 again'), 'started')).toBe(true);
    expectCapped(await history(a.jid), ['a1', 'a1 again']);

    expect(await store.claimBatch([{ ...a, attempt: 3 }])).toEqual([{ outcome: 'reentered' }]);
    expect(await store.recordLostAttempt(a.jid, 3, { name: 'AttemptLost', message: 'lost' }, new Date(Date.now() + 60_000))).toBe(true);
    expectCapped(await history(a.jid), ['a1', 'a1 again', 'lost']);

    const c = await seeded();
    await db.pool.query(`UPDATE job_logs SET lease_until = now() - interval '1 second' WHERE jid = $1`, [c.jid]);
    expect(await reap(db.prisma)).toMatchObject({ dead: expect.any(Number) });
    const reaped = await history(c.jid);
    expectCapped(reaped, [reaped.at(-1)!]);
    expect(reaped.at(-1)).toMatch(/^section holder lost: its lease expired at /);

    // An action's note: capped like the rest, and its `by` storable.
    const d = await seeded();
    await db.pool.query(`UPDATE job_logs SET lease_until = now() - interval '1 second' WHERE jid = $1`, [d.jid]);
    await createJobLog({ prisma: db.prisma }).release(d.jid, { by: 'ops\u0000\ud800' });
    const released = await history(d.jid);
    expectCapped(released, [released.at(-2)!, 'section released by ops\ufffd\ufffd']);
  });

  test('a finished row does not show the error of an earlier attempt; the history keeps it', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('recovers');
    await boss.createQueue(queue, { retryLimit: 1, retryDelay: 0 });
    await joblog.work(queue, { ...FAST, type: 'reconciliation' }, async (_job, ctx) => {
      if (ctx.attempt === 1) throw new Error('flaky upstream');
    });
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row.error).toBeNull();
    expect(row.errors.map((e) => [e.attempt, e.error.message])).toEqual([[1, 'flaky upstream']]);

    const store = new LogStore(db.prisma);
    const single = { jid: randomUUID(), queue: 'q', type: 'reconciliation', userId: null, group: null, attempt: 1, maxAttempts: 2, queuedAt: null };
    await store.claimBatch([single]);
    await store.recordFailure(single.jid, 1, new Error('first try'), 'started');
    await store.claimBatch([{ ...single, attempt: 2 }]);
    expect(await store.finish(single.jid, 2)).toBe(true);
    expect(await store.byJid(single.jid)).toMatchObject({ state: 'finished', error: null, errors: [{ attempt: 1, error: { message: 'first try' } }] });
  });
});

describe('section() and errors', () => {
  const noBoss = () => createJobLog({ prisma: db.prisma });

  test('the caller gets its own thrown value back, even one the database cannot store, and the row ends failed', async () => {
    const joblog = noBoss();
    for (const make of [hostileError, throwables.nullProto!, throwables.numericStack!]) {
      const thrown = make();
      const jid = randomUUID();
      await expect(joblog.section({ jid, type: 'reconciliation', userId: 'u-own', group: 'g' }, async () => {
        throw thrown;
      })).rejects.toBe(thrown);
      const row = await joblog.get(jid);
      expect(row).toMatchObject({ state: 'failed' });
      expect(await joblog.holder('u-own', 'g')).toBeNull();
    }
    expect((await joblog.find({ userId: 'u-own' })).rows.map((r) => r.error?.message).sort())
      .toEqual(['numeric stack', CLEANED, '{}'].sort());
  });

  test('when the row cannot be written, the caller still gets its own result or error, and a LOG_WRITE_FAILED warning', async () => {
    const joblog = noBoss();
    const warnings: JobLogWarning[] = [];
    joblog.on('warning', (w) => warnings.push(w));
    // The database refuses every settling write of these rows (a real refusal, not a mock).
    await db.pool.query(`
      CREATE OR REPLACE FUNCTION refuse_settle() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'settles refused for this test'; END $$ LANGUAGE plpgsql;
      CREATE OR REPLACE TRIGGER refuse_settle BEFORE UPDATE ON job_logs FOR EACH ROW
        WHEN (OLD.queue = 'refused' AND NEW.state <> 'started') EXECUTE FUNCTION refuse_settle();`);
    try {
      const mine = new Error('mine');
      await expect(joblog.section({ type: 'reconciliation', userId: 'u-refused', group: 'g1', queue: 'refused' }, async () => {
        throw mine;
      })).rejects.toBe(mine);
      await expect(joblog.section({ type: 'reconciliation', userId: 'u-refused', group: 'g2', queue: 'refused' }, async () => 'done'))
        .resolves.toBe('done');
      expect(warnings.map((w) => [w.code, w.attempt])).toEqual([['LOG_WRITE_FAILED', 1], ['LOG_WRITE_FAILED', 1]]);
      expect(warnings[0]!.message).toMatch(/^log write failed \(settle\) for job [0-9a-f-]{36} attempt 1$/);
    } finally {
      await db.pool.query('DROP TRIGGER refuse_settle ON job_logs');
    }
  });

  test('without a reaper, a claim takes over a section whose lease has run out; a live lease or a worker row still holds', async () => {
    const joblog = noBoss();
    const settled: JobLogRow[] = [];
    joblog.on('settled', (row) => settled.push(row));
    const crashed = randomUUID();
    // The row a process left when it died inside its section: its lease ran out a second ago.
    await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, lease_until)
       VALUES ($1, 'section', 'reconciliation', 'u-lease', 'g', 1, 1, now() - interval '1 second')`, [crashed]);
    await expect(joblog.section({ type: 'financial_data_import', userId: 'u-lease', group: 'g' }, async () => 'ran')).resolves.toBe('ran');
    const old = await joblog.get(crashed);
    expect(old).toMatchObject({ state: 'dead', error: { name: 'ReaperError', code: 'LEASE_EXPIRED' } });
    expect(old!.error!.message).toMatch(/^section holder lost: its lease expired at /);
    expect(old!.errors).toHaveLength(1);
    expect(old!.finishedAt).toBeInstanceOf(Date);
    await waitFor('settled events', async () => settled.length >= 2);
    expect(settled.map((r) => [r.jid === crashed ? 'crashed' : 'new', r.state]).sort()).toEqual([['crashed', 'dead'], ['new', 'finished']]);

    // A claim with the crashed row's own jid does not mistake that row for its own.
    await db.pool.query(`UPDATE job_logs SET state = 'started', lease_until = now() - interval '1 second' WHERE jid = $1`, [crashed]);
    await expect(joblog.section({ jid: crashed, type: 'reconciliation', userId: 'u-lease', group: 'g' }, async () => 'ran'))
      .rejects.toBeInstanceOf(SectionBusyError);
    expect(await joblog.get(crashed)).toMatchObject({ state: 'dead' });

    const live = await holdSection(joblog, 'u-lease', 'g');
    await expect(joblog.section({ type: 'reconciliation', userId: 'u-lease', group: 'g' }, async () => 'ran')).rejects.toBeInstanceOf(SectionBusyError);
    await live.release();

    const worker = randomUUID();
    await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts)
       VALUES ($1, 'q', 'reconciliation', 'u-lease', 'g', 1, 1)`, [worker]);
    await expect(joblog.section({ type: 'reconciliation', userId: 'u-lease', group: 'g' }, async () => 'ran')).rejects.toBeInstanceOf(SectionBusyError);
    expect(await joblog.get(worker)).toMatchObject({ state: 'started' });
  });

  test('a tracked job takes over a section whose lease has run out', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('after-lease');
    await boss.createQueue(queue, { retryLimit: 0 });
    const crashed = randomUUID();
    await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, lease_until)
       VALUES ($1, 'section', 'reconciliation', 'u-worker', 'g', 1, 1, now() - interval '1 second')`, [crashed]);
    await joblog.work(queue, { ...FAST, type: 'reconciliation', group: 'g', userId: () => 'u-worker', onBusy: 'skip' }, async () => {});
    const jid = (await boss.send(queue, {}))!;
    expect(await waitForRow(joblog, jid, ['finished', 'skipped'])).toMatchObject({ state: 'finished' });
    expect(await joblog.get(crashed)).toMatchObject({ state: 'dead', error: { code: 'LEASE_EXPIRED' } });
    expect((await bossJob(db, jid)).state).toBe('completed');
  });
});
