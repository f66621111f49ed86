// Throughput and CPU per job of pg-boss workers with and without the log, interleaved in one
// run: each round drains one backlog per mode, in rotating order, in a worker process of its own
// (scripts/bench/worker-process.ts), and compares the medians of the rounds.
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type { PgBoss } from 'pg-boss';
import type { JobLog } from '../../src/index.ts';
import { type BenchContext, uniqueName } from './context.ts';
import { handWrittenHandler } from './hand-written.ts';
import { median } from './stats.ts';
import type { BenchWorker } from './worker-host.ts';

export interface DrainShape {
  batchSize: number;
  localConcurrency: number;
  jobs: number;
}

/**
 * `untracked`: plain `boss.work`, no-op handler. `perJob`: the same with the two pg-boss options
 * the tracker needs (includeMetadata, perJobResults) and no log: pg-boss's own cost of those
 * options; `metadataOnly` and `perJobResultsOnly`: each of the two alone. `tracked`: `joblog.work`, every job takes a section of its own. `trackedNoSection`: the
 * same without a group (no section). `handWritten`: INSERT + UPDATE per job through pg
 * (hand-written.ts), rows with a section; `handWrittenNoSection`: its rows without a group.
 * `trackedViaBoss`: `tracked` with `writesThrough: 'pg-boss'` (the log's writes on pg-boss's pool).
 */
export const MODES = ['untracked', 'perJob', 'metadataOnly', 'perJobResultsOnly', 'tracked', 'trackedViaBoss', 'trackedNoSection', 'handWritten', 'handWrittenNoSection'] as const;
export type Mode = (typeof MODES)[number];

export const MODE_LABELS: Record<Mode, string> = {
  untracked: 'untracked',
  perJob: 'pg-boss + includeMetadata + perJobResults, no log',
  metadataOnly: 'pg-boss + includeMetadata, no log',
  perJobResultsOnly: 'pg-boss + perJobResults, no log',
  tracked: 'tracked, with a section',
  trackedViaBoss: "tracked, with a section, writesThrough 'pg-boss'",
  trackedNoSection: 'tracked, no section',
  handWritten: 'hand-written, with a section',
  handWrittenNoSection: 'hand-written, no section',
};

/** One round of one mode. */
export interface DrainMeasurement {
  jobsPerSecond: number;
  /** The worker process's CPU (user + system) per job drained. */
  appMicrosPerJob: number;
  /** PostgreSQL's CPU per job drained (see cpu.ts for what is counted). */
  dbMicrosPerJob: number;
}

export interface ThroughputResult extends DrainShape {
  rounds: number;
  runs: Partial<Record<Mode, DrainMeasurement[]>>;
}

/** The median over the rounds of one figure of a mode; NaN when the mode was not run. */
export function medianOf(t: ThroughputResult, mode: Mode, figure: keyof DrainMeasurement): number {
  return median((t.runs[mode] ?? []).map((m) => m[figure]));
}

/** Median rate of `mode` over median rate of `base`. */
export const rateRatio = (t: ThroughputResult, mode: Mode, base: Mode): number =>
  medianOf(t, mode, 'jobsPerSecond') / medianOf(t, base, 'jobsPerSecond');

/** The options every mode's worker gets: burst while a backlog is waiting, else pg-boss polls every 0.5 s. */
export const workOptions = (shape: DrainShape) => ({
  batchSize: shape.batchSize,
  localConcurrency: shape.localConcurrency,
  burstWhenReadyExceeds: 1,
  pollingIntervalSeconds: 0.5,
});

/** Queue `jobs` jobs, each for its own user (every job with a section takes its own, none collide). */
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

/**
 * Wait until no job of `queue` is waiting or running. Polled every 10 ms on the probe connection
 * with a statement that stops at the first open job (pg-boss's index of live jobs), so polling
 * costs the database little, and nothing of what the server-CPU figure counts.
 */
export async function waitForDrained(ctx: BenchContext, queue: string, workers: BenchWorker[]): Promise<void> {
  const open = `SELECT EXISTS (SELECT 1 FROM pgboss.job WHERE name = $1 AND state IN ('created', 'retry', 'active')) AS open`;
  while ((await ctx.probe.query<{ open: boolean }>(open, [queue])).rows[0]!.open) {
    for (const worker of workers) worker.check();
    await sleep(10);
  }
}

/** What a worker of any mode needs: pg-boss, a job log, and a pool for the hand-written log. */
export interface WorkerDeps {
  boss: PgBoss;
  joblog: JobLog;
  /** The same log with `writesThrough: 'pg-boss'`. */
  joblogViaBoss?: JobLog;
  pool: pg.Pool;
}

const noop = async () => {};

