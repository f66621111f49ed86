// One true row per job when the log's own writes fail: refused claims on the last attempt, lost
// answers, batches that outlive their expiry, settles cut by a connection blip, pg-boss failing a
// batch whose handlers finished, a value the table refuses, and a worker frozen past its expiry.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { createJobLog } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, gate, queueName, tracked, waitForBossState, waitForRow, withCuttableLog } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('hardening');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Makes the log's INSERTs fail (55P03, not a connection error) for rows of `userId` while on. */
async function refuseInserts(userId: string) {
  await db.pool.query(`CREATE TABLE IF NOT EXISTS refused_users (user_id text PRIMARY KEY)`);
  await db.pool.query(`CREATE OR REPLACE FUNCTION refuse_log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM refused_users WHERE user_id = NEW.user_id) THEN
        RAISE EXCEPTION 'log writes refused for this test' USING ERRCODE = '55P03';
      END IF;
      RETURN NEW;
    END $$`);
  await db.pool.query(`DROP TRIGGER IF EXISTS refuse_log_insert ON job_logs`);
  await db.pool.query(`CREATE TRIGGER refuse_log_insert BEFORE INSERT ON job_logs FOR EACH ROW EXECUTE FUNCTION refuse_log_insert()`);
  await db.pool.query(`INSERT INTO refused_users VALUES ($1) ON CONFLICT DO NOTHING`, [userId]);
  return { stop: () => db.pool.query(`DELETE FROM refused_users WHERE user_id = $1`, [userId]) };
}

