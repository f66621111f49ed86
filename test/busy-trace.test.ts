import { describe, expect, test } from 'vitest';
import { setupTestDb } from './helpers/db.ts';
import { bossJob, FAST, holdSection, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('busy_trace');

/** The pg-boss job once attempt `attempt` has ended and its retry is due. */
const retryDueAfter = (jid: string, attempt: number) =>
  waitFor(`attempt ${attempt} of ${jid} ended`, async () => {
    const job = await bossJob(db, jid);
    return job?.state === 'retry' && job.retry_count === attempt - 1 ? job : undefined;
  });

describe("busy attempts with onBusy: 'throw' leave a trace", () => {
  test('busy on attempts 1 and 2, then run: the row has one entry per busy attempt, naming the holder, in order', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('busy2');
    await boss.createQueue(queue, { retryLimit: 4, retryDelay: 2 });
    const userId = `u-busy-${'é'.repeat(508)}`; // 1023 bytes of UTF-8, near the user id cap: in every entry's message
    const attempts: number[] = [];
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => userId, onBusy: 'throw' },
      async (_job, ctx) => { attempts.push(ctx.attempt); });
    const section = await holdSection(joblog, userId);
    const sentAt = new Date();
    const jid = (await boss.send(queue, {}))!;

    await retryDueAfter(jid, 2);
    // A busy job holds no section and has no row: the holder is still the only `started` row.
    expect(await joblog.get(jid)).toBeNull();
    expect((await joblog.holder(userId, 'financial'))?.jid).toBe(section.holderJid());
    await section.release();

    const row = await waitForRow(joblog, jid, ['finished']);
    expect(attempts).toEqual([row.attempt]);
    expect(row.attempt).toBeGreaterThanOrEqual(3);
    const busy = Array.from({ length: row.attempt - 1 }, (_, i) => i + 1);
    // The entry names the holder itself, as well as in its message (which a long user id and group could cut short).
    expect(row.errors.map((e) => [e.attempt, e.holderJid, e.error.name, e.error.code])).toEqual(
      busy.map((attempt) => [attempt, section.holderJid(), 'SectionBusyError', 'SECTION_BUSY']),
    );
    for (const { error } of row.errors) {
      expect(error.message).toBe(`section busy: user ${userId}, group financial (held by job ${section.holderJid()})`);
      expect(error.stack).toBeUndefined();
    }
    const times = row.errors.map((e) => new Date(e.at).getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(times[0]).toBeGreaterThanOrEqual(sentAt.getTime() - 1000);
    expect(times.at(-1)).toBeLessThanOrEqual(row.startedAt.getTime());
    expect(row.error).toBeNull(); // a finished row's error is cleared; its history keeps the busy attempts
    expect(row.holderJid).toBeNull();
  });

  test('busy on every attempt: the dead row has every attempt\'s entry, not only the last', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('busydead');
    await boss.createQueue(queue, { retryLimit: 2, retryDelay: 0 });
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-busy-dead', onBusy: 'throw' }, async () => {});
    const section = await holdSection(joblog, 'u-busy-dead');
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['dead']);
    expect(row).toMatchObject({ attempt: 3, holderJid: section.holderJid(), error: { code: 'SECTION_BUSY' } });
    const holder = section.holderJid();
    expect(row.errors.map((e) => [e.attempt, e.error.code, e.error.message.endsWith(`(held by job ${holder})`)])).toEqual([
      [1, 'SECTION_BUSY', true],
      [2, 'SECTION_BUSY', true],
      [3, 'SECTION_BUSY', true],
    ]);
    expect(row.errors.map((e) => e.holderJid)).toEqual([holder, holder, undefined]); // the last: the row's holder_jid
    expect((await waitForBossState(db, jid, ['failed'])).retry_count).toBe(2);
    await section.release();
  });

  test('a busy attempt before a lost one: both are recorded, each once', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('busylost');
    await boss.createQueue(queue, { retryLimit: 3, retryDelay: 1 });
    let crash = true;
    await joblog.work(queue, { ...FAST, localConcurrency: 2, type: 'financial_data_import', group: 'financial', userId: () => 'u-busy-lost', onBusy: 'throw' }, async (job) => {
      if (crash) {
        crash = false;
        // The attempt ends as if its worker died: pg-boss fails it behind the log's back.
        await db.pool.query(`UPDATE pgboss.job SET state = 'retry', output = '{"message":"worker died"}' WHERE id = $1`, [job.id]);
        await new Promise((r) => setTimeout(r, 3000));
      }
    });
    const section = await holdSection(joblog, 'u-busy-lost');
    const jid = (await boss.send(queue, {}))!;
    await retryDueAfter(jid, 1);
    await section.release();
    const row = await waitForRow(joblog, jid, ['finished'], 30_000);
    expect(row.attempt).toBe(3);
    expect(row.errors.map((e) => [e.attempt, e.error.code])).toEqual([[1, 'SECTION_BUSY'], [2, 'ATTEMPT_LOST']]);
    expect(row.errors[1]!.error.message).toBe('attempt 2 ended without settling its row: worker died');
  });

  test('a job cancelled while it waits for its retry after a busy attempt: the reaper\'s row has its user and group', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('busycancel');
    await boss.createQueue(queue, { retryLimit: 3, retryDelay: 60 });
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-busy-cancel', onBusy: 'throw' }, async () => {});
    const section = await holdSection(joblog, 'u-busy-cancel');
    const jid = (await boss.send(queue, {}))!;
    await retryDueAfter(jid, 1);
    await boss.cancel(queue, jid);
    expect((await joblog.reap()).recorded).toBe(1);
    const row = await joblog.get(jid);
    expect(row).toMatchObject({ state: 'dead', userId: 'u-busy-cancel', group: 'financial', jobType: 'financial_data_import' });
    expect(row!.error!.message).toContain('section busy');
    await section.release();
  });

  test('busy on 23 attempts: errors keeps 20 like any history, the first and the latest 19', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('busymany');
    await boss.createQueue(queue, { retryLimit: 22, retryDelay: 0 });
    await joblog.work(queue, { pollingIntervalSeconds: 0.5, type: 'financial_data_import', group: 'financial', userId: () => 'u-busy-many', onBusy: 'throw' }, async () => {});
    const section = await holdSection(joblog, 'u-busy-many');
    const jid = (await boss.send(queue, {}))!;
    const row = await waitForRow(joblog, jid, ['dead'], 40_000);
    expect(row.attempt).toBe(23);
    expect(warnings).toEqual([]);
    expect(row.errors.map((e) => e.attempt)).toEqual([1, ...Array.from({ length: 19 }, (_, i) => i + 5)]);
    expect(row.errors.every((e) => e.error.code === 'SECTION_BUSY')).toBe(true);
    expect((await bossJob(db, jid)).output.joblogBusy).toHaveLength(20);
    await section.release();
  }, 60_000);
});
