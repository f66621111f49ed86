// A job log with something to show: real tracked pg-boss jobs (one finished, one dead after its
// retry, one whose error message is a script), a section held now through joblog.section, and
// a few hundred rows of history inserted in bulk over the last day.
import { makeRows } from '../../scripts/lib/make-rows.ts';
import type { JobLog } from '../../src/index.ts';
import type { TestDb } from './db.ts';
import { FAST, gate, queueName, tracked, waitForRow } from './joblog.ts';

export const XSS_MESSAGE = '<script>window.__xss = 1</script> rejected <img src=x onerror="window.__xss = 2">';
export const XSS_USER = '<b onmouseover="window.__xss = 3">mallory</b>';
export const HELD = { userId: 'alice', group: 'financial' } as const;
export const BULK_ROWS = 400;

export interface Seeded {
  joblog: JobLog;
  jids: { finished: string; dead: string; xss: string; held: string };
  /** Lets the held section go. */
  release(): Promise<void>;
}

export async function seedDashboard(db: TestDb): Promise<Seeded> {
  await makeRows(db.pool, { rows: BULK_ROWS, days: 1, users: 5, chunk: BULK_ROWS });
  const { boss, joblog } = await tracked(db);
  const ok = queueName('export');
  const flaky = queueName('flaky');
  const email = queueName('email');
  await boss.createQueue(ok);
  await boss.createQueue(flaky, { retryLimit: 1, retryDelay: 0 });
  await boss.createQueue(email, { retryLimit: 0 });
  await joblog.work(ok, { ...FAST, type: 'report_export', group: 'reports', userId: (j: any) => j.data.userId }, async () => {});
  await joblog.work(flaky, { ...FAST, type: 'reconciliation', userId: (j: any) => j.data.userId }, async (_job, ctx) => {
    throw new Error(`bank API timeout (attempt ${ctx.attempt})`);
  });
  await joblog.work(email, { ...FAST, type: 'welcome_email', userId: (j: any) => j.data.userId }, async () => {
    throw new Error(XSS_MESSAGE);
  });
  const finished = (await boss.send(ok, { userId: 'bob' }))!;
  const dead = (await boss.send(flaky, { userId: 'carol' }))!;
  const xss = (await boss.send(email, { userId: XSS_USER }))!;
  await Promise.all([
    waitForRow(joblog, finished, ['finished']),
    waitForRow(joblog, dead, ['dead']),
    waitForRow(joblog, xss, ['failed']),
  ]);

  const hold = gate();
  let held!: string;
  const entered = gate();
  const section = joblog.section({ type: 'financial_data_import', ...HELD }, async ({ jid }) => {
    held = jid;
    entered.open();
    await hold.promise;
  });
  await entered.promise;
  return {
    joblog,
    jids: { finished, dead, xss, held },
    async release() {
      hold.open();
      await section;
    },
  };
}

/** A token long enough for createDashboard. */
export const TOKEN = 'test-token-0123456789abcdef';
