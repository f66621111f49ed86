// Retention: delete settled history in small batches, each its own short statement (and so its
// own transaction), so a prune of millions of rows never holds long locks or a long snapshot.
import { z } from 'zod';
import { pointInPastSchema } from '../duration.ts';
import { parseOptions, PRUNABLE_STATES, prunableStatesSchema } from '../options.ts';
import { markStale } from '../sql.ts';
import type { PrismaLike, PruneOptions, PruneResult } from '../types.ts';

export const PRUNE_DEFAULT_BATCH = 5000;

export const pruneOptionsSchema = z.strictObject({
  olderThan: pointInPastSchema,
  states: prunableStatesSchema.default([...PRUNABLE_STATES]),
  batchSize: z.int().min(1).max(100_000).default(PRUNE_DEFAULT_BATCH),
  dryRun: z.boolean().default(false),
  onProgress: z.custom<NonNullable<PruneOptions['onProgress']>>((v) => typeof v === 'function', { message: 'expected a function' }).optional(),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'expected an AbortSignal' }).optional(),
});

// One state at a time, oldest first: `state = $1 AND finished_at < cut-off ORDER BY finished_at`
// is one range of the (state, finished_at) index read in order, so a batch touches only the rows
// it deletes, and the next batch resumes where this one ended (`finished_at >= $3`) instead of
// walking again over the index entries of rows already deleted. The DELETE finds each row by its
// primary key (`id = ANY (ARRAY …)`: a join here made the planner read the whole primary key).
// SKIP LOCKED: a row another transaction holds is left for the next run. The summaries of the
// hours it deleted from are marked stale (stats() reads them live until the next summary pass).
// $1 state, $2 cut-off, $3 resume from (null: the start), $4 batch size
export const deleteBatch = `
WITH doomed AS (
  SELECT id, finished_at FROM job_logs
   WHERE state = $1::text::"JobState" AND finished_at < $2::timestamptz AND finished_at >= coalesce($3::timestamptz, '-infinity')
   ORDER BY finished_at
   LIMIT $4::int
   FOR UPDATE SKIP LOCKED
), deleted AS (
  DELETE FROM job_logs WHERE id = ANY (ARRAY (SELECT id FROM doomed)) RETURNING finished_at, started_at
), stale AS (${markStale('deleted')})
SELECT count(*)::int AS n, max(finished_at) AS last FROM deleted`;

/** $1 states, $2 cut-off */
export const countDoomed = `
SELECT count(*)::bigint AS n FROM job_logs
 WHERE state = ANY ($1::text[]::"JobState"[]) AND finished_at < $2::timestamptz`;

/** Delete settled rows that finished before `olderThan`, oldest first, `batchSize` at a time. */
export async function prune(prisma: PrismaLike, options: PruneOptions): Promise<PruneResult> {
  const o = parseOptions(pruneOptionsSchema, options, 'prune');
  const { olderThan } = o;
  if (o.dryRun) {
    const [row] = (await prisma.$queryRawUnsafe<{ n: bigint | number | string }[]>(countDoomed, o.states, olderThan)) ?? [];
    return { deleted: Number(row?.n ?? 0), batches: 0, olderThan, dryRun: true };
  }
  let deleted = 0;
  let batches = 0;
  for (const state of o.states) {
    let from: Date | null = null;
    while (!o.signal?.aborted) {
      const batch = await deleteOnce(prisma, state, olderThan, from, o.batchSize);
      if (batch.n === 0) break;
      deleted += batch.n;
      batches += 1;
      o.onProgress?.({ deleted, batches });
      if (batch.n < o.batchSize || !batch.last) break;
      from = batch.last;
    }
  }
  return { deleted, batches, olderThan, dryRun: false };
}

async function deleteOnce(
  prisma: PrismaLike, state: string, olderThan: Date, from: Date | null, batchSize: number,
): Promise<{ n: number; last: Date | null }> {
  const [row] = (await prisma.$queryRawUnsafe<{ n: number; last: Date | string | null }[]>(
    deleteBatch, state, olderThan, from, batchSize,
  )) ?? [];
  return { n: Number(row?.n ?? 0), last: row?.last == null ? null : new Date(row.last) };
}
