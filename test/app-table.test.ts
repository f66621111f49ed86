// The app's own table: its name, schema and enum names differ from the library's defaults, its
// user_id is text, uuid, integer or bigint with a foreign key to the app's "User" (ON DELETE
// RESTRICT), and it has a column of its own that workers fill with `fields`.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createJobLog, isSectionBusyError, LogTableError, type JobLog } from '../src/index.ts';
import { readLogTable } from '../src/names.ts';
import { LogStore } from '../src/store.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, gate, queueName, waitForBossState } from './helpers/joblog.ts';
import { waitFor } from './helpers/wait.ts';

const db = setupTestDb('app_table');

/** The DDL of a log table as an app might have it, in schema `s`, keyed by users of `idType`. */
function appSchema(s: string, idType: string): string {
  return `
CREATE SCHEMA ${s};
CREATE TYPE ${s}."Kind" AS ENUM ('sync', 'email');
CREATE TYPE ${s}."Status" AS ENUM ('started', 'finished', 'failed', 'dead', 'skipped');
CREATE TABLE ${s}."User" (id ${idType} PRIMARY KEY);
CREATE TABLE ${s}.history (
  id bigserial PRIMARY KEY, jid uuid NOT NULL UNIQUE, queue text NOT NULL, job_type ${s}."Kind" NOT NULL,
  state ${s}."Status" NOT NULL DEFAULT 'started',
  user_id ${idType} REFERENCES ${s}."User"(id) ON DELETE RESTRICT ON UPDATE CASCADE,
  "group" text, attempt int NOT NULL DEFAULT 1, max_attempts int NOT NULL, holder_jid uuid,
  queued_at timestamptz(3), started_at timestamptz(3) NOT NULL DEFAULT now(), finished_at timestamptz(3),
  duration_ms float8, waited_ms int, lease_until timestamptz(3), error jsonb, errors jsonb NOT NULL DEFAULT '[]',
  created_at timestamptz(3) NOT NULL DEFAULT now(), updated_at timestamptz(3) NOT NULL DEFAULT now(),
  organization_id integer);
CREATE UNIQUE INDEX history_one_holder ON ${s}.history (user_id, "group") WHERE state = 'started';
${summaryTables(s, `${s}."Kind"`)}`;
}

/** The summary tables of stats(), as the package's migration makes them, in schema `s` with the app's job type enum. */
function summaryTables(s: string, jobType: string): string {
  const migration = readFileSync(new URL('../prisma/migrations/20261202200000_stats_summaries/migration.sql', import.meta.url), 'utf8');
  return migration.replaceAll('"JobType"', jobType).replace(/"(job_log_periods|job_log_period_types)"(?!_)/g, `${s}."$1"`);
}

interface IdCase {
  type: 'text' | 'uuid' | 'integer' | 'bigint';
  /** Two ids of users that exist, one of a user that does not, and one of the wrong shape (none for text). */
  ids: [unknown, unknown, unknown];
  wrongShape: unknown[];
}

const CASES: IdCase[] = [
  { type: 'text', ids: ['alice', 'bob', 'nobody'], wrongShape: [] },
  { type: 'uuid', ids: [randomUUID(), randomUUID(), randomUUID()], wrongShape: ['not-a-uuid', '1234'] },
  { type: 'integer', ids: [1, '2', 3], wrongShape: ['abc', 2 ** 31, '007', '-', '9'.repeat(1000)] },
  { type: 'bigint', ids: [String(2n ** 62n), '5', 6], wrongShape: [2n ** 63n, '-9223372036854775809', '1e3'] },
];

const row = (s: string, jid: string) =>
  db.pool.query(`SELECT state::text, user_id::text, pg_typeof(user_id)::text AS user_id_type, organization_id, error
                   FROM ${s}.history WHERE jid = $1`, [jid]).then((r) => r.rows[0]);

const waitForState = (s: string, jid: string, states: string[]) =>
  waitFor(`${s}.history row ${jid} in ${states.join('/')}`, async () => {
    const r = await row(s, jid);
    return r && states.includes(r.state) ? r : undefined;
  });

async function appLog(s: string): Promise<{ joblog: JobLog; boss: Awaited<ReturnType<typeof db.boss>> }> {
  const boss = await db.boss();
  return { joblog: createJobLog({ prisma: db.prisma, boss, table: { schema: s, name: 'history' } }), boss };
}

