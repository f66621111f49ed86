import { describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createJobLog, InvalidOptionsError } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';

const db = setupTestDb('options');
const noBoss = { work: async () => 'unused' } as never;

/** The error thrown by `fn`, which must be an InvalidOptionsError. */
function invalid(fn: () => unknown): InvalidOptionsError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionsError);
    return error as InvalidOptionsError;
  }
  throw new Error('expected an InvalidOptionsError, nothing was thrown');
}

async function invalidAsync(promise: Promise<unknown>): Promise<InvalidOptionsError> {
  const error = await promise.then(() => undefined, (e) => e);
  expect(error).toBeInstanceOf(InvalidOptionsError);
  return error;
}

const paths = (e: InvalidOptionsError) => e.issues.map((i) => i.path);

describe('options are checked where they enter, naming each bad field', () => {
  test('createJobLog', () => {
    const missing = invalid(() => createJobLog({} as never));
    expect(missing.code).toBe('INVALID_OPTIONS');
    expect(paths(missing)).toEqual(['prisma']);
    expect(missing.message).toMatch(/prisma: expected the app's PrismaClient/);
    expect(paths(invalid(() => createJobLog({ prisma: db.prisma, boss: {} } as never)))).toEqual(['boss']);
    const unknown = invalid(() => createJobLog({ prisma: db.prisma, boss: noBoss, tabel: 'x' } as never));
    expect(unknown.message).toContain('unknown option(s) tabel');
  });

  test('a log made without boss reads, but work() names the missing boss', async () => {
    const readOnly = createJobLog({ prisma: db.prisma });
    expect(await readOnly.get('00000000-0000-4000-8000-000000000000')).toBeNull();
    const error = await invalidAsync(readOnly.work('q', { type: 'x' }, async () => {}));
    expect(paths(error)).toEqual(['boss']);
    expect(error.message).toMatch(/pass your started PgBoss to createJobLog/);
  });

  test('work: wrong types, unknown keys, bad values, missing handler; nothing is registered', async () => {
    let registered = 0;
    const boss = { work: async () => { registered++; return 'id'; } } as never;
    const joblog = createJobLog({ prisma: db.prisma, boss });
    const handler = async () => {};
    const cases: [unknown, string, RegExp][] = [
      [{ type: 'x', batchSize: '10' }, 'batchSize', /expected number/],
      [{ type: 'x', batchSize: 0 }, 'batchSize', /Too small/],
      [{ type: 'x', onbusy: 'skip' }, '', /unknown option\(s\) onbusy/],
      [{ type: 'x', onBusy: 'wait' }, 'onBusy', /expected 'skip', 'throw' or \{ wait: \{ retryEverySeconds, giveUpAfterSeconds \} \}/],
      [{ type: 'x', onBusy: { wait: { retryEverySeconds: '5', giveUpAfterSeconds: 60 } } }, 'onBusy.wait.retryEverySeconds', /expected number/],
      [{ type: 'x', onBusy: { wait: { retryEverySeconds: 0.2, giveUpAfterSeconds: 60 } } }, 'onBusy.wait.retryEverySeconds', /at least 1 second/],
      [{ type: 'x', onBusy: { wait: { retryEverySeconds: 5 } } }, 'onBusy.wait.giveUpAfterSeconds', /expected number/],
      [{ type: 'x', onBusy: { wait: { retryEverySeconds: 5, giveUpAfterSeconds: 60, order: 'fifo' } } }, 'onBusy.wait', /unknown option\(s\) order/],
      [{ type: 'x', group: 7 }, 'group', /expected a string or a function/],
      [{ type: 'x', userId: 'userId' }, 'userId', /expected a function/],
      [{ type: 'x', schema: { parse() {} } }, 'schema', /zod schema/],
      [{ type: '' }, 'type', /non-empty/],
      [{ group: 'g' }, 'type', /expected string/],
      [{ type: 'x', retryable: 'no' }, 'retryable', /expected boolean/],
      [{ type: 'x', pollingIntervalSeconds: 0.1 }, 'pollingIntervalSeconds', /Too small/],
    ];
    for (const [options, path, message] of cases) {
      const error = await invalidAsync(joblog.work('q', options as never, handler));
      expect(paths(error)).toContain(path);
      expect(error.message).toMatch(message);
      expect(error.message).toContain("work('q')");
    }
    expect(paths(await invalidAsync(joblog.work('', { type: 'x' }, handler)))).toEqual(['']);
    expect(paths(await invalidAsync(joblog.work('q', { type: 'x' }, undefined as never)))).toEqual(['handler']);
    expect(registered).toBe(0);
    expect(paths(await invalidAsync(joblog.work('q', { type: 'x' }, handler)))).toEqual(['type']); // not in the JobType enum
    expect(registered).toBe(0);
    await joblog.work('q', { type: 'reconciliation', schema: z.object({}), group: 'g', userId: () => 'u', onBusy: 'skip' }, handler);
    expect(registered).toBe(1);
  });

  test('section and queries', async () => {
    const joblog = createJobLog({ prisma: db.prisma, boss: noBoss });
    let ran = false;
    const run = async () => { ran = true; };
    expect(paths(await invalidAsync(joblog.section({ type: 'x', userId: 'u', group: 'g', jid: 'nope' }, run)))).toEqual(['jid']);
    expect(paths(await invalidAsync(joblog.section({ type: 'x', userId: {} as never, group: 'g' }, run)))).toEqual(['userId']);
    expect(paths(await invalidAsync(joblog.section({ type: 'x', userId: 'u' } as never, run)))).toEqual(['group']);
    expect(ran).toBe(false);
    expect(paths(await invalidAsync(joblog.inProgress({ userId: 'u', types: 'x' } as never)))).toEqual(['types']);
    expect(paths(await invalidAsync(joblog.get('not-a-uuid')))).toEqual(['']);
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM job_logs');
    expect(rows[0].n).toBe(0);
  });
});
