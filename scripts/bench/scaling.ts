// Throughput with 1, 2 and 4 worker processes on one PostgreSQL: every process runs the same
// worker (batch 50 × 4) on one shared backlog; untracked and tracked, in the same run.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchContext, uniqueName } from './context.ts';
import { countCompleted, type DrainShape, fillQueue, type Mode } from './throughput.ts';

export interface ScalingPoint {
  processes: number;
  untracked: number;
  tracked: number;
  ratio: number;
}

const script = path.join(import.meta.dirname, 'worker-process.ts');

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
  const children = await Promise.all(Array.from({ length: processes }, () => spawnWorker({ url: ctx.url, queue, mode, shape })));
  try {
    await sleep(1100); // each process's queue cache now sees the backlog
    const started = performance.now();
    for (const child of children) child.send('go');
    while ((await countCompleted(ctx, queue)) < shape.jobs) await sleep(10);
    return shape.jobs / ((performance.now() - started) / 1000);
  } finally {
    await Promise.all(children.map(stopWorker));
    await ctx.boss.deleteQueue(queue);
  }
}

function spawnWorker(orders: object): Promise<ChildProcess> {
  const child = fork(script, [JSON.stringify(orders)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`worker process exited with ${code} before it was ready`)));
    child.once('message', (message) => (message === 'ready' ? resolve(child) : reject(new Error(`worker process: ${JSON.stringify(message)}`))));
  });
}

function stopWorker(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.once('exit', () => resolve());
    child.send('stop');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}
