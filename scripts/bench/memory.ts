// Memory: the heap (after gc(), so only what is still referenced) before a long tracked run,
// half-way and at the end. A tracker that kept anything per job would grow between the half-way
// and the final reading as much as in the first half; a constant one does not grow after warming up.
import { setTimeout as sleep } from 'node:timers/promises';
import { type BenchContext, uniqueName } from './context.ts';
import { countCompleted, type DrainShape, fillQueue, startWorker } from './throughput.ts';

export interface MemoryMeasurement {
  jobs: number;
  seconds: number;
  heapBeforeMB: number;
  heapHalfMB: number;
  heapAfterMB: number;
  heapPeakMB: number;
}

const mb = (bytes: number) => bytes / 1024 / 1024;

/**
 * The heap after full collections. AbortSignal.any (pg-boss gives every job one) keeps its
 * dependents through weak references that are only cleared between turns of the event loop, so a
 * collection is repeated across a few turns before the heap is read.
 */
async function collect(): Promise<number> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the bench with node --expose-gc (npm run bench does)');
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    await sleep(20);
  }
  return process.memoryUsage().heapUsed;
}

export async function measureMemory(ctx: BenchContext, jobs: number, onProgress: (done: number) => void): Promise<MemoryMeasurement> {
  const shape: DrainShape = { batchSize: 50, localConcurrency: 4, jobs: Math.floor(jobs / 2) };
  const queues = [uniqueName('bench-memory-warm'), uniqueName('bench-memory-1'), uniqueName('bench-memory-2')];
  await fillQueue(ctx.boss, queues[0]!, 2000);
  for (const queue of queues.slice(1)) await fillQueue(ctx.boss, queue, shape.jobs);
  await sleep(1100);
  let peak = 0;
  const run = async (queue: string, count: number, offset: number) => {
    await startWorker(ctx, 'tracked', queue, shape);
    for (let done = 0; done < count; ) {
      await sleep(200);
      done = await countCompleted(ctx, queue);
      peak = Math.max(peak, process.memoryUsage().heapUsed);
      onProgress(offset + done);
    }
    await ctx.boss.offWork(queue);
    await ctx.boss.deleteQueue(queue);
  };
  await run(queues[0]!, 2000, 0); // warm-up: code, caches and pools of a running worker
  const before = await collect();
  const started = performance.now();
  await run(queues[1]!, shape.jobs, 0);
  const half = await collect();
  await run(queues[2]!, shape.jobs, shape.jobs);
  const seconds = (performance.now() - started) / 1000;
  const after = await collect();
  return { jobs: shape.jobs * 2, seconds, heapBeforeMB: mb(before), heapHalfMB: mb(half), heapAfterMB: mb(after), heapPeakMB: mb(peak) };
}
