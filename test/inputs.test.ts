// Every input is checked where it enters, by one rule per kind of value: user ids and groups,
// dates, durations, buckets, cursors, job types. A bad one is an InvalidOptionsError naming the
// field (or, for a worker's job, an InvalidPayloadError row), never a database error.
import { describe, expect, test } from 'vitest';
import { createJobLog, InvalidOptionsError, type JobLog } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, queueName, tracked, waitForRow } from './helpers/joblog.ts';

const db = setupTestDb('inputs');

const cursorOf = (text: string) => Buffer.from(text).toString('base64url');
const yearMinus5000 = new Date(Date.UTC(-5000, 0, 1));
const LONG = 'x'.repeat(3000); // over PostgreSQL's 2704-byte btree entry on its own

/** The call fails with an InvalidOptionsError whose first issue is at `path` and matches `message`. */
async function refused(call: () => unknown, path: string, message: RegExp = /./): Promise<void> {
  let error: unknown;
  try {
    await call();
  } catch (e) {
    error = e;
  }
  expect(error, `expected a refusal at ${path}`).toBeInstanceOf(InvalidOptionsError);
  const issues = (error as InvalidOptionsError).issues;
  expect(issues.map((i) => i.path)).toContain(path);
  expect(issues.find((i) => i.path === path)!.message).toMatch(message);
}

const log = (): JobLog => createJobLog({ prisma: db.prisma });
const noop = async () => {};

