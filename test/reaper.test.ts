import { randomUUID } from 'node:crypto';
import { PrismaPg } from '@prisma/adapter-pg';
import { describe, expect, test } from 'vitest';
import { PrismaClient } from '../src/generated/prisma/client.ts';
import { createJobLog, InvalidOptionsError, type ReapResult } from '../src/index.ts';
import { setupTestDb, type TestDb } from './helpers/db.ts';
import { queueName, tracked, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('reaper');

/** A `started` row for a pg-boss job, as a worker that then lost its connection would leave it. */
async function heldRow(db: TestDb, jid: string, queue: string, opts: { userId?: string; group?: string; type?: string; ageSeconds?: number } = {}) {
  await db.pool.query(
    `INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, started_at)
     VALUES ($1, $2, $3::"JobType", $4, $5, 1, 3, clock_timestamp() - $6 * interval '1 second')`,
    [jid, queue, opts.type ?? 'financial_data_import', opts.userId ?? `u-${jid.slice(0, 8)}`, opts.group ?? 'financial', opts.ageSeconds ?? 0],
  );
}

/** Records every state change of job_logs: the witness that no row is transitioned twice. */
async function watchTransitions(db: TestDb) {
  await db.pool.query(`
    CREATE TABLE IF NOT EXISTS transitions (jid uuid, old_state text, new_state text);
    CREATE OR REPLACE FUNCTION record_transition() RETURNS trigger AS $$
    BEGIN
      IF OLD.state IS DISTINCT FROM NEW.state THEN
        INSERT INTO transitions VALUES (NEW.jid, OLD.state::text, NEW.state::text);
      END IF;
      RETURN NEW;
    END $$ LANGUAGE plpgsql;
    DROP TRIGGER IF EXISTS record_transition ON job_logs;
    CREATE TRIGGER record_transition AFTER UPDATE ON job_logs FOR EACH ROW EXECUTE FUNCTION record_transition();`);
}

describe('reap()', () => {
  test('settles each started row by its pg-boss job: completed, failed, cancelled, gone, waiting for retry, active', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('states');
    const lastTry = queueName('last');
    await boss.createQueue(queue, { retryLimit: 1 });
    await boss.createQueue(lastTry, { retryLimit: 0 });
    const send = async () => (await boss.send(queue, {}))!;
    const [completed, cancelled, gone, retrying, active] = await Promise.all([send(), send(), send(), send(), send()]);
    const failed = (await boss.send(lastTry, {}))!;
    expect(await boss.fetch(queue, { batchSize: 10 })).toHaveLength(5);
    expect(await boss.fetch(lastTry)).toHaveLength(1);
    for (const jid of [completed, cancelled, gone, retrying, active]) await heldRow(db, jid, queue);
    await heldRow(db, failed, lastTry);

    await boss.complete(queue, completed);
    await boss.fail(lastTry, failed, { message: 'handler execution exceeded 4s' });
    await boss.fail(queue, retrying, { message: 'first try' });
    await boss.cancel(queue, cancelled);
    await boss.deleteJob(queue, gone);

    expect(await joblog.reap()).toEqual({ finished: 1, dead: 3, kept: 1, recorded: 0, completed: 0 });
    expect(await joblog.get(completed)).toMatchObject({ state: 'finished', error: null });
    expect((await joblog.get(completed))!.finishedAt).toBeInstanceOf(Date);
    expect(await joblog.get(failed)).toMatchObject({
      state: 'dead', error: { code: 'JOB_FAILED', message: 'worker lost: pg-boss failed the job (handler execution exceeded 4s)' },
    });
    expect(await joblog.get(cancelled)).toMatchObject({ state: 'dead', error: { code: 'JOB_CANCELLED', message: 'job cancelled in pg-boss' } });
    expect(await joblog.get(gone)).toMatchObject({ state: 'dead', error: { code: 'JOB_MISSING', message: 'job no longer exists in pg-boss' } });
    const dead = (await joblog.get(gone))!;
    expect(dead.errors).toEqual([{ attempt: 1, at: expect.any(String), error: dead.error }]);
    expect(await joblog.get(retrying)).toMatchObject({ state: 'started' });
    expect(await joblog.get(active)).toMatchObject({ state: 'started', error: null });

    // A second pass finds nothing new to do.
    expect(await joblog.reap()).toEqual({ finished: 0, dead: 0, kept: 1, recorded: 0, completed: 0 });
  });

  test('a job waiting for its retry keeps the section until maxHoldSeconds (by group or by type, the smaller) has passed', async () => {
    const { boss } = await tracked(db);
    const joblog = createJobLog({
      prisma: db.prisma, boss, reaper: { intervalSeconds: 3600, maxHoldSeconds: { byGroup: { financial: 600, reports: 30 }, byType: { report_export: 60 } } },
    });
    const queue = queueName('hold');
    await boss.createQueue(queue, { retryLimit: 3, retryDelay: 3600 });
    const jids = await Promise.all([1, 2, 3, 4].map(async () => (await boss.send(queue, {}))!));
    await boss.fetch(queue, { batchSize: 4 });
    const [young, oldFinancial, oldReport, exportInFinancial] = jids as [string, string, string, string];
    await heldRow(db, young, queue, { group: 'financial', ageSeconds: 10 });
    await heldRow(db, oldFinancial, queue, { group: 'financial', ageSeconds: 700 });
    await heldRow(db, oldReport, queue, { group: 'reports', type: 'reconciliation', ageSeconds: 40 });
    await heldRow(db, exportInFinancial, queue, { group: 'financial', type: 'report_export', ageSeconds: 90 });
    await boss.fail(queue, jids);

    expect((await joblog.reap()).dead).toBe(3);
    expect(await joblog.get(young)).toMatchObject({ state: 'started' });
    expect((await joblog.get(oldFinancial))!.error).toMatchObject({
      code: 'MAX_HOLD_EXCEEDED', message: 'held its section longer than maxHoldSeconds (600 s) while waiting for its retry',
    });
    expect((await joblog.get(oldReport))!.error!.message).toContain('(30 s)');
    expect((await joblog.get(exportInFinancial))!.error!.message).toContain('(60 s)');
    joblog.stop();
  });

  test('reapers racing on separate connections never transition a row twice', async () => {
    await watchTransitions(db);
    const { boss } = await tracked(db);
    const queue = queueName('race');
    await boss.createQueue(queue, { retryLimit: 0 });
    const jids = Array.from({ length: 120 }, () => randomUUID());
    await boss.insert(queue, jids.map((id) => ({ id, data: {} })));
    const jobs = await boss.fetch(queue, { batchSize: 120 });
    expect(jobs).toHaveLength(120);
    for (const jid of jids) await heldRow(db, jid, queue);
    await boss.complete(queue, jids.slice(0, 40));
    await boss.fail(queue, jids.slice(40, 80));
    await boss.deleteJob(queue, jids.slice(80, 100)); // the last 20 stay active

    const clients = Array.from({ length: 6 }, () => new PrismaClient({ adapter: new PrismaPg({ connectionString: db.url }) }));
    try {
      const logs = clients.map((prisma) => createJobLog({ prisma, reaper: false }));
      const results: ReapResult[] = (await Promise.all(logs.flatMap((log) => [log.reap(), log.reap(), log.reap()])));
      const sum = results.reduce((a, r) => ({ finished: a.finished + r.finished, dead: a.dead + r.dead }), { finished: 0, dead: 0 });
      expect(sum).toEqual({ finished: 40, dead: 60 });
    } finally {
      await Promise.all(clients.map((c) => c.$disconnect()));
    }
    const { rows } = await db.pool.query(
      `SELECT jid, count(*)::int AS n FROM transitions WHERE jid = ANY($1::uuid[]) GROUP BY jid`, [jids]);
    expect(rows).toHaveLength(100);
    expect(rows.every((r) => r.n === 1)).toBe(true);
    const { rows: states } = await db.pool.query(
      `SELECT state::text, count(*)::int AS n FROM job_logs WHERE jid = ANY($1::uuid[]) GROUP BY 1 ORDER BY 1`, [jids]);
    expect(states).toEqual([{ state: 'dead', n: 60 }, { state: 'finished', n: 40 }, { state: 'started', n: 20 }]);
  });

  test('a running joblog.section() is never reaped as "job no longer exists"; a dead holder\'s lease expires', async () => {
    const { joblog } = await tracked(db);
    let reaps = 0;
    const result = await joblog.section({ type: 'reconciliation', userId: 'u-lease', group: 'financial', leaseSeconds: 1 }, async ({ jid }) => {
      // Longer than the lease: the renewals keep it. Reap all along.
      const until = Date.now() + 2500;
      while (Date.now() < until) {
        await joblog.reap();
        reaps++;
        expect((await joblog.get(jid))!.state).toBe('started');
        await new Promise((r) => setTimeout(r, 100));
      }
      return jid;
    });
    expect(reaps).toBeGreaterThan(5);
    expect(await joblog.get(result)).toMatchObject({ state: 'finished', queue: 'section' });

    // A holder that is gone: its row's lease has passed and nobody renews it.
    const orphan = randomUUID();
    await db.pool.query(
      `INSERT INTO job_logs (jid, queue, job_type, user_id, "group", max_attempts, lease_until)
       VALUES ($1, 'section', 'reconciliation', 'u-orphan', 'financial', 1, clock_timestamp() - interval '1 second')`, [orphan]);
    expect((await joblog.reap()).dead).toBe(1);
    expect(await joblog.get(orphan)).toMatchObject({ state: 'dead', error: { code: 'LEASE_EXPIRED' } });
    expect(await joblog.holder('u-orphan', 'financial')).toBeNull();
  });

  test('createJobLog runs the reaper on its interval until stop(); its options are checked', async () => {
    const boss = await db.boss();
    const joblog = createJobLog({ prisma: db.prisma, boss, reaper: { intervalSeconds: 0.2 } });
    const reaped: ReapResult[] = [];
    joblog.on('reaped', (r) => reaped.push(r));
    const queue = queueName('interval');
    await boss.createQueue(queue);
    const jid = (await boss.send(queue, {}))!;
    await boss.fetch(queue);
    await heldRow(db, jid, queue);
    await boss.complete(queue, jid);
    await waitForRow(joblog, jid, ['finished'], 5000);
    await waitFor('reaped event', async () => reaped.length > 0);
    expect(reaped[0]).toMatchObject({ finished: 1 });

    joblog.stop();
    const other = (await boss.send(queue, {}))!;
    await boss.fetch(queue);
    await heldRow(db, other, queue);
    await boss.complete(queue, other);
    await new Promise((r) => setTimeout(r, 700));
    expect((await joblog.get(other))!.state).toBe('started');

    const bad = [
      { reaper: { intervalSeconds: 'often' } },
      { reaper: { every: 5 } },
      { reaper: true },
      { reaper: { maxHoldSeconds: { byGroup: { financial: -1 } } } },
      { reaper: { maxHoldSeconds: { byQueue: {} } } },
      { bossSchema: 'pgboss; drop table x' },
    ];
    for (const options of bad) {
      expect(() => createJobLog({ prisma: db.prisma, boss, ...options } as any)).toThrow(InvalidOptionsError);
    }
    expect(() => createJobLog({ prisma: db.prisma, boss, reaper: { maxHoldSeconds: { byGroup: { financial: -1 } } } }))
      .toThrow(/reaper\.maxHoldSeconds\.byGroup\.financial: must be a positive number of seconds/);
  });
});