describe.each(CASES)('a user_id of type $type with a foreign key to the app\'s User', ({ type, ids, wrongShape }) => {
  const s = `app_${type}`;
  const [alice, bob, nobody] = ids;

  test('tracked jobs: success with fields, busy, wrong shape, a user that does not exist', async () => {
    await db.pool.query(appSchema(s, type));
    await db.pool.query(`INSERT INTO ${s}."User" (id) VALUES ($1), ($2)`, [String(alice), String(bob)]);
    const { joblog, boss } = await appLog(s);
    const queue = queueName(`ids-${type}`);
    await boss.createQueue(queue, { retryLimit: 2 });
    const held = gate();
    await joblog.work(queue, {
      ...FAST, type: 'sync', group: 'g', userId: (j: any) => j.data.userId, onBusy: 'skip', localConcurrency: 2,
      fields: { organization_id: (j: any) => j.data.orgId },
    }, async (j: any) => { if (j.data.hold) await held.promise; });

    const ok = (await boss.send(queue, { userId: alice, orgId: 7, hold: true }))!;
    expect(await waitForState(s, ok, ['started'])).toMatchObject({ user_id: String(alice), user_id_type: type, organization_id: 7 });
    // The section is held under the typed id, and found by it in every form the API takes.
    expect((await joblog.holder(alice as string, 'g'))?.jid).toBe(ok);
    expect((await joblog.inProgress({ userId: alice as string })).map((r) => r.jid)).toEqual([ok]);
    if (type === 'bigint') expect((await joblog.holder(BigInt(alice as string), 'g'))?.jid).toBe(ok);
    const busy = (await boss.send(queue, { userId: alice, orgId: 7 }))!;
    expect(await waitForState(s, busy, ['skipped'])).toMatchObject({ user_id: String(alice), organization_id: null });
    held.open();
    expect(await waitForState(s, ok, ['finished'])).toMatchObject({ organization_id: 7 });
    expect((await joblog.find({ userId: alice as string })).rows.map((r) => [r.jid, r.userId])).toEqual([
      [busy, String(alice)], [ok, String(alice)],
    ]);

    // A user id of the wrong shape for the column: invalid payload, never retried, no user in the row.
    for (const userId of wrongShape) {
      const jid = (await boss.send(queue, { userId: typeof userId === 'bigint' ? userId.toString() : userId }))!;
      const r = await waitForState(s, jid, ['failed']);
      expect(r.user_id).toBeNull();
      expect(r.error).toMatchObject({ code: 'INVALID_PAYLOAD' });
      expect(r.error.message).toContain(type === 'uuid' ? 'must be a UUID' : 'must be an integer');
      expect((await waitForBossState(db, jid, ['failed'])).retry_count).toBe(0);
    }
    // Well-shaped, but no such user: the foreign key refuses the claim, which is permanent.
    const missing = (await boss.send(queue, { userId: nobody, orgId: 1 }))!;
    const r = await waitForState(s, missing, ['failed']);
    expect(r).toMatchObject({ user_id: null, error: { code: 'INVALID_PAYLOAD' } });
    expect(r.error.message).toMatch(/foreign key|23503|violates/i);
    expect((await waitForBossState(db, missing, ['failed'])).retry_count).toBe(0);
  });

  test('a query or section with a user id of the wrong shape is the caller\'s error; the right shape works', async () => {
    const { joblog } = await appLog(s);
    for (const userId of wrongShape) {
      const id = typeof userId === 'bigint' ? userId.toString() : userId;
      if (typeof id !== 'string' && !Number.isSafeInteger(id)) continue; // refused by the base rule already
      await expect(joblog.find({ userId: id as string })).rejects.toMatchObject({ code: 'INVALID_OPTIONS', issues: [{ path: 'userId' }] });
      await expect(joblog.holder(id as string, 'g')).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
      await expect(joblog.section({ type: 'email', userId: id as string, group: 'g' }, async () => 1)).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    }
    const jid = randomUUID();
    expect(await joblog.section({ jid, type: 'email', userId: bob as string, group: 's', fields: { organization_id: 9 } }, async () => 'done')).toBe('done');
    expect(await row(s, jid)).toMatchObject({ state: 'finished', user_id: String(bob), organization_id: 9 });
  });

  test('deleting a user: refused while their job holds a section and while they have history; allowed once their rows are anonymised', async () => {
    const { joblog } = await appLog(s);
    const held = gate();
    const inside = gate();
    const section = joblog.section({ type: 'email', userId: bob as string, group: 'delete' }, async () => { inside.open(); await held.promise; });
    await inside.promise;
    await expect(db.pool.query(`DELETE FROM ${s}."User" WHERE id = $1`, [String(bob)])).rejects.toMatchObject({ code: '23503' });
    expect(await joblog.holder(bob as string, 'delete')).not.toBeNull(); // the section stays held
    held.open();
    await section;
    // Still refused: the user has history. The documented way: anonymise (or delete) the settled rows, then the user.
    await expect(db.pool.query(`DELETE FROM ${s}."User" WHERE id = $1`, [String(bob)])).rejects.toMatchObject({ code: '23503' });
    await db.pool.query(`BEGIN; UPDATE ${s}.history SET user_id = NULL WHERE user_id = '${String(bob)}' AND state <> 'started';
                         DELETE FROM ${s}."User" WHERE id = '${String(bob)}'; COMMIT`);
    // A job for the deleted user: refused by the foreign key, recorded failed.
    const { boss, joblog: worker } = await appLog(s);
    const queue = queueName(`deleted-${type}`);
    await boss.createQueue(queue, { retryLimit: 3 });
    let ran = false;
    await worker.work(queue, { ...FAST, type: 'sync', group: 'g', userId: (j: any) => j.data.userId }, async () => { ran = true; });
    const jid = (await boss.send(queue, { userId: bob }))!;
    expect(await waitForState(s, jid, ['failed'])).toMatchObject({ user_id: null, error: { code: 'INVALID_PAYLOAD' } });
    expect(ran).toBe(false);
  });
});

