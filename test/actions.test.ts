// Actions on what the log shows: retry a dead job, cancel a running one, release a section whose
// holder is gone; each refuses what it must not do and is safe to repeat.
import { describe, expect, test } from 'vitest';
import { ActionRefusedError, createDashboard } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { bossJob, FAST, gate, holdSection, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';

const db = setupTestDb('actions');

describe('actions', () => {
  test('retry: a dead job runs again through pg-boss, its row started again for that attempt; twice is once', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('retry');
    await boss.createQueue(queue, { retryLimit: 1 });
    let healthy = false;
    const hold = gate();
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-act-retry' }, async (_job, ctx) => {
      if (!healthy) throw new Error(`bank down (attempt ${ctx.attempt})`);
      await hold.promise;
      return { attempt: ctx.attempt };
    });
    const jid = (await boss.send(queue, {}))!;
    await waitForRow(joblog, jid, ['dead']);
    healthy = true;
    const first = await joblog.retry(jid, { by: 'ana@example.com' });
    expect(first).toMatchObject({ action: 'retry', changed: true, row: { state: 'started', attempt: 2, maxAttempts: 3 } });
    const second = await joblog.retry(jid, { by: 'ana@example.com' });
    expect(second.changed).toBe(false);
    await waitForRow(joblog, jid, ['started']);
    hold.open();
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row.attempt).toBe(3);
    expect(row.errors.map((e) => e.error.code ?? e.error.message)).toEqual(['bank down (attempt 1)', 'bank down (attempt 2)', 'RETRY_REQUESTED']);
    expect(row.errors[2]!.error.message).toBe('retry requested by ana@example.com; the job had ended dead');
    expect((await waitForBossState(db, jid, ['completed'])).output).toEqual({ attempt: 3 });
    await expect(joblog.retry(jid)).rejects.toThrow(/retry of job .* refused: the job ended finished/);

    // The job page lists the action beside the attempts; it never stands in for an attempt's error.
    const page = await (await createDashboard({ joblog, token: 'a-token-of-sixteen-chars' })(
      new Request(`http://app.test/jobs/${jid}`, { headers: { authorization: 'Bearer a-token-of-sixteen-chars' } }))).text();
    expect(page).toContain('bank down (attempt 1)');
    expect(page).toContain('bank down (attempt 2)');
    expect(page).toMatch(/<td>action<\/td><td>[^<]*<\/td><td class="msg">retry requested by ana@example.com; the job had ended dead/);
  });

  test('retry refuses a job pg-boss no longer has, and one whose section another job holds', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('retry-refused');
    await boss.createQueue(queue, { retryLimit: 0 });
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: (j: any) => j.data.userId }, async () => {
      throw new Error('no');
    });
    const gone = (await boss.send(queue, { userId: 'u-act-gone' }))!;
    const busy = (await boss.send(queue, { userId: 'u-act-busy' }))!;
    await waitForRow(joblog, gone, ['failed']);
    await waitForRow(joblog, busy, ['failed']);
    await db.pool.query(`DELETE FROM pgboss.job WHERE id = $1`, [gone]); // pg-boss's retention
    const error = await joblog.retry(gone).catch((e) => e);
    expect(error).toBeInstanceOf(ActionRefusedError);
    expect(error).toMatchObject({ code: 'ACTION_REFUSED', action: 'retry', jid: gone });
    expect(error.message).toMatch(/pg-boss no longer has this job .*send a new job/);
    expect(await joblog.get(gone)).toMatchObject({ state: 'failed' }); // nothing changed: one transaction

    const held = await holdSection(joblog, 'u-act-busy');
    await expect(joblog.retry(busy)).rejects.toThrow(`its section is held by job ${held.holderJid()}`);
    expect(await joblog.get(busy)).toMatchObject({ state: 'failed' });
    expect((await bossJob(db, busy)).state).toBe('failed');
    await held.release();
  });

  test('cancel: a running job is cancelled in pg-boss and its row ends dead; twice is once; an ended job is refused', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('cancel');
    await boss.createQueue(queue);
    const hold = gate();
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-act-cancel' }, () => hold.promise);
    const jid = (await boss.send(queue, {}))!;
    await waitForBossState(db, jid, ['active']);
    await waitForRow(joblog, jid, ['started']);
    const result = await joblog.cancel(jid, { by: 'ops' });
    expect(result).toMatchObject({ changed: true, row: { state: 'dead', error: { code: 'JOB_CANCELLED' } } });
    expect(result.row.errors.map((e) => e.error.code)).toEqual(['CANCEL_REQUESTED', 'JOB_CANCELLED']);
    expect((await bossJob(db, jid)).state).toBe('cancelled');
    expect(await joblog.holder('u-act-cancel', 'financial')).toBeNull();
    expect((await joblog.cancel(jid)).changed).toBe(false);
    hold.open();
    // A cancelled job is retried through pg-boss's resume: it runs again and finishes.
    expect((await joblog.retry(jid, { by: 'ops' })).changed).toBe(true);
    expect(await waitForRow(joblog, jid, ['finished'])).toMatchObject({ state: 'finished' });
    expect((await bossJob(db, jid)).state).toBe('completed');

    const done = (await boss.send(queue, {}))!;
    await waitForRow(joblog, done, ['finished']);
    await expect(joblog.cancel(done)).rejects.toThrow(/refused: the job already ended finished/);
  });

  test('release: refused while the holder is alive; once pg-boss has lost the job, the section opens', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('release');
    await boss.createQueue(queue, { retryLimit: 0 });
    const hold = gate();
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-act-release' }, () => hold.promise);
    const jid = (await boss.send(queue, {}))!;
    await waitForBossState(db, jid, ['active']);
    await waitForRow(joblog, jid, ['started']);
    await expect(joblog.release(jid)).rejects.toThrow(/refused: its holder is alive: pg-boss has the job running/);
    await db.pool.query(`UPDATE pgboss.job SET state = 'failed', completed_on = now(), output = '{"message":"worker gone"}' WHERE id = $1`, [jid]);
    const released = await joblog.release(jid, { by: 'ops' });
    expect(released).toMatchObject({ changed: true, row: { state: 'dead', error: { code: 'JOB_FAILED' } } });
    expect(released.row.errors.map((e) => e.error.code)).toEqual(['JOB_FAILED', 'RELEASE_REQUESTED']);
    expect(await joblog.holder('u-act-release', 'financial')).toBeNull();
    expect((await joblog.release(jid)).changed).toBe(false);

    const section = await holdSection(joblog, 'u-act-lease');
    await expect(joblog.release(section.holderJid())).rejects.toThrow(/its holder is alive: the lease runs until/);
    await section.release();
    hold.open();
  });
});
