import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { setupTestDb } from './helpers/db.ts';
import { bossJob, FAST, gate, holdSection, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('worker');

describe('tracked worker', () => {
  test('a successful job ends finished, with its timings, and the section opens', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('ok');
    await boss.createQueue(queue);
    await joblog.work(queue, { ...FAST, type: 'report_export', group: 'reports', userId: (j: any) => j.data.userId }, async () => {
      await new Promise((r) => setTimeout(r, 50));
      return { rows: 3 };
    });
    const jid = (await boss.send(queue, { userId: 'u1' }))!;
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row).toMatchObject({ queue, jobType: 'report_export', userId: 'u1', group: 'reports', attempt: 1, maxAttempts: 3 });
    expect(row.durationMs).toBeGreaterThanOrEqual(50);
    expect(row.finishedAt!.getTime()).toBeGreaterThanOrEqual(row.startedAt.getTime());
    expect(row.queuedAt).toBeInstanceOf(Date);
    expect(await joblog.holder('u1', 'reports')).toBeNull();
    const job = await waitForBossState(db, jid, ['completed']);
    expect(job.output).toEqual({ rows: 3 });
  });

  test('a job that spans more than 24.8 days (more milliseconds than an int holds) still settles', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('long');
    await boss.createQueue(queue);
    // A job with a section: its row is claimed before the handler, which backdates it.
    await joblog.work(queue, { ...FAST, type: 'report_export', group: 'reports', userId: () => 'u-long' }, async (job) => {
      await db.pool.query(`UPDATE job_logs SET started_at = now() - interval '30 days' WHERE jid = $1`, [job.id]);
    });
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row.durationMs! / 86_400_000).toBeCloseTo(30, 1);
  });

  test('retryCount runs 0, 1, 2 and the last failure ends dead with every attempt\'s error', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('dies');
    await boss.createQueue(queue, { retryLimit: 2 });
    const seen: { retryCount: number; attempt: number; last: boolean }[] = [];
    await joblog.work(queue, { ...FAST, type: 'report_export', group: 'g', userId: () => 'u-dead' }, async (job, ctx) => {
      seen.push({ retryCount: job.retryCount, attempt: ctx.attempt, last: ctx.isLastAttempt });
      throw new Error(`boom ${ctx.attempt}`);
    });
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['dead']);
    expect(seen).toEqual([
      { retryCount: 0, attempt: 1, last: false },
      { retryCount: 1, attempt: 2, last: false },
      { retryCount: 2, attempt: 3, last: true },
    ]);
    expect(row).toMatchObject({ attempt: 3, maxAttempts: 3, error: { name: 'Error', message: 'boom 3' } });
    expect(row.errors.map((e) => [e.attempt, e.error.message])).toEqual([[1, 'boom 1'], [2, 'boom 2'], [3, 'boom 3']]);
    expect((await waitForBossState(db, jid, ['failed'])).retry_count).toBe(2);
    expect(await joblog.holder('u-dead', 'g')).toBeNull();
  });

  test('a retry re-enters its own row and keeps the section closed to other jobs until it settles', async () => {
    const { boss, joblog } = await tracked(db);
    const importQ = queueName('import');
    const reconcileQ = queueName('reconcile');
    await boss.createQueue(importQ, { retryLimit: 2, retryDelay: 2 });
    await boss.createQueue(reconcileQ, { retryLimit: 0 });
    const attempts: number[] = [];
    await joblog.work(importQ, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-retry' }, async (_job, ctx) => {
      attempts.push(ctx.attempt);
      if (ctx.attempt === 1) throw new Error('bank API timeout');
    });
    await joblog.work(reconcileQ, { ...FAST, type: 'reconciliation', group: 'financial', userId: () => 'u-retry', onBusy: 'skip' }, async () => {});

    const importJid = (await boss.send(importQ, {}))!;
    await waitForBossState(db, importJid, ['retry']);
    const between = await joblog.get(importJid);
    expect(between).toMatchObject({ state: 'started', attempt: 1, error: { message: 'bank API timeout' } });
    expect((await joblog.holder('u-retry', 'financial'))?.jid).toBe(importJid);

    // Another job type in the same group is kept out while the retry is due.
    const reconcileJid = (await boss.send(reconcileQ, {}))!;
    expect(await waitForRow(joblog, reconcileJid, ['skipped'])).toMatchObject({ holderJid: importJid, jobType: 'reconciliation' });

    const row = await waitForRow(joblog, importJid, ['finished']);
    expect(attempts).toEqual([1, 2]);
    expect(row).toMatchObject({ attempt: 2, state: 'finished' });
    expect(row.errors).toHaveLength(1);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM job_logs WHERE jid = $1', [importJid]);
    expect(rows[0].n).toBe(1);
  });

  test('a non-retryable job ends failed at once: retryLimit 0, or retryable: false on a queue with retries', async () => {
    const { boss, joblog } = await tracked(db);
    const zeroQ = queueName('zero');
    const noRetryQ = queueName('noretry');
    await boss.createQueue(zeroQ, { retryLimit: 0 });
    await boss.createQueue(noRetryQ, { retryLimit: 3 });
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new Error('smtp 550');
    };
    await joblog.work(zeroQ, { ...FAST, type: 'welcome_email', userId: () => 'u-nr' }, failing);
    await joblog.work(noRetryQ, { ...FAST, type: 'welcome_email', userId: () => 'u-nr', retryable: false }, failing);
    const a = (await boss.send(zeroQ, {}))!;
    const b = (await boss.send(noRetryQ, {}))!;
    for (const jid of [a, b]) {
      expect(await waitForRow(joblog, jid, ['failed'])).toMatchObject({ attempt: 1, maxAttempts: 1, error: { message: 'smtp 550' } });
      expect((await waitForBossState(db, jid, ['failed'])).retry_count).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 1200)); // a wrongly scheduled retry would have run by now
    expect(calls).toBe(2);
  });

  test('a payload that fails its schema ends failed with the field named, and is not retried', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('payload');
    await boss.createQueue(queue, { retryLimit: 3 });
    let calls = 0;
    await joblog.work(queue, {
      ...FAST, type: 'financial_data_import', group: 'financial', userId: (j: any) => j.data.userId,
      schema: z.object({ userId: z.string(), fileId: z.string() }),
    }, async () => { calls++; });
    const jid = (await boss.send(queue, { userId: 'u-bad' }))!;
    const row = await waitForRow(joblog, jid, ['failed']);
    expect(row.error).toMatchObject({ name: 'InvalidPayloadError', code: 'INVALID_PAYLOAD' });
    expect(row.error!.message).toContain('fileId');
    expect(row.userId).toBe('u-bad');
    expect(row.group).toBe('financial'); // the worker's static group, though the payload was bad
    const job = await waitForBossState(db, jid, ['failed']);
    expect(job.retry_count).toBe(0);
    expect(calls).toBe(0);
    expect(await joblog.holder('u-bad', 'financial')).toBeNull();
  });

  test('a user id of the wrong type fails the job with a clear error and takes no section', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('uid');
    await boss.createQueue(queue, { retryLimit: 2 });
    await joblog.work(queue, { ...FAST, type: 'report_export', group: 'g', userId: (j: any) => j.data.user }, async () => {});
    const objectUser = (await boss.send(queue, { user: { id: 1 } }))!;
    const numericUser = (await boss.send(queue, { user: 42 }))!;
    const failed = await waitForRow(joblog, objectUser, ['failed']);
    expect(failed.error!.message).toMatch(/userId: expected a string or integer user id, got object/);
    expect(await waitForRow(joblog, numericUser, ['finished'])).toMatchObject({ userId: '42' });
  });

  test('busy with onBusy skip: a skipped row names the holder and the pg-boss job completes', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('skip');
    await boss.createQueue(queue, { retryLimit: 2 });
    let calls = 0;
    await joblog.work(queue, { ...FAST, type: 'reconciliation', group: 'financial', userId: () => 'u-skip', onBusy: 'skip' }, async () => { calls++; });
    const section = await holdSection(joblog, 'u-skip', 'financial', 'financial_data_import');
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['skipped']);
    expect(row).toMatchObject({ holderJid: section.holderJid(), error: { name: 'SectionBusyError', code: 'SECTION_BUSY' } });
    expect((await waitForBossState(db, jid, ['completed'])).state).toBe('completed');
    await section.release();
    expect(calls).toBe(0);
  });

  test('busy with onBusy throw: pg-boss retries; the job runs once the section opens', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('throw');
    await boss.createQueue(queue, { retryLimit: 5, retryDelay: 1 });
    const attempts: number[] = [];
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-throw', onBusy: 'throw' }, async (_j, ctx) => {
      attempts.push(ctx.attempt);
    });
    const section = await holdSection(joblog, 'u-throw');
    const jid = (await boss.send(queue, {}))!;
    const retrying = await waitForBossState(db, jid, ['retry']);
    expect(retrying.output).toMatchObject({ name: 'SectionBusyError' });
    expect(await joblog.get(jid)).toBeNull(); // a busy attempt that will be retried writes nothing
    await section.release();
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row.attempt).toBeGreaterThan(1);
    expect(attempts).toEqual([row.attempt]);
  });

  test('busy with onBusy throw on the last attempt: the row ends dead, naming the holder', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('throwdead');
    await boss.createQueue(queue, { retryLimit: 1 });
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-td', onBusy: 'throw' }, async () => {});
    const section = await holdSection(joblog, 'u-td');
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['dead']);
    expect(row).toMatchObject({ attempt: 2, holderJid: section.holderJid(), error: { code: 'SECTION_BUSY' } });
    expect((await waitForBossState(db, jid, ['failed'])).retry_count).toBe(1);
    await section.release();
  });

  test('one batch with mixed outcomes settles each job on its own', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('batch');
    await boss.createQueue(queue, { retryLimit: 1 });
    const section = await holdSection(joblog, 'u-busy', 'g');
    const send = (data: object) => boss.send(queue, data) as Promise<string>;
    const ok = await send({ userId: 'u-a', mode: 'ok' });
    const fails = await send({ userId: 'u-b', mode: 'fail' });
    const bad = await send({ userId: 'u-c' });
    const busy = await send({ userId: 'u-busy', mode: 'ok' });
    const ok2 = await send({ userId: 'u-d', mode: 'ok' });
    await joblog.work(queue, {
      ...FAST, batchSize: 5, type: 'report_export', group: 'g', userId: (j: any) => j.data.userId, onBusy: 'skip',
      schema: z.object({ userId: z.string(), mode: z.enum(['ok', 'fail']) }),
    }, async (job) => {
      if (job.data.mode === 'fail') throw new Error('this one fails');
    });
    expect((await waitForRow(joblog, ok, ['finished'])).state).toBe('finished');
    expect((await waitForRow(joblog, ok2, ['finished'])).state).toBe('finished');
    expect((await waitForRow(joblog, bad, ['failed'])).error!.message).toContain('mode');
    expect((await waitForRow(joblog, busy, ['skipped'])).state).toBe('skipped');
    expect((await waitForRow(joblog, fails, ['dead'])).attempt).toBe(2);
    expect((await bossJob(db, ok)).state).toBe('completed');
    expect((await bossJob(db, bad)).state).toBe('failed');
    expect((await bossJob(db, busy)).state).toBe('completed');
    // They were fetched as one batch: pg-boss stamps every job of a fetch with one started_on.
    const { rows } = await db.pool.query('SELECT count(DISTINCT started_on)::int AS n FROM pgboss.job WHERE id = ANY($1::uuid[])', [[ok, bad, busy, ok2]]);
    expect(rows[0].n).toBe(1);
    await section.release();
  });

  test('jobs with no user or no group take no section and run side by side', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('nosection');
    await boss.createQueue(queue);
    let inside = 0;
    let most = 0;
    const bothIn = gate();
    await joblog.work(queue, {
      ...FAST, localConcurrency: 4, type: 'welcome_email', group: (j: any) => j.data.group, userId: (j: any) => j.data.userId,
    }, async () => {
      inside++;
      most = Math.max(most, inside);
      if (inside === 4) bothIn.open();
      await Promise.race([bothIn.promise, new Promise((r) => setTimeout(r, 5000))]);
      inside--;
    });
    const jids = await Promise.all([
      boss.send(queue, { userId: 'u-n' }), // no group
      boss.send(queue, { userId: 'u-n' }),
      boss.send(queue, { group: 'g' }), // no user
      boss.send(queue, { group: 'g' }),
    ]);
    for (const jid of jids) await waitForRow(joblog, jid!, ['finished']);
    expect(most).toBe(4);
  });

  test('a stale attempt cannot overwrite the newer attempt\'s row (pg-boss re-ran it after expiry)', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('stale');
    await boss.createQueue(queue, { retryLimit: 1, expireInSeconds: 1 });
    const release = { 1: gate(), 2: gate() };
    const started = { 1: gate(), 2: gate() };
    const owned: Record<1 | 2, boolean[]> = { 1: [], 2: [] };
    await joblog.work(queue, { ...FAST, localConcurrency: 2, type: 'financial_data_import', group: 'financial', userId: () => 'u-stale' }, async (_job, ctx) => {
      const n = ctx.attempt as 1 | 2;
      started[n].open();
      await release[n].promise;
      owned[n].push(await ctx.ownsSection());
      if (n === 2) throw new Error('attempt 2 failed');
      return 'attempt 1 done';
    });
    const jid = (await boss.send(queue, {}))!;
    await started[1].promise;
    await new Promise((r) => setTimeout(r, 1500));
    await boss.supervise(queue); // expires attempt 1; pg-boss starts attempt 2 while 1 still runs
    await started[2].promise;
    expect(await joblog.get(jid)).toMatchObject({ state: 'started', attempt: 2 });

    release[1].open(); // the stale attempt succeeds: its write must be refused
    await waitFor('stale warning', async () => warnings.find((w) => w.code === 'STALE_ATTEMPT' && w.attempt === 1));
    expect(await joblog.get(jid)).toMatchObject({ state: 'started', attempt: 2 });

    release[2].open();
    const row = await waitForRow(joblog, jid, ['dead']);
    expect(row).toMatchObject({ attempt: 2, error: { message: 'attempt 2 failed' } });
    // Attempt 1 never settled (it was still running when pg-boss expired it): its retry recorded why.
    // (pg-boss's reason: its supervisor's expiry, or the worker's own timer if that fired first)
    expect(row.errors.map((e) => [e.attempt, e.error.message])).toEqual([
      [1, expect.stringMatching(/^attempt 1 ended without settling its row: (job timed out|handler execution exceeded 1s)$/)],
      [2, 'attempt 2 failed'],
    ]);
    expect(owned).toEqual({ 1: [false], 2: [true] });
  });
});
