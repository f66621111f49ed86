// joblog retry / cancel / release: what an operator's script sees (exit codes, one line, JSON).
import { describe, expect, test } from 'vitest';
import { runCli } from './helpers/cli.ts';
import { setupTestDb } from './helpers/db.ts';
import { FAST, gate, queueName, tracked, waitForBossState, waitForRow } from './helpers/joblog.ts';

const db = setupTestDb('cli_actions');

describe('joblog retry, cancel, release', () => {
  test('retry runs a dead job again (exit 0, JSON result); release of a live holder is refused with exit 4 and one line', async () => {
    const { boss, joblog } = await tracked(db);
    const queue = queueName('cli-retry');
    await boss.createQueue(queue, { retryLimit: 0 });
    let healthy = false;
    const hold = gate();
    await joblog.work(queue, { ...FAST, type: 'financial_data_import', group: 'financial', userId: () => 'u-cli-act' }, async () => {
      if (!healthy) throw new Error('bank down');
      await hold.promise;
    });
    const jid = (await boss.send(queue, {}))!;
    await waitForRow(joblog, jid, ['failed']);
    healthy = true;

    const [retried, refusedFinished] = await Promise.all([
      runCli(db.url, ['retry', jid, '--by', 'ops-script', '--json']),
      runCli(db.url, ['release', '00000000-0000-4000-8000-000000000000']),
    ]);
    expect(retried.stderr).toBe('');
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toMatchObject({ action: 'retry', jid, changed: true, row: { state: 'started' } });
    expect(refusedFinished.code).toBe(4);
    expect(refusedFinished.stderr.trim()).toBe('joblog release: release of job 00000000-0000-4000-8000-000000000000 refused: the log has no row for this job');

    await waitForBossState(db, jid, ['active']);
    const alive = await runCli(db.url, ['release', jid]);
    expect(alive.code).toBe(4);
    expect(alive.stdout).toBe('');
    expect(alive.stderr.trim().split('\n')).toEqual([`joblog release: release of job ${jid} refused: its holder is alive: pg-boss has the job running or waiting for its retry`]);
    hold.open();
    const row = await waitForRow(joblog, jid, ['finished']);
    expect(row.errors.at(-1)!.error.message).toBe('retry requested by ops-script; the job had ended failed');
  }, 60_000);
});
