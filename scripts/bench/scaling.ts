// Throughput with 1, 2 and 4 worker processes on one PostgreSQL: every process runs the same
// worker (batch 50 × 4) on one shared backlog; untracked and tracked, in the same run.
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchContext, uniqueName } from './context.ts';
import { countCompleted, type DrainShape, fillQueue, type Mode, waitForDrained } from './throughput.ts';
import { spawnWorker } from './worker-host.ts';

export interface ScalingPoint {
  processes: number;
  untracked: number;
  tracked: number;
  ratio: number;
}

export async function measureScaling(
  ctx: BenchContext,
  counts: number[],
  shape: DrainShape,
  onDone: (label: string) => void,
): Promise<ScalingPoint[]> {
  const points: ScalingPoint[] = [];
  for (const processes of counts) {
    const rate = { untracked: 0, tracked: 0 };
    for (const mode of ['untracked', 'tracked'] as const) {
      rate[mode] = await drainWith(ctx, processes, mode, shape);
      onDone(`scaling: ${processes} process(es) ${mode}`);
    }
    points.push({ processes, ...rate, ratio: rate.tracked / rate.untracked });
  }
  return points;
}

async function drainWith(ctx: BenchContext, processes: number, mode: Mode, shape: DrainShape): Promise<number> {
  const queue = uniqueName(`bench-scale-${mode}`);
  await fillQueue(ctx.boss, queue, shape.jobs);
  const workers = await Promise.all(Array.from({ length: processes }, () => spawnWorker(ctx.url, (w) => ctx.warnings.push(w))));
  try {
    await sleep(1100); // each process's queue cache now sees the backlog
    const started = performance.now();
    for (const worker of workers) worker.go({ queue, mode, shape });
    await waitForDrained(ctx, queue, workers);
    const rate = shape.jobs / ((performance.now() - started) / 1000);
    await Promise.all(workers.map((w) => w.stop()));
    const completed = await countCompleted(ctx, queue);
    if (completed !== shape.jobs) throw new Error(`scaling ${mode} on ${queue}: ${completed} of ${shape.jobs} jobs completed`);
    return rate;
  } finally {
    await Promise.all(workers.map((w) => w.close()));
    await ctx.boss.deleteQueue(queue);
  }
}
