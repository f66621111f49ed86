// Proof under faults: real worker processes killed with SIGKILL, connections cut while a row is
// being settled, an attempt that outlives its timeout, and bad input on every public entry.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { createJobLog, InvalidOptionsError } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, gate, queueName, tracked, waitForBossState, waitForRow, withCuttableLog } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('faults');
const fixture = fileURLToPath(new URL('./fixtures/crash-worker.ts', import.meta.url));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** A worker process (test/fixtures/crash-worker.ts) on `queues`; resolves once it is polling. */
async function workerProcess(queues: string[]) {
  const child = spawn(process.execPath, [fixture, db.url, ...queues], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines: string[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  const seen = (line: string) => waitFor(`worker printed "${line}"`, async () => lines.includes(line), 20_000);
  await seen('ready');
  return { child, lines, seen };
}

describe('faults', () => {
  test('SIGKILL mid-job: the section opens within the heartbeat window plus one reaper interval; a retry re-enters and finishes', async () => {
    // What a deployment would run: a supervising pg-boss, heartbeats, and the reaper.
    const supervisor = await db.boss({ supervise: true, superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 });
    const joblog = createJobLog({ prisma: db.prisma, boss: supervisor, reaper: { intervalSeconds: 1 } });
    const retried = queueName('crash-retry');
    const last = queueName('crash-last');
    await supervisor.createQueue(retried, { retryLimit: 1, heartbeatSeconds: 10 });
    await supervisor.createQueue(last, { retryLimit: 0, heartbeatSeconds: 10 });

    const first = await workerProcess([retried, last]);
    const retryJid = (await supervisor.send(retried, { userId: 'u-crash-retry', hangOnAttempt: 1 }))!;
    const lastJid = (await supervisor.send(last, { userId: 'u-crash-last', hangOnAttempt: 1 }))!;
    await first.seen(`started ${retryJid} 1`);
    await first.seen(`started ${lastJid} 1`);
    expect((await joblog.holder('u-crash-last', 'financial'))?.jid).toBe(lastJid);

    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    const second = await workerProcess([retried, last]);

    // The last attempt: pg-boss fails it by heartbeat, the reaper sets the row dead, the section opens.
    await waitFor('section of the dead worker open', async () => (await joblog.holder('u-crash-last', 'financial')) === null, 30_000);
    const released = (Date.now() - killedAt) / 1000;
    console.log(`release after SIGKILL: ${released.toFixed(1)} s (heartbeatSeconds 10, supervise 1 s, reaper 1 s)`);
    expect(released).toBeLessThan(10 + 1 + 1 + 3);
    expect(await joblog.get(lastJid)).toMatchObject({
      state: 'dead', attempt: 1, error: { code: 'JOB_FAILED', message: 'worker lost: pg-boss failed the job (job heartbeat timeout)' },
    });

    // The job with a retry left: the second worker re-enters its row as attempt 2 and finishes it.
    await second.seen(`finished ${retryJid} 2`);
    const row = await waitForRow(joblog, retryJid, ['finished']);
    console.log(`retry of the killed attempt finished ${((Date.now() - killedAt) / 1000).toFixed(1)} s after SIGKILL`);
    expect(row).toMatchObject({ attempt: 2, maxAttempts: 2 });
    expect(row.errors.map((e) => [e.attempt, e.error.message])).toEqual([
      [1, 'attempt 1 ended without settling its row: job heartbeat timeout'],
    ]);
    expect(second.lines).toContain(`started ${retryJid} 2`);
    expect(await joblog.holder('u-crash-retry', 'financial')).toBeNull();
    joblog.stop();
  }, 60_000);

  test('SIGKILL of jobs without a section in their first second (no row yet): the retry writes the row with the lost attempt; the last attempt\'s row comes from pg-boss\'s side', async () => {
    const supervisor = await db.boss({ supervise: true, superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 });
    const joblog = createJobLog({ prisma: db.prisma, boss: supervisor, reaper: { intervalSeconds: 1 } });
    const retried = queueName('ns-crash-retry');
    const last = queueName('ns-crash-last');
    await supervisor.createQueue(retried, { retryLimit: 1, heartbeatSeconds: 10 });
    await supervisor.createQueue(last, { retryLimit: 0, heartbeatSeconds: 10 });
    const rowOf = async (jid: string) => (await db.pool.query(`SELECT state::text FROM job_logs WHERE jid = $1::uuid`, [jid])).rows[0] ?? null;

    // Queued before the worker starts: its first fetch of each queue starts both at once.
    const retryJid = (await supervisor.send(retried, { userId: 'u-ns-retry', hangOnAttempt: 1, noSection: true }))!;
    const lastJid = (await supervisor.send(last, { userId: 'u-ns-last', hangOnAttempt: 1, noSection: true }))!;
    const first = await workerProcess([retried, last]);
    await first.seen(`started ${retryJid} 1`);
    await first.seen(`started ${lastJid} 1`);
    first.child.kill('SIGKILL'); // well inside the first second of the second handler: neither has a row
    expect([await rowOf(retryJid), await rowOf(lastJid)]).toEqual([null, null]);
    // The reaper's pass over pg-boss's ended jobs covers the queues this log works: this one runs none of their jobs.
    await joblog.work(last, { ...FAST, type: 'financial_data_import' }, async () => { throw new Error('not to be run here'); });
    const second = await workerProcess([retried]);

    await second.seen(`finished ${retryJid} 2`);
    const row = await waitForRow(joblog, retryJid, ['finished']);
    expect(row).toMatchObject({ attempt: 2, maxAttempts: 2, userId: 'u-ns-retry', group: null });
    expect(row.errors.map((e) => [e.attempt, e.error.message])).toEqual([
      [1, 'attempt 1 ended without settling its row: job heartbeat timeout'],
    ]);

    const dead = await waitForRow(joblog, lastJid, ['failed'], 30_000);
    expect(dead).toMatchObject({ attempt: 1, userId: null, group: null, error: { code: 'NO_ROW' } });
    expect(dead.error!.message).toContain('heartbeat');
    joblog.stop();
  }, 60_000);

  test('the log\'s connection cut before the write of jobs without a section: their rows go through pg-boss\'s pool instead', async () => {
    await withCuttableLog(db, async ({ proxy, boss, joblog, warnings }) => {
      const queue = queueName('cut-nosection');
      await boss.createQueue(queue, { retryLimit: 1, retryDelay: 600 }); // the retry waits: its row stays as attempt 1 left it
      await joblog.work<{ fail: boolean }>(queue, { ...FAST, type: 'reconciliation' }, async (job) => {
        proxy.cut(); // no row before the handler; the library's connection dies before the one write
        if (job.data.fail) throw new Error('bank rejected the file');
      });
      const done = (await boss.send(queue, { fail: false }))!;
      expect((await waitForBossState(db, done, ['completed'], 30_000)).state).toBe('completed');
      proxy.restore();
      const failed = (await boss.send(queue, { fail: true }))!;
      await waitForBossState(db, failed, ['retry'], 30_000);
      // Written through pg-boss's pool while the log's own connection was cut: no reaper needed.
      const rows = await db.pool.query(`SELECT jid::text, state::text, attempt, error->>'message' AS message FROM job_logs WHERE jid = ANY ($1::uuid[]) ORDER BY state`, [[done, failed]]);
      expect(rows.rows).toEqual([
        { jid: done, state: 'finished', attempt: 1, message: null },
        { jid: failed, state: 'started', attempt: 1, message: 'bank rejected the file' },
      ]);
      expect(warnings.filter((w) => w.code === 'LOG_WRITE_FAILED')).toEqual([]);
    });
  }, 60_000);

  test('connection cut while settling: the settle is tried again, then the row stays started and reap() makes it match pg-boss', async () => {
    await withCuttableLog(db, async ({ proxy, boss, joblog, warnings }) => {
      const queue = queueName('cut');
      await boss.createQueue(queue, { retryLimit: 0 });
      await joblog.work<{ userId: string; fail: boolean }>(queue, {
        ...FAST, type: 'reconciliation', group: 'financial', userId: (job) => job.data.userId,
      }, async (job) => {
        proxy.cut(); // the library's connection dies just before it writes the outcome
        if (job.data.fail) throw new Error('bank rejected the file');
      });
      const done = (await boss.send(queue, { userId: 'u-cut-ok', fail: false }))!;
      await waitForBossState(db, done, ['completed']);
      proxy.restore();
      const failed = (await boss.send(queue, { userId: 'u-cut-fail', fail: true }))!;
      await waitForBossState(db, failed, ['failed']);
      expect(warnings.filter((w) => w.code === 'LOG_WRITE_FAILED').map((w) => w.jid)).toEqual(expect.arrayContaining([done, failed]));
      // Fit for a JSON logger: one short line naming the operation and the jid; Prisma's text stays in `cause`.
      for (const w of warnings.filter((w) => w.code === 'LOG_WRITE_FAILED')) {
        expect(w.message).not.toContain('\n');
        expect(w.message).toMatch(/^log write failed \(settle\) for job [0-9a-f-]+ attempt \d+$/);
        expect(w.message).toContain(w.jid!);
        expect(w.cause).toBeInstanceOf(Error);
        expect(w.message).not.toContain((w.cause as Error).message.split('\n')[0]!);
      }

      const reader = createJobLog({ prisma: db.prisma, reaper: false });
      expect(await reader.get(done)).toMatchObject({ state: 'started' });
      expect(await reader.get(failed)).toMatchObject({ state: 'started' });
      proxy.restore();
      await reader.reap();
      expect(await reader.get(done)).toMatchObject({ state: 'finished' });
      expect(await reader.get(failed)).toMatchObject({
        state: 'dead', error: { code: 'JOB_FAILED', message: 'worker lost: pg-boss failed the job (bank rejected the file)' },
      });
      const { rows } = await db.pool.query(
        `SELECT count(*)::int AS n FROM job_logs l JOIN pgboss.job j ON j.name = l.queue AND j.id = l.jid
          WHERE l.state = 'started' AND j.state IN ('completed', 'failed', 'cancelled')`);
      expect(rows[0].n).toBe(0);
    });
  }, 60_000); // each settle is tried again for ~8 s before it is given up

  test('a timed-out attempt that finishes after the newer attempt settled cannot touch its row', async () => {
    // test/worker.test.ts covers the stale attempt finishing first; this is the other order.
    const { boss, joblog, warnings } = await tracked(db);
    const queue = queueName('late');
    await boss.createQueue(queue, { retryLimit: 1, expireInSeconds: 1 });
    const release1 = gate();
    const started1 = gate();
    const owns: Record<number, boolean> = {};
    await joblog.work(queue, { ...FAST, localConcurrency: 2, type: 'financial_data_import', group: 'financial', userId: () => 'u-late' }, async (_job, ctx) => {
      if (ctx.attempt === 1) {
        started1.open();
        await release1.promise;
      }
      owns[ctx.attempt] = await ctx.ownsSection();
      return `attempt ${ctx.attempt}`;
    });
    const jid = (await boss.send(queue, {}))!;
    await started1.promise;
    await new Promise((r) => setTimeout(r, 1500));
    await boss.supervise(queue); // expires attempt 1 while it runs; attempt 2 starts and finishes
    const row2 = await waitForRow(joblog, jid, ['finished']);
    expect(row2.attempt).toBe(2);
    expect(await joblog.reap()).toMatchObject({ dead: 0 });

    release1.open(); // the stale attempt now succeeds too: its writes must be refused
    await waitFor('stale warning', async () => warnings.find((w) => w.code === 'STALE_ATTEMPT' && w.attempt === 1));
    const row = (await joblog.get(jid))!;
    expect(row).toEqual(row2);
    expect(owns).toEqual({ 1: false, 2: true });
    const job = await waitForBossState(db, jid, ['completed']);
    expect(job.output).toEqual({ value: 'attempt 2' });
  });

  test('bad input on every public entry: a typed error naming the field, and nothing written', async () => {
    const { boss, joblog } = await tracked(db);
    const count = async () => (await db.pool.query('SELECT count(*)::int AS n FROM job_logs')).rows[0].n as number;
    const before = await count();
    const queue = queueName('bad');
    await boss.createQueue(queue);
    const ok = async () => {};
    const cases: [string, () => unknown, RegExp][] = [
      ['createJobLog prisma', () => createJobLog({ prisma: {} as any, boss }), /prisma: expected the app's PrismaClient/],
      ['createJobLog boss', () => createJobLog({ prisma: db.prisma, boss: 'boss' as any }), /boss: expected a PgBoss instance/],
      ['createJobLog reaper', () => createJobLog({ prisma: db.prisma, boss, reaper: { intervalSeconds: 0 } }), /reaper\.intervalSeconds/],
      ['work queue', () => joblog.work('', { type: 'reconciliation' }, ok), /must be a non-empty string/],
      ['work type', () => joblog.work(queue, { type: 'no_such_type' }, ok), /type: unknown job type 'no_such_type'; expected one of financial_data_import, reconciliation/],
      ['work option', () => joblog.work(queue, { type: 'reconciliation', batchsize: 5 } as any, ok), /unknown option\(s\) batchsize/],
      ['work onBusy', () => joblog.work(queue, { type: 'reconciliation', onBusy: { wait: { retryEverySeconds: 5 } } } as any, ok), /onBusy\.wait\.giveUpAfterSeconds/],
      ['work handler', () => joblog.work(queue, { type: 'reconciliation' }, 'handler' as any), /handler: expected a function/],
      ['section type', () => joblog.section({ type: 'nope', userId: 'u', group: 'g' }, ok), /type: unknown job type 'nope'/],
      ['section user', () => joblog.section({ type: 'reconciliation', userId: { id: 1 } as any, group: 'g' }, ok), /userId: expected a string or integer user id/],
      ['section fn', () => joblog.section({ type: 'reconciliation', userId: 'u', group: 'g' }, undefined as any), /fn: expected a function/],
      ['section lease', () => joblog.section({ type: 'reconciliation', userId: 'u', group: 'g', leaseSeconds: 0 }, ok), /leaseSeconds: must be at least 1 second/],
      ['inProgress', () => joblog.inProgress({ userId: null as any }), /userId/],
      ['holder', () => joblog.holder('u', '' as any), /group/],
      ['get', () => joblog.get('not-a-uuid'), /expected a UUID/],
    ];
    for (const [what, call, message] of cases) {
      const error = await (async () => call())().then(() => null, (e: unknown) => e);
      expect(error, what).toBeInstanceOf(InvalidOptionsError);
      expect((error as InvalidOptionsError).code, what).toBe('INVALID_OPTIONS');
      expect((error as Error).message, what).toMatch(message);
    }
    expect(await count()).toBe(before);
  });
});
