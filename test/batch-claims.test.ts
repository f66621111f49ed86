import { randomUUID } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { LogStore, type JobIdentity } from '../src/store.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, queueName, tracked, waitForRow } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';
import { createWitness, overlaps, witnessed } from './helpers/witness.ts';

const db = setupTestDb('batch-claims');

const identity = (over: Partial<JobIdentity>): JobIdentity => ({
  jid: randomUUID(), queue: 'q', type: 'reconciliation', userId: null, group: null,
  attempt: 1, maxAttempts: 3, queuedAt: null, ...over,
});

describe('claiming and settling many jobs in one statement', () => {
  test('each job of one claim gets its own outcome: claimed, re-entered, busy (also on a batch-mate), stale, settled', async () => {
    const store = new LogStore(db.prisma);
    const retry = identity({ userId: 'u-retry', group: 'g' });
    const done = identity({ userId: 'u-done', group: 'g' });
    const newer = identity({ userId: 'u-newer', group: 'g', attempt: 2 });
    expect(await store.claimBatch([retry, done, newer])).toEqual([{ outcome: 'claimed' }, { outcome: 'claimed' }, { outcome: 'claimed' }]);
    expect(await store.settleBatch([{ jid: done.jid, attempt: 1, state: 'finished' }])).toEqual([true]);

    const first = identity({ userId: 'u-shared', group: 'g' });
    const mate = identity({ userId: 'u-shared', group: 'g' });
    const outcomes = await store.claimBatch([
      { ...retry, attempt: 2 }, // its row is still started at attempt 1: re-enter it
      first,
      mate, // same section as `first`, in the same statement: exactly one of the two wins
      { ...done, attempt: 2 }, // its row already finished
      { ...newer, attempt: 1 }, // its row belongs to a newer attempt
    ]);
    expect(outcomes[0]).toEqual({ outcome: 'reentered' });
    const pair = [outcomes[1], outcomes[2]];
    expect(pair.filter((o) => o?.outcome === 'claimed')).toHaveLength(1);
    const winner = outcomes[1]!.outcome === 'claimed' ? first : mate;
    expect(pair.find((o) => o?.outcome === 'busy')).toEqual({ outcome: 'busy', holderJid: winner.jid });
    expect(outcomes[3]).toEqual({ outcome: 'settled', state: 'finished' });
    expect(outcomes[4]).toEqual({ outcome: 'stale', ownAttempt: 2 });
  });

  test('a batch settle is fenced per row: a stale attempt is refused, its batch-mates are written', async () => {
    const store = new LogStore(db.prisma);
    const a = identity({ userId: 'u-a', group: 'g' });
    const b = identity({ userId: 'u-b', group: 'g' });
    await store.claimBatch([a, b]);
    const written = await store.settleBatch([
      { jid: a.jid, attempt: 1, state: 'finished' },
      { jid: b.jid, attempt: 7, state: 'dead', error: new Error('not this attempt') },
    ]);
    expect(written).toEqual([true, false]);
    const { rows } = await db.pool.query(`SELECT jid::text, state::text FROM job_logs WHERE jid = ANY($1::uuid[]) ORDER BY user_id`, [[a.jid, b.jid]]);
    expect(rows).toEqual([{ jid: a.jid, state: 'finished' }, { jid: b.jid, state: 'started' }]);
  });

  test('two jobs of one pg-boss batch share a section: one runs, the other is skipped naming it', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('mates');
    await boss.createQueue(queue);
    const ran: string[] = [];
    const jids = (await boss.insert(queue, [
      { data: { userId: 'u-mates' } }, { data: { userId: 'u-mates' } }, { data: { userId: 'u-other' } },
    ], { returnId: true }))!;
    await joblog.work(queue, { ...FAST, batchSize: 3, type: 'reconciliation', group: 'g', userId: (j: any) => j.data.userId, onBusy: 'skip' }, async (job) => {
      ran.push(job.id);
    });
    const rows = await Promise.all(jids.map((jid: string) => waitForRow(joblog, jid, ['finished', 'skipped'])));
    const mates = rows.filter((r) => r.userId === 'u-mates');
    expect(mates.map((r) => r.state).sort()).toEqual(['finished', 'skipped']);
    const skipped = mates.find((r) => r.state === 'skipped')!;
    expect(skipped.holderJid).toBe(mates.find((r) => r.state === 'finished')!.jid);
    expect(rows.find((r) => r.userId === 'u-other')!.state).toBe('finished');
    expect(ran.sort()).toEqual(rows.filter((r) => r.state === 'finished').map((r) => r.jid).sort());
    const { rows: fetched } = await db.pool.query('SELECT count(DISTINCT started_on)::int AS n FROM pgboss.job WHERE id = ANY($1::uuid[])', [jids]);
    expect(fetched[0].n).toBe(1);
  });

  test('concurrent workers whose claims share statements never let two jobs into one section', async () => {
    await createWitness(db.pool);
    const { boss, joblog, warnings } = await tracked(db);
    const queues = [queueName('coalesce-a'), queueName('coalesce-b')];
    const users = ['c1', 'c2', 'c3'];
    for (const queue of queues) {
      await boss.createQueue(queue);
      await boss.insert(queue, Array.from({ length: 30 }, (_, i) => ({ data: { userId: users[i % users.length] } })));
      await joblog.work(queue, {
        ...FAST, batchSize: 2, localConcurrency: 4, burstWhenReadyExceeds: 1,
        type: 'financial_data_import', group: 'financial', userId: (j: any) => j.data.userId, onBusy: 'skip',
      }, (job) => witnessed(db.pool, { jid: job.id, userId: job.data.userId, group: 'financial' }, () => new Promise((r) => setTimeout(r, 15))));
    }
    const settled = await waitFor('60 settled rows', async () => {
      const { rows } = await db.pool.query(
        `SELECT state::text, count(*)::int AS n FROM job_logs WHERE queue = ANY($1) AND state <> 'started' GROUP BY 1`, [queues]);
      const total = rows.reduce((sum, r) => sum + r.n, 0);
      return total === 60 ? Object.fromEntries(rows.map((r) => [r.state, r.n])) : undefined;
    }, 20_000);
    expect(settled.finished).toBeGreaterThan(0);
    expect((settled.finished ?? 0) + (settled.skipped ?? 0)).toBe(60);
    expect(await overlaps(db.pool)).toBe(0);
    const { rows: holders } = await db.pool.query(
      `SELECT count(*)::int AS n FROM job_logs s JOIN job_logs h ON h.jid = s.holder_jid
        WHERE s.state = 'skipped' AND s.queue = ANY($1) AND h.user_id = s.user_id`, [queues]);
    expect(holders[0].n).toBe(settled.skipped ?? 0);
    expect(warnings).toEqual([]);
  });
});