describe('reads refuse what they cannot use, naming the field', () => {
  test('unknown job types, one or several: refused with the enum values', async () => {
    const joblog = log();
    const allowed = /unknown job type 'nope'.*expected one of financial_data_import, reconciliation, report_export, welcome_email/;
    await refused(() => joblog.find({ types: ['nope'] }), 'types', allowed);
    await refused(() => joblog.find({ types: ['nope', 'nada'] }), 'types', /'nope', 'nada'/);
    await refused(() => joblog.find({ types: ['welcome_email', 'nope'] }), 'types', allowed);
    await refused(() => joblog.stats({ since: new Date(Date.now() - 3600_000), types: ['nope'] }), 'types', allowed);
    expect((await joblog.find({ types: ['welcome_email', 'reconciliation'] })).rows).toEqual([]);
  });

  test('user ids and groups: NUL, control characters, lone surrogates, over the cap, blank, padded, not an integer', async () => {
    const joblog = log();
    await refused(() => joblog.find({ userId: 'a\u0000b' }), 'userId', /control characters \(U\+0000 at index 1\)/);
    await refused(() => joblog.find({ group: '\u0000' }), 'group', /control characters/);
    await refused(() => joblog.find({ userId: 'a\u001b[31m' }), 'userId', /U\+001B/);
    await refused(() => joblog.find({ userId: 'cut \ud83d' }), 'userId', /lone surrogate/);
    await refused(() => joblog.find({ userId: LONG }), 'userId', /at most 1024 bytes of UTF-8, got 3000/);
    await refused(() => joblog.find({ group: 'é'.repeat(600) }), 'group', /at most 1024 bytes of UTF-8, got 1200/);
    await refused(() => joblog.find({ userId: '' }), 'userId', /non-empty/);
    await refused(() => joblog.find({ userId: ' bob ' }), 'userId', /never trimmed/);
    await refused(() => joblog.sections({ group: ' financial' }), 'group', /never trimmed/);
    await refused(() => joblog.find({ userId: 1.5 as never }), 'userId', /expected a string or integer user id, got 1.5/);
    await refused(() => joblog.find({ userId: 2 ** 60 as never }), 'userId', /bigint or a string/);
    expect((await joblog.find({ userId: 12345678901234567890n })).rows).toEqual([]);
  });

  test('dates: only ISO 8601 it can read exactly, real calendar days, years 1970 to 9999, valid Dates', async () => {
    const joblog = log();
    await refused(() => joblog.find({ since: '0000-01-01' }), 'since', /from 1970-01-01/);
    await refused(() => joblog.find({ since: yearMinus5000 }), 'since', /from 1970-01-01/);
    await refused(() => joblog.stats({ since: yearMinus5000 }), 'since', /from 1970-01-01/);
    await refused(() => joblog.find({ until: new Date(NaN) }), 'until', /Invalid Date/);
    await refused(() => joblog.find({ since: '2026-02-30' }), 'since', /not a day of the calendar/);
    await refused(() => joblog.find({ since: '2026-01-01 junk' }), 'since', /ISO 8601/);
    await refused(() => joblog.find({ since: '2026-01-01T25:00Z' }), 'since', /not a time of day/);
    await refused(() => joblog.find({ since: '2026-01-01T12:00' }), 'since', /needs its zone/);
    await refused(() => joblog.find({ since: '1 Jan 2026' }), 'since', /ISO 8601/);
    const ok = await joblog.find({ since: '2024-02-29', until: '2026-01-01T12:00:00.5+01:30' });
    expect(ok.rows).toEqual([]);
  });

  test('cursors: the id must fit int8 and the date must be one the parser reads', async () => {
    const joblog = log();
    await refused(() => joblog.find({ cursor: cursorOf('2026-01-01T00:00:00.000Z|99999999999999999999999') }), 'cursor');
    await refused(() => joblog.find({ cursor: cursorOf('2026-01-01T00:00:00.000Z|9223372036854775808') }), 'cursor');
    await refused(() => joblog.find({ cursor: cursorOf('2026-01-01 junk|5') }), 'cursor');
    await refused(() => joblog.find({ cursor: cursorOf('2026-02-30T00:00:00.000Z|5') }), 'cursor');
    expect((await joblog.find({ cursor: cursorOf('2026-01-01T00:00:00.000Z|9223372036854775807') })).rows).toEqual([]);
  });

  test('buckets: at most a year wide', async () => {
    const joblog = log();
    const since = new Date(Date.now() - 3600_000);
    await refused(() => joblog.stats({ since, bucket: '99999999999999999999 weeks' }), 'bucket', /at most a year/);
    await refused(() => joblog.stats({ since, bucket: '1e+22 minutes' }), 'bucket', /expected '<n> minute/);
    await refused(() => joblog.stats({ since, bucket: '53 weeks' }), 'bucket', /at most a year/);
    expect((await joblog.stats({ since, bucket: '52 weeks' })).buckets).toHaveLength(1);
  });
});

describe('writes and retention refuse what they cannot use', () => {
  test('prune: durations are bounded, dates strict', async () => {
    const joblog = log();
    await refused(() => joblog.prune({ olderThan: 1e20 }), 'olderThan', /at most 50 years/);
    await refused(() => joblog.prune({ olderThan: '99999999999d' }), 'olderThan', /at most 50 years/);
    await refused(() => joblog.prune({ olderThan: 0 }), 'olderThan', /positive duration/);
    await refused(() => joblog.prune({ olderThan: '2026-02-30' }), 'olderThan', /not a day of the calendar/);
    await refused(() => joblog.prune({ olderThan: yearMinus5000 }), 'olderThan', /from 1970-01-01/);
    expect(await joblog.prune({ olderThan: '18250d', dryRun: true })).toMatchObject({ deleted: 0 });
  });

  test('createJobLog refuses a prune schedule no pass could run', async () => {
    await refused(() => createJobLog({ prisma: db.prisma, prune: { olderThan: '99999999999d' } }), 'prune.olderThan', /at most 50 years/);
    await refused(() => createJobLog({ prisma: db.prisma, prune: { olderThan: 1e20 } }), 'prune.olderThan', /at most 50 years/);
    await refused(() => createJobLog({ prisma: db.prisma, prune: { olderThan: '30 days' } }), 'prune.olderThan', /expected a duration/);
    createJobLog({ prisma: db.prisma, prune: { olderThan: '30d' } }).stop();
  });

  test('section, inProgress, holder: the same id rule as the reads', async () => {
    const joblog = log();
    const type = 'reconciliation';
    await refused(() => joblog.section({ type, userId: 1.5, group: 'g' }, noop), 'userId', /expected a string or integer user id, got 1.5/);
    await refused(() => joblog.inProgress({ userId: 1.5 }), 'userId', /expected a string or integer user id, got 1.5/);
    await refused(() => joblog.holder(1.5, 'g'), 'userId', /expected a string or integer user id, got 1.5/);
    await refused(() => joblog.section({ type, userId: LONG, group: 'g' }, noop), 'userId', /at most 1024 bytes/);
    await refused(() => joblog.section({ type, userId: 'u', group: LONG }, noop), 'group', /at most 1024 bytes/);
    await refused(() => joblog.section({ type, userId: ' bob ', group: 'g' }, noop), 'userId', /never trimmed/);
    await refused(() => joblog.section({ type, userId: 'u', group: 'a\u0000' }, noop), 'group', /control characters/);
    await refused(() => joblog.holder('bob', ''), 'group', /non-empty/);
    await refused(() => joblog.inProgress({ userId: 'bob', group: ' g' }), 'group', /never trimmed/);
    // an integer id names the same section as its decimal text
    await joblog.section({ type, userId: 42n, group: 'g' }, async () => {
      expect((await joblog.holder(42, 'g'))?.userId).toBe('42');
      expect(await joblog.inProgress({ userId: '42', group: 'g' })).toHaveLength(1);
    });
  });

  test('options that name a group or a type follow the same rules: work, the reaper, inProgress', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('opts');
    await boss.createQueue(queue);
    await refused(() => joblog.work(queue, { type: 'welcome_email', group: ' mail' }, noop), 'group', /never trimmed/);
    await refused(() => joblog.work(queue, { type: 'welcome_email', group: '' }, noop), 'group', /non-empty/);
    await refused(() => joblog.work(queue, { type: 'welcome_email', group: 5 as never }, noop), 'group', /a string or a function/);
    await refused(
      () => createJobLog({ prisma: db.prisma, reaper: { maxHoldSeconds: { byGroup: { 'a\u0000': 60 } } } }),
      'reaper.maxHoldSeconds.byGroup.a\u0000',
      /control characters/,
    );
    await refused(() => joblog.inProgress({ userId: 'u', types: ['nope'] }), 'types', /unknown job type 'nope'/);
  });

  test("a worker's job whose user id or group breaks the rule ends failed (InvalidPayloadError), its row storable", async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('ids');
    await boss.createQueue(queue, { retryLimit: 0 });
    let ran = 0;
    await joblog.work(queue, {
      ...FAST,
      type: 'welcome_email',
      // jsonb cannot hold a NUL, but an app's userId() can make one
      userId: (j: any) => (j.data.nul ? 'a\u0000b' : j.data.userId),
      group: (j: any) => j.data.group,
    }, async () => { ran++; });
    const cases = [
      { data: { userId: ' bob ', group: 'mail' }, path: 'userId', message: /never trimmed/ },
      { data: { userId: 'y'.repeat(4000), group: 'mail' }, path: 'userId', message: /at most 1024 bytes/ },
      { data: { nul: true, group: 'mail' }, path: 'userId', message: /control characters/ },
      { data: { userId: 'carol', group: '' }, path: 'group', message: /non-empty/ },
      { data: { userId: 'carol', group: 'z'.repeat(3000) }, path: 'group', message: /at most 1024 bytes/ },
    ];
    const jids = await Promise.all(cases.map((c) => boss.send(queue, c.data)));
    const good = (await boss.send(queue, { userId: 'carol', group: 'mail' }))!;
    for (const [i, c] of cases.entries()) {
      const row = await waitForRow(joblog, jids[i]!, ['failed', 'finished', 'dead']);
      expect(row.state).toBe('failed');
      expect(row.error?.name).toBe('InvalidPayloadError');
      expect(row.error?.message).toMatch(`invalid payload: ${c.path}: `);
      expect(row.error?.message).toMatch(c.message);
      expect(row.error!.message.length).toBeLessThan(200); // the bad value is not copied into the row
      expect(row.group).toBeNull();
      expect(row.userId).toBe(c.path === 'userId' ? null : 'carol');
    }
    expect(await waitForRow(joblog, good, ['finished'])).toMatchObject({ userId: 'carol', group: 'mail' });
    expect(ran).toBe(1);
  });
});
