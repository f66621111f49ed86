// The events an app pages on: `settled` for every terminal row, whoever wrote it, and `busy` when
// a job meets a held section; listeners run after the write and can never break a job.
import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import type { BusyEvent, JobLogRow } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, holdSection, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('events');

describe('events', () => {
  test('settled: one event per terminal row, finished, failed, dead and skipped, each the row as written', async () => {
    const { boss, joblog } = await tracked(db);
    const settled: JobLogRow[] = [];
    const busy: BusyEvent[] = [];
    joblog.on('settled', (row) => settled.push(row));
    joblog.on('busy', (event) => busy.push(event));
    const queue = queueName('events');
    await boss.createQueue(queue, { retryLimit: 1 });
    const held = await holdSection(joblog, 'u-ev-held');
    await joblog.work<{ userId: string; outcome: string }>(queue, {
      ...FAST, type: 'financial_data_import', group: 'financial', onBusy: 'skip', userId: (j) => j.data.userId,
      schema: z.object({ userId: z.string(), outcome: z.enum(['ok', 'die']) }),
    }, async (job) => {
      if (job.data.outcome === 'die') throw new Error('bank said no');
    });
    const ok = (await boss.send(queue, { userId: 'u-ev-1', outcome: 'ok' }))!;
    const dead = (await boss.send(queue, { userId: 'u-ev-2', outcome: 'die' }))!;
    const invalid = (await boss.send(queue, { userId: 'u-ev-3', outcome: 'maybe' }))!;
    const skipped = (await boss.send(queue, { userId: 'u-ev-held', outcome: 'ok' }))!;
    await waitFor('four settled events', async () => settled.length >= 4 || undefined, 20_000);
    await held.release(); // the section() row settles too
    await waitFor('five settled events', async () => settled.length >= 5 || undefined);

    const byJid = new Map(settled.map((row) => [row.jid, row]));
    expect(byJid.get(ok)).toMatchObject({ state: 'finished', userId: 'u-ev-1' });
    expect(byJid.get(dead)).toMatchObject({ state: 'dead', attempt: 2, error: { message: 'bank said no' } });
    expect(byJid.get(invalid)).toMatchObject({ state: 'failed', error: { code: 'INVALID_PAYLOAD' } });
    expect(byJid.get(skipped)).toMatchObject({ state: 'skipped', holderJid: held.holderJid() });
    expect(byJid.get(held.holderJid())).toMatchObject({ state: 'finished', jobType: 'reconciliation' });
    for (const row of settled) expect(await joblog.get(row.jid)).toEqual(row); // emitted after the write: the row as stored
    expect(settled.map((r) => r.jid).sort()).toEqual([...new Set(settled.map((r) => r.jid))].sort()); // once each
    expect(busy).toEqual([{
      jid: skipped, queue, type: 'financial_data_import', userId: 'u-ev-held', group: 'financial', attempt: 1,
      holderJid: held.holderJid(), policy: 'skip',
    }]);
  });

  test('a listener that throws, rejects or never returns breaks no job; the others still hear', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const heard: string[] = [];
    joblog.on('settled', () => { throw new Error('pager down'); });
    joblog.on('settled', async () => { throw new Error('pager timed out'); });
    joblog.on('settled', () => new Promise(() => {}));
    joblog.on('settled', (row) => { heard.push(row.jid); });
    const queue = queueName('bad-listener');
    await boss.createQueue(queue);
    await joblog.work(queue, { ...FAST, type: 'report_export' }, async () => ({ done: true }));
    const jid = (await boss.send(queue, {}))!;
    expect((await waitForBossState(db, jid, ['completed'])).output).toEqual({ done: true });
    await waitFor('the fourth listener heard', async () => heard.includes(jid) || undefined);
    await waitFor('both failures reported', async () => warnings.filter((w) => w.code === 'LISTENER_FAILED').length >= 2 || undefined);
    expect(warnings.filter((w) => w.code === 'LISTENER_FAILED').map((w) => w.message).sort()).toEqual([
      "a 'settled' listener threw: Error: pager down",
      "a 'settled' listener threw: Error: pager timed out",
    ]);
    expect(await joblog.get(jid)).toMatchObject({ state: 'finished' });
  });

  test('the reaper\'s transitions are settled events too: a dead row the reaper wrote pages like one a worker wrote', async () => {
    const { boss, joblog } = await tracked(db);
    const settled: JobLogRow[] = [];
    joblog.on('settled', (row) => settled.push(row));
    const queue = queueName('reaped');
    await boss.createQueue(queue, { retryLimit: 0 });
    let release!: () => void;
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-ev-reaped' }, () => new Promise<void>((r) => (release = r)));
    const jid = (await boss.send(queue, {}))!;
    await waitForRow(joblog, jid, ['started']);
    await db.pool.query(`UPDATE pgboss.job SET state = 'cancelled', completed_on = now() WHERE id = $1`, [jid]);
    expect(await joblog.reap()).toMatchObject({ dead: 1 });
    await waitFor('settled event of the reaped row', async () => settled.find((r) => r.jid === jid));
    expect(settled.find((r) => r.jid === jid)).toMatchObject({ state: 'dead', error: { code: 'JOB_CANCELLED' } });
    release();
  });
});
