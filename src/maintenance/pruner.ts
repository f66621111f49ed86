// Retention: delete settled history in small batches, each its own short statement (and so its
// own transaction), so a prune of millions of rows never holds long locks or a long snapshot.
import { z } from 'zod';
import { pointInPast } from '../duration.ts';
import { parseOptions } from '../options.ts';
import type { JobState, PrismaLike, PruneOptions, PruneResult } from '../types.ts';

export const PRUNABLE_STATES = ['finished', 'skipped', 'failed', 'dead'] as const satisfies readonly JobState[];
export const PRUNE_DEFAULT_BATCH = 5000;

const olderThanSchema = z.custom<PruneOptions['olderThan']>((v) => pointInPast(v) !== null, {
  message: "expected a Date, an ISO 8601 date, milliseconds or a duration such as '30d', '12h', '90m'",
});

export const pruneOptionsSchema = z.strictObject({
  olderThan: olderThanSchema,
  states: z
    .array(z.enum(PRUNABLE_STATES, { message: `expected some of ${PRUNABLE_STATES.join(', ')} (started rows are never pruned)` }))
    .min(1, 'give at least one state, or leave it out for all settled states')
    .default([...PRUNABLE_STATES]),
  batchSize: z.int().min(1).max(100_000).default(PRUNE_DEFAULT_BATCH),
  dryRun: z.boolean().default(false),
  onProgress: z.custom<NonNullable<PruneOptions['onProgress']>>((v) => typeof v === 'function', { message: 'expected a function' }).optional(),
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal, { message: 'expected an AbortSignal' }).optional(),
});

/** The interval option of `createJobLog`: prune every `every` with these options. */
export const prunePlanSchema = pruneOptionsSchema
  .omit({ dryRun: true, onProgress: true, signal: true })
  .extend({
    olderThan: olderThanSchema.refine((v) => !(v instanceof Date) && !(typeof v === 'string' && /^\d{4}-/.test(v)), {
      message: "expected a duration such as '30d' (a fixed date would prune nothing new on later runs)",
    }),
    every: z.custom<number | string>((v) => pointInPast(v, new Date(0)) !== null && !(v instanceof Date), {
      message: "expected milliseconds or a duration such as '1h'",
    }),
  });

// The ids come from an index range on (state, finished_at); the DELETE then finds each by its
// primary key. SKIP LOCKED: a row some other transaction holds is left for the next run.
const deleteBatch = `
WITH doomed AS (
  SELECT id FROM job_logs
   WHERE state = ANY ($1::text[]::"JobState"[]) AND finished_at < $2::timestamptz
   LIMIT $3::int
   FOR UPDATE SKIP LOCKED
), deleted AS (
  DELETE FROM job_logs l USING doomed WHERE l.id = doomed.id RETURNING 1
)
SELECT count(*)::int AS n FROM deleted`;

const countDoomed = `
SELECT count(*)::bigint AS n FROM job_logs
 WHERE state = ANY ($1::text[]::"JobState"[]) AND finished_at < $2::timestamptz`;

/** Delete settled rows that finished before `olderThan`, `batchSize` at a time. */
export async function prune(prisma: PrismaLike, options: PruneOptions): Promise<PruneResult> {
  const o = parseOptions(pruneOptionsSchema, options, 'prune');
  const olderThan = pointInPast(o.olderThan)!;
  if (o.dryRun) {
    const [row] = (await prisma.$queryRawUnsafe<{ n: bigint | number | string }[]>(countDoomed, o.states, olderThan)) ?? [];
    return { deleted: Number(row?.n ?? 0), batches: 0, olderThan, dryRun: true };
  }
  let deleted = 0;
  let batches = 0;
  while (!o.signal?.aborted) {
    const n = await deleteOnce(prisma, o.states, olderThan, o.batchSize);
    if (n === 0) break;
    deleted += n;
    batches += 1;
    o.onProgress?.({ deleted, batches });
    if (n < o.batchSize) break;
  }
  return { deleted, batches, olderThan, dryRun: false };
}

async function deleteOnce(prisma: PrismaLike, states: string[], olderThan: Date, batchSize: number): Promise<number> {
  const [row] = (await prisma.$queryRawUnsafe<{ n: number }[]>(deleteBatch, states, olderThan, batchSize)) ?? [];
  return Number(row?.n ?? 0);
}