describe('one true row per job when the log fails', () => {
  test('a job whose claim is refused on every attempt still ends in one row: reap() writes it from pg-boss\'s side', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('refused');
    await boss.createQueue(queue, { retryLimit: 1 });
    const refusal = await refuseInserts('u-refused');
    let ran = 0;
    await joblog.work<{ userId: string }>(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: (j) => j.data.userId }, async () => {
      ran++;
    });
    const jid = (await boss.send(queue, { userId: 'u-refused' }))!;
    await waitForBossState(db, jid, ['failed'], 20_000);
    expect(await joblog.get(jid)).toBeNull(); // what the fault run found: pg-boss failed it, no row
    expect(warnings.filter((w) => w.jid === jid).map((w) => w.message)).toEqual([
      `log write failed (claim) for job ${jid} attempt 1`,
      `log write failed (claim) for job ${jid} attempt 2`,
    ]);
    await refusal.stop();

    const result = await joblog.reap();
    expect(result).toMatchObject({ recorded: 1, completed: 0 });
    expect(await joblog.get(jid)).toMatchObject({
      state: 'dead', queue, jobType: 'financial_data_import', userId: 'u-refused', group: 'financial', attempt: 2, maxAttempts: 2,
      error: { code: 'NO_ROW' },
    });
    expect((await joblog.get(jid))!.error!.message).toMatch(/^pg-boss failed the job before its row could be written \(.*log writes refused for this test/s);
    expect(ran).toBe(0);
    expect(await joblog.reap()).toMatchObject({ recorded: 0 }); // once
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM job_logs WHERE jid = $1`, [jid]);
    expect(rows[0].n).toBe(1);
  });

  test('a user id the table refuses by the time reap() writes the row (the user was deleted) does not stop the pass: the row is written without it', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('refused-gone');
    await boss.createQueue(queue, { retryLimit: 0 });
    const refusal = await refuseInserts('u-gone');
    await joblog.work<{ userId: string }>(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: (j) => j.data.userId }, async () => {});
    const jid = (await boss.send(queue, { userId: 'u-gone' }))!;
    await waitForBossState(db, jid, ['failed'], 20_000);
    await refusal.stop();
    // What a foreign key does once the user is deleted: the stored id is refused.
    await db.pool.query(`ALTER TABLE job_logs ADD CONSTRAINT no_gone_users CHECK (user_id IS DISTINCT FROM 'u-gone') NOT VALID`);
    try {
      expect(await joblog.reap()).toMatchObject({ recorded: 1 });
      expect(await joblog.get(jid)).toMatchObject({ state: 'failed', userId: null, group: 'financial', error: { code: 'NO_ROW' } });
    } finally {
      await db.pool.query(`ALTER TABLE job_logs DROP CONSTRAINT no_gone_users`);
    }
  });

  test('a claim that finds the row its own attempt wrote (the answer was lost) runs the job instead of calling it stale', async () => {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('own-row');
    await boss.createQueue(queue, { retryLimit: 1 });
    const jid = randomUUID();
    // What an earlier try of this attempt's claim left: its insert committed, its answer never came.
    await db.pool.query(`INSERT INTO job_logs (jid, queue, job_type, user_id, "group", attempt, max_attempts, started_at, created_at, updated_at)
      VALUES ($1, $2, 'financial_data_import', 'u-own', 'financial', 1, 2, now(), now(), now())`, [jid, queue]);
    const attempts: number[] = [];
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-own' }, async (_job, ctx) => {
      attempts.push(ctx.attempt);
    });
    await boss.send(queue, {}, { id: jid });
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row.attempt).toBe(1);
    expect(attempts).toEqual([1]);
    expect(warnings.filter((w) => w.code === 'STALE_ATTEMPT')).toEqual([]);
  });

  /**
   * A batch of two whose blocking handler outlives the batch's expiry: the batch's first handler
   * (`blocker: 'first'`) or its second. pg-boss hands a batch over in no set order, so the jobs are
   * told apart by when their handlers ran.
   */
  async function longBatch(blocker: 'first' | 'second') {
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('mates');
    await boss.createQueue(queue, { retryLimit: 1, expireInSeconds: 1 });
    const blockerStarted = gate();
    const releaseBlocker = gate();
    const calls: { jid: string; attempt: number }[] = [];
    let blockerJid = '';
    await joblog.work(queue, {
      ...FAST, batchSize: 2, localConcurrency: 2, type: 'financial_data_import', group: 'financial', userId: (j: any) => `u-mate-${j.data.n}`,
    }, async (job, ctx) => {
      calls.push({ jid: job.id, attempt: ctx.attempt });
      const firstAttempts = calls.filter((c) => c.attempt === 1).length;
      if (ctx.attempt === 1 && firstAttempts === (blocker === 'first' ? 1 : 2)) {
        blockerJid = job.id;
        blockerStarted.open();
        await releaseBlocker.promise;
      }
    });
    const jids = [randomUUID(), randomUUID()];
    await boss.insert(queue, jids.map((id, n) => ({ id, data: { n } })));
    await blockerStarted.promise;
    await new Promise((r) => setTimeout(r, 1500));
    await boss.supervise(queue); // both jobs of the batch expire; their retries run on the other loop
    const mate = jids.find((j) => j !== blockerJid)!;
    const runsOf = (jid: string) => calls.filter((c) => c.jid === jid).map((c) => c.attempt);
    return { joblog, warnings, runsOf, blockerJid, mate, releaseBlocker };
  }

  test('batch-mates never start once their batch has lost their rows to a newer attempt', async () => {
    const { joblog, warnings, runsOf, blockerJid, mate, releaseBlocker } = await longBatch('first');
    await waitForRow(joblog, mate, ['finished']);
    expect((await joblog.get(mate))!.attempt).toBe(2);
    releaseBlocker.open();
    await waitForRow(joblog, blockerJid, ['finished']);
    await new Promise((r) => setTimeout(r, 500));
    expect(runsOf(mate)).toEqual([2]); // attempt 1 never started after its batch lost it
    expect(warnings.some((w) => w.code === 'STALE_ATTEMPT' && w.jid === mate && /handler was not started/.test(w.message))).toBe(true);
  });

  test('a mate that finished before its batch ran long is settled while the batch runs: its retry finds it finished and does not run it again', async () => {
    const { joblog, runsOf, blockerJid, mate, releaseBlocker } = await longBatch('second');
    expect(await joblog.get(mate)).toMatchObject({ state: 'finished', attempt: 1 }); // settled at ~1 s, before the expiry
    await new Promise((r) => setTimeout(r, 1000)); // its retry has been fetched and found the row finished
    releaseBlocker.open();
    await waitForRow(joblog, blockerJid, ['finished']);
    expect(runsOf(mate)).toEqual([1]);
  });

  test('a settle cut by a connection blip is tried again: the row ends finished and pg-boss completes the job once', async () => {
    await withCuttableLog(db, async ({ proxy, boss, joblog, warnings }) => {
      const queue = queueName('blip');
      await boss.createQueue(queue, { retryLimit: 2 });
      let runs = 0;
      await joblog.work(queue, { ...FAST, type: 'reconciliation', group: 'financial', userId: () => 'u-blip' }, async () => {
        runs++;
        proxy.cutFor(1200); // a restart's worth of refused connections, just before the settle
      });
      const jid = (await boss.send(queue, {}))!;
      const job = await waitForBossState(db, jid, ['completed'], 20_000);
      expect(job.retry_count).toBe(0);
      expect(runs).toBe(1);
      expect(await joblog.get(jid)).toMatchObject({ state: 'finished', attempt: 1 });
      expect(warnings.filter((w) => w.jid === jid)).toEqual([]);
    });
  });

  test('pg-boss failing a job whose handler finished (its completion was cut): reap() makes pg-boss say completed', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('cut-completion');
    await boss.createQueue(queue, { retryLimit: 0 });
    await joblog.work(queue, { ...FAST, type: 'reconciliation', group: 'financial', userId: () => 'u-cut-completion' }, async () => {});
    const jid = (await boss.send(queue, {}))!;
    await waitForBossState(db, jid, ['completed']);
    // What pg-boss 12.38's fallback leaves when its completion statement fails: the batch failed.
    await db.pool.query(`UPDATE pgboss.job SET state = 'failed', output = '{"message":"Connection terminated unexpectedly"}' WHERE id = $1`, [jid]);
    expect(await joblog.reap()).toMatchObject({ completed: 1, recorded: 0 });
    const job = await waitForBossState(db, jid, ['completed']);
    expect(job.output).toMatchObject({ pgBossOutput: { message: 'Connection terminated unexpectedly' } });
    expect(await joblog.get(jid)).toMatchObject({ state: 'finished' });
  });

  test('a job whose values the table refuses ends failed in its own row; its batch-mates run once and finish', async () => {
    const { boss, joblog } = await tracked(db);
    // The app's own rule on the table (a foreign key or a check): this user id cannot be stored.
    await db.pool.query(`ALTER TABLE job_logs ADD CONSTRAINT no_banned_users CHECK (user_id IS DISTINCT FROM 'u-banned')`);
    try {
      const queue = queueName('refused-value');
      await boss.createQueue(queue, { retryLimit: 2 });
      const calls: string[] = [];
      await joblog.work<{ userId: string }>(queue, { ...FAST, batchSize: 3, type: 'financial_data_import', group: 'financial', userId: (j) => j.data.userId }, async (job) => {
        calls.push(job.data.userId);
      });
      const ids = [randomUUID(), randomUUID(), randomUUID()];
      await boss.insert(queue, [
        { id: ids[0], data: { userId: 'u-ok-1' } }, { id: ids[1], data: { userId: 'u-banned' } }, { id: ids[2], data: { userId: 'u-ok-2' } },
      ]);
      const odd = await waitForRow(joblog, ids[1]!, ['failed']);
      expect(odd).toMatchObject({ userId: null, group: null, attempt: 1, error: { name: 'InvalidPayloadError', code: 'INVALID_PAYLOAD' } });
      expect(odd.error!.message).toContain('u-banned');
      for (const id of [ids[0]!, ids[2]!]) await waitForRow(joblog, id, ['finished']);
      expect(calls.sort()).toEqual(['u-ok-1', 'u-ok-2']);
      expect((await waitForBossState(db, ids[1]!, ['failed'])).retry_count).toBe(0); // not retried: it would fail the same way
    } finally {
      await db.pool.query(`ALTER TABLE job_logs DROP CONSTRAINT no_banned_users`);
    }
  });
});

describe('fenced side effects', () => {
  test('a worker frozen past its expiry cannot commit a fenced write beside the attempt that replaced it', async () => {
    await db.pool.query(`CREATE TABLE IF NOT EXISTS fenced_witness (jid uuid, attempt int, user_id text, committed_at timestamptz)`);
    const supervisor = await db.boss();
    const joblog = createJobLog({ prisma: db.prisma, boss: supervisor, reaper: false });
    const queue = queueName('freeze');
    await supervisor.createQueue(queue, { retryLimit: 1, expireInSeconds: 2 });

    const fixture = fileURLToPath(new URL('./fixtures/fenced-worker.ts', import.meta.url));
    const child = spawn(process.execPath, [fixture, db.url, queue], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const lines: string[] = [];
    child.stdout!.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
    await waitFor('frozen worker ready', async () => lines.includes('ready'), 20_000);

    const jid = (await supervisor.send(queue, { userId: 'u-freeze', pauseMs: 1000 }))!;
    await waitFor('attempt 1 checked its section', async () => lines.includes(`checked ${jid} 1`), 20_000);
    child.kill('SIGSTOP'); // frozen after its check, before its write
    try {
      await new Promise((r) => setTimeout(r, 2500));
      await supervisor.supervise(queue); // attempt 1 expired; attempt 2 runs here and writes through the fence
      await joblog.work<{ userId: string }>(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: (j) => j.data.userId }, async (job, ctx) => {
        await ctx.fenced((tx) => tx.$executeRawUnsafe(
          `INSERT INTO fenced_witness (jid, attempt, user_id, committed_at) VALUES ($1::uuid, $2, $3, clock_timestamp())`, job.id, ctx.attempt, job.data.userId));
      });
      await waitForRow(joblog, jid, ['finished']);
    } finally {
      child.kill('SIGCONT');
    }
    await waitFor('the frozen attempt tried its write', async () => lines.some((l) => l.startsWith(`fenced ${jid} 1`)), 20_000);
    expect(lines).toContain(`fenced ${jid} 1 refused STALE_ATTEMPT`);
    // The witness, read on its own connection: only the attempt that held the section wrote.
    const { rows } = await db.pool.query(`SELECT attempt FROM fenced_witness WHERE jid = $1 ORDER BY committed_at`, [jid]);
    expect(rows.map((r) => r.attempt)).toEqual([2]);
    expect(await joblog.get(jid)).toMatchObject({ state: 'finished', attempt: 2 });
  }, 60_000);

  test('fenced() commits the app\'s writes with the row locked, and rolls them back when fn throws', async () => {
    const { boss, joblog } = await tracked(db);
    await db.pool.query(`CREATE TABLE IF NOT EXISTS fenced_effects (jid uuid, note text)`);
    const queue = queueName('fenced');
    await boss.createQueue(queue, { retryLimit: 0 });
    const seen: string[] = [];
    await joblog.work<{ fail: boolean }>(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-fenced' }, async (job, ctx) => {
      await ctx.fenced(async (tx) => {
        await tx.$executeRawUnsafe(`INSERT INTO fenced_effects VALUES ($1::uuid, 'written')`, job.id);
        // Another connection cannot take the row while the fence holds it.
        const { rows } = await db.pool.query(`SELECT id FROM job_logs WHERE jid = $1 FOR UPDATE NOWAIT`, [job.id]).catch((e) => ({ rows: [e.code] }));
        seen.push(String(rows[0]));
        if (job.data.fail) throw new Error('transfer refused');
      });
    });
    const ok = (await boss.send(queue, { fail: false }))!;
    const bad = (await boss.send(queue, { fail: true }))!;
    await waitForRow(joblog, ok, ['finished']);
    await waitForRow(joblog, bad, ['failed']);
    const { rows } = await db.pool.query(`SELECT jid::text FROM fenced_effects`);
    expect(rows.map((r) => r.jid)).toEqual([ok]);
    expect(seen).toEqual(['55P03', '55P03']);
  });
});