describe('the app\'s table, checked at start-up', () => {
  test('a field naming no column, or a column the library writes, is refused at work() naming it', async () => {
    const { joblog } = await appLog('app_integer');
    const work = (fields: Record<string, unknown>) =>
      joblog.work(queueName('fields'), { type: 'sync', fields: fields as never }, async () => {});
    const missing = await work({ organizationId: () => 1, plan: () => 'x' }).catch((e) => e);
    expect(missing).toMatchObject({ code: 'INVALID_OPTIONS', issues: [{ path: 'fields.organizationId' }, { path: 'fields.plan' }] });
    expect(missing.message).toContain('there is a column organization_id');
    expect(missing.message).toContain('app_integer.history has no column plan');
    await expect(work({ state: () => 'finished' })).rejects.toMatchObject({ issues: [{ path: 'fields.state', message: expect.stringContaining('writes the state column itself') }] });
    await expect(joblog.section({ type: 'email', userId: 1, group: 'g', fields: { nope: 1 } }, async () => {})).rejects.toMatchObject({ issues: [{ path: 'fields.nope' }] });
  });

  test('a missing table, a table without the section index, an unsupported user_id type: typed errors that say what to fix', async () => {
    const read = (table: object) => createJobLog({ prisma: db.prisma, table: table as never }).find({});
    await expect(read({ name: 'nope' })).rejects.toBeInstanceOf(LogTableError);
    await expect(read({ name: 'nope' })).rejects.toMatchObject({ code: 'LOG_TABLE_MISSING' });
    await db.pool.query(appSchema('app_noindex', 'integer') + 'DROP INDEX app_noindex.history_one_holder;');
    await expect(read({ schema: 'app_noindex', name: 'history' })).rejects.toMatchObject({ code: 'SECTION_INDEX_MISSING' });
    // Unique on the right columns, but not only while started: not a section index.
    await db.pool.query(`CREATE UNIQUE INDEX other_key ON app_noindex.history (user_id, "group") WHERE "group" IS NOT NULL`);
    await expect(read({ schema: 'app_noindex', name: 'history' })).rejects.toMatchObject({ code: 'SECTION_INDEX_MISSING' });
    await db.pool.query(appSchema('app_numeric', 'numeric'));
    const error = await read({ schema: 'app_numeric', name: 'history' }).catch((e) => e);
    expect(error).toMatchObject({ code: 'LOG_TABLE_INVALID' });
    expect(error.message).toContain('user_id is numeric');
    expect(() => createJobLog({ prisma: db.prisma, table: { name: 'bad"name' } })).toThrow(/table.name: expected a plain SQL identifier/);
  });

  test('claims of jobs with different fields share no statement: a column a job leaves out keeps its default', async () => {
    await db.pool.query(`ALTER TABLE app_text.history ADD COLUMN plan text NOT NULL DEFAULT 'free'`);
    const table = await readLogTable(db.prisma, { schema: 'app_text', name: 'history' });
    const store = new LogStore(db.prisma, { table });
    const job = (fields?: Record<string, unknown>) => ({
      jid: randomUUID(), queue: 'q', type: 'sync', userId: null, group: null, attempt: 1, maxAttempts: 1, queuedAt: null, ...(fields ? { fields } : {}),
    });
    const jobs = [job({ plan: 'pro', organization_id: 5n }), job(), job({ organization_id: 6 }), job({ plan: 'team' })];
    expect((await store.claimBatch(jobs)).map((c) => c.outcome)).toEqual(['claimed', 'claimed', 'claimed', 'claimed']);
    const { rows } = await db.pool.query(`SELECT jid::text, plan, organization_id FROM app_text.history WHERE jid = ANY ($1::uuid[])`, [jobs.map((j) => j.jid)]);
    const byJid = new Map(rows.map((r) => [r.jid, [r.plan, r.organization_id]]));
    expect(jobs.map((j) => byJid.get(j.jid))).toEqual([['pro', 5], ['free', null], ['free', 6], ['team', null]]);
  });

  test('writesThrough pg-boss: the claims on pg-boss\'s pool are bound to the app\'s table too (typed user id, fields)', async () => {
    const boss = await db.boss();
    const joblog = createJobLog({ prisma: db.prisma, boss, table: { schema: 'app_integer', name: 'history' }, writesThrough: 'pg-boss' });
    const queue = queueName('through-boss');
    await boss.createQueue(queue);
    await joblog.work(queue, { ...FAST, type: 'sync', group: 'g', userId: (j: any) => j.data.userId, fields: { organization_id: (j: any) => j.data.orgId } }, async () => {});
    const jid = (await boss.send(queue, { userId: 1, orgId: 11 }))!;
    expect(await waitForState('app_integer', jid, ['finished'])).toMatchObject({ user_id: '1', user_id_type: 'integer', organization_id: 11 });
  });

  test('a field value the column refuses makes the payload invalid: failed, not retried, the field named', async () => {
    const { joblog, boss } = await appLog('app_integer');
    const queue = queueName('bad-field');
    await boss.createQueue(queue, { retryLimit: 2 });
    await joblog.work(queue, { ...FAST, type: 'sync', fields: { organization_id: (j: any) => j.data.org } }, async () => {});
    const jid = (await boss.send(queue, { org: 'acme' }))!;
    const r = await waitForState('app_integer', jid, ['failed']);
    expect(r).toMatchObject({ organization_id: null, error: { code: 'INVALID_PAYLOAD' } });
    expect(r.error.message).toContain('fields');
    expect(r.error.message).toContain('"organization_id":"acme"');
    expect((await waitForBossState(db, jid, ['failed'])).retry_count).toBe(0);
  });

  test('joblog.isSectionBusyError knows the app\'s name for the section index', async () => {
    const { joblog } = await appLog('app_integer');
    const held = gate();
    const inside = gate();
    const section = joblog.section({ type: 'email', userId: 1, group: 'busy-name' }, async () => { inside.open(); await held.promise; });
    await inside.promise;
    const clash = await db.pool.query(`INSERT INTO app_integer.history (jid, queue, job_type, user_id, "group", max_attempts)
                                       VALUES ($1, 'q', 'sync', 1, 'busy-name', 1)`, [randomUUID()]).catch((e) => e);
    held.open();
    await section;
    expect(clash).toMatchObject({ code: '23505', constraint: 'history_one_holder' });
    expect(joblog.isSectionBusyError(clash)).toBe(true);
    expect(isSectionBusyError(clash)).toBe(false); // the default name, job_logs_section_key
    expect(isSectionBusyError(clash, 'history_one_holder')).toBe(true);
  });

  test('the CLI reads the app\'s table: --log-table schema.name, or $JOBLOG_TABLE', async () => {
    const cli = (args: string[], env: Record<string, string> = {}) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.resolve(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), ...args], {
        env: { ...process.env, DATABASE_URL: db.url, ...env }, timeout: 30_000,
      }, (error, stdout, stderr) => resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }));
    });
    const [flag, fromEnv] = await Promise.all([
      cli(['list', '--log-table', 'app_integer.history', '--user', '1', '--json']),
      cli(['list', '--user', '1', '--json'], { JOBLOG_TABLE: 'app_integer.history' }),
    ]);
    for (const run of [flag, fromEnv]) {
      expect(run.code, run.stderr).toBe(0);
      const { rows } = JSON.parse(run.stdout);
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.every((r: { userId: string }) => r.userId === '1')).toBe(true);
    }
  });

  test('stats, sections, prune and reap run on the app\'s table', async () => {
    const { joblog } = await appLog('app_integer');
    // the summaries live in the app's schema, keyed by its enum (none of its rows is old enough)
    expect(await joblog.summarise({ graceSeconds: 0 })).toMatchObject({ redone: 0 });
    const stats = await joblog.stats({ since: new Date(Date.now() - 3_600_000) });
    expect(stats.byType.find((t) => t.jobType === 'sync')?.counts.finished).toBeGreaterThan(0);
    expect(await joblog.sections()).toEqual([]);
    expect(await joblog.reap()).toMatchObject({ dead: 0 });
    const before = Number((await db.pool.query(`SELECT count(*) FROM app_integer.history WHERE state <> 'started'`)).rows[0].count);
    expect((await joblog.prune({ olderThan: 1 })).deleted).toBe(before);
  });
});
