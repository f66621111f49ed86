// Prune throughput: joblog.prune() removes old history in batches while 8 connections keep
// claiming and releasing sections; reports rows/s and the claims' latency meanwhile.
import type { BenchContext } from './context.ts';
import { percentile } from './stats.ts';

export interface PruneMeasurement {
  deleted: number;
  batches: number;
  seconds: number;
  rowsPerSecond: number;
  claimsDuring: number;
  claimP50: number;
  claimP99: number;
}

const CLAIMERS = 8;

export async function measurePrune(ctx: BenchContext, olderThan: string, batchSize: number): Promise<PruneMeasurement> {
  let pruning = true;
  const samples: number[] = [];
  const claimers = Array.from({ length: CLAIMERS }, async (_, c) => {
    for (let i = 0; pruning; i++) {
      const started = performance.now();
      await ctx.joblog.section({ type: 'reconciliation', userId: `pruning-${c}`, group: 'bench-prune' }, async () => {
        samples.push(performance.now() - started);
      });
    }
  });
  const started = performance.now();
  let result;
  try {
    result = await ctx.joblog.prune({ olderThan, batchSize });
  } finally {
    pruning = false;
    await Promise.all(claimers);
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    deleted: result.deleted,
    batches: result.batches,
    seconds,
    rowsPerSecond: result.deleted / seconds,
    claimsDuring: samples.length,
    claimP50: percentile(samples, 50),
    claimP99: percentile(samples, 99),
  };
}
