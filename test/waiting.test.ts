import { describe, expect, test } from 'vitest';
import { setupTestDb } from './helpers/db.ts';
import { bossJob, FAST, holdSection, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('waiting');

describe('onBusy: { wait }', () => {
  test('a busy job is put back without spending its retries and runs once the section opens; the log tells how long it waited', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('wait');
    await boss.createQueue(queue, { retryLimit: 0 }); // a single spent attempt would end the job
    const attempts: number[] = [];
    await joblog.work(queue, {
      ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-wait',
      onBusy: { wait: { retryEverySeconds: 1, giveUpAfterSeconds: 60 } },
    }, async (job, ctx) => { attempts.push(ctx.attempt); });
    const section = await holdSection(joblog, 'u-wait');
    const jid = (await boss.send(queue, {}))!;

    // Put back: waiting in `retry` for a later start, with no retry counted; nothing in the log yet.
    const { rows: [waiting] } = await waitFor('job put back', async () => {
      const r = await db.pool.query(`SELECT state::text, retry_count, started_on, start_after > now() AS later, output FROM pgboss.job WHERE id = $1`, [jid]);
      return r.rows[0]?.state === 'retry' ? r : undefined;
    });
    expect(waiting).toMatchObject({ state: 'retry', retry_count: 0, started_on: null, later: true });
    expect(waiting.output.joblogWait).toMatchObject({ waits: 1, holderJid: section.holderJid() });
    expect(await joblog.get(jid)).toBeNull();
    await waitFor('put back twice', async () => (await bossJob(db, jid)).output?.joblogWait?.waits >= 2);

    await new Promise((r) => setTimeout(r, 500));
    await section.release();
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(attempts).toEqual([1]);
    expect(row).toMatchObject({ attempt: 1, maxAttempts: 1, errors: [] });
    expect(row.waitedMs).toBeGreaterThanOrEqual(1500);
    const job = await waitForBossState(db, jid, ['completed']);
    expect(job.retry_count).toBe(0);
  });

  test('waiting does not use the retry budget: three waits on retryLimit 1, then a failure is still retried', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('budget');
    await boss.createQueue(queue, { retryLimit: 1 });
    const attempts: number[] = [];
    await joblog.work(queue, {
      ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-budget',
      onBusy: { wait: { retryEverySeconds: 1, giveUpAfterSeconds: 60 } },
    }, async (_job, ctx) => {
      attempts.push(ctx.attempt);
      if (ctx.attempt === 1) throw new Error('first attempt fails');
    });
    const section = await holdSection(joblog, 'u-budget');
    const jid = (await boss.send(queue, {}))!;
    await waitFor('three waits', async () => (await bossJob(db, jid))?.output?.joblogWait?.waits >= 3, 15_000);
    await section.release();
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(attempts).toEqual([1, 2]);
    expect(row).toMatchObject({ attempt: 2, maxAttempts: 2 });
    expect(row.errors.map((e) => e.error.message)).toEqual(['first attempt fails']);
    expect(row.waitedMs).toBeGreaterThan(0);
  });

  test('past giveUpAfterSeconds the job ends skipped: "section busy: gave up after N s", one row, pg-boss completed', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('giveup');
    await boss.createQueue(queue, { retryLimit: 2 });
    let calls = 0;
    await joblog.work(queue, {
      ...FAST, type: 'reconciliation', group: 'financial', userId: () => 'u-giveup',
      onBusy: { wait: { retryEverySeconds: 1, giveUpAfterSeconds: 2 } },
    }, async () => { calls++; });
    const section = await holdSection(joblog, 'u-giveup');
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['skipped'], 15_000);
    expect(row).toMatchObject({ holderJid: section.holderJid(), error: { code: 'SECTION_BUSY' } });
    expect(row.error!.message).toBe(`section busy: gave up after 2 s (held by job ${section.holderJid()})`);
    expect(row.waitedMs).toBeGreaterThanOrEqual(2000);
    expect(row.waitedMs).toBeLessThan(5000);
    const job = await waitForBossState(db, jid, ['completed']);
    expect(job.retry_count).toBe(0);
    expect(calls).toBe(0);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM job_logs WHERE jid = $1', [jid]);
    expect(rows[0].n).toBe(1);
    await section.release();
  });
});
