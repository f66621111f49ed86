// Reads that cannot hurt the app: a list row reads only what a list shows, and a read given a
// statement timeout or a signal is cancelled on the server, leaving the app's client as it was.
import { randomUUID } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createJobLog, QueryTimeoutError, ReadCancelledError, type JobLog } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { lockJobLogs, waitingOnLocks, type TableLock } from './helpers/lock.ts';

const db = setupTestDb('reads');
let joblog: JobLog;
const BIG = 'x'.repeat(1_000_000);
const STACK = `Error: ${BIG}\n    at handler (/srv/app/jobs/import.ts:12:7)`;
let bigJid: string;

beforeAll(async () => {
  joblog = createJobLog({ prisma: db.prisma });
  bigJid = randomUUID();
  const error = { name: 'TypeError', code: 'E_BIG', message: `é${BIG}`, stack: STACK };
  await db.pool.query(
    `INSERT INTO job_logs (jid, queue, job_type, state, user_id, attempt, max_attempts, started_at, finished_at, duration_ms, error, errors)
     VALUES ($1, 'q', 'reconciliation', 'dead', 'u1', 3, 3, now(), now(), 1, $2::jsonb, $3::jsonb)`,
    [bigJid, JSON.stringify(error), JSON.stringify([1, 2, 3].map((attempt) => ({ attempt, at: new Date().toISOString(), error })))],
  );
  await db.pool.query(
    `INSERT INTO job_logs (jid, queue, job_type, state, attempt, max_attempts, started_at, finished_at, duration_ms)
     VALUES ($1, 'q', 'reconciliation', 'finished', 1, 1, now() - interval '1 minute', now(), 1)`,
    [randomUUID()],
  );
});

describe('find reads only what a list shows', () => {
  test("a row carries its last error's name, code and first 200 characters, no stack and no history", async () => {
    const { rows } = await joblog.find({ limit: 10 });
    const big = rows.find((r) => r.jid === bigJid)!;
    expect(big.error).toEqual({ name: 'TypeError', code: 'E_BIG', message: `é${'x'.repeat(199)}`, truncated: true });
    expect(big).not.toHaveProperty('errors');
    expect(JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v)).length).toBeLessThan(5000);
    expect(rows.find((r) => r.jid !== bigJid)!.error).toBeNull();
    // the job's own page still reads the whole row
    const whole = await joblog.get(bigJid);
    expect(whole!.error!.stack).toBe(STACK);
    expect(whole!.errors).toHaveLength(3);
  });
});

describe('bounded reads', () => {
  let lock: TableLock | undefined;
  afterEach(() => lock?.release());
  const lockTable = async () => {
    lock = await lockJobLogs(db.pool);
  };
  const waitingOnTheLock = () => waitingOnLocks(db.pool);

  test('a statement past statementTimeoutMs is cancelled: QueryTimeoutError, and the client is as it was', async () => {
    await lockTable();
    for (const read of [
      () => joblog.find({}, { statementTimeoutMs: 50 }),
      () => joblog.get(bigJid, { statementTimeoutMs: 50 }),
      () => joblog.stats({ since: new Date(Date.now() - 86400_000), bucket: '1 hour' }, { statementTimeoutMs: 50 }),
      () => joblog.sections({}, { statementTimeoutMs: 50 }),
    ]) {
      const error = await read().then(() => null, (e: unknown) => e);
      expect(error).toBeInstanceOf(QueryTimeoutError);
      expect(error).toMatchObject({ code: 'QUERY_TIMEOUT', timeoutMs: 50 });
    }
    expect(await waitingOnTheLock()).toBe(0);
    // SET LOCAL: the timeout ended with the read's transaction
    const settings = await Promise.all(Array.from({ length: 12 }, () => db.prisma.$queryRawUnsafe<{ statement_timeout: string }[]>('SHOW statement_timeout')));
    expect(new Set(settings.map(([s]) => s!.statement_timeout))).toEqual(new Set(['0']));
    await lock!.release();
    expect((await joblog.find({}, { statementTimeoutMs: 5000 })).rows).toHaveLength(2);
  });

  test('aborting the signal cancels the running statement on the server: ReadCancelledError', async () => {
    await lockTable();
    const controller = new AbortController();
    const read = joblog.find({}, { signal: controller.signal }).then(() => null, (e: unknown) => e);
    while ((await waitingOnTheLock()) === 0) await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    expect(await read).toBeInstanceOf(ReadCancelledError);
    expect(await waitingOnTheLock()).toBe(0);
    // an aborted signal starts nothing
    await expect(joblog.stats({ since: new Date(0) }, { signal: controller.signal })).rejects.toBeInstanceOf(ReadCancelledError);
  });

  test('bad read options are refused naming the field', async () => {
    await expect(joblog.find({}, { statementTimeoutMs: 0 })).rejects.toThrow(/statementTimeoutMs/);
    await expect(joblog.find({}, { signal: 'no' as never })).rejects.toThrow(/signal: expected an AbortSignal/);
  });
});
