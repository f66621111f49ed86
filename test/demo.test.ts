import { describe, expect, test } from 'vitest';
import { formatTable, runScenario, summaryLine } from '../scripts/lib/demo-scenario.ts';
import type { JobLogWarning } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';

const db = setupTestDb('demo');

describe('npm run demo', () => {
  test('every case shows what it is there for: skip names the holder, throw has its busy attempt, wait ran after waiting', async () => {
    const boss = await db.boss();
    const warnings: JobLogWarning[] = [];
    const cases = await runScenario(db.prisma, boss, (w) => warnings.push(w));
    const by = Object.fromEntries(cases.map((c) => [c.label, c]));
    const holder = by.holder!.jid;
    const held = `busy, held by ${holder.slice(0, 8)}`;

    expect(summaryLine(cases)).toBe('summary: jobs=8 finished=4 failed=2 dead=1 skipped=1 started=0');
    // The table without ids and times: what ten runs in a row must print alike.
    const stable = formatTable(cases).split('\n').slice(1).map((line) => {
      const [label, , type, ...rest] = line.split(/ {2,}/);
      return [label, type, ...rest.filter((cell) => !/^\d+ ms$/.test(cell))].join(' | ');
    });
    expect(stable).toEqual([
      'holder | financial_data_import | alice | financial | finished | 1/4',
      `onBusy: skip | reconciliation | alice | financial | skipped | 1/3 | attempt 1: ${held}`,
      `onBusy: throw | financial_data_import | alice | financial | finished | 2/4 | attempt 1: ${held}`,
      'onBusy: wait | financial_data_import | alice | financial | finished | 1/4 | ran after waiting for its section',
      'retry | report_export | bob | finished | 2/3 | attempt 1: export service unavailable',
      'dead | report_export | carol | dead | 3/3 | attempts 1-3: export service unavailable',
      'non-retryable | welcome_email | erin | failed | 1/1 | attempt 1: mail server rejected the message',
      'bad payload | financial_data_import | dave | failed | 1/4 | attempt 1: invalid payload: fileId: Invalid input: expected…',
    ]);

    expect(by['onBusy: skip']!.row.holderJid).toBe(holder);
    const throwRow = by['onBusy: throw']!.row;
    expect(throwRow.errors).toEqual([{ attempt: 1, at: expect.any(String), error: expect.objectContaining({ code: 'SECTION_BUSY' }) }]);
    expect(throwRow.errors[0]!.error.message).toContain(`(held by job ${holder})`);
    expect(by['onBusy: wait']!.row.waitedMs).toBeGreaterThan(0);
    expect(warnings).toEqual([]);
  }, 60_000);
});
