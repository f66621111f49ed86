// writesThrough: 'pg-boss' — the log's writes on pg-boss's own pool behave as on Prisma's, and
// logs of both kinds share one section.
import { describe, expect, test } from 'vitest';
import { createJobLog, InvalidOptionsError } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, queueName, waitForRow } from './helpers/joblog.ts';
import { createWitness, overlaps, witnessCount, witnessed } from './helpers/witness.ts';

const db = setupTestDb('writes_through');

describe("writesThrough: 'pg-boss'", () => {
  test('outcomes are logged as through Prisma, and two logs of either kind never let two jobs into one section', async () => {
    await createWitness(db.pool);
    const boss = await db.boss();
    const viaBoss = createJobLog({ prisma: db.prisma, boss, writesThrough: 'pg-boss', reaper: false });
    const viaPrisma = createJobLog({ prisma: db.prisma, boss, reaper: false });
    const queues = [queueName('via-boss'), queueName('via-prisma')];
    for (const q of queues) await boss.createQueue(q, { retryLimit: 1 });
    for (const [i, joblog] of [viaBoss, viaPrisma].entries()) {
      await joblog.work<{ userId: string; fail?: boolean }>(queues[i]!, {
        ...FAST, batchSize: 5, localConcurrency: 2, type: 'financial_data_import', group: 'financial', onBusy: 'skip', userId: (j) => j.data.userId,
      }, (job) => witnessed(db.pool, { jid: job.id, userId: job.data.userId, group: 'financial' }, async () => {
        await new Promise((r) => setTimeout(r, 20));
        if (job.data.fail) throw new Error('refused by the bank');
      }));
    }
    const jids: string[] = [];
    for (let n = 0; n < 40; n++) jids.push((await boss.send(queues[n % 2]!, { userId: `u-wt-${n % 4}` }))!);
    const failing = (await boss.send(queues[0]!, { userId: 'u-wt-fail', fail: true }))!;
    for (const jid of jids) await waitForRow(viaBoss, jid, ['finished', 'skipped'], 30_000);
    const dead = await waitForRow(viaBoss, failing, ['dead'], 30_000);
    expect(dead).toMatchObject({ attempt: 2, error: { message: 'refused by the bank' } });
    expect(dead.errors).toHaveLength(2);
    expect(await overlaps(db.pool)).toBe(0);
    const { rows } = await db.pool.query(`SELECT state::text, count(*)::int AS n FROM job_logs WHERE jid = ANY($1::uuid[]) GROUP BY 1`, [jids]);
    const total = rows.reduce((sum, r) => sum + r.n, 0);
    expect(total).toBe(40);
    expect(await witnessCount(db.pool)).toBeGreaterThanOrEqual(rows.find((r) => r.state === 'finished')?.n ?? 0);
  }, 60_000);

  test("'pg-boss' without a boss is refused by name", () => {
    expect(() => createJobLog({ prisma: db.prisma, writesThrough: 'pg-boss' })).toThrow(InvalidOptionsError);
    expect(() => createJobLog({ prisma: db.prisma, writesThrough: 'pg-boss' })).toThrow(/writesThrough: 'pg-boss' writes through the boss's own pool: pass boss too/);
  });
});
