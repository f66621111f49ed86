// Tracked versus untracked pg-boss throughput, interleaved in one run: each round drains one
// backlog with a plain `boss.work` no-op handler and one with `joblog.work`, same options, in
// alternating order, and compares the medians.
import { setTimeout as sleep } from 'node:timers/promises';
import type { PgBoss } from 'pg-boss';
import type { JobLog } from '../../src/index.ts';
import { type BenchContext, uniqueName } from './context.ts';
import { median } from './stats.ts';

export interface DrainShape {
  batchSize: number;
  localConcurrency: number;
  jobs: number;
}

/**
 * `untracked`: plain `boss.work`, no-op handler. `perJob`: the same with the two pg-boss options
 * the tracker needs (includeMetadata, perJobResults) and no log: it tells how much of the gap is
 * pg-boss's own cost of those options. `tracked`: `joblog.work`, no-op handler.
 */
export type Mode = 'untracked' | 'perJob' | 'tracked';

export interface ThroughputResult extends DrainShape {
  rounds: number;
  untracked: number[];
  tracked: number[];
  /** Only measured in the full run. */
  perJob: number[];
  /** median tracked rate / median untracked rate */
  ratio: number;
}

/** The options both workers get: burst while a backlog is waiting, else pg-boss polls every 2 s. */
export const workOptions = (shape: DrainShape) => ({
  batchSize: shape.batchSize,
  localConcurrency: shape.localConcurrency,
  burstWhenReadyExceeds: 1,
  pollingIntervalSeconds: 0.5,
});

/** Queue `jobs` jobs, each for its own user (every tracked job takes a section, none collide). */
export async function fillQueue(boss: PgBoss, queue: string, jobs: number): Promise<void> {
  await boss.createQueue(queue, { retryLimit: 1 });
  const chunk = 2000;
  for (let from = 0; from < jobs; from += chunk) {
    const batch = Array.from({ length: Math.min(chunk, jobs - from) }, (_, i) => ({ data: { userId: `u${from + i}` } }));
    await boss.insert(queue, batch);
  }
  // pg-boss's burst mode reads a cached ready count that its monitor computes; count it now.
  await boss.supervise(queue);
}

export async function countCompleted(ctx: BenchContext, queue: string): Promise<number> {
  const { rows } = await ctx.pool.query(
    `SELECT count(*)::int AS n FROM pgboss.job WHERE name = $1 AND state = 'completed'`,
    [queue],
  );
  return rows[0].n;
}

/** Register the worker of `mode` on `queue`. */
export function startWorker(boss: PgBoss, joblog: JobLog, mode: Mode, queue: string, shape: DrainShape): Promise<string> {
  if (mode === 'untracked') {
    return boss.work(queue, workOptions(shape), async () => {});
  }
  if (mode === 'perJob') {
    return boss.work(queue, { ...workOptions(shape), includeMetadata: true, perJobResults: true }, async (jobs) =>
      jobs.map((job) => ({ id: job.id, status: 'completed' as const })));
  }
  return joblog.work(queue, {
    ...workOptions(shape),
    type: 'report_export',
    group: 'bench',
    userId: (job: { data: { userId: string } }) => job.data.userId,
  }, async () => {});
}

/** Drain a filled queue; resolves to jobs per second, from the worker's start to the last completion. */
export async function drain(ctx: BenchContext, mode: Mode, queue: string, shape: DrainShape): Promise<number> {
  const started = performance.now();
  await startWorker(ctx.boss, ctx.joblog, mode, queue, shape);
  while ((await countCompleted(ctx, queue)) < shape.jobs) await sleep(10);
  const seconds = (performance.now() - started) / 1000;
  await ctx.boss.offWork(queue);
  await ctx.boss.deleteQueue(queue);
  return shape.jobs / seconds;
}

export async function measureThroughput(
  ctx: BenchContext,
  shape: DrainShape,
  rounds: number,
  modes: Mode[],
  onRound: (label: string) => void,
): Promise<ThroughputResult> {
  const rates: Record<Mode, number[]> = { untracked: [], perJob: [], tracked: [] };
  // Every round's backlogs first, so one wait lets the queue cache see them all.
  const plan = Array.from({ length: rounds }, (_, round) => {
    // Rotate the order, so no mode always runs first (or right after another).
    const order = modes.map((_, i) => modes[(i + round) % modes.length]!);
    return order.map((mode) => ({ mode, queue: uniqueName(`bench-${mode}-b${shape.batchSize}`) }));
  });
  for (const { queue } of plan.flat()) await fillQueue(ctx.boss, queue, shape.jobs);
  await sleep(1100);
  for (const [round, runs] of plan.entries()) {
    for (const { mode, queue } of runs) {
      rates[mode].push(await drain(ctx, mode, queue, shape));
      onRound(`batch ${shape.batchSize}×${shape.localConcurrency} round ${round + 1}/${rounds} ${mode}`);
    }
  }
  return { ...shape, rounds, ...rates, ratio: median(rates.tracked) / median(rates.untracked) };
}
