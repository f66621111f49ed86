// The reaper: brings every `started` row in line with what pg-boss knows of its job, so a
// section held by a crashed worker, a lost final write or a cancelled job opens again.
//
// One statement reads the started rows joined with pg-boss's job table and settles the rows
// whose fate is known. Each UPDATE is guarded by the row's state, attempt and updated_at as
// read: a row that anyone wrote in between (a retry re-entering it, a worker settling it, a
// section renewing its lease, another reaper) is left alone. So any number of reapers can run
// at once, from any process, and a row is never transitioned twice.
import { z } from 'zod';
import { bossSchemaName, maxHoldSchema, parseOptions } from '../options.ts';
import { MESSAGE_CHARS } from '../sanitise.ts';
import { appendError, leaseExpiredMessage } from '../sql.ts';
import type { PrismaLike, ReapResult } from '../types.ts';

export const reapOptionsSchema = z.strictObject({
  maxHoldSeconds: maxHoldSchema.default({ byGroup: {}, byType: {} }),
  bossSchema: bossSchemaName,
  /** Only this job's row (an operator's release or cancel). */
  jid: z.uuid().optional(),
});

export type ReapOptions = z.input<typeof reapOptionsSchema>;

/**
 * The verdicts, in one statement. $1 max hold by job type (jsonb), $2 max hold by group (jsonb),
 * $3 one job's id or null for every started row.
 * A row of `joblog.section()` (lease_until set) has no pg-boss job: only its lease counts.
 */
const reapStatement = (bossSchema: string) => `
WITH candidates AS (
  SELECT l.id, l.attempt, l.updated_at, l.started_at, l.lease_until,
         j.id IS NULL AS missing, j.state::text AS boss_state, j.completed_on, j.output,
         LEAST(($1::jsonb ->> l.job_type::text)::numeric, ($2::jsonb ->> l."group")::numeric) AS max_hold
    FROM job_logs l
    -- LATERAL: one primary-key lookup (name, id) per started row, however large pg-boss's table
    LEFT JOIN LATERAL (
      SELECT b.id, b.state, b.completed_on, b.output FROM "${bossSchema}".job b
       WHERE b.name = l.queue AND b.id = l.jid AND l.lease_until IS NULL
       LIMIT 1 -- the key is unique; LIMIT also keeps the planner from flattening this into a hash join
    ) j ON true
   WHERE l.state = 'started' AND ($3::uuid IS NULL OR l.jid = $3::uuid)
), verdicts AS (
  SELECT c.*,
    CASE
      WHEN c.lease_until IS NOT NULL THEN
        CASE WHEN c.lease_until < clock_timestamp() THEN 'LEASE_EXPIRED' END
      WHEN c.missing THEN 'JOB_MISSING'
      WHEN c.boss_state = 'completed' THEN 'COMPLETED'
      WHEN c.boss_state = 'failed' THEN 'JOB_FAILED'
      WHEN c.boss_state = 'cancelled' THEN 'JOB_CANCELLED'
      WHEN c.boss_state IN ('created', 'retry') THEN
        CASE WHEN c.started_at + c.max_hold * interval '1 second' < clock_timestamp()
             THEN 'MAX_HOLD_EXCEEDED' ELSE 'KEPT' END
    END AS verdict
    FROM candidates c
), reasons AS (
  SELECT v.*,
    jsonb_build_object('name', 'ReaperError', 'code', v.verdict, 'message', CASE v.verdict
      WHEN 'LEASE_EXPIRED' THEN ${leaseExpiredMessage('v.lease_until')}
      WHEN 'JOB_MISSING' THEN 'job no longer exists in pg-boss'
      WHEN 'JOB_FAILED' THEN 'worker lost: pg-boss failed the job'
        || COALESCE(' (' || left(COALESCE(v.output ->> 'message', v.output -> 'value' ->> 'message'), ${MESSAGE_CHARS}) || ')', '')
      WHEN 'JOB_CANCELLED' THEN 'job cancelled in pg-boss'
      WHEN 'MAX_HOLD_EXCEEDED' THEN 'held its section longer than maxHoldSeconds ('
        || v.max_hold::text || ' s) while waiting for its retry'
    END) AS reason
    FROM verdicts v
   WHERE v.verdict IS NOT NULL AND v.verdict <> 'KEPT'
), settled AS (
  UPDATE job_logs l
     SET state = CASE WHEN r.verdict = 'COMPLETED' THEN 'finished' ELSE 'dead' END::"JobState",
         error = CASE WHEN r.verdict = 'COMPLETED' THEN NULL ELSE r.reason END,
         errors = CASE WHEN r.verdict = 'COMPLETED' THEN l.errors ELSE ${appendError('l.errors', 'l.attempt', 'r.reason')} END,
         finished_at = COALESCE(CASE WHEN r.verdict = 'COMPLETED' THEN r.completed_on END, clock_timestamp()),
         duration_ms = round(extract(epoch FROM COALESCE(CASE WHEN r.verdict = 'COMPLETED' THEN r.completed_on END,
                                                         clock_timestamp()) - l.started_at) * 1000)::float8,
         updated_at = clock_timestamp()
    FROM reasons r
   WHERE l.id = r.id AND l.state = 'started' AND l.attempt = r.attempt AND l.updated_at = r.updated_at
     AND l.lease_until IS NOT DISTINCT FROM r.lease_until
  RETURNING r.verdict, l.jid::text AS jid
)
SELECT (SELECT array_agg(jid) FROM settled) AS jids,
       (SELECT count(*) FROM settled WHERE verdict = 'COMPLETED')::int AS finished,
       (SELECT count(*) FROM settled WHERE verdict <> 'COMPLETED')::int AS dead,
       (SELECT count(*) FROM verdicts WHERE verdict = 'KEPT')::int AS kept`;

/**
 * Reconcile every `started` row with pg-boss's job table once:
 * - pg-boss `completed` → `finished` (the handler finished, its final write was lost);
 * - `failed`, `cancelled`, or no such job → `dead`, the reason in `error`;
 * - `created` / `retry` → kept for the retry, unless `maxHoldSeconds` passed → `dead`;
 * - `active` → untouched;
 * - a `joblog.section()` row → `dead` once its lease has expired (its process is gone).
 */
export async function reap(prisma: PrismaLike, options: ReapOptions = {}): Promise<Pick<ReapResult, 'finished' | 'dead' | 'kept'> & { jids: string[] }> {
  const o = parseOptions(reapOptionsSchema, options, 'reap');
  const rows = await prisma.$queryRawUnsafe<{ finished: number; dead: number; kept: number; jids: string[] | null }[]>(
    reapStatement(o.bossSchema),
    JSON.stringify(o.maxHoldSeconds.byType),
    JSON.stringify(o.maxHoldSeconds.byGroup),
    o.jid ?? null,
  );
  const row = rows[0]!;
  return { finished: Number(row.finished), dead: Number(row.dead), kept: Number(row.kept), jids: row.jids ?? [] };
}
