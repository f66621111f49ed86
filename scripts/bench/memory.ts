// Memory: the heap before and after a long tracked run (collected with --expose-gc), and its
// peak in between, to show the tracker keeps nothing per job.
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchContext, uniqueName } from './context.ts';
import { countCompleted, fillQueue, startWorker } from './throughput.ts';

export interface MemoryMeasurement {
  jobs: number;
  seconds: number;
  heapBeforeMB: number;
  heapAfterMB: number;
  heapPeakMB: number;
}

const mb = (bytes: number) => bytes / 1024 / 1024;

function collect(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the bench with node --expose-gc (npm run bench does)');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

export async function measureMemory(ctx: BenchContext, jobs: number, onProgress: (done: number) => void): Promise<MemoryMeasurement> {
  const shape = { batchSize: 50, localConcurrency: 4, jobs };
  const queue = uniqueName('bench-memory');
  await fillQueue(ctx.boss, queue, jobs);
  await sleep(1100);
  // A warm-up batch first, so the first heap reading includes the code and caches of a running worker.
  const warm = uniqueName('bench-memory-warm');
  await fillQueue(ctx.boss, warm, 500);
  await sleep(1100);
  await startWorker(ctx.boss, ctx.joblog, 'tracked', warm, shape);
  while ((await countCompleted(ctx, warm)) < 500) await sleep(20);
  await ctx.boss.offWork(warm);
  await ctx.boss.deleteQueue(warm);

  const before = collect();
  let peak = before;
  const started = performance.now();
  await startWorker(ctx.boss, ctx.joblog, 'tracked', queue, shape);
  for (let done = 0; done < jobs; ) {
    await sleep(250);
    done = await countCompleted(ctx, queue);
    peak = Math.max(peak, process.memoryUsage().heapUsed);
    onProgress(done);
  }
  const seconds = (performance.now() - started) / 1000;
  await ctx.boss.offWork(queue);
  await ctx.boss.deleteQueue(queue);
  const after = collect();
  return { jobs, seconds, heapBeforeMB: mb(before), heapAfterMB: mb(after), heapPeakMB: mb(peak) };
}
