import { readFile } from 'node:fs/promises';
import { describe, expect, test } from 'vitest';
import { formatReport, formatTable, runScenario, summaryLine } from '../scripts/lib/demo-scenario.ts';
import type { JobLogWarning } from '../src/index.ts';
import { setupTestDb } from './helpers/db.ts';

const db = setupTestDb('demo');

/** The demo's lines with ids, times and column padding taken out: what must not change between runs. */
const stableLines = (text: string) => text.split('\n')
  .map((line) => line.replace(/\b[0-9a-f]{8}\b/g, 'ID').replace(/\d+ ms\b/g, 'T').replace(/ +/g, ' ').trim())
  .filter(Boolean);

/** The README's sample output: the block after "Try it" that starts with the demo's first line. */
async function readmeSample(): Promise<string> {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8');
  const block = /```\n(embedded PostgreSQL \(started for this run\)[\s\S]*?)```/.exec(readme);
  if (!block) throw new Error('README: no sample output of npm run demo');
  return block[1]!.slice(0, block[1]!.indexOf('where to look next'));
}

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
      'bad payload | financial_data_import | dave | financial | failed | 1/4 | attempt 1: invalid payload: fileId: Invalid input: expected…',
    ]);

    expect(by['onBusy: skip']!.row.holderJid).toBe(holder);
    const throwRow = by['onBusy: throw']!.row;
    expect(throwRow.errors).toEqual([{ attempt: 1, at: expect.any(String), holderJid: holder, error: expect.objectContaining({ code: 'SECTION_BUSY' }) }]);
    expect(throwRow.errors[0]!.error.message).toContain(`(held by job ${holder})`);
    expect(by['onBusy: wait']!.row.waitedMs).toBeGreaterThan(0);
    expect(warnings).toEqual([]);

    const printed = `embedded PostgreSQL (started for this run)\n${formatReport(cases)}`;
    expect(stableLines(await readmeSample())).toEqual(stableLines(printed));
  }, 60_000);
});
