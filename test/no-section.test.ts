// Jobs without a section (no group, or no user) write their row once, after the handler: no
// `started` row before it runs, one statement for a batch's rows, fenced by attempt like every
// settle. A handler that runs long gets its `started` row after RUNNING_ROW_AFTER_MS.
import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { createJobLog, StaleAttemptError } from '../src/index.ts';
import { RUNNING_ROW_AFTER_MS } from '../src/tracker.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, gate, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('no-section');

/** The job's row as the database has it, on a connection of the test's own (not the log's). */
async function rowOf(jid: string): Promise<{ state: string; attempt: number } | null> {
  const { rows } = await db.pool.query(`SELECT state::text, attempt FROM job_logs WHERE jid = $1::uuid`, [jid]);
  return rows[0] ?? null;
}

/** A Prisma client that records every statement the job log sends through it. */
function countingPrisma(statements: string[]) {
  return new Proxy(db.prisma, {
    get(target, key) {
      if (key === '$queryRawUnsafe') {
        return (statement: string, ...values: unknown[]) => {
          statements.push(statement);
          return target.$queryRawUnsafe(statement, ...values);
        };
      }
      const value = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('jobs without a section', () => {
  test('no row before the handler runs (a job with a section has its started row); after it, the final row with the handler\'s timings', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('no-row-before');
    await boss.createQueue(queue);
    const seen = new Map<string, unknown>();
    await joblog.work<{ user: string; group?: string }>(queue, {
      ...FAST, batchSize: 5, type: 'report_export', userId: (j) => j.data.user, group: (j) => j.data.group ?? null,
    }, async (job) => {
      seen.set(job.id, await rowOf(job.id));
      await new Promise((r) => setTimeout(r, 60));
    });
    const [withSection, ...without] = [randomUUID(), randomUUID(), randomUUID()];
    await boss.insert(queue, [
      { id: withSection, data: { user: 'u-s', group: 'reports' } },
      { id: without[0], data: { user: 'u-1' } },
      { id: without[1], data: { user: 'u-2' } },
    ]);
    for (const jid of without) {
      const row = await waitForRow(joblog, jid, ['finished']);
      expect(seen.get(jid)).toBeNull();
      expect(row).toMatchObject({ state: 'finished', attempt: 1, error: null, errors: [], userId: jid === without[0] ? 'u-1' : 'u-2', group: null });
      expect(row.durationMs).toBeGreaterThanOrEqual(55);
      expect(row.durationMs).toBeLessThan(1000);
      expect(row.finishedAt!.getTime() - row.startedAt.getTime()).toBeCloseTo(row.durationMs!, -1);
    }
    await waitForRow(joblog, withSection, ['finished']);
    expect(seen.get(withSection)).toEqual({ state: 'started', attempt: 1 });
  });

  test('a batch\'s rows are written in one statement; a batch with sections costs a claim and a settle', async () => {
    const boss = await db.boss();
    const statements: string[] = [];
    const joblog = createJobLog({ prisma: countingPrisma(statements), boss, reaper: false });
    const run = async (label: string, group: string | null) => {
      const queue = queueName(label);
      await boss.createQueue(queue);
      const jids = Array.from({ length: 10 }, () => randomUUID());
      await boss.insert(queue, jids.map((id, i) => ({ id, data: { user: `${label}-${i}` } })));
      // All ten are waiting before the worker starts: its first fetch takes them as one batch.
      await joblog.work<{ user: string }>(queue, { ...FAST, batchSize: 10, type: 'report_export', userId: (j) => j.data.user, group: () => group }, async () => {});
      const from = statements.length; // the worker's start-up reads (the catalog) are behind us
      // Waited for on the test's own connection: only the worker's statements go through the counting client.
      for (const jid of jids) await waitFor(`row of ${jid}`, async () => (await rowOf(jid))?.state === 'finished' || undefined);
      return statements.slice(from).filter((s) => /job_logs/.test(s));
    };
    const without = await run('count-nosection', null);
    expect(without).toHaveLength(1);
    expect(without[0]).toMatch(/ON CONFLICT \(jid\) DO UPDATE/);
    const withSection = await run('count-section', 'reports');
    expect(withSection).toHaveLength(2);
  });

  test(`a handler still running after ${RUNNING_ROW_AFTER_MS} ms gets its started row then: in progress for the user, then settled`, async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('long-runner');
    await boss.createQueue(queue);
    const entered = gate();
    const release = gate();
    await joblog.work(queue, { ...FAST, type: 'report_export', userId: () => 'u-long' }, async () => {
      entered.open();
      await release.promise;
    });
    const jid = (await boss.send(queue, {}))!;
    await entered.promise;
    const began = Date.now();
    expect(await rowOf(jid)).toBeNull();
    const running = await waitFor('the started row', async () => (await joblog.inProgress({ userId: 'u-long' })).find((r) => r.jid === jid));
    expect(Date.now() - began).toBeGreaterThanOrEqual(RUNNING_ROW_AFTER_MS - 100);
    expect(running).toMatchObject({ state: 'started', attempt: 1, finishedAt: null });
    expect((await joblog.find({ states: ['started'] })).rows.map((r) => r.jid)).toContain(jid);
    release.open();
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row.startedAt.getTime()).toBe(running.startedAt.getTime());
    expect(row.durationMs).toBeGreaterThanOrEqual(RUNNING_ROW_AFTER_MS);
  });

  test('a failed attempt leaves the row started with its error; the retry finishes it: one row, attempt 2, attempt 1\'s error kept', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('retry-ok');
    await boss.createQueue(queue, { retryLimit: 2, retryDelay: 1 });
    const between = gate();
    await joblog.work(queue, { ...FAST, type: 'report_export' }, async (job, ctx) => {
      if (ctx.attempt === 1) throw new Error('first try fails');
      between.open();
      return { ok: true };
    });
    const jid = (await boss.send(queue, {}))!;
    const retrying = await waitForRow(joblog, jid, ['started']);
    expect(retrying).toMatchObject({ attempt: 1, error: { message: 'first try fails' }, finishedAt: null, durationMs: null });
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row).toMatchObject({ attempt: 2, error: null, startedAt: retrying.startedAt });
    expect(row.errors.map((e) => [e.attempt, e.error.message])).toEqual([[1, 'first try fails']]);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM job_logs WHERE jid = $1::uuid`, [jid]);
    expect(rows[0].n).toBe(1);
    expect((await waitForBossState(db, jid, ['completed'])).output).toEqual({ ok: true });
  });

  test('failure on the last attempt ends dead; a non-retryable job ends failed on its first (and only) write', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('dies');
    await boss.createQueue(queue, { retryLimit: 1, retryDelay: 0 });
    await joblog.work(queue, { ...FAST, type: 'report_export' }, async (_job, ctx) => {
      throw new Error(`attempt ${ctx.attempt} fails`);
    });
    const jid = (await boss.send(queue, {}))!;
    const dead = await waitForRow(joblog, jid, ['dead']);
    expect(dead).toMatchObject({ attempt: 2, maxAttempts: 2, error: { message: 'attempt 2 fails' } });
    expect(dead.errors.map((e) => e.attempt)).toEqual([1, 2]);

    const once = queueName('no-retries');
    await boss.createQueue(once, { retryLimit: 0 });
    await joblog.work(once, { ...FAST, type: 'report_export' }, async () => {
      throw new Error('no second chance');
    });
    const single = (await boss.send(once, {}))!;
    const failed = await waitForRow(joblog, single, ['failed']);
    expect(failed).toMatchObject({ attempt: 1, maxAttempts: 1, error: { message: 'no second chance' } });
    expect(failed.errors).toHaveLength(1);
    expect(failed.durationMs).not.toBeNull();
  });

  test('the write after the handler never overwrites a newer attempt\'s row, nor a settled one; ownsSection and fenced say so', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('fence');
    await boss.createQueue(queue);
    const seen: Record<string, unknown> = {};
    await joblog.work<{ as: 'newer' | 'settled' | 'alone' }>(queue, { ...FAST, type: 'report_export' }, async (job, ctx) => {
      seen[`${job.data.as}:owns-before`] = await ctx.ownsSection();
      if (job.data.as !== 'alone') {
        // What a newer attempt's claim (or the reconciler, for a job pg-boss failed) would have written meanwhile.
        const [attempt, state] = job.data.as === 'newer' ? [2, 'started'] : [1, 'dead'];
        await db.pool.query(`INSERT INTO job_logs (jid, queue, job_type, attempt, max_attempts, state, started_at, updated_at)
                             VALUES ($1, $2, 'report_export', $3, 3, $4::"JobState", now(), now())`, [job.id, queue, attempt, state]);
      }
      seen[`${job.data.as}:owns-after`] = await ctx.ownsSection();
      seen[`${job.data.as}:fenced`] = await ctx.fenced(async (tx) => (await tx.$queryRawUnsafe('SELECT 1 AS one'))[0].one).catch((e) => e);
    });
    const newer = (await boss.send(queue, { as: 'newer' }))!;
    const settled = (await boss.send(queue, { as: 'settled' }))!;
    const alone = (await boss.send(queue, { as: 'alone' }))!;
    await waitFor('two stale warnings', async () => warnings.filter((w) => w.code === 'STALE_ATTEMPT').length >= 2 || undefined);
    expect(await rowOf(newer)).toEqual({ state: 'started', attempt: 2 });
    expect(await rowOf(settled)).toEqual({ state: 'dead', attempt: 1 });
    expect(warnings.filter((w) => w.code === 'STALE_ATTEMPT').map((w) => w.jid).sort()).toEqual([newer, settled].sort());
    for (const as of ['newer', 'settled']) {
      expect(seen[`${as}:owns-before`]).toBe(true); // no row yet: nothing newer has it
      expect(seen[`${as}:owns-after`]).toBe(false);
      expect(seen[`${as}:fenced`]).toBeInstanceOf(StaleAttemptError);
    }
    // fenced() on a job with no row writes its started row to lock it, inside fn's transaction.
    expect(await waitForRow(joblog, alone, ['finished'])).toMatchObject({ attempt: 1, error: null });
    expect(seen['alone:fenced']).toBe(1);
    expect(seen['alone:owns-after']).toBe(true);
  });

  test('pg-boss fails a job while its handler runs, before it has a row: the reconciler writes it; the late write does not undo it', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('failed-under');
    await boss.createQueue(queue, { retryLimit: 0 });
    const entered = gate();
    const release = gate();
    await joblog.work(queue, { ...FAST, type: 'report_export' }, async () => {
      entered.open();
      await release.promise;
    });
    const jid = (await boss.send(queue, {}))!;
    await entered.promise;
    await boss.fail(queue, jid, new Error('worker lost'));
    expect(await rowOf(jid)).toBeNull();
    await joblog.reap();
    const row = await waitForRow(joblog, jid, ['failed']);
    expect(row.error).toMatchObject({ code: 'NO_ROW' });
    expect(row.error!.message).toContain('worker lost');
    release.open();
    await waitFor('the late write is refused', async () => warnings.find((w) => w.code === 'STALE_ATTEMPT' && w.jid === jid));
    expect(await rowOf(jid)).toEqual({ state: 'failed', attempt: 1 });
  });

  test('a stale attempt (pg-boss re-ran it after expiry) cannot overwrite the retry\'s row', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('stale');
    await boss.createQueue(queue, { retryLimit: 1, expireInSeconds: 1 });
    const release = { 1: gate(), 2: gate() };
    const started = { 1: gate(), 2: gate() };
    await joblog.work(queue, { ...FAST, localConcurrency: 2, type: 'report_export' }, async (_job, ctx) => {
      const n = ctx.attempt as 1 | 2;
      started[n].open();
      await release[n].promise;
      return `attempt ${n} done`;
    });
    const jid = (await boss.send(queue, {}))!;
    await started[1].promise;
    // Attempt 1 runs long: its started row is written, then pg-boss expires it and starts attempt 2.
    await waitFor('the running row', async () => (await rowOf(jid)) ?? undefined);
    await new Promise((r) => setTimeout(r, 500));
    await boss.supervise(queue);
    await started[2].promise;
    expect(await rowOf(jid)).toEqual({ state: 'started', attempt: 2 });
    release[1].open();
    await waitFor('stale warning', async () => warnings.find((w) => w.code === 'STALE_ATTEMPT' && w.attempt === 1));
    expect(await rowOf(jid)).toEqual({ state: 'started', attempt: 2 });
    release[2].open();
    expect(await waitForRow(joblog, jid, ['finished'])).toMatchObject({ attempt: 2 });
  });

  test('a user id the table refuses once the handler has run: the row is written without it, its errors say what was refused', async () => {
    await db.pool.query(`CREATE TABLE IF NOT EXISTS known_users (id text PRIMARY KEY)`);
    await db.pool.query(`INSERT INTO known_users VALUES ('u-known') ON CONFLICT DO NOTHING`);
    await db.pool.query(`ALTER TABLE job_logs ADD CONSTRAINT job_logs_known_user FOREIGN KEY (user_id) REFERENCES known_users (id) NOT VALID`);
    try {
      const { boss, joblog } = await tracked(db);
      const queue = queueName('refused-user');
      await boss.createQueue(queue);
      let ran = 0;
      await joblog.work<{ user: string }>(queue, { ...FAST, batchSize: 2, type: 'report_export', userId: (j) => j.data.user }, async () => {
        ran++;
      });
        const [known, unknown] = [randomUUID(), randomUUID()];
      await boss.insert(queue, [{ id: known, data: { user: 'u-known' } }, { id: unknown, data: { user: 'u-nobody' } }]);
      expect(await waitForRow(joblog, known, ['finished'])).toMatchObject({ userId: 'u-known', errors: [] });
      const row = await waitForRow(joblog, unknown, ['finished']);
      expect(row).toMatchObject({ userId: null, error: null });
      expect(row.errors).toHaveLength(1);
      expect(row.errors[0]!.error).toMatchObject({ code: 'INVALID_PAYLOAD' });
      expect(row.errors[0]!.error.message).toMatch(/userId.*u-nobody[\s\S]*(foreign key|violates)/);
      expect(ran).toBe(2);
    } finally {
      await db.pool.query(`ALTER TABLE job_logs DROP CONSTRAINT job_logs_known_user`);
    }
  });
});