/** Register the worker of `mode` on `queue`. */
export function startWorker(deps: WorkerDeps, mode: Mode, queue: string, shape: DrainShape): Promise<string> {
  const { boss, joblog, joblogViaBoss, pool } = deps;
  const userId = (job: { data: { userId: string } }) => job.data.userId;
  switch (mode) {
    case 'untracked':
      return boss.work(queue, workOptions(shape), noop);
    case 'perJob':
      return boss.work(queue, { ...workOptions(shape), includeMetadata: true, perJobResults: true }, async (jobs) =>
        jobs.map((job) => ({ id: job.id, status: 'completed' as const })));
    case 'metadataOnly':
      return boss.work(queue, { ...workOptions(shape), includeMetadata: true }, noop);
    case 'perJobResultsOnly':
      return boss.work(queue, { ...workOptions(shape), perJobResults: true }, async (jobs) =>
        jobs.map((job) => ({ id: job.id, status: 'completed' as const })));
    case 'tracked':
      return joblog.work(queue, { ...workOptions(shape), type: 'report_export', group: 'bench', userId }, noop);
    case 'trackedViaBoss':
      if (!joblogViaBoss) throw new Error("trackedViaBoss needs the worker's writesThrough 'pg-boss' log");
      return joblogViaBoss.work(queue, { ...workOptions(shape), type: 'report_export', group: 'bench', userId }, noop);
    case 'trackedNoSection':
      return joblog.work(queue, { ...workOptions(shape), type: 'report_export', userId }, noop);
    case 'handWritten':
      return boss.work(queue, workOptions(shape), handWrittenHandler(pool, queue, 'bench', noop));
    case 'handWrittenNoSection':
      return boss.work(queue, workOptions(shape), handWrittenHandler(pool, queue, null, noop));
  }
}

/** Drain a filled queue with `worker`: rate from the order to work to the last job done, and CPU. */
export async function drain(ctx: BenchContext, worker: BenchWorker, mode: Mode, queue: string, shape: DrainShape): Promise<DrainMeasurement> {
  const db = await ctx.serverCpu.read();
  const started = performance.now();
  worker.go({ queue, mode, shape });
  await waitForDrained(ctx, queue, [worker]);
  const seconds = (performance.now() - started) / 1000;
  const dbMicros = (await ctx.serverCpu.read()) - db;
  const appMicros = await worker.stop();
  const completed = await countCompleted(ctx, queue);
  if (completed !== shape.jobs) throw new Error(`${mode} on ${queue}: ${completed} of ${shape.jobs} jobs completed`);
  await ctx.boss.deleteQueue(queue);
  return { jobsPerSecond: shape.jobs / seconds, appMicrosPerJob: appMicros / shape.jobs, dbMicrosPerJob: dbMicros / shape.jobs };
}

/**
 * Drain a small backlog in every mode, unmeasured: the worker process's code is compiled and its
 * pools connected before the first round, which would otherwise pay for them.
 */
export async function warmUp(ctx: BenchContext, worker: BenchWorker, modes: readonly Mode[]): Promise<void> {
  const shape: DrainShape = { batchSize: 10, localConcurrency: 4, jobs: 200 };
  const queues = modes.map((mode) => ({ mode, queue: uniqueName(`bench-warm-${mode}`) }));
  for (const { queue } of queues) await fillQueue(ctx.boss, queue, shape.jobs);
  await sleep(1100);
  for (const { mode, queue } of queues) await drain(ctx, worker, mode, queue, shape);
}

export async function measureThroughput(
  ctx: BenchContext,
  worker: BenchWorker,
  shape: DrainShape,
  rounds: number,
  modes: readonly Mode[],
  onRound: (label: string) => void,
): Promise<ThroughputResult> {
  const runs: Partial<Record<Mode, DrainMeasurement[]>> = {};
  // Every round's backlogs first, so one wait lets the queue cache see them all.
  const plan = Array.from({ length: rounds }, (_, round) => {
    // Rotate the order, so no mode always runs first (or right after another).
    const order = modes.map((_, i) => modes[(i + round) % modes.length]!);
    return order.map((mode) => ({ mode, queue: uniqueName(`bench-${mode}-b${shape.batchSize}`) }));
  });
  for (const { queue } of plan.flat()) await fillQueue(ctx.boss, queue, shape.jobs);
  await sleep(1100);
  for (const [round, order] of plan.entries()) {
    for (const { mode, queue } of order) {
      (runs[mode] ??= []).push(await drain(ctx, worker, mode, queue, shape));
      onRound(`batch ${shape.batchSize}×${shape.localConcurrency} round ${round + 1}/${rounds} ${mode}`);
    }
  }
  return { ...shape, rounds, runs };
}
